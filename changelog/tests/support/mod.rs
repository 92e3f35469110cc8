//! Shared pieces of the store's integration tests: a seeded generator of
//! valid transactions, a naive reference fold of them, and checks that
//! compare everything a store exposes with that fold.
//!
//! The fold keeps a full copy of every table after every transaction and
//! rewrites rows eagerly on schema changes: the opposite of the store, which
//! writes each version once and projects old rows lazily. The two agree only
//! when both are right.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use changelog::keys::{self, UserKey};
use changelog::{
    ChangeRecord, Column, CommitInfo, CommitTime, Datum, Durability, Lsn, ReplicaIdentity, ResetKind, RowImage,
    SchemaChange, Store, StoreError, StoredVersion, TableId, TableName, TableSchema, Transaction, VersionState, Xid,
};

// ---------------------------------------------------------------------------
// Randomness

/// A small deterministic generator (SplitMix64): the same seed gives the
/// same sequence in the parent and in a re-executed child.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

// ---------------------------------------------------------------------------
// Schemas and rows

pub fn col(name: &str, oid: u32, is_key: bool) -> Column {
    let type_name = match oid {
        20 => "int8",
        23 => "int4",
        _ => "text",
    };
    Column {
        name: name.into(),
        type_oid: oid,
        type_name: type_name.into(),
        type_modifier: -1,
        is_key,
    }
}

/// The three table shapes the generator uses: an integer key, a composite
/// (text, int) key, and a prefix-heavy text key.
pub fn initial_schema(kind: usize) -> TableSchema {
    let (name, columns) = match kind {
        0 => (
            "orders",
            vec![col("id", 20, true), col("status", 25, false), col("note", 25, false)],
        ),
        1 => (
            "lines",
            vec![col("k1", 25, true), col("k2", 23, true), col("qty", 25, false)],
        ),
        _ => ("tags", vec![col("name", 25, true), col("v", 25, false)]),
    };
    TableSchema {
        name: TableName::new("public", name),
        relation_oid: 16_000 + kind as u32,
        columns,
        replica_identity: ReplicaIdentity::Default,
    }
}

/// Key column values for key choice `k` of a table kind.
pub fn key_values(kind: usize, k: usize) -> Vec<Datum> {
    const TEXT: [&str; 8] = ["", "a", "ab", "abc", "b", "a b", "ab\\", "é"];
    match kind {
        0 => vec![Datum::text((k as i64 - 10).to_string())],
        1 => vec![Datum::text(TEXT[k % 8]), Datum::text((k as i64 / 8 - 2).to_string())],
        _ => vec![Datum::text(TEXT[k % 8].repeat(1 + k / 8))],
    }
}

/// A value large enough that Postgres would store it out of line.
pub fn big(seed: usize) -> Datum {
    Datum::Text(vec![b'a' + (seed % 26) as u8; 2_100 + seed % 7])
}

/// The encoded key of `row` (values in the columns of `schema`).
pub fn key_of(t: TableId, schema: &TableSchema, row: &[Datum]) -> Vec<u8> {
    let types: Vec<u32> = schema.columns.iter().filter(|c| c.is_key).map(|c| c.type_oid).collect();
    let vals = schema
        .columns
        .iter()
        .zip(row)
        .filter(|(c, _)| c.is_key)
        .map(|(_, d)| d.as_ref());
    keys::encode_user_key(t, &types, vals).0
}

/// A before-image with only the key columns set.
pub fn key_image(schema: &TableSchema, row: &[Datum]) -> RowImage {
    RowImage(
        schema
            .columns
            .iter()
            .zip(row)
            .map(|(c, d)| if c.is_key { d.clone() } else { Datum::Missing })
            .collect(),
    )
}

pub fn commit_info(lsn: u64, time: i64, xid: u32) -> CommitInfo {
    CommitInfo {
        commit_lsn: Lsn(lsn),
        end_lsn: Lsn(lsn + 0x28),
        commit_time: CommitTime::from_unix_micros(time),
        xid: Xid(xid),
    }
}

// ---------------------------------------------------------------------------
// The reference fold

/// One table in one state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableState {
    /// Current shape; `None` when the table does not exist.
    pub schema: Option<TableSchema>,
    /// Rows by encoded key, values in the current shape.
    pub rows: BTreeMap<Vec<u8>, Vec<Datum>>,
}

/// Every table after one transaction (or inside one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub tables: BTreeMap<TableId, TableState>,
}

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

/// The keys a transaction leaves a version for, per table: a reset inside
/// the transaction removes the versions it wrote before the reset.
pub type Written = BTreeMap<TableId, BTreeSet<Vec<u8>>>;

