//! Generating valid transactions, and the rows and commits they are made of.

use changelog::keys;
use changelog::reference::{column, initial_schema, key_image, key_values, Effects, State, BAG};
use changelog::{
    ChangeRecord, CommitInfo, CommitTime, Datum, Lsn, RowImage, SchemaChange, TableId, TableSchema, Transaction, Xid,
};

use super::rng::Rng;

/// A value large enough that Postgres would store it out of line.
pub fn big(seed: usize) -> Datum {
    Datum::Text(vec![b'a' + (seed % 26) as u8; 2_100 + seed % 7])
}

pub fn commit_info(lsn: u64, time: i64, xid: u32) -> CommitInfo {
    CommitInfo {
        commit_lsn: Lsn(lsn),
        end_lsn: Lsn(lsn + 0x28),
        commit_time: CommitTime::from_unix_micros(time),
        xid: Xid(xid),
    }
}

/// Table kinds: `orders`, `lines`, `tags` and `bag`.
const KINDS: usize = 4;

/// Generates valid transactions over four tables: inserts, updates (some
/// with unchanged-TOAST markers, some changing the key, some with a full
/// before-image), deletes and, when asked, truncates, added and dropped
/// columns (with and without a backfilled default), full re-reads and table
/// drops. `bag` has no key but the whole row (`REPLICA IDENTITY FULL`):
/// inserts make identical copies, and updates and deletes name one copy
/// by its whole row; a change of its columns is followed by a re-read, as
/// the DDL capture does.
pub struct Gen {
    pub rng: Rng,
    /// Current id of each table kind.
    pub ids: [TableId; KINDS],
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
            ids: [TableId(0), TableId(1), TableId(2), TableId(3)],
            next_id: 4,
            work: State::default(),
            pending: Vec::new(),
            next_lsn: 0x0100_0000,
            time: 1_700_000_000_000_000,
            xid: 700,
            col_seq: 0,
        };
        for kind in 0..KINDS {
            let change = SchemaChange::Define {
                schema: initial_schema(kind),
                backfill: Vec::new(),
                coverage: Default::default(),
            };
            g.push(ChangeRecord::Schema {
                table: g.ids[kind],
                change,
            });
        }
        g
    }

    fn push(&mut self, rec: ChangeRecord) {
        self.work.apply(&rec, &mut Effects::default());
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
                    // A bag's added columns are keys beyond its key values.
                    match key.next() {
                        Some(k) if c.is_key => k.clone(),
                        _ => self.val(),
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
            if !self.work.tables[&id]
                .rows
                .contains_key(&keys::row_key(id, schema, &probe).0)
            {
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
        let k = if kind == BAG {
            key_values(kind, self.rng.below(40))
        } else {
            let Some(k) = self.free_key(kind) else { return false };
            k
        };
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
        if kind == BAG {
            // REPLICA IDENTITY FULL: the whole old row, always; the new row
            // is another one, or the same (an update that changes nothing).
            let new = if self.rng.chance(80) {
                let k = key_values(kind, self.rng.below(40));
                self.row_with_key(kind, &k)
            } else {
                RowImage(old_row.clone())
            };
            self.push(ChangeRecord::Update {
                table: self.ids[kind],
                old: Some(RowImage(old_row)),
                new,
            });
            return true;
        }
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
            change: SchemaChange::Define {
                schema,
                backfill,
                coverage: Default::default(),
            },
        });
    }

    fn ddl(&mut self, kind: usize) -> bool {
        match self.rng.below(10) {
            0..=2 => {
                let mut tables = vec![self.ids[kind]];
                if self.rng.chance(40) {
                    let other = self.ids[(kind + 1 + self.rng.below(KINDS - 1)) % KINDS];
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
                let counted = schema.counts_copies();
                schema.columns.push(column(&name, 25, counted));
                let backfill = if self.rng.chance(50) {
                    vec![(name, self.val())]
                } else {
                    Vec::new()
                };
                self.define(kind, schema, backfill);
                if counted {
                    self.reread(kind, None);
                }
            }
            5 | 6 => {
                let mut schema = self.schema(kind).clone();
                let counted = schema.counts_copies();
                let non_key: Vec<usize> = schema
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !c.is_key || counted)
                    .map(|(i, _)| i)
                    .collect();
                if non_key.len() < 2 {
                    return false;
                }
                schema.columns.remove(non_key[self.rng.below(non_key.len())]);
                self.define(kind, schema, Vec::new());
                if counted {
                    self.reread(kind, None);
                }
            }
            7 | 8 => {
                // A full re-read, as after a rewriting ALTER: one row gone,
                // one row changed.
                let skip = self.rng.below(self.rows(kind).len() + 1);
                self.reread(kind, Some(skip));
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

    /// Reads table `kind` afresh, every copy of every row but the `skip`th
    /// row, and with one row changed when it has a column that is no key.
    fn reread(&mut self, kind: usize, skip: Option<usize>) {
        let table = self.ids[kind];
        let rows: Vec<(Vec<Datum>, u64)> = self
            .rows(kind)
            .into_iter()
            .map(|(key, row)| (row, self.work.tables[&table].copies_of(&key)))
            .collect();
        let change = self.rng.below(rows.len() + 1);
        self.push(ChangeRecord::ReadStart { table });
        let last_is_key = self.schema(kind).columns.last().is_none_or(|c| c.is_key);
        for (i, (mut row, copies)) in rows.into_iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            if i == change && !last_is_key {
                *row.last_mut().unwrap() = Datum::text("rewritten");
            }
            for _ in 0..copies {
                self.push(ChangeRecord::Read {
                    table,
                    row: RowImage(row.clone()),
                });
            }
        }
    }

    /// Adds one random record to the open transaction; schema changes,
    /// truncates, re-reads and drops only when `ddl`.
    pub fn record(&mut self, ddl: bool) {
        loop {
            let kind = self.rng.below(KINDS);
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

/// A row of the tables [`history`] writes: key `id` at version `version`.
pub fn row(id: usize, version: u32) -> RowImage {
    RowImage(vec![
        Datum::text(id.to_string()),
        Datum::text(format!("v{version}")),
        Datum::text(format!("note {id}/{version}")),
    ])
}

/// Transactions in rounds: in round `r` every key with more than `r`
/// versions is inserted, updated or (now and then) deleted; a deleted key
/// comes back in a later round.
pub fn history(table: TableId, depths: &[u32], deletes: &[bool], per_txn: usize) -> Vec<Transaction> {
    let schema = initial_schema(0);
    let mut records = vec![ChangeRecord::Schema {
        table,
        change: SchemaChange::Define {
            schema: schema.clone(),
            backfill: Vec::new(),
            coverage: Default::default(),
        },
    }];
    let mut live = vec![false; depths.len()];
    let rounds = depths.iter().copied().max().unwrap_or(0);
    for r in 0..rounds {
        for (id, &d) in depths.iter().enumerate() {
            if r >= d {
                continue;
            }
            let delete = deletes[(id * 31 + r as usize) % deletes.len()];
            records.push(match (live[id], delete) {
                (false, _) => ChangeRecord::Insert { table, new: row(id, r) },
                (true, false) => ChangeRecord::Update {
                    table,
                    old: None,
                    new: row(id, r),
                },
                (true, true) => ChangeRecord::Delete {
                    table,
                    old: key_image(&schema, &row(id, r).0),
                },
            });
            live[id] = !live[id] || !delete;
        }
    }
    records
        .chunks(per_txn)
        .enumerate()
        .map(|(i, rs)| Transaction {
            commit: commit_info(
                0x0100_0000 + 0x100 * i as u64,
                1_700_000_000_000_000 + i as i64,
                700 + i as u32,
            ),
            records: rs.to_vec(),
        })
        .collect()
}
