//! The Debezium envelope of row changes and truncates, as Debezium's
//! `JsonConverter` writes it with `schemas.enable=false`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use changelog::{CommitInfo, TableName};
use serde::{Deserialize, Serialize};

use crate::datum::{DatumWire, ImageIn, ImageJson};
use crate::json;

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
pub(crate) struct EnvelopeOut<'a> {
    pub before: Option<ImageJson<'a>>,
    pub after: Option<ImageJson<'a>>,
    pub source: SourceOut<'a>,
    pub op: &'static str,
    pub ts_ms: i64,
    pub transaction: TransactionBlock<'a>,
}

impl EnvelopeOut<'_> {
    /// Appends the envelope as one JSON object, fields in this order.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let image = |out: &mut Vec<u8>, image: &Option<ImageJson<'_>>| match image {
            Some(i) => i.write(out),
            None => out.extend_from_slice(b"null"),
        };
        out.extend_from_slice(br#"{"before":"#);
        image(out, &self.before);
        out.extend_from_slice(br#","after":"#);
        image(out, &self.after);
        out.extend_from_slice(br#","source":"#);
        self.source.write(out);
        out.extend_from_slice(br#","op":"#);
        json::string(out, self.op);
        out.extend_from_slice(br#","ts_ms":"#);
        json::int(out, self.ts_ms);
        out.extend_from_slice(br#","transaction":{"id":"#);
        let t = &self.transaction;
        json::string(out, t.id);
        out.extend_from_slice(br#","total_order":"#);
        json::uint(out, t.total_order);
        out.extend_from_slice(br#","data_collection_order":"#);
        json::uint(out, t.data_collection_order);
        out.extend_from_slice(b"}}");
    }
}

/// Debezium's `source` block for Postgres, without the fields asof has no
/// value for (`sequence`, `xmin`, `ts_ns`).
pub(crate) struct SourceOut<'a> {
    pub version: &'static str,
    pub connector: &'static str,
    pub name: &'a str,
    pub ts_ms: i64,
    /// `"true"` for the rows of a full read, `"false"` otherwise.
    pub snapshot: &'static str,
    pub db: &'a str,
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

    /// Appends the block as a JSON object, with Debezium's field names.
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"version":"#);
        json::string(out, self.version);
        out.extend_from_slice(br#","connector":"#);
        json::string(out, self.connector);
        out.extend_from_slice(br#","name":"#);
        json::string(out, self.name);
        out.extend_from_slice(br#","ts_ms":"#);
        json::int(out, self.ts_ms);
        out.extend_from_slice(br#","snapshot":"#);
        json::string(out, self.snapshot);
        out.extend_from_slice(br#","db":"#);
        json::string(out, self.db);
        out.extend_from_slice(br#","ts_us":"#);
        json::int(out, self.ts_us);
        out.extend_from_slice(br#","schema":"#);
        json::string(out, self.schema);
        out.extend_from_slice(br#","table":"#);
        json::string(out, self.table);
        out.extend_from_slice(br#","txId":"#);
        json::uint(out, u64::from(self.tx_id));
        out.extend_from_slice(br#","lsn":"#);
        json::uint(out, self.lsn);
        out.push(b'}');
    }
}

/// Debezium's `transaction` block: the event's place among the
/// transaction's data events, and among those of its table (both from 1).
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

/// The envelope as read: only what the reader needs, borrowed from the
/// record's bytes where the JSON has no escapes.
#[derive(Deserialize)]
pub(crate) struct EnvelopeIn<'a> {
    #[serde(borrow)]
    pub before: Option<ImageIn<'a>>,
    #[serde(borrow)]
    pub after: Option<ImageIn<'a>>,
    #[serde(borrow)]
    pub source: SourceIn<'a>,
    #[serde(borrow)]
    pub op: Cow<'a, str>,
}

/// The table a `source` block names.
#[derive(Deserialize)]
pub(crate) struct SourceIn<'a> {
    #[serde(borrow)]
    pub schema: Cow<'a, str>,
    #[serde(borrow)]
    pub table: Cow<'a, str>,
}

impl SourceIn<'_> {
    pub(crate) fn table_name(self) -> TableName {
        TableName::new(self.schema.into_owned(), self.table.into_owned())
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