impl State {
    /// Applies one record; returns the record as the store logs it (unchanged
    /// TOAST resolved).
    pub fn apply(&mut self, rec: &ChangeRecord, written: &mut Written) -> ChangeRecord {
        match rec {
            ChangeRecord::Schema { table, change } => {
                apply_schema(self.tables.entry(*table).or_default(), change);
                if matches!(change, SchemaChange::Drop | SchemaChange::Uncaptured { .. }) {
                    written.remove(table);
                }
                rec.clone()
            }
            ChangeRecord::Truncate { tables } => {
                for t in tables {
                    self.tables.entry(*t).or_default().rows.clear();
                    written.remove(t);
                }
                rec.clone()
            }
            ChangeRecord::ReadStart { table } => {
                self.tables.entry(*table).or_default().rows.clear();
                written.remove(table);
                rec.clone()
            }
            ChangeRecord::Insert { table, new } | ChangeRecord::Read { table, row: new } => {
                let ts = self.tables.entry(*table).or_default();
                let schema = ts.schema.as_ref().expect("insert into a table without schema");
                let k = key_of(*table, schema, &new.0);
                let row = resolve_toast(new, ts.rows.get(&k));
                ts.rows.insert(k.clone(), row.clone());
                written.entry(*table).or_default().insert(k);
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
                let schema = ts.schema.as_ref().expect("update of a table without schema");
                let old_k = key_of(*table, schema, &old.as_ref().unwrap_or(new).0);
                let new_k = key_of(*table, schema, &new.0);
                let row = resolve_toast(new, ts.rows.get(&old_k));
                ts.rows.remove(&old_k);
                ts.rows.insert(new_k.clone(), row.clone());
                let w = written.entry(*table).or_default();
                w.insert(new_k.clone());
                if old.is_some() && old_k != new_k {
                    w.insert(old_k);
                }
                ChangeRecord::Update {
                    table: *table,
                    old: old.clone(),
                    new: RowImage(row),
                }
            }
            ChangeRecord::Delete { table, old } => {
                let ts = self.tables.entry(*table).or_default();
                let schema = ts.schema.as_ref().expect("delete from a table without schema");
                let k = key_of(*table, schema, &old.0);
                ts.rows.remove(&k);
                written.entry(*table).or_default().insert(k);
                rec.clone()
            }
        }
    }
}

/// What one transaction did, as the fold sees it.
#[derive(Clone, Debug)]
pub struct Step {
    pub commit: CommitInfo,
    /// Commit time made monotonic in LSN order.
    pub mono_time: CommitTime,
    pub records: u32,
    pub state: State,
    pub log: Vec<ChangeRecord>,
    pub written: Written,
    pub schema_changes: Vec<(TableId, SchemaChange)>,
    /// Tables reset by the transaction, with the kind of the last reset.
    pub resets: BTreeMap<TableId, ResetKind>,
}

/// The naive fold of a list of transactions.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub steps: Vec<Step>,
}

impl Model {
    pub fn of(txns: &[Transaction]) -> Model {
        let mut m = Model::default();
        for t in txns {
            m.apply(t);
        }
        m
    }

