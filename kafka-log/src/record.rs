//! One record of the topic, the headers every record carries, and the kinds
//! of record.

use std::fmt;

/// One Kafka record as the topic holds it: key, value and headers.
///
/// The partition and offset are the consumer's business; the
/// [`crate::Reassembler`] takes the offset beside the record so that its
/// errors can name where the topic went wrong.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct TopicRecord {
    /// The record key: the row's key columns for a row change (Debezium's
    /// key form), none for every other kind.
    pub key: Option<Vec<u8>>,
    /// The value: a JSON document.
    pub value: Vec<u8>,
    /// Headers in order; names are unique within a record.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl TopicRecord {
    /// The value of the first header with this name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }
}

/// Header names. Every record carries [`FORMAT`], [`TYPE`], [`COMMIT_LSN`]
/// and [`ORDINAL`]; values are UTF-8 text.
pub mod header {
    /// The format's version; a reader refuses a version it does not know.
    pub const FORMAT: &str = "asof.format";
    /// The record's kind ([`super::RecordKind`]).
    pub const TYPE: &str = "asof.type";
    /// Commit LSN of the Postgres transaction the record belongs to, `X/Y`.
    pub const COMMIT_LSN: &str = "asof.commit_lsn";
    /// The record's place in its transaction: 0, 1, 2, ...; the end
    /// marker's ordinal is the number of records before it.
    pub const ORDINAL: &str = "asof.ordinal";
    /// On a truncate: `k/n`, this table's place among the `n` tables one
    /// TRUNCATE emptied.
    pub const TRUNCATE: &str = "asof.truncate";
    /// On a row change whose JSON images cannot say a value exactly (an
    /// unchanged TOAST marker, text that is not UTF-8): the exact values,
    /// as JSON.
    pub const EXACT: &str = "asof.exact";
}

/// The format version this crate writes and reads.
pub const FORMAT_VERSION: &str = "1";

/// What a record is, from its [`header::TYPE`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RecordKind {
    /// A row change (`op` `c`, `u`, `d` or `r`): a Debezium envelope.
    Change,
    /// One table of a TRUNCATE (`op` `t`): a Debezium envelope.
    Truncate,
    /// A table's schema changed, or it was created, dropped or stopped
    /// being captured.
    Schema,
    /// A full read of a table begins; the `r` changes that follow in the
    /// transaction are all its rows.
    ReadStart,
    /// The end of a transaction: its commit and its counts.
    End,
}

impl RecordKind {
    /// The header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordKind::Change => "change",
            RecordKind::Truncate => "truncate",
            RecordKind::Schema => "schema",
            RecordKind::ReadStart => "read_start",
            RecordKind::End => "end",
        }
    }

    /// The kind a header value names.
    pub fn parse(s: &str) -> Option<RecordKind> {
        [
            RecordKind::Change,
            RecordKind::Truncate,
            RecordKind::Schema,
            RecordKind::ReadStart,
            RecordKind::End,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
