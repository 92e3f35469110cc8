//! Store-wide metadata records and their (bincode) encoding.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::codec::{self, CorruptEncoding};
use crate::error::{Result, StoreError};
use crate::ids::{TableId, Xid};
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

/// The `log` value of `ChangeRecord::Read { table, row }` for a row in the
/// version format's row encoding ([`crate::codec`]): byte for byte what
/// [`encode`] makes of the record, written without building it. The hot
/// path of a bulk load; a test holds the two together.
pub(crate) fn encode_read_record_into(
    out: &mut Vec<u8>,
    table: TableId,
    row: &[u8],
) -> std::result::Result<(), CorruptEncoding> {
    /// `ChangeRecord::Read`'s variant index.
    const READ: u64 = 6;
    /// `Datum`'s variant indexes.
    const NULL: u64 = 0;
    const TEXT: u64 = 1;
    const MISSING: u64 = 3;
    out.clear();
    put_bincode_varint(out, READ);
    put_bincode_varint(out, u64::from(table.0));
    let mut pos = 0;
    let n = codec::get_varint(row, &mut pos)?;
    put_bincode_varint(out, n);
    for _ in 0..n {
        match codec::get_varint(row, &mut pos)? {
            0 => put_bincode_varint(out, NULL),
            1 => put_bincode_varint(out, MISSING),
            len_2 => {
                let len = usize::try_from(len_2 - 2).unwrap_or(usize::MAX);
                let text = row.get(pos..pos.saturating_add(len)).ok_or(CorruptEncoding {
                    offset: pos,
                    what: "text value",
                })?;
                pos += len;
                put_bincode_varint(out, TEXT);
                put_bincode_varint(out, len as u64);
                out.extend_from_slice(text);
            }
        }
    }
    Ok(())
}

/// An integer in bincode's standard variable-length encoding.
fn put_bincode_varint(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=250 => out.push(v as u8),
        251..=0xFFFF => {
            out.push(251);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xFFFF_FFFF => {
            out.push(252);
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        _ => {
            out.push(253);
            out.extend_from_slice(&v.to_le_bytes());
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
    use crate::record::ChangeRecord;
    use crate::value::{Datum, RowImage};

    fn datum() -> impl Strategy<Value = Datum> {
        prop_oneof![
            3 => codec::tests::datum(),
            // Long enough for bincode's 3- and 5-byte lengths.
            1 => (0usize..3, any::<u8>()).prop_map(|(i, b)| Datum::Text(vec![b; [251, 65_535, 65_536][i]])),
        ]
    }

    proptest! {
        #[test]
        fn read_records_encode_as_serde_does(
            table in prop_oneof![0u32..300, any::<u32>()],
            row in proptest::collection::vec(datum(), 0..300),
        ) {
            let mut row_bytes = Vec::new();
            codec::encode_row(&mut row_bytes, &row);
            let mut fast = Vec::new();
            encode_read_record_into(&mut fast, TableId(table), &row_bytes).unwrap();
            let record = ChangeRecord::Read { table: TableId(table), row: RowImage(row) };
            prop_assert_eq!(fast, encode(&record));
        }
    }
}
