//! The reference fold: a deliberately naive replay of the log, used only by
//! tests as the oracle for the indexed store.
//!
//! It keeps a full copy of every table after every transaction and applies
//! schema changes eagerly to every row, which is the opposite of what the
//! store does (versions written once, projected lazily at read time), so the
//! two only agree when both are right. Row order uses the store's key
//! encoding, whose ordering is tested on its own.

use std::collections::{BTreeMap, HashSet};

use changelog::keys::encode_user_key;
use changelog::{ChangeRecord, Datum, Lsn, RowImage, SchemaChange, TableId, TableSchema, Transaction};

use crate::history::{DiffKind, HistoryOp};

/// One differing row: (kind, before, after).
pub type ModelDiff = (DiffKind, Option<Vec<Datum>>, Option<Vec<Datum>>);

/// One table in one state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableState {
    /// Current shape; `None` when the table does not exist.
    pub schema: Option<TableSchema>,
    /// Rows by encoded key, values in the current shape.
    pub rows: BTreeMap<Vec<u8>, Vec<Datum>>,
}

/// Every table after one transaction.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Tables by id.
    pub tables: BTreeMap<TableId, TableState>,
}

/// What one transaction did, for history and diff.
#[derive(Clone, Debug)]
struct Step {
    lsn: Lsn,
    state: State,
    /// (table, key) pairs the transaction wrote or removed.
    touched: HashSet<(TableId, Vec<u8>)>,
    /// Schema changes in order.
    schema_changes: Vec<(TableId, SchemaChange)>,
}

/// The naive model.
#[derive(Clone, Debug, Default)]
pub struct Reference {
    steps: Vec<Step>,
}

fn key_of(t: TableId, schema: &TableSchema, row: &[Datum]) -> Vec<u8> {
    let types: Vec<u32> = schema.columns.iter().filter(|c| c.is_key).map(|c| c.type_oid).collect();
    let vals = schema
        .columns
        .iter()
        .zip(row)
        .filter(|(c, _)| c.is_key)
        .map(|(_, d)| d.as_ref());
    encode_user_key(t, &types, vals).0
}

/// Applies one schema change to one table's state, rewriting every row.
fn apply_schema(ts: &mut TableState, change: &SchemaChange) {
    match change {
        SchemaChange::Drop | SchemaChange::Uncaptured { .. } => *ts = TableState::default(),
        SchemaChange::Define { schema, backfill } => {
            let Some(old) = ts.schema.take() else {
                *ts = TableState {
                    schema: Some(schema.clone()),
                    rows: BTreeMap::new(),
                };
                return;
            };
            for row in ts.rows.values_mut() {
                let new_row: Vec<Datum> = schema
                    .columns
                    .iter()
                    .map(|c| match old.column_index(&c.name) {
                        Some(i) => row.get(i).cloned().unwrap_or(Datum::Missing),
                        None => backfill
                            .iter()
                            .find(|(n, _)| *n == c.name)
                            .map_or(Datum::Null, |(_, d)| d.clone()),
                    })
                    .collect();
                *row = new_row;
            }
            ts.schema = Some(schema.clone());
        }
    }
}

fn resolve_toast(new: &RowImage, prev: Option<&Vec<Datum>>) -> Vec<Datum> {
    new.0
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Datum::UnchangedToast => prev.and_then(|p| p.get(i)).cloned().unwrap_or(Datum::Missing),
            other => other.clone(),
        })
        .collect()
}

impl Reference {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last applied commit.
    pub fn last_lsn(&self) -> Option<Lsn> {
        self.steps.last().map(|s| s.lsn)
    }

    /// Commit LSNs of every applied transaction.
    pub fn lsns(&self) -> Vec<Lsn> {
        self.steps.iter().map(|s| s.lsn).collect()
    }

    /// Applies a transaction (skipped when at or below the last one, like
    /// the store).
    pub fn apply(&mut self, txn: &Transaction) {
        let lsn = txn.commit.commit_lsn;
        if self.last_lsn().is_some_and(|l| lsn <= l) {
            return;
        }
        let mut state = self.steps.last().map(|s| s.state.clone()).unwrap_or_default();
        let mut touched = HashSet::new();
        let mut schema_changes = Vec::new();
        for rec in &txn.records {
            match rec {
                ChangeRecord::Schema { table, change } => {
                    let ts = state.tables.entry(*table).or_default();
                    if matches!(change, SchemaChange::Drop | SchemaChange::Uncaptured { .. }) {
                        touched.extend(ts.rows.keys().map(|k| (*table, k.clone())));
                    }
                    apply_schema(ts, change);
                    schema_changes.push((*table, change.clone()));
                }
                ChangeRecord::Truncate { tables } => {
                    for t in tables {
                        let ts = state.tables.entry(*t).or_default();
                        touched.extend(ts.rows.keys().map(|k| (*t, k.clone())));
                        ts.rows.clear();
                    }
                }
                ChangeRecord::ReadStart { table } => {
                    let ts = state.tables.entry(*table).or_default();
                    touched.extend(ts.rows.keys().map(|k| (*table, k.clone())));
                    ts.rows.clear();
                }
                ChangeRecord::Insert { table, new } | ChangeRecord::Read { table, row: new } => {
                    let ts = state.tables.entry(*table).or_default();
                    let Some(schema) = &ts.schema else { continue };
                    let k = key_of(*table, schema, &new.0);
                    let row = resolve_toast(new, ts.rows.get(&k));
                    ts.rows.insert(k.clone(), row);
                    touched.insert((*table, k));
                }
                ChangeRecord::Update { table, old, new } => {
                    let ts = state.tables.entry(*table).or_default();
                    let Some(schema) = &ts.schema else { continue };
                    let old_k = key_of(*table, schema, &old.as_ref().unwrap_or(new).0);
                    let new_k = key_of(*table, schema, &new.0);
                    let row = resolve_toast(new, ts.rows.get(&old_k));
                    ts.rows.remove(&old_k);
                    ts.rows.insert(new_k.clone(), row);
                    touched.insert((*table, old_k));
                    touched.insert((*table, new_k));
                }
                ChangeRecord::Delete { table, old } => {
                    let ts = state.tables.entry(*table).or_default();
                    let Some(schema) = &ts.schema else { continue };
                    let k = key_of(*table, schema, &old.0);
                    ts.rows.remove(&k);
                    touched.insert((*table, k));
                }
            }
        }
        self.steps.push(Step {
            lsn,
            state,
            touched,
            schema_changes,
        });
    }

