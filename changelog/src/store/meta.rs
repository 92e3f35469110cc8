//! Store-wide metadata records and their (bincode) encoding.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::codec::CorruptEncoding;
use crate::error::{Result, StoreError};
use crate::ids::{TableId, Xid};
use crate::lsn::Lsn;
use crate::time::CommitTime;

/// The on-disk format this build writes. Format 2 added the log's markers
/// for rows loaded in bulk ([`BulkReads`]); a format 1 store is a format 2
/// store without them. Format 3 added `latest` entries that refer to the
/// key's version instead of repeating it (a copied row, stored once); an
/// older store is a format 3 store without them.
pub const FORMAT_VERSION: u32 = 3;

/// The oldest format this build reads; a writer marks such a store with
/// [`FORMAT_VERSION`] when it opens it, before it may write what older
/// builds would not read.
pub const OLDEST_FORMAT: u32 = 1;

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

/// The `log` value that stands for the rows of a full read loaded in bulk
/// ([`super::bulk`]): `rows` [`crate::ChangeRecord::Read`] records of
/// `table`, whose rows are the table's versions at the transaction's commit
/// LSN, in key order, taking the ordinals from the marker's own on.
/// Storing those rows once, in `versions`, instead of a second time here,
/// halves what a bulk load writes; readers of the log expand the marker
/// ([`super::Store::for_each_log_entry`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct BulkReads {
    pub table: TableId,
    pub rows: u32,
}

/// The first byte of a [`BulkReads`] value. No bincode encoding of a
/// `ChangeRecord` starts with it: a variant index is a varint whose first
/// byte is below 251, or 251-254 before a wider integer.
const BULK_READS: u8 = 0xFF;

impl BulkReads {
    /// `0xFF | table: u32 BE | rows: u32 BE`.
    pub(crate) fn encode(&self) -> [u8; 9] {
        let mut out = [BULK_READS; 9];
        out[1..5].copy_from_slice(&self.table.0.to_be_bytes());
        out[5..9].copy_from_slice(&self.rows.to_be_bytes());
        out
    }

    /// The marker `v` holds, or `None` for a record's bincode.
    pub(crate) fn decode(v: &[u8]) -> std::result::Result<Option<BulkReads>, CorruptEncoding> {
        if v.first() != Some(&BULK_READS) {
            return Ok(None);
        }
        let word = |at: usize| {
            v.get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
        };
        match (v.len(), word(1), word(5)) {
            (9, Some(table), Some(rows)) => Ok(Some(BulkReads {
                table: TableId(table),
                rows,
            })),
            _ => Err(CorruptEncoding {
                offset: 0,
                what: "bulk read marker of 9 bytes",
            }),
        }
    }
}

pub(crate) fn decode<T: DeserializeOwned>(cf: &'static str, b: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(b, config())
        .map(|(v, _)| v)
        .map_err(|e| StoreError::CorruptMeta {
            cf,
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec;
    use crate::record::ChangeRecord;
    use crate::value::{Datum, RowImage};

    fn datum() -> impl Strategy<Value = Datum> {
        prop_oneof![
            3 => codec::tests::datum(),
            // Long enough for bincode's 3- and 5-byte lengths.
            1 => (0usize..3, any::<u8>()).prop_map(|(i, b)| Datum::Text(vec![b; [251, 65_535, 65_536][i]])),
        ]
    }

    fn record() -> impl Strategy<Value = ChangeRecord> {
        let row = || proptest::collection::vec(datum(), 0..8).prop_map(RowImage);
        let table = || prop_oneof![0u32..300, any::<u32>()].prop_map(TableId);
        prop_oneof![
            (table(), row()).prop_map(|(table, new)| ChangeRecord::Insert { table, new }),
            (table(), proptest::option::of(row()), row()).prop_map(|(table, old, new)| ChangeRecord::Update {
                table,
                old,
                new
            }),
            (table(), row()).prop_map(|(table, old)| ChangeRecord::Delete { table, old }),
            proptest::collection::vec(table(), 0..4).prop_map(|tables| ChangeRecord::Truncate { tables }),
            table().prop_map(|table| ChangeRecord::ReadStart { table }),
            (table(), row()).prop_map(|(table, row)| ChangeRecord::Read { table, row }),
        ]
    }

    proptest! {
        #[test]
        fn no_record_reads_as_a_bulk_read_marker(r in record()) {
            prop_assert_eq!(BulkReads::decode(&encode(&r)), Ok(None));
        }

        #[test]
        fn bulk_read_markers_read_back(table in any::<u32>(), rows in any::<u32>(), cut in 0usize..9) {
            let m = BulkReads { table: TableId(table), rows };
            let bytes = m.encode();
            prop_assert_eq!(BulkReads::decode(&bytes), Ok(Some(m)));
            prop_assert!(BulkReads::decode(&bytes[..cut]).is_err() || cut == 0);
        }
    }
}
