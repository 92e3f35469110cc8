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

/// One differing row: (kind, before, after).
pub type ModelDiff = (DiffKind, Option<Vec<Datum>>, Option<Vec<Datum>>);

/// Every transaction that touched the key: (commit LSN, op, row after).
pub fn history(r: &Reference, t: TableId, key: &[u8]) -> Vec<(Lsn, HistoryOp, Option<Vec<Datum>>)> {
    let mut out = Vec::new();
    let mut before: Option<&Vec<Datum>> = None;
    for step in &r.steps {
        let after = step.state.tables.get(&t).and_then(|ts| ts.rows.get(key));
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
            let op = match (before.is_some(), after.is_some()) {
                (false, true) if read => Some(HistoryOp::Read),
                (false, true) => Some(HistoryOp::Insert),
                (true, true) => Some(HistoryOp::Update),
                (true, false) => Some(HistoryOp::Delete),
                (false, false) => None,
            };
            if let Some(op) = op {
                out.push((step.lsn(), op, after.cloned()));
            }
        }
        before = after;
    }
    out
}

/// Rows of table `t` that differ between `from` and `to`, in key order:
/// (kind, before, after). A row differs when some transaction in between
/// touched it and its earlier values, carried through the schema changes in
/// between, are not its later values.
pub fn diff(r: &Reference, t: TableId, from: Lsn, to: Lsn) -> Vec<ModelDiff> {
    let (Some(i), Some(j)) = (r.step_index_at(from), r.step_index_at(to)) else {
        return Vec::new();
    };
    let empty = TableState::default();
    let steps = r.steps.get(i + 1..=j).unwrap_or_default();
    let before_ts = r.steps.get(i).and_then(|s| s.state.tables.get(&t)).unwrap_or(&empty);
    let after_ts = r.steps.get(j).and_then(|s| s.state.tables.get(&t)).unwrap_or(&empty);
    let mut keys: Vec<&Vec<u8>> = r.touched(t, i + 1..j + 1).into_iter().collect();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        match (before_ts.rows.get(k), after_ts.rows.get(k)) {
            (None, None) => {}
            (None, Some(a)) => out.push((DiffKind::Inserted, None, Some(a.clone()))),
            (Some(b), None) => out.push((DiffKind::Deleted, Some(b.clone()), None)),
            (Some(b), Some(a)) => {
                // Carry the old row through the schema changes alone.
                let mut carried = TableState {
                    schema: before_ts.schema.clone(),
                    rows: BTreeMap::from([(k.clone(), b.clone())]),
                };
                for (_, change) in steps.iter().flat_map(|s| &s.schema_changes).filter(|(tt, _)| *tt == t) {
                    carried.apply_schema(change);
                }
                if carried.rows.get(k) != Some(a) {
                    out.push((DiffKind::Changed, Some(b.clone()), Some(a.clone())));
                }
            }
        }
    }
    out
}
