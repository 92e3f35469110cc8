//! Generating transactions for the format's round-trip tests, and reading
//! streams back.

#![allow(dead_code)]

pub mod fixtures;
/// The store's tests' seeded generator, shared rather than copied.
#[path = "../../../changelog/tests/support/rng.rs"]
pub mod rng;

pub use rng::Rng;

use changelog::{
    ChangeRecord, Column, CommitInfo, CommitTime, Coverage, Datum, Lsn, Omission, OmittedColumn, ReplicaIdentity,
    RowImage, SchemaChange, TableId, TableName, TableSchema, Transaction, Xid,
};
use kafka_log::{EncodeOptions, Encoder, Reassembler, ReassemblyError, Tables, TopicRecord, UNAVAILABLE};

/// One table of the generator's model.
#[derive(Clone)]
struct Model {
    id: TableId,
    name: TableName,
    /// `None` while not captured.
    shape: Option<TableSchema>,
}

const SCHEMAS: &[&str] = &["public", "shop", "Mixed Case", "dotted.schema"];
const NAMES: &[&str] = &["orders", "lines", "tags", "bag", "ünï", "q\"uote", "x"];
const COLUMNS: &[&str] = &["id", "a", "b", "note", "Total", "sp ace", "ß", "k2"];

/// Generates valid transactions: tables created, altered (with renames,
/// backfills and coverage), dropped, left uncaptured and captured again;
/// inserts, updates with and without old images, deletes, truncates of
/// several tables, full re-reads; values that are NULL, missing, unchanged
/// TOAST markers, empty, Debezium's placeholder text, or not UTF-8.
pub struct Gen {
    pub rng: Rng,
    tables: Vec<Model>,
    next_id: u32,
    lsn: u64,
    time: i64,
    xid: u32,
    oid: u32,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            tables: Vec::new(),
            next_id: 0,
            lsn: 0x0100_0000,
            time: 1_700_000_000_000_000,
            xid: 700,
            oid: 16_384,
        }
    }

    /// The directory of the tables generated so far.
    pub fn tables(&self) -> Tables {
        let latest: Vec<(TableId, SchemaChange)> = self
            .tables
            .iter()
            .map(|m| {
                let change = match &m.shape {
                    Some(s) => SchemaChange::Define {
                        schema: s.clone(),
                        backfill: Vec::new(),
                        coverage: Coverage::default(),
                    },
                    None => SchemaChange::Uncaptured {
                        schema: TableSchema {
                            name: m.name.clone(),
                            relation_oid: 1,
                            columns: Vec::new(),
                            replica_identity: ReplicaIdentity::Nothing,
                        },
                        reason: "no key".into(),
                    },
                };
                (m.id, change)
            })
            .collect();
        Tables::from_latest(latest.iter().map(|(id, c)| (*id, c)), self.next_id)
    }

    fn free_name(&mut self) -> Option<TableName> {
        for _ in 0..8 {
            let name = TableName::new(*self.rng.pick(SCHEMAS), *self.rng.pick(NAMES));
            if !self.tables.iter().any(|m| m.name == name) {
                return Some(name);
            }
        }
        None
    }

    fn columns(&mut self) -> Vec<Column> {
        let n = self.rng.below(5);
        let mut cols: Vec<Column> = Vec::new();
        for _ in 0..n {
            let name = *self.rng.pick(COLUMNS);
            if cols.iter().any(|c| c.name == name) {
                continue;
            }
            cols.push(Column {
                name: name.into(),
                type_oid: *self.rng.pick(&[23, 25, 1700, 3802]),
                type_name: self.rng.pick(&["int4", "text", "numeric(10,2)", "jsonb"]).to_string(),
                type_modifier: *self.rng.pick(&[-1, 655_366]),
                is_key: self.rng.chance(40),
            });
        }
        cols
    }

    fn shape(&mut self, name: TableName) -> TableSchema {
        self.oid += 1;
        TableSchema {
            name,
            relation_oid: self.oid,
            columns: self.columns(),
            replica_identity: *self.rng.pick(&[
                ReplicaIdentity::Default,
                ReplicaIdentity::Full,
                ReplicaIdentity::Index,
                ReplicaIdentity::Nothing,
            ]),
        }
    }

    fn coverage(&mut self) -> Coverage {
        if self.rng.chance(60) {
            return Coverage::default();
        }
        Coverage {
            omitted: vec![OmittedColumn {
                name: "gen".into(),
                why: *self.rng.pick(&[Omission::Generated, Omission::NotPublished]),
            }],
            row_filter: self.rng.chance(50).then(|| "(a > 0) AND note <> 'x'".into()),
            partition_truncates_unseen: self.rng.chance(50),
            unpublished_operations: if self.rng.chance(50) {
                vec!["delete".into(), "truncate".into()]
            } else {
                Vec::new()
            },
        }
    }

    pub fn datum(&mut self) -> Datum {
        match self.rng.below(10) {
            0 => Datum::Null,
            1 => Datum::Missing,
            2 => Datum::UnchangedToast,
            3 => Datum::Text(Vec::new()),
            4 => Datum::text(UNAVAILABLE),
            5 => Datum::Text((0..self.rng.below(6)).map(|_| self.rng.next_u64() as u8).collect()),
            6 => Datum::text("null"),
            7 => Datum::text("{\"a\": [1, \"é\\n\"]}"),
            _ => Datum::text(format!("{}", self.rng.next_u64() % 1000)),
        }
    }

    fn row(&mut self, shape: &TableSchema) -> RowImage {
        RowImage((0..shape.columns.len()).map(|_| self.datum()).collect())
    }

    fn captured(&mut self) -> Option<(TableId, TableSchema)> {
        let live: Vec<(TableId, TableSchema)> = self
            .tables
            .iter()
            .filter_map(|m| m.shape.clone().map(|s| (m.id, s)))
            .collect();
        (!live.is_empty()).then(|| self.rng.pick(&live).clone())
    }

    fn any_table(&mut self) -> Option<usize> {
        (!self.tables.is_empty()).then(|| self.rng.below(self.tables.len()))
    }

    /// One record, changing the model as it does.
    fn record(&mut self) -> Option<ChangeRecord> {
        match self.rng.below(14) {
            0 => {
                let name = self.free_name()?;
                let id = TableId(self.next_id);
                self.next_id += 1;
                let schema = self.shape(name.clone());
                let change = if self.rng.chance(85) {
                    SchemaChange::Define {
                        schema: schema.clone(),
                        backfill: Vec::new(),
                        coverage: self.coverage(),
                    }
                } else {
                    SchemaChange::Uncaptured {
                        schema: schema.clone(),
                        reason: "table has no key: ALTER TABLE … REPLICA IDENTITY FULL".into(),
                    }
                };
                let shape = matches!(change, SchemaChange::Define { .. }).then_some(schema);
                self.tables.push(Model { id, name, shape });
                Some(ChangeRecord::Schema { table: id, change })
            }
            1 => {
                // Alter, maybe renaming, maybe capturing an uncaptured table again.
                let i = self.any_table()?;
                let name = match self.rng.chance(30) {
                    true => self.free_name().unwrap_or_else(|| self.tables[i].name.clone()),
                    false => self.tables[i].name.clone(),
                };
                let schema = self.shape(name.clone());
                let backfill = schema
                    .columns
                    .iter()
                    .filter(|_| self.rng.chance(30))
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
                    .into_iter()
                    .map(|c| (c, self.datum()))
                    .collect();
                let m = &mut self.tables[i];
                m.name = name;
                m.shape = Some(schema.clone());
                let table = m.id;
                let coverage = self.coverage();
                Some(ChangeRecord::Schema {
                    table,
                    change: SchemaChange::Define {
                        schema,
                        backfill,
                        coverage,
                    },
                })
            }
            2 => {
                let i = self.any_table()?;
                let m = self.tables.remove(i);
                Some(ChangeRecord::Schema {
                    table: m.id,
                    change: SchemaChange::Drop,
                })
            }
            3 => {
                let i = self.any_table()?;
                let schema = self.shape(self.tables[i].name.clone());
                self.tables[i].shape = None;
                Some(ChangeRecord::Schema {
                    table: self.tables[i].id,
                    change: SchemaChange::Uncaptured {
                        schema,
                        reason: "no key".into(),
                    },
                })
            }
            4 => {
                let n = 1 + self.rng.below(3);
                let tables = (0..n)
                    .filter_map(|_| self.any_table().map(|i| self.tables[i].id))
                    .collect::<Vec<_>>();
                (!tables.is_empty()).then_some(ChangeRecord::Truncate { tables })
            }
            5 => {
                let (table, _) = self.captured()?;
                Some(ChangeRecord::ReadStart { table })
            }
            6 | 7 => {
                let (table, s) = self.captured()?;
                Some(ChangeRecord::Insert {
                    table,
                    new: self.row(&s),
                })
            }
            8 | 9 => {
                let (table, s) = self.captured()?;
                let old = self.rng.chance(50).then(|| self.row(&s));
                Some(ChangeRecord::Update {
                    table,
                    old,
                    new: self.row(&s),
                })
            }
            10 | 11 => {
                let (table, s) = self.captured()?;
                Some(ChangeRecord::Delete {
                    table,
                    old: self.row(&s),
                })
            }
            _ => {
                let (table, s) = self.captured()?;
                Some(ChangeRecord::Read {
                    table,
                    row: self.row(&s),
                })
            }
        }
    }

    /// A transaction of up to `max` records (sometimes none).
    pub fn txn(&mut self, max: usize) -> Transaction {
        let n = self.rng.below(max + 1);
        let records = (0..n).filter_map(|_| self.record()).collect();
        self.lsn += 0x100 + self.rng.below(0x10_000) as u64;
        self.time += self.rng.below(5_000_000) as i64 - 1_000_000;
        self.xid = self.xid.wrapping_add(1 + self.rng.below(3) as u32);
        Transaction {
            commit: CommitInfo {
                commit_lsn: Lsn(self.lsn),
                end_lsn: Lsn(self.lsn + 0x30),
                commit_time: CommitTime::from_unix_micros(self.time),
                xid: Xid(self.xid),
            },
            records,
        }
    }
}

/// What encoding some transactions gives: each transaction's records.
pub fn encode_all(tables: Tables, txns: &[Transaction]) -> Vec<Vec<TopicRecord>> {
    let options = EncodeOptions {
        server: "asof".into(),
        database: "shop".into(),
    };
    let mut encoder = Encoder::new(tables, options);
    txns.iter()
        .map(|tx| encoder.encode(tx).expect("a generated transaction encodes"))
        .collect()
}

/// Reads a stream of (offset, record) to its end.
pub fn read_all(tables: Tables, stream: &[(i64, TopicRecord)]) -> Result<Vec<Transaction>, ReassemblyError> {
    let mut reader = Reassembler::new(tables);
    let mut out = Vec::new();
    for (offset, r) in stream {
        out.extend(reader.push(*offset, r)?);
    }
    reader.finish()?;
    Ok(out)
}

/// The records in order with consecutive offsets from 0.
pub fn numbered(records: impl IntoIterator<Item = TopicRecord>) -> Vec<(i64, TopicRecord)> {
    (0..).zip(records).collect()
}
