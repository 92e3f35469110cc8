//! Shared workload generators for asof's benchmarks.
//!
//! Not a library for users: it builds synthetic histories shaped like the
//! benchmark workloads (a 6-column `orders` table) directly in a store.

use changelog::{
    ChangeRecord, Column, CommitInfo, CommitTime, Datum, Durability, Lsn, ReplicaIdentity, RowImage, SchemaChange,
    Store, StoreOptions, TableId, TableName, TableSchema, Transaction, Xid,
};

/// The benchmark table's shape: `orders(id int8 primary key, customer int4,
/// status text, amount numeric, note text, created timestamptz)`.
pub fn orders_schema() -> TableSchema {
    let c = |name: &str, oid: u32, ty: &str, key: bool| Column {
        name: name.into(),
        type_oid: oid,
        type_name: ty.into(),
        type_modifier: -1,
        is_key: key,
    };
    TableSchema {
        name: TableName::new("public", "orders"),
        relation_oid: 16384,
        columns: vec![
            c("id", 20, "int8", true),
            c("customer", 23, "int4", false),
            c("status", 25, "text", false),
            c("amount", 1700, "numeric", false),
            c("note", 25, "text", false),
            c("created", 1184, "timestamptz", false),
        ],
        replica_identity: ReplicaIdentity::Default,
    }
}

/// Row `id` at version `v`, with values shaped like real data.
pub fn orders_row(id: u64, v: u32) -> RowImage {
    const STATUS: [&str; 4] = ["new", "paid", "shipped", "delivered"];
    RowImage(vec![
        Datum::text(id.to_string()),
        Datum::text((id % 10_007).to_string()),
        Datum::text(STATUS[(v % 4) as usize]),
        Datum::text(format!("{}.{:02}", (id * 7 + u64::from(v)) % 100_000, id % 100)),
        Datum::text(format!("order {id} revision {v}")),
        Datum::text(format!(
            "2026-11-{:02} 09:{:02}:{:02}.{:06}+00",
            1 + v % 28,
            id % 60,
            (id / 60) % 60,
            id % 1_000_000
        )),
    ])
}

/// Opens a fresh store in `dir` (buffered writes: loading is not what is
/// measured).
pub fn fresh_store(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        &StoreOptions {
            create_if_missing: true,
            durability: Durability::Buffered,
            ..Default::default()
        },
    )
    .expect("open store")
}

/// Builds transactions in commit order.
pub struct TxnBuilder {
    lsn: u64,
    time: i64,
}

impl Default for TxnBuilder {
    fn default() -> Self {
        TxnBuilder {
            lsn: 0x100_0000,
            time: 1_795_000_000_000_000,
        }
    }
}

impl TxnBuilder {
    /// The next transaction holding `records`.
    pub fn txn(&mut self, records: Vec<ChangeRecord>) -> Transaction {
        self.lsn += 0x1000;
        self.time += 1_000;
        Transaction {
            commit: CommitInfo {
                commit_lsn: Lsn(self.lsn),
                end_lsn: Lsn(self.lsn + 0x30),
                commit_time: CommitTime::from_unix_micros(self.time),
                xid: Xid(u32::try_from(self.lsn >> 12).unwrap_or(0)),
            },
            records,
        }
    }

    /// The last commit LSN handed out.
    pub fn last_lsn(&self) -> Lsn {
        Lsn(self.lsn)
    }
}

/// Loads `rows` orders with `versions` versions each (an insert, then
/// updates), in transactions of 1,000 changes. Returns the table id and the
/// builder (whose last LSN is the final cut).
pub fn load_orders(store: &mut Store, rows: u64, versions: u32) -> (TableId, TxnBuilder) {
    let mut b = TxnBuilder::default();
    let table = store.table_id_for(&TableName::new("public", "orders"));
    let define = ChangeRecord::Schema {
        table,
        change: SchemaChange::Define {
            schema: orders_schema(),
            backfill: vec![],
            coverage: Default::default(),
        },
    };
    store.append(&[b.txn(vec![define])]).expect("append schema");
    for v in 0..versions {
        let mut start = 0;
        while start < rows {
            let end = (start + 1_000).min(rows);
            let records = (start..end)
                .map(|id| {
                    let new = orders_row(id, v);
                    if v == 0 {
                        ChangeRecord::Insert { table, new }
                    } else {
                        ChangeRecord::Update { table, old: None, new }
                    }
                })
                .collect();
            store.append(&[b.txn(records)]).expect("append");
            start = end;
        }
    }
    (table, b)
}

/// Size of the pgoutput message that carries `row` as an INSERT (or an
/// UPDATE without old tuple: the same layout plus nothing): tag, relation
/// id, tuple marker, column count, and per column a kind byte, a length and
/// the text bytes. Used to compare stored bytes with wire bytes.
pub fn pgoutput_tuple_message_bytes(row: &RowImage) -> usize {
    let cols: usize = row
        .0
        .iter()
        .map(|d| match d {
            Datum::Text(b) => 1 + 4 + b.len(),
            _ => 1,
        })
        .sum();
    1 + 4 + 1 + 2 + cols
}

/// Size of a pgoutput DELETE carrying only the key (`id`).
pub fn pgoutput_delete_message_bytes(id: u64) -> usize {
    // Header, then one kind byte per column, then the key value.
    1 + 4 + 1 + 2 + 6 + 4 + id.to_string().len()
}

/// The median of a sample (the mean of the middle two for an even count);
/// NaN for an empty one.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The nearest-rank percentile `p` (0..=100) of a sample; NaN when empty.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Total size in bytes of the regular files under `dir` (recursively).
pub fn dir_size(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += dir_size(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}
