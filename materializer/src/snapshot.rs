//! A table as of a cut, and one row as of a cut.

use std::collections::HashMap;
use std::ops::{Bound, ControlFlow, RangeBounds};

use changelog::keys::UserKey;
use changelog::{Datum, DatumRef, Projection, ScanStats, SchemaHistory, SchemaVersionNo, Store, VersionState};

use crate::cut::Cut;
use crate::error::{Carried, QueryError, Result};
use crate::table::TableAt;

/// Caches the projection from each stored row's schema version to the
/// cut's, so a scan computes each mapping once.
pub(crate) struct Projector<'h> {
    history: &'h SchemaHistory,
    target: SchemaVersionNo,
    cache: HashMap<SchemaVersionNo, Projection>,
}

impl<'h> Projector<'h> {
    pub(crate) fn new(history: &'h SchemaHistory, target: SchemaVersionNo) -> Self {
        Projector {
            history,
            target,
            cache: HashMap::new(),
        }
    }

    pub(crate) fn get(&mut self, from: SchemaVersionNo) -> &Projection {
        let (history, target) = (self.history, self.target);
        self.cache
            .entry(from)
            .or_insert_with(|| history.projection(from, target))
    }

    /// Projects owned values.
    pub(crate) fn owned(&mut self, from: SchemaVersionNo, values: &[Datum]) -> Vec<Datum> {
        let refs: Vec<DatumRef<'_>> = values.iter().map(Datum::as_ref).collect();
        let mut out = Vec::with_capacity(refs.len());
        self.get(from).apply(&refs, &mut out);
        out.into_iter().map(DatumRef::to_datum).collect()
    }
}

/// Streams the rows of `table` as of `cut` in key order, each as values in
/// the table's column order at the cut. A row with several identical copies
/// (a table that counts copies, see [`changelog::TableSchema::counts_copies`])
/// is handed to `f` once per copy, as Postgres returns it. `f` returns
/// [`ControlFlow::Break`] to stop; its errors come back unchanged, and the
/// store's join them through `From<QueryError>`.
pub fn snapshot<E: From<QueryError>>(
    store: &Store,
    table: &TableAt<'_>,
    cut: Cut,
    mut f: impl FnMut(&[DatumRef<'_>]) -> Result<ControlFlow<()>, E>,
) -> Result<ScanStats, E> {
    let Some(entry) = store.catalog().table(table.id) else {
        return Ok(ScanStats::default());
    };
    let dead_before = entry.last_reset_at(cut.lsn);
    let mut projector = Projector::new(&entry.history, table.version.version);
    let mut out: Vec<DatumRef<'static>> = Vec::with_capacity(table.schema.columns.len());
    let scan = store.scan_as_of(table.id, cut.lsn, dead_before, |row| {
        if row.schema == table.version.version {
            return each_copy(row.copies, row.values, &mut f);
        }
        // Reuse one buffer across rows; its lifetime is re-bound per row.
        let mut tmp: Vec<DatumRef<'_>> = std::mem::take(&mut out).into_iter().collect();
        projector.get(row.schema).apply(row.values, &mut tmp);
        let r = each_copy(row.copies, &tmp, &mut f);
        tmp.clear();
        out = tmp.into_iter().map(|_| DatumRef::Null).collect();
        r
    });
    scan.map_err(|Carried(e)| e)
}

/// Streams the rows of `table` as of `cut` whose keys lie in `range` (keys
/// compare as the store orders them: integers numerically, text by bytes),
/// in key order, like [`snapshot`]. The store's key index is walked from
/// the table's first key, as it offers no seek by key, but only the rows in
/// the range are looked up and decoded, and the walk stops past its end.
pub fn snapshot_range<E: From<QueryError>>(
    store: &Store,
    table: &TableAt<'_>,
    cut: Cut,
    range: (Bound<UserKey>, Bound<UserKey>),
    mut f: impl FnMut(&[DatumRef<'_>]) -> Result<ControlFlow<()>, E>,
) -> Result<(), E> {
    let Some(entry) = store.catalog().table(table.id) else {
        return Ok(());
    };
    let mut projector = Projector::new(&entry.history, table.version.version);
    let walk = store.for_each_key(table.id, |key| -> std::result::Result<ControlFlow<()>, Carried<E>> {
        let past_end = match &range.1 {
            Bound::Included(end) => key > *end,
            Bound::Excluded(end) => key >= *end,
            Bound::Unbounded => false,
        };
        if past_end {
            return Ok(ControlFlow::Break(()));
        }
        if !range.contains(&key) {
            return Ok(ControlFlow::Continue(()));
        }
        let Some(v) = store.version_at(&key, cut.lsn)? else {
            return Ok(ControlFlow::Continue(()));
        };
        if !entry.survives_resets(v.lsn, cut.lsn) {
            return Ok(ControlFlow::Continue(()));
        }
        match v.state {
            VersionState::Row { schema, copies, values } => {
                let row = projector.owned(schema, &values);
                let refs: Vec<DatumRef<'_>> = row.iter().map(Datum::as_ref).collect();
                each_copy(copies, &refs, &mut f)
            }
            VersionState::Deleted => Ok(ControlFlow::Continue(())),
        }
    });
    walk.map_err(|Carried(e)| e)
}

/// Hands `values` to `f` once per copy, stopping when `f` does.
fn each_copy<E>(
    copies: u64,
    values: &[DatumRef<'_>],
    f: &mut impl FnMut(&[DatumRef<'_>]) -> Result<ControlFlow<()>, E>,
) -> std::result::Result<ControlFlow<()>, Carried<E>> {
    for _ in 0..copies {
        if f(values).map_err(Carried)?.is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// A row found by [`get`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Found {
    /// The values, in the table's column order at the cut.
    pub row: Vec<Datum>,
    /// How many identical copies of the row existed: more than one only in
    /// a table that counts copies, whose key is the whole row.
    pub copies: u64,
}

/// The row with key `key` as of `cut`, in the table's column order at the
/// cut, with its number of copies; `None` when no such row existed then.
pub fn get(store: &Store, table: &TableAt<'_>, key: &changelog::keys::UserKey, cut: Cut) -> Result<Option<Found>> {
    let Some(entry) = store.catalog().table(table.id) else {
        return Ok(None);
    };
    let Some(v) = store.version_at(key, cut.lsn)? else {
        return Ok(None);
    };
    if !entry.survives_resets(v.lsn, cut.lsn) {
        return Ok(None);
    }
    match v.state {
        VersionState::Row { schema, copies, values } => Ok(Some(Found {
            row: Projector::new(&entry.history, table.version.version).owned(schema, &values),
            copies,
        })),
        VersionState::Deleted => Ok(None),
    }
}
