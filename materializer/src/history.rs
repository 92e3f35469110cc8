//! Every version of one row, and the difference between two cuts.

use std::ops::ControlFlow;

use changelog::keys::UserKey;
use changelog::{Datum, Lsn, ResetKind, Store, VersionState};

use crate::cut::Cut;
use crate::error::{Carried, QueryError, Result};
use crate::snapshot::Projector;
use crate::table::TableAt;

/// What a transaction did to a row.
///
/// In a table that counts copies (the whole row is its key) a row's
/// values never change, only its number of copies: an insert adds copies,
/// a delete removes some (not always the last one), an update leaves as
/// many as there were.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HistoryOp {
    /// The row was found by a full read of the table (the initial copy):
    /// it existed before the history began.
    Read,
    /// The row came into existence, or gained copies.
    Insert,
    /// The row existed before and after, with as many copies (its values
    /// may be equal).
    Update,
    /// The row ceased to exist (DELETE, TRUNCATE, DROP, or absence from a
    /// re-read), or lost copies.
    Delete,
    /// The state at the retention horizon, where compacted history begins.
    Base,
}

impl HistoryOp {
    /// What a transaction that left a row with `after` copies, where it
    /// had `before`, did to it; `read` when the transaction re-read the
    /// table. `None` when the row neither existed before nor after.
    pub fn of_copies(before: u64, after: u64, read: bool) -> Option<HistoryOp> {
        Some(match (before, after) {
            (0, 0) => return None,
            (0, _) if read => HistoryOp::Read,
            (b, a) if a > b => HistoryOp::Insert,
            (b, a) if a < b => HistoryOp::Delete,
            _ => HistoryOp::Update,
        })
    }

    /// One-letter code as in Debezium (`c`, `u`, `d`; `r` for a read and
    /// for the base, which is what a read at the horizon would find).
    pub fn code(self) -> &'static str {
        match self {
            HistoryOp::Read => "r",
            HistoryOp::Insert => "c",
            HistoryOp::Update => "u",
            HistoryOp::Delete => "d",
            HistoryOp::Base => "r",
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            HistoryOp::Read => "read",
            HistoryOp::Insert => "insert",
            HistoryOp::Update => "update",
            HistoryOp::Delete => "delete",
            HistoryOp::Base => "base",
        }
    }
}

/// One entry of a row's history: what one transaction left.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HistoryEntry {
    /// The transaction.
    pub cut: Cut,
    /// What it did.
    pub op: HistoryOp,
    /// The row after it, in the table's columns at that moment (`None`
    /// once no copy is left).
    pub row: Option<Vec<Datum>>,
    /// How many identical copies of the row exist after it: 0 or 1 unless
    /// the table counts copies.
    pub copies: u64,
    /// The column names the row is in.
    pub columns: Vec<String>,
}

/// Every transaction that touched the row with key `key`, oldest first.
///
/// A row is touched when a change wrote its key, or when a TRUNCATE, DROP or
/// re-read removed it while it existed. Transactions that inserted and
/// deleted the row within themselves leave no entry.
pub fn history(store: &Store, table: &TableAt<'_>, key: &UserKey) -> Result<Vec<HistoryEntry>> {
    let Some(entry) = store.catalog().table(table.id) else {
        return Ok(Vec::new());
    };
    let mut versions = store.versions_of(key)?;
    versions.reverse();
    let horizon = store.horizon();
    let read_at = |lsn: Lsn| entry.resets.iter().any(|(l, k)| *l == lsn && *k == ResetKind::Read);
    let mut events: Vec<(Lsn, Option<changelog::StoredVersion>)> =
        versions.into_iter().map(|v| (v.lsn, Some(v))).collect();
    let first_lsn = events.first().map(|(l, _)| *l);
    for (lsn, _) in &entry.resets {
        // Resets before the key's first version cannot touch it.
        if first_lsn.is_some_and(|f| *lsn > f) {
            events.push((*lsn, None));
        }
    }
    // At one LSN a reset comes before a version (the version is the
    // transaction's net effect on the key, which includes the reset).
    events.sort_by_key(|(l, v)| (*l, v.is_some()));

    let mut out: Vec<HistoryEntry> = Vec::new();
    // Copies of the row after each transaction (0: absent).
    let mut live = 0;
    let mut i = 0;
    while i < events.len() {
        let lsn = events.get(i).map(|(l, _)| *l).unwrap_or_default();
        let before = live;
        let mut after = live;
        let mut row = None;
        while let Some((l, ev)) = events.get(i) {
            if *l != lsn {
                break;
            }
            match ev {
                None => after = 0,
                Some(v) => match &v.state {
                    VersionState::Row { schema, copies, values } => {
                        after = *copies;
                        row = Some((*schema, values.clone()));
                    }
                    VersionState::Deleted => {
                        after = 0;
                        row = None;
                    }
                },
            }
            i += 1;
        }
        live = after;
        let is_base = horizon.is_some_and(|h| lsn <= h);
        let op = if is_base && after > 0 {
            HistoryOp::Base
        } else {
            match HistoryOp::of_copies(before, after, read_at(lsn)) {
                Some(op) => op,
                None => continue,
            }
        };
        let cut_lsn = if is_base { horizon.unwrap_or(lsn) } else { lsn };
        let commit = store.commit(cut_lsn)?.ok_or(QueryError::EmptyStore)?;
        // Rows read with the columns of their own moment (the horizon's,
        // for a base version written earlier).
        let version = entry.history.at(cut_lsn);
        let columns: Vec<String> = version
            .and_then(|v| v.schema())
            .map(|s| s.column_names().map(String::from).collect())
            .unwrap_or_default();
        let row = match (row, version) {
            (Some((schema, values)), Some(v)) if after > 0 => {
                Some(Projector::new(&entry.history, v.version).owned(schema, &values))
            }
            _ => None,
        };
        out.push(HistoryEntry {
            cut: Cut::from_commit(&commit),
            op,
            row,
            copies: after,
            columns,
        });
    }
    Ok(out)
}

