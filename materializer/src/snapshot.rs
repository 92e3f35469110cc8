//! A table as of a cut, and one row as of a cut.

use std::collections::HashMap;
use std::ops::ControlFlow;

use changelog::keys::KeyRange;
use changelog::{
    Datum, DatumRef, Projection, ScanStats, SchemaHistory, SchemaVersionNo, Store, TableRead, VersionState,
};

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
    f: impl FnMut(&[DatumRef<'_>]) -> Result<ControlFlow<()>, E>,
) -> Result<ScanStats, E> {
    snapshot_range(store, table, &KeyRange::ALL, cut, f)
}

/// [`snapshot`] of the rows whose keys lie in `range`: one part of a
/// table split by [`Store::split_table`], read beside the others. Parts of
/// one read share its plan through [`plan_snapshot`] and [`snapshot_part`].
pub fn snapshot_range<E: From<QueryError>>(
    store: &Store,
    table: &TableAt<'_>,
    range: &KeyRange,
    cut: Cut,
    f: impl FnMut(&[DatumRef<'_>]) -> Result<ControlFlow<()>, E>,
) -> Result<ScanStats, E> {
    let plan = plan_snapshot(store, table, cut)?;
    snapshot_part(store, table, &plan, range, f)
}

/// The read of one table at one cut, planned once for the parts of a
/// split read, which share what it reads (the log since a base image).
#[derive(Debug)]
pub struct SnapshotPlan {
    /// `None` when the store does not know the table.
    read: Option<TableRead>,
}

/// Plans the read of `table` at `cut` for [`snapshot_part`].
pub fn plan_snapshot(store: &Store, table: &TableAt<'_>, cut: Cut) -> Result<SnapshotPlan> {
    let Some(entry) = store.catalog().table(table.id) else {
        return Ok(SnapshotPlan { read: None });
    };
    let dead_before = entry.last_reset_at(cut.lsn);
    Ok(SnapshotPlan {
        read: Some(store.plan_table_read(table.id, cut.lsn, dead_before)?),
    })
}

/// [`snapshot_range`] under a plan made by [`plan_snapshot`] for the same
/// table and cut.
pub fn snapshot_part<E: From<QueryError>>(
    store: &Store,
    table: &TableAt<'_>,
    plan: &SnapshotPlan,
    range: &KeyRange,
    mut f: impl FnMut(&[DatumRef<'_>]) -> Result<ControlFlow<()>, E>,
) -> Result<ScanStats, E> {
    let (Some(read), Some(entry)) = (&plan.read, store.catalog().table(table.id)) else {
        return Ok(ScanStats::default());
    };
    let mut projector = Projector::new(&entry.history, table.version.version);
    let mut out: Vec<DatumRef<'static>> = Vec::with_capacity(table.schema.columns.len());
    let scan = store.scan_planned(read, range, |row| {
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
