//! Naive answers computed from the reference fold
//! ([`changelog::reference::Reference`]), used only by tests as the oracle
//! for [`crate::history`] and [`crate::diff`].
//!
//! The fold keeps every table after every transaction; here a row's history
//! is read off the transactions that touched its key, and a diff compares
//! two states key by key, carrying the earlier row through the schema
//! changes in between.

use std::collections::BTreeMap;

use changelog::reference::{Reference, TableState};
use changelog::{ChangeRecord, Datum, Lsn, SchemaChange, TableId};

use crate::history::{DiffKind, HistoryOp};

/// One differing row: (kind, copies, before, after).
pub type ModelDiff = (DiffKind, u64, Option<Vec<Datum>>, Option<Vec<Datum>>);

/// One entry of a row's history: (commit LSN, op, row after, copies after).
pub type ModelHistory = (Lsn, HistoryOp, Option<Vec<Datum>>, u64);

/// Every transaction that touched the key.
pub fn history(r: &Reference, t: TableId, key: &[u8]) -> Vec<ModelHistory> {
    let mut out = Vec::new();
    let mut before: u64 = 0;
    for step in &r.steps {
        let ts = step.state.tables.get(&t);
        let after = ts.and_then(|ts| ts.rows.get(key));
        let copies = ts.map_or(0, |ts| ts.copies_of(key));
        if step.touched.get(&t).is_some_and(|keys| keys.contains(key)) {
            // As the store keeps it: the transaction's last reset of the
            // table says whether its rows came from a full read.
            let read = step
                .log
                .iter()
                .rev()
                .find_map(|r| match r {
                    ChangeRecord::ReadStart { table } if *table == t => Some(true),
                    ChangeRecord::Truncate { tables } if tables.contains(&t) => Some(false),
                    ChangeRecord::Schema {
                        table,
                        change: SchemaChange::Drop | SchemaChange::Uncaptured { .. },
                    } if *table == t => Some(false),
                    _ => None,
                })
                .unwrap_or(false);
            let op = match (before, copies) {
                (0, 0) => None,
                (0, _) if read => Some(HistoryOp::Read),
                (b, a) if a > b => Some(HistoryOp::Insert),
                (b, a) if a < b => Some(HistoryOp::Delete),
                _ => Some(HistoryOp::Update),
            };
            if let Some(op) = op {
                out.push((step.lsn(), op, after.cloned(), copies));
            }
        }
        before = copies;
    }
    out
}

/// Rows of table `t` that differ between `from` and `to`, in key order:
/// (kind, copies, before, after). A row differs when some transaction in
/// between touched it and its earlier values, carried through the schema
/// changes in between, are not its later values, or when it has a
/// different number of copies (inserted or deleted copies).
pub fn diff(r: &Reference, t: TableId, from: Lsn, to: Lsn) -> Vec<ModelDiff> {
    let (Some(i), Some(j)) = (r.step_index_at(from), r.step_index_at(to)) else {
        return Vec::new();
    };
    let empty = TableState::default();
    let steps = r.steps.get(i + 1..=j).unwrap_or_default();
    let before_ts = r.steps.get(i).and_then(|s| s.state.tables.get(&t)).unwrap_or(&empty);
    let after_ts = r.steps.get(j).and_then(|s| s.state.tables.get(&t)).unwrap_or(&empty);
    let mut keys: Vec<&Vec<u8>> = r.touched(t, i + 1..j + 1).into_iter().collect();
    // In the order of the version index the store's diff walks: a key
    // sorts after the longer keys it is a prefix of, which only a table
    // keyed by all its columns has, across a change of its columns.
    keys.sort_by_key(|k| changelog::keys::after_all_versions(k));
    let mut out = Vec::new();
    for k in keys {
        let (m, n) = (before_ts.copies_of(k), after_ts.copies_of(k));
        match (before_ts.rows.get(k), after_ts.rows.get(k)) {
            (None, None) => {}
            (None, Some(a)) => out.push((DiffKind::Inserted, n, None, Some(a.clone()))),
            (Some(b), None) => out.push((DiffKind::Deleted, m, Some(b.clone()), None)),
            (Some(b), Some(a)) => {
                // Carry the old row through the schema changes alone.
                let mut carried = TableState {
                    schema: before_ts.schema.clone(),
                    rows: BTreeMap::from([(k.clone(), b.clone())]),
                    copies: BTreeMap::new(),
                };
                for (_, change) in steps.iter().flat_map(|s| &s.schema_changes).filter(|(tt, _)| *tt == t) {
                    carried.apply_schema(change);
                }
                if carried.rows.get(k) != Some(a) {
                    out.push((DiffKind::Changed, n, Some(b.clone()), Some(a.clone())));
                } else if n > m {
                    out.push((DiffKind::Inserted, n - m, None, Some(a.clone())));
                } else if n < m {
                    out.push((DiffKind::Deleted, m - n, Some(b.clone()), None));
                }
            }
        }
    }
    out
}
