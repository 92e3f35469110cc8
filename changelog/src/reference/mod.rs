//! The reference fold: a deliberately naive replay of transactions, used
//! only by tests (behind the `reference` feature) as the oracle for the
//! indexed store and for the answers built on it.
//!
//! It keeps a full copy of every table after every transaction and rewrites
//! rows eagerly on schema changes: the opposite of the store, which writes
//! each version once and projects old rows lazily at read time. The two
//! agree only when both are right. Row order uses the store's key encoding
//! ([`keys::row_key`]), whose ordering is tested on its own.
//!
//! A table that counts copies ([`TableSchema::counts_copies`]) is a
//! multiset here too: each row has its number of copies, inserts add one,
//! deletes take one away, and snapshots list every copy.

mod shapes;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::keys;
use crate::{
    ChangeRecord, CommitInfo, CommitTime, Datum, Lsn, ResetKind, RowImage, SchemaChange, TableId, TableSchema,
    Transaction,
};

pub use shapes::{column, initial_schema, key_image, key_values, BAG};

/// One table in one state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableState {
    /// Current shape; `None` when the table does not exist.
    pub schema: Option<TableSchema>,
    /// Rows by encoded key, values in the current shape.
    pub rows: BTreeMap<Vec<u8>, Vec<Datum>>,
    /// How many identical copies of each row of `rows` exist (the same
    /// keys; 1 unless the table counts copies).
    pub copies: BTreeMap<Vec<u8>, u64>,
}

impl TableState {
    /// Applies one schema change, rewriting every row into the new shape:
    /// kept columns keep their values, added ones take their backfill (else
    /// NULL).
    pub fn apply_schema(&mut self, change: &SchemaChange) {
        match change {
            SchemaChange::Drop | SchemaChange::Uncaptured { .. } => *self = TableState::default(),
            SchemaChange::Define { schema, backfill, .. } => {
                let Some(old) = self.schema.take() else {
                    *self = TableState {
                        schema: Some(schema.clone()),
                        ..TableState::default()
                    };
                    return;
                };
                for row in self.rows.values_mut() {
                    *row = schema
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
                }
                self.schema = Some(schema.clone());
            }
        }
    }

    /// Copies of the row under `key` (0: none).
    pub fn copies_of(&self, key: &[u8]) -> u64 {
        self.copies.get(key).copied().unwrap_or(0)
    }

    /// Adds a copy of `row` under `key` in a table that counts copies; in
    /// any other table `row` replaces the row of its key.
    fn add(&mut self, key: Vec<u8>, row: Vec<Datum>) {
        let counted = self.schema.as_ref().is_some_and(TableSchema::counts_copies);
        let n = if counted { self.copies_of(&key) + 1 } else { 1 };
        self.copies.insert(key.clone(), n);
        self.rows.insert(key, row);
    }

    /// Takes a copy of the row under `key` away in a table that counts
    /// copies; in any other table the row is gone.
    fn take(&mut self, key: &[u8]) {
        let counted = self.schema.as_ref().is_some_and(TableSchema::counts_copies);
        let left = if counted {
            self.copies_of(key).saturating_sub(1)
        } else {
            0
        };
        if left == 0 {
            self.rows.remove(key);
            self.copies.remove(key);
        } else {
            self.copies.insert(key.to_vec(), left);
        }
    }
}

/// Every table after one transaction (or inside one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Tables by id.
    pub tables: BTreeMap<TableId, TableState>,
}

/// Keys per table.
pub type KeySet = BTreeMap<TableId, BTreeSet<Vec<u8>>>;

/// What applying records did to keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// The keys left with a version: a reset inside the transaction removes
    /// the versions it wrote before the reset.
    pub written: KeySet,
    /// The keys written, or removed by a truncate, re-read or drop.
    pub touched: KeySet,
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