/// How a row differs between two cuts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DiffKind {
    /// Present only at the later cut.
    Inserted,
    /// Present only at the earlier cut.
    Deleted,
    /// Present at both, with different values.
    Changed,
}

/// One differing row.
///
/// In a table that counts copies (the whole row is its key) a row that
/// gained or lost copies between the cuts is `Inserted` or `Deleted` with
/// `copies` saying how many; its other side is `None` even when some
/// copies existed at both cuts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DiffEntry {
    /// How it differs.
    pub kind: DiffKind,
    /// How many copies of the row this entry stands for: those inserted,
    /// deleted or changed. 1 unless the table counts copies.
    pub copies: u64,
    /// The row at the earlier cut, in the table's columns then.
    pub before: Option<Vec<Datum>>,
    /// The row at the later cut, in the table's columns then.
    pub after: Option<Vec<Datum>>,
}

/// Streams the rows of a table that differ between `from` and `to`, in key
/// order. `from_table` is the table at `from` (`None` when it did not exist
/// yet), `to_table` at `to`. A row counts as changed when its earlier values,
/// read with the later columns, differ from its later values, so a column
/// added with a default does not make every row "changed". `f` returns
/// [`ControlFlow::Break`] to stop; its errors come back unchanged.
pub fn diff<E: From<QueryError>>(
    store: &Store,
    from_table: Option<&TableAt<'_>>,
    to_table: &TableAt<'_>,
    from: Cut,
    to: Cut,
    mut f: impl FnMut(DiffEntry) -> Result<ControlFlow<()>, E>,
) -> Result<changelog::ScanStats, E> {
    if from.lsn > to.lsn {
        return Err(QueryError::ReversedRange { from, to }.into());
    }
    let Some(entry) = store.catalog().table(to_table.id) else {
        return Ok(Default::default());
    };
    let dead_from = match from_table {
        Some(t) if t.id == to_table.id => entry.last_reset_at(from.lsn),
        // The table did not exist (as this table) at `from`: nothing before.
        _ => Some(Lsn::MAX),
    };
    let dead_to = entry.last_reset_at(to.lsn);
    let mut to_proj = Projector::new(&entry.history, to_table.version.version);
    let mut from_proj = from_table.map(|t| Projector::new(&entry.history, t.version.version));
    let scan = store.scan_diff(to_table.id, (from.lsn, dead_from), (to.lsn, dead_to), |row| {
        let after_copies = row.after.as_ref().map_or(0, |a| a.copies);
        let after = row.after.map(|a| to_proj.owned(a.schema, &a.values));
        let (before, before_in_to, before_copies) = match (&row.before, from_proj.as_mut()) {
            (Some(b), Some(p)) => (
                Some(p.owned(b.schema, &b.values)),
                Some(to_proj.owned(b.schema, &b.values)),
                b.copies,
            ),
            _ => (None, None, 0),
        };
        let entry = match (before, after) {
            (None, Some(a)) => DiffEntry::inserted(after_copies, a),
            (Some(b), None) => DiffEntry::deleted(before_copies, b),
            // Same values: only the number of copies can differ.
            (Some(b), Some(a)) if before_in_to.as_ref() == Some(&a) => match after_copies.cmp(&before_copies) {
                std::cmp::Ordering::Greater => DiffEntry::inserted(after_copies - before_copies, a),
                std::cmp::Ordering::Less => DiffEntry::deleted(before_copies - after_copies, b),
                std::cmp::Ordering::Equal => return Ok(ControlFlow::Continue(())),
            },
            (Some(b), Some(a)) => DiffEntry {
                kind: DiffKind::Changed,
                copies: after_copies,
                before: Some(b),
                after: Some(a),
            },
            (None, None) => return Ok(ControlFlow::Continue(())),
        };
        f(entry).map_err(Carried)
    });
    scan.map_err(|Carried(e)| e)
}

impl DiffEntry {
    fn inserted(copies: u64, row: Vec<Datum>) -> Self {
        DiffEntry {
            kind: DiffKind::Inserted,
            copies,
            before: None,
            after: Some(row),
        }
    }

    fn deleted(copies: u64, row: Vec<Datum>) -> Self {
        DiffEntry {
            kind: DiffKind::Deleted,
            copies,
            before: Some(row),
            after: None,
        }
    }
}
