//! The source as of one exact LSN.
//!
//! A TEMPORARY logical slot created with `SNAPSHOT 'export'` names a
//! consistent point C and exports a snapshot that sees exactly the
//! transactions committed before C: the same mechanism, and so the same
//! position, as the capture's initial copy (see `cdc_source::snapshot`).
//! A REPEATABLE READ transaction on an ordinary connection imports the
//! snapshot, after which the replication connection is closed: the server
//! drops a temporary slot with its connection, however the program ends,
//! so no slot is left behind and the capture's own slot is never touched.
//!
//! The SQL session is opened exactly as the capture opens its sessions
//! (`cdc_source::sql::connect`, the same connection string and defaults),
//! so values print in the same text form the store holds.

use cdc_source::catalog::quote_literal;
use cdc_source::conninfo::ConnInfo;
use cdc_source::replication::{ReplicationClient, SlotSnapshot};
use changelog::Lsn;
use tokio_postgres::Client;

use crate::error::VerifyError;

/// An open read of the source at [`SourceAt::lsn`].
pub struct SourceAt {
    /// In a transaction that sees the source exactly at `lsn`.
    pub client: Client,
    /// The slot's consistent point: every transaction committed before it
    /// is visible, none after.
    pub lsn: Lsn,
}

impl SourceAt {
    /// Fixes a position with a temporary slot and opens a transaction
    /// reading the source there.
    pub async fn open(conninfo: &ConnInfo) -> Result<SourceAt, VerifyError> {
        let client = cdc_source::sql::connect(conninfo).await.map_err(VerifyError::Connect)?;
        let mut repl = ReplicationClient::connect(conninfo.config()).await?;
        let created = repl
            .create_temporary_logical_slot(&slot_name(), "pgoutput", SlotSnapshot::Export)
            .await?;
        let snapshot = created.snapshot_name.ok_or(VerifyError::NoSnapshot)?;
        // The snapshot is importable only while `repl` stays open and idle.
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        client
            .batch_execute(&format!("SET TRANSACTION SNAPSHOT {}", quote_literal(&snapshot)))
            .await?;
        // Imported: the slot is no longer needed; closing drops it.
        drop(repl);
        Ok(SourceAt {
            client,
            lsn: created.consistent_point,
        })
    }

    /// Ends the read transaction.
    pub async fn close(self) -> Result<(), VerifyError> {
        self.client.batch_execute("COMMIT").await?;
        Ok(())
    }
}

/// A slot name no other session uses.
fn slot_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("asof_verify_{}_{nanos}", std::process::id())
}
