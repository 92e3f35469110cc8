//! Typed wrappers for the replication commands capture uses.
//!
//! Each builds the command text with quoted identifiers and literals, runs
//! it through [`ReplicationClient::query`] and checks the result's shape,
//! so a server that answers differently fails loudly here rather than
//! somewhere downstream.

use changelog::Lsn;

use super::client::{quote_identifier, quote_literal, QueryResult};
use super::{ReplicationClient, ReplicationError};

/// The answer to `IDENTIFY_SYSTEM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemIdentity {
    /// The cluster's system identifier (stable for its lifetime; changes
    /// when a different cluster answers on the same address).
    pub system_id: String,
    /// The current timeline.
    pub timeline: u32,
    /// The current WAL flush position.
    pub xlog_pos: Lsn,
    /// The database this connection is bound to.
    pub dbname: Option<String>,
}

/// What `CREATE_REPLICATION_SLOT` does with the snapshot at the slot's
/// consistent point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotSnapshot {
    /// `SNAPSHOT 'export'`: export it under a name other sessions can
    /// import with `SET TRANSACTION SNAPSHOT`, valid while this client
    /// stays idle.
    Export,
    /// `SNAPSHOT 'use'`: make it the snapshot of the transaction open on
    /// this connection.
    Use,
    /// `SNAPSHOT 'nothing'`.
    Nothing,
}

impl SlotSnapshot {
    fn keyword(self) -> &'static str {
        match self {
            SlotSnapshot::Export => "export",
            SlotSnapshot::Use => "use",
            SlotSnapshot::Nothing => "nothing",
        }
    }
}

/// The answer to `CREATE_REPLICATION_SLOT ... LOGICAL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    /// The slot's name.
    pub slot_name: String,
    /// Decoding starts here: every transaction committing after this
    /// point is streamed, every earlier one is in the snapshot.
    pub consistent_point: Lsn,
    /// The exported snapshot's name ([`SlotSnapshot::Export`] only).
    pub snapshot_name: Option<String>,
    /// The output plugin.
    pub output_plugin: Option<String>,
}

impl ReplicationClient {
    /// `IDENTIFY_SYSTEM`.
    pub async fn identify_system(&mut self) -> Result<SystemIdentity, ReplicationError> {
        let r = self.query("IDENTIFY_SYSTEM").await?;
        Ok(SystemIdentity {
            system_id: required(&r, "systemid")?.to_owned(),
            timeline: required(&r, "timeline")?
                .parse()
                .map_err(|_| malformed("IDENTIFY_SYSTEM", "timeline"))?,
            xlog_pos: required(&r, "xlogpos")?
                .parse()
                .map_err(|_| malformed("IDENTIFY_SYSTEM", "xlogpos"))?,
            dbname: r.value(0, "dbname").map(str::to_owned),
        })
    }

    /// `CREATE_REPLICATION_SLOT "slot" LOGICAL "plugin" (SNAPSHOT '...')`
    /// (PostgreSQL 15+ syntax).
    ///
    /// With [`SlotSnapshot::Export`], the snapshot stays importable only
    /// while this client runs no other command and stays connected.
    pub async fn create_logical_slot(
        &mut self,
        slot: &str,
        output_plugin: &str,
        snapshot: SlotSnapshot,
    ) -> Result<CreatedSlot, ReplicationError> {
        self.create_slot(slot, "", output_plugin, snapshot).await
    }

    /// [`Self::create_logical_slot`] with `TEMPORARY`: the slot belongs to
    /// this connection and the server drops it when the connection ends,
    /// however it ends; no cleanup is left to the caller.
    pub async fn create_temporary_logical_slot(
        &mut self,
        slot: &str,
        output_plugin: &str,
        snapshot: SlotSnapshot,
    ) -> Result<CreatedSlot, ReplicationError> {
        self.create_slot(slot, " TEMPORARY", output_plugin, snapshot).await
    }

    async fn create_slot(
        &mut self,
        slot: &str,
        temporary: &str,
        output_plugin: &str,
        snapshot: SlotSnapshot,
    ) -> Result<CreatedSlot, ReplicationError> {
        let command = format!(
            "CREATE_REPLICATION_SLOT {}{temporary} LOGICAL {} (SNAPSHOT {})",
            quote_identifier(slot),
            quote_identifier(output_plugin),
            quote_literal(snapshot.keyword()),
        );
        let r = self.query(&command).await?;
        Ok(CreatedSlot {
            slot_name: required(&r, "slot_name")?.to_owned(),
            consistent_point: required(&r, "consistent_point")?
                .parse()
                .map_err(|_| malformed("CREATE_REPLICATION_SLOT", "consistent_point"))?,
            snapshot_name: r.value(0, "snapshot_name").map(str::to_owned),
            output_plugin: r.value(0, "output_plugin").map(str::to_owned),
        })
    }

    /// `DROP_REPLICATION_SLOT "slot" [WAIT]`. Without `wait`, a slot in use
    /// by another connection is an error (SQLSTATE `55006`); with it, the
    /// command waits until the slot is free.
    pub async fn drop_slot(&mut self, slot: &str, wait: bool) -> Result<(), ReplicationError> {
        let command = format!(
            "DROP_REPLICATION_SLOT {}{}",
            quote_identifier(slot),
            if wait { " WAIT" } else { "" }
        );
        self.query(&command).await.map(drop)
    }
}

fn required<'r>(r: &'r QueryResult, column: &str) -> Result<&'r str, ReplicationError> {
    r.value(0, column)
        .ok_or_else(|| ReplicationError::protocol(format!("the server's answer has no value for column {column}")))
}

fn malformed(command: &str, column: &str) -> ReplicationError {
    ReplicationError::protocol(format!("{command} returned a malformed {column}"))
}