    fn step_index_at(&self, cut: Lsn) -> Option<usize> {
        self.steps.partition_point(|s| s.lsn <= cut).checked_sub(1)
    }

    /// The state after the last transaction with commit LSN `<= cut`.
    pub fn state_at(&self, cut: Lsn) -> Option<&State> {
        self.step_index_at(cut)
            .and_then(|i| self.steps.get(i))
            .map(|s| &s.state)
    }

    /// A table's rows at `cut` in key order; `None` when it did not exist.
    pub fn snapshot(&self, t: TableId, cut: Lsn) -> Option<Vec<Vec<Datum>>> {
        let ts = self.state_at(cut)?.tables.get(&t)?;
        ts.schema.as_ref()?;
        Some(ts.rows.values().cloned().collect())
    }

    /// Tables existing at `cut`.
    pub fn tables_at(&self, cut: Lsn) -> Vec<TableId> {
        self.state_at(cut)
            .map(|s| {
                s.tables
                    .iter()
                    .filter(|(_, ts)| ts.schema.is_some())
                    .map(|(t, _)| *t)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One row at `cut`.
    pub fn get(&self, t: TableId, key: &[u8], cut: Lsn) -> Option<Vec<Datum>> {
        self.state_at(cut)?.tables.get(&t)?.rows.get(key).cloned()
    }

    /// Every transaction that touched the key: (commit LSN, op, row after).
    pub fn history(&self, t: TableId, key: &[u8]) -> Vec<(Lsn, HistoryOp, Option<Vec<Datum>>)> {
        let mut out = Vec::new();
        let mut before: Option<&Vec<Datum>> = None;
        for step in &self.steps {
            let after = step.state.tables.get(&t).and_then(|ts| ts.rows.get(key));
            if step.touched.contains(&(t, key.to_vec())) {
                let op = match (before.is_some(), after.is_some()) {
                    (false, true) => Some(HistoryOp::Insert),
                    (true, true) => Some(HistoryOp::Update),
                    (true, false) => Some(HistoryOp::Delete),
                    (false, false) => None,
                };
                if let Some(op) = op {
                    out.push((step.lsn, op, after.cloned()));
                }
            }
            before = after;
        }
        out
    }

    /// Rows of table `t` that differ between `from` and `to`, in key order:
    /// (kind, before, after). A row differs when some transaction in between
    /// touched it and its earlier values, carried through the schema changes
    /// in between, are not its later values.
    pub fn diff(&self, t: TableId, from: Lsn, to: Lsn) -> Vec<ModelDiff> {
        let (Some(i), Some(j)) = (self.step_index_at(from), self.step_index_at(to)) else {
            return Vec::new();
        };
        let empty = TableState::default();
        let steps = self.steps.get(i + 1..=j).unwrap_or_default();
        let before_ts = self.steps.get(i).and_then(|s| s.state.tables.get(&t)).unwrap_or(&empty);
        let after_ts = self.steps.get(j).and_then(|s| s.state.tables.get(&t)).unwrap_or(&empty);
        let touched: HashSet<&Vec<u8>> = steps
            .iter()
            .flat_map(|s| s.touched.iter())
            .filter(|(tt, _)| *tt == t)
            .map(|(_, k)| k)
            .collect();
        let mut keys: Vec<&Vec<u8>> = touched.into_iter().collect();
        keys.sort();
        let mut out = Vec::new();
        for k in keys {
            let b = before_ts.rows.get(k);
            let a = after_ts.rows.get(k);
            match (b, a) {
                (None, None) => {}
                (None, Some(a)) => out.push((DiffKind::Inserted, None, Some(a.clone()))),
                (Some(b), None) => out.push((DiffKind::Deleted, Some(b.clone()), None)),
                (Some(b), Some(a)) => {
                    // Carry the old row through the schema changes alone.
                    let mut carried = TableState {
                        schema: before_ts.schema.clone(),
                        rows: BTreeMap::new(),
                    };
                    carried.rows.insert(k.clone(), b.clone());
                    for s in steps {
                        for (tt, change) in &s.schema_changes {
                            if *tt == t {
                                apply_schema(&mut carried, change);
                            }
                        }
                    }
                    if carried.rows.get(k) != Some(a) {
                        out.push((DiffKind::Changed, Some(b.clone()), Some(a.clone())));
                    }
                }
            }
        }
        out
    }
}