    pub fn apply(&mut self, txn: &Transaction) {
        let mut state = self.steps.last().map(|s| s.state.clone()).unwrap_or_default();
        let mono_time = self
            .steps
            .last()
            .map_or(txn.commit.commit_time, |s| s.mono_time.max(txn.commit.commit_time));
        let mut written = Written::new();
        let mut log = Vec::new();
        let mut schema_changes = Vec::new();
        let mut resets = BTreeMap::new();
        for rec in &txn.records {
            log.push(state.apply(rec, &mut written));
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
        written.retain(|_, keys| !keys.is_empty());
        self.steps.push(Step {
            commit: txn.commit,
            mono_time,
            records: txn.records.len() as u32,
            state,
            log,
            written,
            schema_changes,
            resets,
        });
    }

    /// Index of the step that committed at `lsn`.
    pub fn index_of(&self, lsn: Lsn) -> Option<usize> {
        self.steps.iter().position(|s| s.commit.commit_lsn == lsn)
    }

    /// Every table id the first `k` transactions mention.
    pub fn table_ids(&self, k: usize) -> BTreeSet<TableId> {
        self.steps[..k]
            .iter()
            .flat_map(|s| s.state.tables.keys().copied())
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Generating transactions

/// Generates valid transactions over three tables: inserts, updates (some
/// with unchanged-TOAST markers, some changing the key, some with a full
/// before-image), deletes and, when asked, truncates, added and dropped
/// columns (with and without a backfilled default), full re-reads and table
/// drops.
pub struct Gen {
    pub rng: Rng,
    /// Current id of each table kind.
    pub ids: [TableId; 3],
    next_id: u32,
    /// State including the open transaction.
    work: State,
    pending: Vec<ChangeRecord>,
    next_lsn: u64,
    time: i64,
    xid: u32,
    col_seq: usize,
}

impl Gen {
    /// A generator whose first transaction (still open) creates the tables.
    pub fn new(seed: u64) -> Gen {
        let mut g = Gen {
            rng: Rng::new(seed),
            ids: [TableId(0), TableId(1), TableId(2)],
            next_id: 3,
            work: State::default(),
            pending: Vec::new(),
            next_lsn: 0x0100_0000,
            time: 1_700_000_000_000_000,
            xid: 700,
            col_seq: 0,
        };
        for kind in 0..3 {
            let change = SchemaChange::Define {
                schema: initial_schema(kind),
                backfill: Vec::new(),
            };
            g.push(ChangeRecord::Schema {
                table: g.ids[kind],
                change,
            });
        }
        g
    }

    fn push(&mut self, rec: ChangeRecord) {
        self.work.apply(&rec, &mut Written::new());
        self.pending.push(rec);
    }

    fn schema(&self, kind: usize) -> &TableSchema {
        self.work.tables[&self.ids[kind]]
            .schema
            .as_ref()
            .expect("generated tables always exist")
    }

    fn rows(&self, kind: usize) -> Vec<(Vec<u8>, Vec<Datum>)> {
        self.work.tables[&self.ids[kind]]
            .rows
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn val(&mut self) -> Datum {
        match self.rng.below(12) {
            0 => Datum::Null,
            1 => Datum::Text(Vec::new()),
            2 | 3 => big(self.rng.below(1000)),
            _ => {
                const ALPHABET: [&str; 8] = ["a", "b", "c", "\\", ",", "\"", "\n", " "];
                let n = self.rng.range(1, 4);
                Datum::text((0..n).map(|_| ALPHABET[self.rng.below(8)]).collect::<String>())
            }
        }
    }

    fn row_with_key(&mut self, kind: usize, key: &[Datum]) -> RowImage {
        let schema = self.schema(kind).clone();
        let mut key = key.iter();
        RowImage(
            schema
                .columns
                .iter()
                .map(|c| {
                    if c.is_key {
                        key.next().cloned().unwrap()
                    } else {
                        self.val()
                    }
                })
                .collect(),
        )
    }

    fn free_key(&mut self, kind: usize) -> Option<Vec<Datum>> {
        let id = self.ids[kind];
        for _ in 0..8 {
            let kv = key_values(kind, self.rng.below(40));
            let schema = self.schema(kind);
            let mut it = kv.iter();
            let probe: Vec<Datum> = schema
                .columns
                .iter()
                .map(|c| {
                    if c.is_key {
                        it.next().cloned().unwrap()
                    } else {
                        Datum::Null
                    }
                })
                .collect();
            if !self.work.tables[&id].rows.contains_key(&key_of(id, schema, &probe)) {
                return Some(kv);
            }
        }
        None
    }

    fn key_cols(&self, kind: usize, row: &[Datum]) -> Vec<Datum> {
        self.schema(kind)
            .columns
            .iter()
            .zip(row)
            .filter(|(c, _)| c.is_key)
            .map(|(_, d)| d.clone())
            .collect()
    }

    fn insert(&mut self, kind: usize) -> bool {
        let Some(k) = self.free_key(kind) else { return false };
        let new = self.row_with_key(kind, &k);
        self.push(ChangeRecord::Insert {
            table: self.ids[kind],
            new,
        });
        true
    }

    fn update(&mut self, kind: usize) -> bool {
        let rows = self.rows(kind);
        if rows.is_empty() {
            return false;
        }
        let (_, old_row) = rows[self.rng.below(rows.len())].clone();
        let schema = self.schema(kind).clone();
        let mut key = self.key_cols(kind, &old_row);
        let mut old = None;
        match self.rng.below(100) {
            0..=9 => {
                if let Some(k) = self.free_key(kind) {
                    old = Some(key_image(&schema, &old_row));
                    key = k;
                }
            }
            10..=14 => old = Some(RowImage(old_row.clone())),
            _ => {}
        }
        let mut new = self.row_with_key(kind, &key);
        if self.rng.chance(45) {
            if let Some(i) = schema.columns.iter().rposition(|c| !c.is_key) {
                new.0[i] = Datum::UnchangedToast;
            }
        }
        self.push(ChangeRecord::Update {
            table: self.ids[kind],
            old,
            new,
        });
        true
    }

    fn delete(&mut self, kind: usize) -> bool {
        let rows = self.rows(kind);
        if rows.is_empty() {
            return false;
        }
        let (_, row) = rows[self.rng.below(rows.len())].clone();
        let old = if self.rng.chance(20) {
            RowImage(row)
        } else {
            key_image(self.schema(kind), &row)
        };
        self.push(ChangeRecord::Delete {
            table: self.ids[kind],
            old,
        });
        true
    }

    fn define(&mut self, kind: usize, schema: TableSchema, backfill: Vec<(String, Datum)>) {
        self.push(ChangeRecord::Schema {
            table: self.ids[kind],
            change: SchemaChange::Define { schema, backfill },
        });
    }

    fn ddl(&mut self, kind: usize) -> bool {
        match self.rng.below(10) {
            0..=2 => {
                let mut tables = vec![self.ids[kind]];
                if self.rng.chance(40) {
                    let other = self.ids[(kind + 1 + self.rng.below(2)) % 3];
                    tables.push(other);
                }
                self.push(ChangeRecord::Truncate { tables });
            }
            3 | 4 => {
                let mut schema = self.schema(kind).clone();
                self.col_seq += 1;
                let name = format!("c{}", self.col_seq % 4);
                if schema.column_index(&name).is_some() {
                    return false;
                }
                schema.columns.push(col(&name, 25, false));
                let backfill = if self.rng.chance(50) {
                    vec![(name, self.val())]
                } else {
                    Vec::new()
                };
                self.define(kind, schema, backfill);
            }
            5 | 6 => {
                let mut schema = self.schema(kind).clone();
                let non_key: Vec<usize> = schema
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !c.is_key)
                    .map(|(i, _)| i)
                    .collect();
                if non_key.len() < 2 {
                    return false;
                }
                schema.columns.remove(non_key[self.rng.below(non_key.len())]);
                self.define(kind, schema, Vec::new());
            }
            7 | 8 => {
                // A full re-read, as after a rewriting ALTER: one row gone,
                // one row changed.
                let rows = self.rows(kind);
                let table = self.ids[kind];
                let skip = self.rng.below(rows.len() + 1);
                let change = self.rng.below(rows.len() + 1);
                self.push(ChangeRecord::ReadStart { table });
                let last_is_key = self.schema(kind).columns.last().is_none_or(|c| c.is_key);
                for (i, (_, mut row)) in rows.into_iter().enumerate() {
                    if i == skip {
                        continue;
                    }
                    if i == change && !last_is_key {
                        *row.last_mut().unwrap() = Datum::text("rewritten");
                    }
                    self.push(ChangeRecord::Read {
                        table,
                        row: RowImage(row),
                    });
                }
            }
            _ => {
                self.push(ChangeRecord::Schema {
                    table: self.ids[kind],
                    change: SchemaChange::Drop,
                });
                // The name comes back as a new table with a new id.
                self.ids[kind] = TableId(self.next_id);
                self.next_id += 1;
                self.define(kind, initial_schema(kind), Vec::new());
            }
        }
        true
    }

    /// Adds one random record to the open transaction; schema changes,
    /// truncates, re-reads and drops only when `ddl`.
    pub fn record(&mut self, ddl: bool) {
        loop {
            let kind = self.rng.below(3);
            let done = match self.rng.below(100) {
                0..=39 => self.insert(kind),
                40..=69 => self.update(kind),
                70..=84 => self.delete(kind),
                _ if ddl => self.ddl(kind),
                _ => self.insert(kind),
            };
            if done {
                return;
            }
        }
    }

    /// Closes the open transaction.
    pub fn commit(&mut self) -> Transaction {
        let txn = Transaction {
            commit: commit_info(self.next_lsn, self.time, self.xid),
            records: std::mem::take(&mut self.pending),
        };
        self.next_lsn += 0x100 + self.rng.below(0x400) as u64;
        // The server clock may step back; the store keeps times monotonic.
        self.time += self.rng.below(12_000_000) as i64 - 2_000_000;
        self.xid += 1;
        txn
    }

    /// A transaction of `n` random records.
    pub fn txn(&mut self, n: usize, ddl: bool) -> Transaction {
        for _ in 0..n {
            self.record(ddl);
        }
        self.commit()
    }
}

/// Splits `n` records at `cuts` (sorted positions) into chunks; the last
/// chunk goes to `finish_spill` and may be empty.
pub fn chunks<'a>(records: &'a [ChangeRecord], cuts: &[usize]) -> Vec<&'a [ChangeRecord]> {
    let mut out = Vec::new();
    let mut from = 0;
    for &c in cuts {
        let c = c.clamp(from, records.len());
        out.push(&records[from..c]);
        from = c;
    }
    out.push(&records[from..]);
    out
}

/// Random sorted cut positions splitting `n` records into up to `max` chunks.
pub fn random_cuts(rng: &mut Rng, n: usize, max: usize) -> Vec<usize> {
    let k = rng.range(1, max.max(1));
    let mut cuts: Vec<usize> = (0..k).map(|_| rng.below(n + 1)).collect();
    cuts.sort_unstable();
    cuts
}

/// Writes `txn` as a spilled transaction with the given chunking.
pub fn spill_txn(store: &mut Store, txn: &Transaction, cuts: &[usize]) -> changelog::Result<changelog::AppendOutcome> {
    let parts = chunks(&txn.records, cuts);
    let (last, first) = parts.split_last().unwrap();
    let mut sp = store.begin_spill(txn.commit.commit_lsn)?;
    for c in first {
        store.spill(&mut sp, c)?;
    }
    store.finish_spill(sp, &txn.commit, last)
}

// ---------------------------------------------------------------------------
// Opening and observing a store

pub fn open(dir: &Path, durability: Durability) -> Store {
    Store::open(
        dir,
        &changelog::StoreOptions {
            create_if_missing: true,
            durability,
            cache_bytes: 8 << 20,
        },
    )
    .unwrap_or_else(|e| panic!("opening {}: {e:?}", dir.display()))
}

/// Rows of a table in key order: (encoded key, values).
pub type Rows = Vec<(Vec<u8>, Vec<Datum>)>;

/// A table's live rows at `cut`, projected to its shape at the cut, by key;
/// `None` when the table did not exist at the cut.
pub fn snapshot(store: &Store, t: TableId, cut: Lsn) -> Option<Rows> {
    let entry = store.catalog().table(t)?;
    let target = entry.history.at(cut)?;
    target.schema()?;
    let mut projections = HashMap::new();
    let mut out = Vec::new();
    store
        .scan_as_of::<StoreError>(t, cut, entry.last_reset_at(cut), |row| {
            let p = projections
                .entry(row.schema)
                .or_insert_with(|| entry.history.projection(row.schema, target.version));
            let mut values = Vec::new();
            p.apply(row.values, &mut values);
            out.push((row.key.to_vec(), values.into_iter().map(|d| d.to_datum()).collect()));
            Ok(true)
        })
        .unwrap();
    Some(out)
}

/// Everything a store exposes, for comparing two stores that should be equal.
#[derive(Debug, PartialEq)]
pub struct Dump {
    pub watermark: Option<changelog::Watermark>,
    pub commits: Vec<changelog::CommitEntry>,
    pub log: Vec<changelog::LogEntry>,
    pub schemas: Vec<changelog::SchemaVersion>,
    pub resets: Vec<(TableId, Vec<(Lsn, ResetKind)>)>,
    pub version_counts: Vec<(TableId, u64)>,
    pub versions: Vec<(Vec<u8>, Vec<StoredVersion>)>,
    pub snapshots: Vec<(Lsn, TableId, Option<Rows>)>,
}

pub fn log_of(store: &Store) -> Vec<changelog::LogEntry> {
    let mut log = Vec::new();
    store
        .for_each_log_entry(Lsn::ZERO, Lsn::MAX, |e| {
            log.push(e);
            Ok(true)
        })
        .unwrap();
    log
}

/// Dumps `store`; `keys` are the keys whose versions to list.
pub fn dump(store: &Store, keys: &BTreeSet<Vec<u8>>) -> Dump {
    let commits = store.commits(Lsn::ZERO, Lsn::MAX).unwrap();
    let tables: Vec<TableId> = store.catalog().tables().map(|(t, _)| t).collect();
    let mut snapshots = Vec::new();
    for c in &commits {
        for t in &tables {
            snapshots.push((c.commit_lsn, *t, snapshot(store, *t, c.commit_lsn)));
        }
    }
    Dump {
        watermark: store.watermark(),
        log: log_of(store),
        schemas: store
            .catalog()
            .tables()
            .flat_map(|(_, e)| e.history.versions().to_vec())
            .collect(),
        resets: store.catalog().tables().map(|(t, e)| (t, e.resets.clone())).collect(),
        version_counts: tables.iter().map(|t| (*t, store.count_versions(*t).unwrap())).collect(),
        versions: keys
            .iter()
            .map(|k| (k.clone(), store.versions_of(&UserKey(k.clone())).unwrap()))
            .collect(),
        snapshots,
        commits,
    }
}

/// Every key the first `k` transactions of `model` wrote.
pub fn model_keys(model: &Model, k: usize) -> BTreeSet<Vec<u8>> {
    model.steps[..k]
        .iter()
        .flat_map(|s| s.written.values().flatten().cloned())
        .collect()
}

/// Shortens a message: runs of one repeated character (the large values)
/// become `c…×n`, and the whole is cut at 1500 characters.
pub fn brief(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && chars[j] == chars[i] {
            j += 1;
        }
        if j - i > 8 {
            out.push_str(&format!("{}…×{}", chars[i], j - i));
        } else {
            out.extend(&chars[i..j]);
        }
        i = j;
    }
    if out.chars().count() > 1500 {
        out = out.chars().take(1500).collect::<String>() + " …";
    }
    out
}

