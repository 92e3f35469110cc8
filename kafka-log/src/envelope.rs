//! The Debezium envelope of row changes and truncates, as Debezium's
//! `JsonConverter` writes it with `schemas.enable=false`.

use std::collections::BTreeMap;

use changelog::{CommitInfo, TableName};
use serde::{Deserialize, Serialize};

use crate::datum::{DatumWire, ImageJson};

/// What the `connector` field of every `source` block says.
pub const CONNECTOR: &str = "asof";

/// Debezium's `op` codes.
pub(crate) mod op {
    pub const CREATE: &str = "c";
    pub const UPDATE: &str = "u";
    pub const DELETE: &str = "d";
    pub const READ: &str = "r";
    pub const TRUNCATE: &str = "t";
}

/// The envelope as written.
#[derive(Serialize)]
pub(crate) struct EnvelopeOut<'a> {
    pub before: Option<ImageJson<'a>>,
    pub after: Option<ImageJson<'a>>,
    pub source: SourceOut<'a>,
    pub op: &'static str,
    pub ts_ms: i64,
    pub transaction: TransactionBlock<'a>,
}

/// Debezium's `source` block for Postgres, without the fields asof has no
/// value for (`sequence`, `xmin`, `ts_ns`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SourceOut<'a> {
    pub version: &'static str,
    pub connector: &'static str,
    pub name: &'a str,
    #[serde(rename = "ts_ms")]
    pub ts_ms: i64,
    /// `"true"` for the rows of a full read, `"false"` otherwise.
    pub snapshot: &'static str,
    pub db: &'a str,
    #[serde(rename = "ts_us")]
    pub ts_us: i64,
    pub schema: &'a str,
    pub table: &'a str,
    pub tx_id: u32,
    pub lsn: u64,
}

impl<'a> SourceOut<'a> {
    pub(crate) fn new(server: &'a str, db: &'a str, commit: &CommitInfo, table: &'a TableName, read: bool) -> Self {
        SourceOut {
            version: env!("CARGO_PKG_VERSION"),
            connector: CONNECTOR,
            name: server,
            ts_ms: millis(commit),
            snapshot: if read { "true" } else { "false" },
            db,
            ts_us: commit.commit_time.unix_micros(),
            schema: &table.schema,
            table: &table.name,
            tx_id: commit.xid.0,
            lsn: commit.commit_lsn.get(),
        }
    }
}

/// Debezium's `transaction` block: the event's place among the
/// transaction's data events, and among those of its table (both from 1).
#[derive(Serialize)]
pub(crate) struct TransactionBlock<'a> {
    pub id: &'a str,
    pub total_order: u64,
    pub data_collection_order: u64,
}

/// The transaction id as Debezium writes it for Postgres, `xid:lsn`; asof
/// uses the commit LSN, so every record of a transaction has the same id.
pub(crate) fn transaction_id(commit: &CommitInfo) -> String {
    format!("{}:{}", commit.xid.0, commit.commit_lsn.get())
}

/// Commit time in milliseconds, as Debezium's `ts_ms` fields.
pub(crate) fn millis(commit: &CommitInfo) -> i64 {
    commit.commit_time.unix_micros().div_euclid(1_000)
}

/// The envelope as read: only what the reader needs.
#[derive(Deserialize)]
pub(crate) struct EnvelopeIn {
    pub before: Option<serde_json::Map<String, serde_json::Value>>,
    pub after: Option<serde_json::Map<String, serde_json::Value>>,
    pub source: SourceIn,
    pub op: String,
}

/// The table a `source` block names.
#[derive(Deserialize)]
pub(crate) struct SourceIn {
    pub schema: String,
    pub table: String,
}

impl SourceIn {
    pub(crate) fn table_name(self) -> TableName {
        TableName::new(self.schema, self.table)
    }
}

/// The [`crate::header::EXACT`] header: exact values by image and column.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Exact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<BTreeMap<String, DatumWire>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<BTreeMap<String, DatumWire>>,
}
