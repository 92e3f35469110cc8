//! Why a transaction cannot be written to the topic, or why the topic
//! cannot be read back.

use changelog::{Lsn, TableId, TableName};

use crate::datum::RowError;

/// A transaction the format cannot carry exactly. Nothing is written: the
/// encoder's directory stays as it was before the transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A record names a table the directory does not know.
    #[error("transaction {commit_lsn}: table {table} is not known")]
    UnknownTable {
        /// The transaction.
        commit_lsn: Lsn,
        /// The table.
        table: TableId,
    },
    /// A row change of a table that has no captured shape (not captured).
    #[error("transaction {commit_lsn}: table {table} ({name}) has rows but no captured shape")]
    NotCaptured {
        /// The transaction.
        commit_lsn: Lsn,
        /// The table.
        table: TableId,
        /// Its name.
        name: TableName,
    },
    /// A row image whose length is not the table's number of columns: its
    /// values could not be named.
    #[error("transaction {commit_lsn}: a row of {name} has {values} values for {columns} columns")]
    RowShape {
        /// The transaction.
        commit_lsn: Lsn,
        /// The table.
        name: TableName,
        /// Values in the row.
        values: usize,
        /// Columns of the table.
        columns: usize,
    },
    /// A table shape with two columns of one name: rows in it could not be
    /// written by column name.
    #[error("transaction {commit_lsn}: table {name} has two columns named {column:?}")]
    DuplicateColumn {
        /// The transaction.
        commit_lsn: Lsn,
        /// The table.
        name: TableName,
        /// The column.
        column: String,
    },
    /// A TRUNCATE of no table.
    #[error("transaction {commit_lsn}: a truncate lists no table")]
    EmptyTruncate {
        /// The transaction.
        commit_lsn: Lsn,
    },
    /// Two live tables would go by one name, so a reader could not tell
    /// which one a record means.
    #[error("transaction {commit_lsn}: the name {name} would mean both {table} and {holder}")]
    AmbiguousName {
        /// The transaction.
        commit_lsn: Lsn,
        /// The name.
        name: TableName,
        /// The table the record is about.
        table: TableId,
        /// The table that already goes by the name.
        holder: TableId,
    },
    /// A value could not be written as JSON.
    #[error("transaction {commit_lsn}: a record could not be written as JSON")]
    Json {
        /// The transaction.
        commit_lsn: Lsn,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// A record out of place or not readable. A reader stops here: the topic
/// no longer says one exact history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReassemblyError {
    /// A header every record carries is absent.
    #[error("offset {offset}: header {header} is missing")]
    MissingHeader {
        /// The record's offset.
        offset: i64,
        /// The header.
        header: &'static str,
    },
    /// A header's value is not what it should be.
    #[error("offset {offset}: header {header} has the invalid value {value:?}")]
    BadHeader {
        /// The record's offset.
        offset: i64,
        /// The header.
        header: &'static str,
        /// Its value, lossily as text.
        value: String,
    },
    /// A format version this reader does not know.
    #[error("offset {offset}: format version {version:?} is not one this reader knows")]
    UnsupportedFormat {
        /// The record's offset.
        offset: i64,
        /// The version the record states.
        version: String,
    },
    /// A record kind this reader does not know.
    #[error("offset {offset}: record type {kind:?} is not one this reader knows")]
    UnknownType {
        /// The record's offset.
        offset: i64,
        /// The type the record states.
        kind: String,
    },
    /// The value (or a JSON header) is not the JSON its kind has.
    #[error("offset {offset}: the record is not valid JSON of its type")]
    Malformed {
        /// The record's offset.
        offset: i64,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The value is JSON of the right form that contradicts its kind or
    /// itself.
    #[error("offset {offset}: {problem}")]
    BadEvent {
        /// The record's offset.
        offset: i64,
        /// What is wrong.
        problem: &'static str,
    },
    /// A record names a table the reader does not know.
    #[error("offset {offset}: table {table} is not known")]
    UnknownTable {
        /// The record's offset.
        offset: i64,
        /// The table.
        table: TableName,
    },
    /// A row image that does not fit its table's shape.
    #[error("offset {offset}: a row of {table} does not fit its shape")]
    BadRow {
        /// The record's offset.
        offset: i64,
        /// The table.
        table: TableName,
        /// What does not fit.
        #[source]
        source: RowError,
    },
    /// Records of the transaction are missing before this one.
    #[error("offset {offset}: transaction {commit_lsn} skips from record {expected} to {found}")]
    Gap {
        /// The record's offset.
        offset: i64,
        /// The transaction.
        commit_lsn: Lsn,
        /// The ordinal expected.
        expected: u64,
        /// The ordinal found.
        found: u64,
    },
    /// A record of the transaction is here a second time.
    #[error("offset {offset}: transaction {commit_lsn} repeats record {ordinal}")]
    Duplicate {
        /// The record's offset.
        offset: i64,
        /// The transaction.
        commit_lsn: Lsn,
        /// The repeated ordinal.
        ordinal: u64,
    },
    /// A record of another transaction before the open one ended.
    #[error("offset {offset}: a record of transaction {found} inside transaction {open}")]
    Interleaved {
        /// The record's offset.
        offset: i64,
        /// The transaction still open.
        open: Lsn,
        /// The transaction of the record.
        found: Lsn,
    },
    /// A transaction that does not come after the last complete one: the
    /// topic repeats or reorders transactions.
    #[error("offset {offset}: transaction {commit_lsn} does not follow transaction {last}")]
    NotAfterLast {
        /// The record's offset.
        offset: i64,
        /// The transaction.
        commit_lsn: Lsn,
        /// The last complete transaction.
        last: Lsn,
    },
    /// Whole transactions are missing: the end marker names another
    /// transaction before it than the last one read.
    #[error("offset {offset}: transaction {commit_lsn} follows {previous:?}, but the last one read is {last}")]
    Lost {
        /// The end marker's offset.
        offset: i64,
        /// The transaction.
        commit_lsn: Lsn,
        /// The transaction its end marker names as the one before.
        previous: Option<Lsn>,
        /// The last complete transaction read.
        last: Lsn,
    },
    /// The tables of one TRUNCATE are not all there, in order.
    #[error("offset {offset}: transaction {commit_lsn} has an incomplete truncate")]
    TruncateIncomplete {
        /// The record's offset.
        offset: i64,
        /// The transaction.
        commit_lsn: Lsn,
    },
    /// The end marker's counts are not what was read.
    #[error("offset {offset}: transaction {commit_lsn} ends saying {stated} {what}, but {found} were read")]
    CountMismatch {
        /// The end marker's offset.
        offset: i64,
        /// The transaction.
        commit_lsn: Lsn,
        /// What was counted.
        what: &'static str,
        /// What the end marker says.
        stated: u64,
        /// What was read.
        found: u64,
    },
    /// The topic ends inside a transaction (only from
    /// [`crate::Reassembler::finish`]).
    #[error("transaction {commit_lsn} from offset {first_offset} has no end ({records} records read)")]
    Incomplete {
        /// The transaction.
        commit_lsn: Lsn,
        /// Offset of its first record.
        first_offset: i64,
        /// Records read of it.
        records: u64,
    },
}

impl ReassemblyError {
    /// The offset of the record at fault, when one is.
    pub fn offset(&self) -> Option<i64> {
        match self {
            ReassemblyError::MissingHeader { offset, .. }
            | ReassemblyError::BadHeader { offset, .. }
            | ReassemblyError::UnsupportedFormat { offset, .. }
            | ReassemblyError::UnknownType { offset, .. }
            | ReassemblyError::Malformed { offset, .. }
            | ReassemblyError::BadEvent { offset, .. }
            | ReassemblyError::UnknownTable { offset, .. }
            | ReassemblyError::BadRow { offset, .. }
            | ReassemblyError::Gap { offset, .. }
            | ReassemblyError::Duplicate { offset, .. }
            | ReassemblyError::Interleaved { offset, .. }
            | ReassemblyError::NotAfterLast { offset, .. }
            | ReassemblyError::Lost { offset, .. }
            | ReassemblyError::TruncateIncomplete { offset, .. }
            | ReassemblyError::CountMismatch { offset, .. } => Some(*offset),
            ReassemblyError::Incomplete { .. } => None,
        }
    }
}