/// Compares the store with the fold of exactly its first `k` transactions;
/// returns every difference found (empty when they agree).
pub fn differences(store: &Store, model: &Model, k: usize) -> Vec<String> {
    compare(store, model, k, true)
}

/// [`differences`] in what readers can see: everything but the raw count
/// of version entries, which includes a spilled transaction in flight.
pub fn visible_differences(store: &Store, model: &Model, k: usize) -> Vec<String> {
    compare(store, model, k, false)
}

fn compare(store: &Store, model: &Model, k: usize, count_entries: bool) -> Vec<String> {
    let mut errs = Vec::new();
    let steps = &model.steps[..k];
    let mut diff = |what: String| {
        if errs.len() < 20 {
            errs.push(brief(&what));
        }
    };

    // The watermark names the last transaction, and the commit index holds
    // exactly the transactions up to it.
    let expected_mark = steps
        .last()
        .map(|s| (s.commit.commit_lsn, s.commit.end_lsn, s.mono_time, s.commit.xid));
    let got_mark = store
        .watermark()
        .map(|w| (w.commit_lsn, w.end_lsn, w.commit_time, w.xid));
    if got_mark != expected_mark {
        diff(format!("watermark {got_mark:?}, expected {expected_mark:?}"));
    }
    let commits: Vec<_> = store
        .commits(Lsn::ZERO, Lsn::MAX)
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                c.commit_lsn,
                c.end_lsn,
                c.commit_time,
                c.reported_time,
                c.xid,
                c.records,
            )
        })
        .collect();
    let expected: Vec<_> = steps
        .iter()
        .map(|s| {
            (
                s.commit.commit_lsn,
                s.commit.end_lsn,
                s.mono_time,
                s.commit.commit_time,
                s.commit.xid,
                s.records,
            )
        })
        .collect();
    if commits != expected {
        diff(format!(
            "commits differ: {} stored, {} expected",
            commits.len(),
            expected.len()
        ));
    }

    // The log: every record once, in order, unchanged TOAST resolved.
    let log: Vec<(Lsn, u32, ChangeRecord)> = log_of(store)
        .into_iter()
        .map(|e| (e.commit_lsn, e.ordinal, e.record))
        .collect();
    let expected: Vec<(Lsn, u32, ChangeRecord)> = steps
        .iter()
        .flat_map(|s| {
            s.log
                .iter()
                .enumerate()
                .map(|(i, r)| (s.commit.commit_lsn, i as u32, r.clone()))
        })
        .collect();
    if log != expected {
        let first = log
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(log.len().min(expected.len()));
        diff(format!(
            "log differs at entry {first} ({} stored, {} expected): stored {:?}, expected {:?}",
            log.len(),
            expected.len(),
            log.get(first),
            expected.get(first)
        ));
    }

    // The catalog: schema history and resets, nothing beyond the watermark.
    let mut ids = model.table_ids(k);
    ids.extend(store.catalog().tables().map(|(t, _)| t));
    for t in &ids {
        let got: Vec<(u32, Lsn, SchemaChange)> = store
            .catalog()
            .table(*t)
            .map(|e| {
                e.history
                    .versions()
                    .iter()
                    .map(|v| (v.version.0, v.valid_from, v.change.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let expected: Vec<(u32, Lsn, SchemaChange)> = steps
            .iter()
            .flat_map(|s| {
                s.schema_changes
                    .iter()
                    .filter(|(tt, _)| tt == t)
                    .map(|(_, c)| (s.commit.commit_lsn, c.clone()))
            })
            .enumerate()
            .map(|(i, (l, c))| (i as u32, l, c))
            .collect();
        if got != expected {
            let got_lsns: Vec<_> = got.iter().map(|(n, l, _)| (n, l)).collect();
            let exp_lsns: Vec<_> = expected.iter().map(|(n, l, _)| (n, l)).collect();
            diff(format!(
                "schema history of {t}: stored {got_lsns:?}, expected {exp_lsns:?}"
            ));
        }
        let got = store.catalog().table(*t).map(|e| e.resets.clone()).unwrap_or_default();
        let expected: Vec<(Lsn, ResetKind)> = steps
            .iter()
            .filter_map(|s| s.resets.get(t).map(|k| (s.commit.commit_lsn, *k)))
            .collect();
        if got != expected {
            diff(format!("resets of {t}: stored {got:?}, expected {expected:?}"));
        }
        // Version entries: one per key a transaction left written.
        let got = store.count_versions(*t).unwrap();
        let expected: u64 = steps
            .iter()
            .map(|s| s.written.get(t).map_or(0, |w| w.len() as u64))
            .sum();
        if count_entries && got != expected {
            diff(format!("{t} has {got} version entries, expected {expected}"));
        }
    }

    // Every version of every key: a row exactly when the key is live after
    // the transaction, with the values the fold has then.
    for key in model_keys(model, k) {
        let t = UserKey(key.clone()).table().unwrap();
        let got = store.versions_of(&UserKey(key.clone())).unwrap();
        let expected: Vec<(Lsn, Option<Vec<Datum>>)> = steps
            .iter()
            .rev()
            .filter(|s| s.written.get(&t).is_some_and(|w| w.contains(&key)))
            .map(|s| {
                (
                    s.commit.commit_lsn,
                    s.state.tables.get(&t).and_then(|ts| ts.rows.get(&key)).cloned(),
                )
            })
            .collect();
        let got: Vec<(Lsn, Option<Vec<Datum>>)> = got
            .into_iter()
            .map(|v| {
                let row = match v.state {
                    VersionState::Deleted => None,
                    VersionState::Row { schema, values } => {
                        // Project to the table's shape at the end of the
                        // writing transaction, as the fold keeps it.
                        let entry = store.catalog().table(t).unwrap();
                        let target = entry.history.at(v.lsn).unwrap().version;
                        let refs: Vec<_> = values.iter().map(Datum::as_ref).collect();
                        let p = entry.history.projection(schema, target);
                        let mut out = Vec::new();
                        p.apply(&refs, &mut out);
                        Some(out.into_iter().map(|d| d.to_datum()).collect())
                    }
                };
                (v.lsn, row)
            })
            .collect();
        if got != expected {
            diff(format!(
                "versions of key {key:?} in {t}: stored {got:?}, expected {expected:?}"
            ));
        }
    }

    // Snapshots at every cut.
    for s in steps {
        let cut = s.commit.commit_lsn;
        let got: BTreeSet<TableId> = store.catalog().tables_at(cut).into_iter().map(|(t, _)| t).collect();
        let expected: BTreeSet<TableId> = s
            .state
            .tables
            .iter()
            .filter(|(_, ts)| ts.schema.is_some())
            .map(|(t, _)| *t)
            .collect();
        if got != expected {
            diff(format!("tables at {cut}: stored {got:?}, expected {expected:?}"));
        }
        for t in &ids {
            let got = snapshot(store, *t, cut);
            let expected = s
                .state
                .tables
                .get(t)
                .filter(|ts| ts.schema.is_some())
                .map(|ts| ts.rows.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>());
            if got != expected {
                diff(format!(
                    "snapshot of {t} at {cut}: stored {got:?}, expected {expected:?}"
                ));
            }
        }
    }
    errs
}

/// Panics with every difference between the store and the fold of its
/// first `k` transactions.
pub fn assert_matches(store: &Store, model: &Model, k: usize, context: &str) {
    let errs = differences(store, model, k);
    assert!(
        errs.is_empty(),
        "{context}: the store differs from the fold of its first {k} transactions:\n  {}",
        errs.join("\n  ")
    );
}

/// Entries on disk that belong to no committed transaction: anything in
/// the log, version, commit, time or reset families beyond the watermark,
/// schema versions or resets beyond it in the catalog, and an in-flight
/// marker. Reads the engine directly (read-only), so nothing the store's
/// own reads filter out can hide.
pub fn leftovers(dir: &Path, store_catalog: &changelog::Catalog, watermark: Option<Lsn>) -> Vec<String> {
    use changelog::keys::cf;
    let top = watermark.unwrap_or(Lsn::ZERO);
    let mut out = Vec::new();
    for (t, e) in store_catalog.tables() {
        for v in e.history.versions() {
            if v.valid_from > top {
                out.push(format!(
                    "schema version {} of {t} at {} (watermark {top})",
                    v.version.0, v.valid_from
                ));
            }
        }
        for (l, k) in &e.resets {
            if *l > top {
                out.push(format!("{k:?} reset of {t} at {l} (watermark {top})"));
            }
        }
    }
    let db = rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), dir, cf::ALL, false).unwrap();
    let mut count_beyond = |name: &'static str, lsn_of: &dyn Fn(&[u8]) -> Lsn| {
        let mut n = 0;
        for item in db.iterator_cf(db.cf_handle(name).unwrap(), rocksdb::IteratorMode::Start) {
            let (k, _) = item.unwrap();
            if lsn_of(&k) > top {
                n += 1;
            }
        }
        if n > 0 {
            out.push(format!("{n} entries in `{name}` beyond the watermark {top}"));
        }
    };
    count_beyond(cf::LOG, &|k| keys::decode_log_key(k).unwrap().0);
    count_beyond(cf::VERSIONS, &|k| keys::split_version_key(k).unwrap().1);
    count_beyond(cf::COMMITS, &|k| keys::decode_lsn(k).unwrap());
    count_beyond(cf::TIMES, &|k| keys::decode_time_key(k).unwrap().1);
    count_beyond(cf::RESETS, &|k| keys::decode_reset_key(k).unwrap().1);
    if db
        .get_cf(db.cf_handle(cf::META).unwrap(), keys::meta::INFLIGHT)
        .unwrap()
        .is_some()
    {
        out.push("an in-flight spill marker is still in `meta`".into());
    }
    out
}

