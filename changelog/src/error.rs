//! Errors of the change log store.

use std::path::PathBuf;

use crate::codec::CorruptEncoding;
use crate::ids::TableId;
use crate::lsn::Lsn;

/// An error from opening, writing or reading the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No store at the path (and creating one was not asked for).
    #[error("no asof store at {path}")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The directory holds something that is not an asof store.
    #[error("{path} is not an asof store")]
    NotAStore {
        /// The path given.
        path: PathBuf,
    },
    /// The store was written by a newer (or unknown) format version.
    #[error(
        "the store at {path} has format version {found}; this build reads versions up to {supported} (upgrade asof)"
    )]
    UnsupportedFormat {
        /// The path given.
        path: PathBuf,
        /// Format found on disk.
        found: u32,
        /// Format this build writes.
        supported: u32,
    },
    /// Another process holds the store open for writing.
    #[error("the store at {path} is in use by another writer (is `asof tail` running on it?)")]
    InUse {
        /// The path given.
        path: PathBuf,
    },
    /// A write was attempted on a store opened read-only.
    #[error("the store is open read-only")]
    ReadOnly,
    /// A handle that reads the store as it was when opened was asked to
    /// follow the writer.
    #[error("this handle reads the store as it was when opened and cannot follow its writer")]
    Fixed,
    /// An earlier write failed to reach disk; the store refuses further
    /// writes rather than guess what is durable. Reopen it to recover.
    #[error("an earlier write failed; the store refuses further writes until it is reopened")]
    Poisoned,
    /// A record names a table the store has no schema for.
    #[error("table {0} has no schema in the store (a schema record must come first)")]
    NoSchema(TableId),
    /// A row does not match its table's schema.
    #[error("row for table {table} has {got} values but the schema has {expected} columns")]
    RowShape {
        /// The table.
        table: TableId,
        /// Columns in the schema.
        expected: usize,
        /// Values in the row.
        got: usize,
    },
    /// Transactions in one append call were not in commit-LSN order.
    #[error("transaction at {lsn} is out of order in one append")]
    OutOfOrder {
        /// The offending commit LSN.
        lsn: Lsn,
    },
    /// Stored bytes could not be decoded.
    #[error("corrupt data in column family {cf}")]
    Corrupt {
        /// Which family.
        cf: &'static str,
        /// The decoding failure.
        #[source]
        source: CorruptEncoding,
    },
    /// Stored metadata could not be decoded.
    #[error("corrupt metadata in column family {cf}: {message}")]
    CorruptMeta {
        /// Which family.
        cf: &'static str,
        /// What failed.
        message: String,
    },
    /// Files of the store are missing, cut short or corrupt. Never read as
    /// an empty or partial store.
    #[error("the store at {path} is damaged: {detail}; restore it from a backup or capture into a new store")]
    Damaged {
        /// The store.
        path: PathBuf,
        /// What is wrong, in the engine's or the file system's words.
        detail: String,
    },
    /// The engine met corrupt data while reading (a checksum mismatch, a
    /// file it can no longer read).
    #[error("the store is damaged")]
    EngineDamage(#[source] rocksdb::Error),
    /// RocksDB reported an error.
    #[error("storage engine error")]
    Engine(#[source] rocksdb::Error),
    /// Two rows of a full read loaded in bulk have the same key.
    #[error("table {table}: two copied rows have the same key")]
    DuplicateKey {
        /// The table.
        table: TableId,
    },
    /// A record of a transaction touches a table whose rows that
    /// transaction loaded in bulk.
    #[error("table {table} was loaded in bulk in this transaction and cannot change again in it")]
    BulkLoadedTableChanged {
        /// The table.
        table: TableId,
    },
    /// A table without a unique key cannot be loaded in bulk.
    #[error("table {table} has no unique key to load its rows in bulk by")]
    NoUniqueKey {
        /// The table.
        table: TableId,
    },
    /// An image was asked for at an LSN that is no stored commit.
    #[error("no stored commit at {lsn} to write an image at (images are written at commits between the horizon and the watermark)")]
    NoCommitAt {
        /// The LSN asked for.
        lsn: crate::Lsn,
    },
    /// A filesystem error outside RocksDB.
    #[error("i/o error on {path}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl From<rocksdb::Error> for StoreError {
    fn from(e: rocksdb::Error) -> StoreError {
        if e.kind() == rocksdb::ErrorKind::Corruption {
            StoreError::EngineDamage(e)
        } else {
            StoreError::Engine(e)
        }
    }
}

impl StoreError {
    pub(crate) fn corrupt(cf: &'static str) -> impl FnOnce(CorruptEncoding) -> StoreError {
        move |source| StoreError::Corrupt { cf, source }
    }
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
