//! Errors of the capture.
//!
//! Each variant carries the facts (a setting's value, a slot's name and
//! positions, where in the stream) and its message says how to fix it.
//! Whether reconnecting may help is one rule (`transient.rs`) for
//! both the SQL and the replication connection.

use changelog::{CommitTime, Lsn, ParseLsnError, TableName};

use crate::conninfo::SslMode;
use crate::ddl::MessageError;
use crate::pgoutput::DecodeError;
use crate::text_formats::TextFormatError;

/// Why the capture stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// `wal_level` is not `logical`.
    #[error(
        "the server has wal_level={actual}; logical replication needs wal_level=logical \
         (ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)"
    )]
    WalLevel {
        /// The server's setting.
        actual: String,
    },
    /// The server is older than PostgreSQL 14.
    #[error("PostgreSQL {}.{} is too old; asof needs 14 or later", version_num / 10_000, version_num % 10_000)]
    ServerTooOld {
        /// `server_version_num`.
        version_num: i32,
    },
    /// The role may not use replication.
    #[error("the role lacks the REPLICATION privilege (ALTER ROLE <role> WITH REPLICATION)")]
    MissingReplicationPrivilege,
    /// A table's name kept changing while the initial copy tried to lock it.
    #[error("table with OID {oid} was renamed again and again while the initial copy tried to lock it")]
    TableKeepsChanging {
        /// The table's OID.
        oid: u32,
    },
    /// The role may not read a table the initial copy needs.
    #[error("the role may not read {table} (GRANT SELECT ON {qualified} TO <role>)")]
    MissingSelectPrivilege {
        /// The table.
        table: TableName,
        /// Its quoted, schema-qualified name.
        qualified: String,
    },
    /// The publication could not be created: permission denied.
    #[error(
        "cannot create publication {publication}: permission denied (a superuser can run \
         CREATE PUBLICATION {publication} {target}, or pass --tables for tables the role owns)"
    )]
    PublicationDenied {
        /// Publication name.
        publication: String,
        /// `FOR ALL TABLES` or `FOR TABLE ...`.
        target: String,
    },
    /// The publication could not be created: a named table does not exist.
    #[error("cannot create publication {publication}: {message}")]
    PublicationTableMissing {
        /// Publication name.
        publication: String,
        /// The server's message, which names the table.
        message: String,
    },
    /// The event triggers for DDL capture could not be installed.
    #[error("cannot install the DDL capture triggers: permission denied")]
    DdlTriggersDenied,
    /// A published table's updates and deletes could not be captured.
    #[error("table {table} cannot be captured: {reason}")]
    NoReplicaIdentity {
        /// The table.
        table: TableName,
        /// Why, and the fix that fits the table's state.
        reason: String,
    },
    /// `max_replication_slots` is exhausted.
    #[error("no free replication slot (raise max_replication_slots, or drop an unused slot)")]
    NoFreeSlot,
    /// The connection string asks for a TLS mode the capture cannot honour.
    #[error("sslmode={mode} is not supported yet; use sslmode=require (encrypted, certificate not verified)")]
    UnsupportedSslMode {
        /// The requested mode.
        mode: SslMode,
    },
    /// The slot exists but the store is empty: there is no consistent
    /// starting point.
    #[error(
        "replication slot {slot} already exists but this store is empty, so there is no consistent starting \
         point; drop the slot (SELECT pg_drop_replication_slot('{slot}')) or choose another with --slot"
    )]
    SlotWithoutHistory {
        /// Slot name.
        slot: String,
    },
    /// The slot does not use `pgoutput`.
    #[error("replication slot {slot} does not use pgoutput")]
    SlotPlugin {
        /// Slot name.
        slot: String,
        /// Its output plugin.
        plugin: Option<String>,
    },
    /// The slot is used by another connection.
    #[error("replication slot {slot} is in use by another connection")]
    SlotInUse {
        /// Slot name.
        slot: String,
    },
    /// A gap: the slot of a history was dropped.
    #[error(
        "replication slot {slot} no longer exists (was it dropped?); changes after {commit_time} (lsn {commit_lsn}) \
         may be lost, so this history cannot continue. Start a new store to begin a new history"
    )]
    SlotMissing {
        /// Slot name.
        slot: String,
        /// Time of the last stored commit.
        commit_time: CommitTime,
        /// Its LSN.
        commit_lsn: Lsn,
    },
    /// A gap: the slot lost the WAL it still needed.
    #[error("replication slot {slot} was invalidated (its WAL was removed); history has a gap and cannot continue")]
    SlotInvalidated {
        /// Slot name.
        slot: String,
    },
    /// A gap: the slot was confirmed beyond what the store holds.
    #[error(
        "replication slot {slot} was confirmed up to {confirmed} but this store only holds up to {stored}: it was \
         recreated or used by another consumer, and the changes in between are gone"
    )]
    SlotAhead {
        /// Slot name.
        slot: String,
        /// The slot's confirmed flush position.
        confirmed: Lsn,
        /// How far the store holds the history.
        stored: Lsn,
    },
    /// The store holds the history of another database.
    #[error(
        "this store holds the history of database {stored_database} on system {stored_system}, \
         not {database} on {system}"
    )]
    WrongSource {
        /// The store's database.
        stored_database: String,
        /// The store's system identifier.
        stored_system: String,
        /// The source's database.
        database: String,
        /// The source's system identifier.
        system: String,
    },
    /// A pgoutput message could not be decoded.
    #[error("protocol error: cannot decode the message at {lsn}")]
    Decode {
        /// Where in the stream.
        lsn: Lsn,
        /// What was wrong.
        source: DecodeError,
    },
    /// Decoded messages do not form valid transactions.
    #[error("protocol error at {lsn}: {problem}")]
    Stream {
        /// Where in the stream.
        lsn: Lsn,
        /// What was wrong.
        problem: StreamProblem,
    },
    /// A logical message of the DDL capture could not be read.
    #[error("protocol error: cannot read the DDL capture's message at {lsn}")]
    LogicalMessage {
        /// Where in the stream.
        lsn: Lsn,
        /// What was wrong.
        source: MessageError,
    },
    /// The initial copy's data could not be read.
    #[error("protocol error in the copy of {table}")]
    CopyData {
        /// The table being copied.
        table: TableName,
        /// What was wrong.
        #[source]
        problem: CopyProblem,
    },
    /// The server reported a position that is not an LSN.
    #[error("the server reported a malformed position")]
    ServerLsn(#[source] ParseLsnError),
    /// The store's writer thread could not be started.
    #[error("cannot start the store writer thread")]
    WriterThread(#[source] std::io::Error),
    /// The store is a follower, written only from its topic.
    #[error("this store follows the Kafka topic {topic}; only `asof follow` writes to it")]
    Follower {
        /// The topic it follows.
        topic: String,
    },
    /// The log could not be passed on to its second home.
    #[error("could not pass the log on")]
    Relay(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store's writer stopped before the stream did.
    #[error("the store writer stopped")]
    WriterStopped,
    /// The writer was given a command it cannot carry out; continuing
    /// would leave the stream waiting for an acknowledgement forever.
    #[error("the store writer cannot {0}")]
    WriterCommand(&'static str),
    /// An ordinary SQL connection failed.
    #[error("database error")]
    Sql(#[from] tokio_postgres::Error),
    /// The replication connection failed.
    #[error("replication connection")]
    Replication(#[from] crate::replication::ReplicationError),
    /// The store failed.
    #[error("store")]
    #[cfg(feature = "capture")]
    Store(#[from] changelog::StoreError),
    /// A transaction the server streams before it ends could not be held
    /// in the store's scratch directory.
    #[error("cannot hold a streamed transaction in {}", path.display())]
    Spool {
        /// The directory or file.
        path: std::path::PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The thread building the files of copied rows could not start, or
    /// stopped before its work was done.
    #[error("the thread loading copied rows failed")]
    CopyThread(#[source] std::io::Error),
}

/// Why decoded messages do not form valid transactions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamProblem {
    /// A Commit with no open transaction.
    #[error("Commit without Begin")]
    CommitWithoutBegin,
    /// A Commit whose LSN is not the one Begin announced.
    #[error("Commit LSN differs from Begin's final LSN")]
    CommitLsnMismatch,
    /// A message that belongs in a transaction arrived outside one.
    #[error("{0} outside a transaction")]
    OutsideTransaction(&'static str),
    /// A change for a relation never described.
    #[error("change for unknown relation {0}")]
    UnknownRelation(u32),
    /// A re-read row whose width is not the table's.
    #[error("re-read row does not match the table's columns")]
    RereadWidth,
    /// A stream block began while a transaction was being received.
    #[error("Stream Start inside a transaction")]
    StreamStartInTransaction,
    /// A Stream Commit for a transaction no block was received for.
    #[error("Stream Commit of transaction {0}, which was never streamed")]
    UnknownStreamedTransaction(u32),
    /// A stream block continues a transaction whose first block was not
    /// received.
    #[error("Stream Start continues transaction {0}, whose first block was not received")]
    StreamContinuesUnknown(u32),
    /// A binary column value (never requested).
    #[error("binary tuple values are not requested and not supported")]
    BinaryValue,
}

/// Why the initial copy's data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CopyProblem {
    /// The data ended without a final newline.
    #[error("COPY data ended inside a row")]
    EndedInsideRow,
    /// A row is not valid COPY text.
    #[error(transparent)]
    Row(#[from] TextFormatError),
    /// A row with the wrong number of columns.
    #[error("COPY row has {found} columns, not {expected}")]
    Width {
        /// The table's columns.
        expected: usize,
        /// The row's.
        found: usize,
    },
}

impl CaptureError {
    /// True when reconnecting may help (dropped connection, server restart,
    /// too many connections).
    pub fn is_transient(&self) -> bool {
        match self {
            CaptureError::Sql(e) => crate::transient::sql_error_is_transient(e),
            CaptureError::Replication(e) => e.is_transient(),
            _ => false,
        }
    }

    /// True when continuing would leave a hole in the history (the slot
    /// was dropped, invalidated or moved past the store).
    pub fn is_gap(&self) -> bool {
        matches!(
            self,
            CaptureError::SlotMissing { .. } | CaptureError::SlotInvalidated { .. } | CaptureError::SlotAhead { .. }
        )
    }
}

/// Result alias for the capture.
pub type Result<T, E = CaptureError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_errors_say_how_to_fix_them() {
        let wal = CaptureError::WalLevel {
            actual: "replica".into(),
        };
        assert!(
            wal.to_string().contains("ALTER SYSTEM SET wal_level = logical"),
            "{wal}"
        );
        let privilege = CaptureError::MissingReplicationPrivilege.to_string();
        assert!(privilege.contains("ALTER ROLE <role> WITH REPLICATION"), "{privilege}");
        let slot = CaptureError::SlotWithoutHistory { slot: "s".into() }.to_string();
        assert!(slot.contains("pg_drop_replication_slot('s')"), "{slot}");
        let old = CaptureError::ServerTooOld { version_num: 130_004 }.to_string();
        assert!(old.contains("PostgreSQL 13.4"), "{old}");
    }

    #[test]
    fn only_connection_failures_are_transient() {
        assert!(CaptureError::from(crate::replication::ReplicationError::Closed).is_transient());
        assert!(!CaptureError::NoFreeSlot.is_transient());
        assert!(!CaptureError::WriterStopped.is_transient());
    }
}