impl State {
    /// Applies one record; returns the record as the store logs it
    /// (unchanged TOAST resolved). Row changes to a table without a shape
    /// are ignored.
    pub fn apply(&mut self, rec: &ChangeRecord, fx: &mut Effects) -> ChangeRecord {
        match rec {
            ChangeRecord::Schema { table, change } => {
                if matches!(change, SchemaChange::Drop | SchemaChange::Uncaptured { .. }) {
                    self.empty(*table, fx);
                }
                self.tables.entry(*table).or_default().apply_schema(change);
                rec.clone()
            }
            ChangeRecord::Truncate { tables } => {
                for t in tables {
                    self.empty(*t, fx);
                }
                rec.clone()
            }
            ChangeRecord::ReadStart { table } => {
                self.empty(*table, fx);
                rec.clone()
            }
            ChangeRecord::Insert { table, new } | ChangeRecord::Read { table, row: new } => {
                let ts = self.tables.entry(*table).or_default();
                let Some(schema) = &ts.schema else { return rec.clone() };
                let k = keys::row_key(*table, schema, &new.0).0;
                let row = resolve_toast(new, ts.rows.get(&k));
                ts.add(k.clone(), row.clone());
                fx.written.entry(*table).or_default().insert(k.clone());
                fx.touched.entry(*table).or_default().insert(k);
                match rec {
                    ChangeRecord::Insert { .. } => ChangeRecord::Insert {
                        table: *table,
                        new: RowImage(row),
                    },
                    _ => ChangeRecord::Read {
                        table: *table,
                        row: RowImage(row),
                    },
                }
            }
            ChangeRecord::Update { table, old, new } => {
                let ts = self.tables.entry(*table).or_default();
                let Some(schema) = &ts.schema else { return rec.clone() };
                let old_k = keys::row_key(*table, schema, &old.as_ref().unwrap_or(new).0).0;
                let new_k = keys::row_key(*table, schema, &new.0).0;
                let row = resolve_toast(new, ts.rows.get(&old_k));
                ts.take(&old_k);
                ts.add(new_k.clone(), row.clone());
                let w = fx.written.entry(*table).or_default();
                w.insert(new_k.clone());
                if old.is_some() && old_k != new_k {
                    w.insert(old_k.clone());
                }
                let touched = fx.touched.entry(*table).or_default();
                touched.insert(old_k);
                touched.insert(new_k);
                ChangeRecord::Update {
                    table: *table,
                    old: old.clone(),
                    new: RowImage(row),
                }
            }
            ChangeRecord::Delete { table, old } => {
                let ts = self.tables.entry(*table).or_default();
                let Some(schema) = &ts.schema else { return rec.clone() };
                let k = keys::row_key(*table, schema, &old.0).0;
                ts.take(&k);
                fx.written.entry(*table).or_default().insert(k.clone());
                fx.touched.entry(*table).or_default().insert(k);
                rec.clone()
            }
        }
    }

    /// Removes every row of `t` (a truncate, re-read or drop).
    fn empty(&mut self, t: TableId, fx: &mut Effects) {
        let ts = self.tables.entry(t).or_default();
        fx.touched.entry(t).or_default().extend(ts.rows.keys().cloned());
        fx.written.remove(&t);
        ts.rows.clear();
        ts.copies.clear();
    }
}

/// What one transaction did, as the fold sees it.
#[derive(Clone, Debug)]
pub struct Step {
    /// Where and when it committed.
    pub commit: CommitInfo,
    /// Commit time made monotonic in LSN order.
    pub mono_time: CommitTime,
    /// Number of records.
    pub records: u32,
    /// Every table after it.
    pub state: State,
    /// Its records as the store logs them.
    pub log: Vec<ChangeRecord>,
    /// The keys it left a version for (per table, never empty).
    pub written: KeySet,
    /// The keys it wrote or removed.
    pub touched: KeySet,
    /// Its schema changes, in order.
    pub schema_changes: Vec<(TableId, SchemaChange)>,
    /// Tables it reset, with the kind of the last reset.
    pub resets: BTreeMap<TableId, ResetKind>,
}

impl Step {
    /// The commit LSN.
    pub fn lsn(&self) -> Lsn {
        self.commit.commit_lsn
    }
}

/// The naive fold of a list of transactions.
#[derive(Clone, Debug, Default)]
pub struct Reference {
    /// One step per applied transaction, in commit order.
    pub steps: Vec<Step>,
}

