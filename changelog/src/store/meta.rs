//! Store-wide metadata records and their (bincode) encoding.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::ids::Xid;
use crate::lsn::Lsn;
use crate::time::CommitTime;

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The last transaction that is durably in the store.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Watermark {
    /// Its commit LSN.
    pub commit_lsn: Lsn,
    /// The LSN just past its commit record.
    pub end_lsn: Lsn,
    /// Its (monotonic) commit time.
    pub commit_time: CommitTime,
    /// Its transaction id.
    pub xid: Xid,
}

/// One committed transaction, as indexed in the `commits` family.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CommitEntry {
    /// Commit LSN.
    pub commit_lsn: Lsn,
    /// End LSN.
    pub end_lsn: Lsn,
    /// Commit time made monotonic in LSN order: never earlier than the
    /// previous transaction's, so a stepped-back server clock cannot reorder
    /// history when a timestamp is resolved.
    pub commit_time: CommitTime,
    /// Commit time exactly as the server reported it.
    pub reported_time: CommitTime,
    /// Transaction id.
    pub xid: Xid,
    /// Number of records in the log for it.
    pub records: u32,
}

/// How a table came to be emptied at an LSN.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ResetKind {
    /// `TRUNCATE`.
    Truncate,
    /// A full read (initial copy or re-read) replaced the rows.
    Read,
    /// The table was dropped.
    Drop,
}

/// Where a store rebuilt from an upstream copy of the log (a Kafka topic)
/// has read to. Written in the same atomic batch as the transactions read
/// up to it, so a follower killed at any instant resumes with nothing lost
/// or applied twice.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct FollowPosition {
    /// Where the upstream log lives (Kafka bootstrap servers).
    pub brokers: String,
    /// The upstream log (topic).
    pub topic: String,
    /// The first offset not yet applied.
    pub next_offset: i64,
}

/// Where the log comes from; written by the capture, shown by `status`.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The server's system identifier (`IDENTIFY_SYSTEM`).
    pub system_id: String,
    /// Database name.
    pub database: String,
    /// Replication slot name.
    pub slot: String,
    /// Publication name.
    pub publication: String,
    /// The slot's consistent point when it was created.
    pub slot_consistent_point: Lsn,
    /// The connection string with the password removed.
    pub conninfo_redacted: String,
}

pub(crate) fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing plain data structs into a Vec cannot fail.
    bincode::serde::encode_to_vec(v, config()).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(cf: &'static str, b: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(b, config())
        .map(|(v, _)| v)
        .map_err(|e| StoreError::CorruptMeta {
            cf,
            message: e.to_string(),
        })
}