// ---------------------------------------------------------------------------
// A hand-written spilled transaction

/// Two tables, two base transactions, one transaction to spill in chunks,
/// and one transaction after it.
pub struct SpillScenario {
    pub base: Vec<Transaction>,
    pub spilled: Transaction,
    /// Chunk boundaries of `spilled`; the records after the last boundary
    /// go to `finish_spill`.
    pub cuts: Vec<usize>,
    /// Valid whether or not `spilled` happened.
    pub after: Transaction,
}

pub const ORDERS: TableId = TableId(0);
pub const TAGS: TableId = TableId(1);

fn texts(values: &[&str]) -> Vec<Datum> {
    values.iter().map(|v| Datum::text(*v)).collect()
}

/// With `ddl`, the spilled transaction also adds a column to `orders` in its
/// second chunk (after rows of the old shape in the first) and truncates
/// `tags` in its third (after the first chunk inserted into `tags`).
///
/// Either way it updates, with an unchanged-TOAST `note`, a row stored
/// before it, a row its own first chunk inserted, and a row whose key its
/// second chunk changed; and it deletes rows.
pub fn spill_scenario(ddl: bool) -> SpillScenario {
    let orders = initial_schema(0);
    let tags = initial_schema(2);
    let order = |id: &str, status: &str, note: Datum| {
        let mut r = texts(&[id, status]);
        r.push(note);
        if ddl {
            r.push(Datum::text("us"));
        }
        RowImage(r)
    };
    let base_order = |i: usize| RowImage(vec![Datum::text(i.to_string()), Datum::text("new"), big(i)]);
    let key = |id: &str| RowImage(vec![Datum::text(id), Datum::Missing, Datum::Missing]);
    let key4 = |id: &str| {
        let mut r = key(id).0;
        if ddl {
            r.push(Datum::Missing);
        }
        RowImage(r)
    };

    let mut first = vec![
        ChangeRecord::Schema {
            table: ORDERS,
            change: SchemaChange::Define {
                schema: orders.clone(),
                backfill: vec![],
            },
        },
        ChangeRecord::Schema {
            table: TAGS,
            change: SchemaChange::Define {
                schema: tags.clone(),
                backfill: vec![],
            },
        },
    ];
    first.extend((1..=5).map(|i| ChangeRecord::Insert {
        table: ORDERS,
        new: base_order(i),
    }));
    first.push(ChangeRecord::Insert {
        table: TAGS,
        new: RowImage(texts(&["a", "1"])),
    });
    first.push(ChangeRecord::Insert {
        table: TAGS,
        new: RowImage(texts(&["b", "2"])),
    });
    let second = vec![ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: RowImage(vec![Datum::text("2"), Datum::text("paid"), Datum::UnchangedToast]),
    }];
    let base = vec![
        Transaction {
            commit: commit_info(0x1000, 1_000, 1),
            records: first,
        },
        Transaction {
            commit: commit_info(0x1100, 2_000, 2),
            records: second,
        },
    ];

    let mut records = Vec::new();
    let mut cuts = Vec::new();
    // Chunk 1: rows of the old shape.
    records.push(ChangeRecord::Insert {
        table: ORDERS,
        new: base_order(6),
    });
    records.push(ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: RowImage(vec![Datum::text("1"), Datum::text("shipped"), Datum::UnchangedToast]),
    });
    records.push(ChangeRecord::Delete {
        table: ORDERS,
        old: key("3"),
    });
    records.push(ChangeRecord::Insert {
        table: TAGS,
        new: RowImage(texts(&["c", "3"])),
    });
    cuts.push(records.len());
    // Chunk 2: maybe a new column; TOAST against chunk 1; a key change.
    if ddl {
        let mut wider = orders.clone();
        wider.columns.push(col("region", 25, false));
        records.push(ChangeRecord::Schema {
            table: ORDERS,
            change: SchemaChange::Define {
                schema: wider,
                backfill: vec![("region".into(), Datum::text("eu"))],
            },
        });
    }
    records.push(ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: order("6", "packed", Datum::UnchangedToast),
    });
    records.push(ChangeRecord::Update {
        table: ORDERS,
        old: Some(key4("4")),
        new: order("40", "moved", Datum::UnchangedToast),
    });
    cuts.push(records.len());
    // Chunk 3: maybe a truncate undoing chunk 1's row in `tags`.
    if ddl {
        records.push(ChangeRecord::Truncate { tables: vec![TAGS] });
    }
    records.push(ChangeRecord::Insert {
        table: TAGS,
        new: RowImage(texts(&["d", "4"])),
    });
    records.push(ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: order("40", "moved again", Datum::UnchangedToast),
    });
    cuts.push(records.len());
    // Final records, written with the commit.
    records.push(ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: order("6", "done", Datum::UnchangedToast),
    });
    records.push(ChangeRecord::Delete {
        table: ORDERS,
        old: key4("5"),
    });
    let spilled = Transaction {
        commit: commit_info(0x2000, 3_000, 3),
        records,
    };

    let after = Transaction {
        commit: commit_info(0x3000, 4_000, 4),
        records: vec![
            ChangeRecord::Insert {
                table: TAGS,
                new: RowImage(texts(&["e", "5"])),
            },
            ChangeRecord::Insert {
                table: TAGS,
                new: RowImage(texts(&["f", "6"])),
            },
        ],
    };
    SpillScenario {
        base,
        spilled,
        cuts,
        after,
    }
}

impl SpillScenario {
    /// Every transaction, with or without the spilled one.
    pub fn txns(&self, with_spilled: bool) -> Vec<Transaction> {
        let mut t = self.base.clone();
        if with_spilled {
            t.push(self.spilled.clone());
        }
        t.push(self.after.clone());
        t
    }

    /// Writes every chunk of the spilled transaction but not its commit.
    pub fn spill_without_finish(&self, store: &mut Store) -> changelog::SpillTxn {
        let parts = chunks(&self.spilled.records, &self.cuts);
        let mut sp = store.begin_spill(self.spilled.commit.commit_lsn).unwrap();
        for c in &parts[..parts.len() - 1] {
            store.spill(&mut sp, c).unwrap();
        }
        sp
    }
}