impl Reference {
    /// An empty fold.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fold of `txns`.
    pub fn of(txns: &[Transaction]) -> Reference {
        let mut r = Reference::new();
        for t in txns {
            r.apply(t);
        }
        r
    }

    /// Applies a transaction (skipped when at or below the last one, like
    /// the store).
    pub fn apply(&mut self, txn: &Transaction) {
        if self.last_lsn().is_some_and(|l| txn.commit.commit_lsn <= l) {
            return;
        }
        let mut state = self.steps.last().map(|s| s.state.clone()).unwrap_or_default();
        let mono_time = self
            .steps
            .last()
            .map_or(txn.commit.commit_time, |s| s.mono_time.max(txn.commit.commit_time));
        let mut fx = Effects::default();
        let mut log = Vec::new();
        let mut schema_changes = Vec::new();
        let mut resets = BTreeMap::new();
        for rec in &txn.records {
            log.push(state.apply(rec, &mut fx));
            match rec {
                ChangeRecord::Schema { table, change } => {
                    schema_changes.push((*table, change.clone()));
                    if matches!(change, SchemaChange::Drop | SchemaChange::Uncaptured { .. }) {
                        resets.insert(*table, ResetKind::Drop);
                    }
                }
                ChangeRecord::Truncate { tables } => {
                    for t in tables {
                        resets.insert(*t, ResetKind::Truncate);
                    }
                }
                ChangeRecord::ReadStart { table } => {
                    resets.insert(*table, ResetKind::Read);
                }
                _ => {}
            }
        }
        fx.written.retain(|_, keys| !keys.is_empty());
        self.steps.push(Step {
            commit: txn.commit,
            mono_time,
            records: u32::try_from(txn.records.len()).unwrap_or(u32::MAX),
            state,
            log,
            written: fx.written,
            touched: fx.touched,
            schema_changes,
            resets,
        });
    }

    /// The last applied commit.
    pub fn last_lsn(&self) -> Option<Lsn> {
        self.steps.last().map(Step::lsn)
    }

    /// Commit LSNs of every applied transaction.
    pub fn lsns(&self) -> Vec<Lsn> {
        self.steps.iter().map(Step::lsn).collect()
    }

    /// Index of the step that committed at `lsn`.
    pub fn index_of(&self, lsn: Lsn) -> Option<usize> {
        self.steps.iter().position(|s| s.lsn() == lsn)
    }

    /// Index of the last step with commit LSN `<= cut`.
    pub fn step_index_at(&self, cut: Lsn) -> Option<usize> {
        self.steps.partition_point(|s| s.lsn() <= cut).checked_sub(1)
    }

    /// Every table id the first `k` transactions mention.
    pub fn table_ids(&self, k: usize) -> BTreeSet<TableId> {
        self.steps
            .iter()
            .take(k)
            .flat_map(|s| s.state.tables.keys().copied())
            .collect()
    }

    /// The state after the last transaction with commit LSN `<= cut`.
    pub fn state_at(&self, cut: Lsn) -> Option<&State> {
        self.step_index_at(cut)
            .and_then(|i| self.steps.get(i))
            .map(|s| &s.state)
    }

    /// A table's rows at `cut` in key order, each copy of a row listed;
    /// `None` when it did not exist.
    pub fn snapshot(&self, t: TableId, cut: Lsn) -> Option<Vec<Vec<Datum>>> {
        let ts = self.state_at(cut)?.tables.get(&t)?;
        ts.schema.as_ref()?;
        let mut out = Vec::new();
        for (k, row) in &ts.rows {
            for _ in 0..ts.copies_of(k) {
                out.push(row.clone());
            }
        }
        Some(out)
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

    /// How many copies of one row exist at `cut` (0: none).
    pub fn copies(&self, t: TableId, key: &[u8], cut: Lsn) -> u64 {
        self.state_at(cut)
            .and_then(|s| s.tables.get(&t))
            .map_or(0, |ts| ts.copies_of(key))
    }

    /// The keys of `t` that steps `from..to` touched.
    pub fn touched(&self, t: TableId, steps: std::ops::Range<usize>) -> HashSet<&Vec<u8>> {
        self.steps
            .get(steps)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.touched.get(&t))
            .flatten()
            .collect()
    }
}
