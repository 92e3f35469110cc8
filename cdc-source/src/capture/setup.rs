//! A session's set-up, before anything streams: preflight checks of the
//! server and the published tables, then either beginning a new history
//! (slot, initial copy) or checking that the existing slot continues the
//! store's history without a gap.

use std::collections::HashSet;

use changelog::{Lsn, SourceInfo, Store};
use tokio_postgres::Client;

use super::{CaptureEvent, Run, Until};
use crate::assemble::Assembler;
use crate::catalog::{self, ServerInfo, SlotInfo};
use crate::ddl;
use crate::error::{CaptureError, Result};
use crate::replication::{ReplicationClient, SlotSnapshot, SystemIdentity};
use crate::snapshot::{self, CopyPlan};
use crate::sql;

/// The source, checked and ready to stream.
pub(super) struct Connected {
    /// For catalog look-ups while streaming (type names).
    pub client: Client,
    /// The replication connection, not yet streaming.
    pub repl: ReplicationClient,
    /// The published tables as the store knows them.
    pub assembler: Assembler,
}

/// What the preflight learnt about the source.
struct Source {
    server: ServerInfo,
    /// Published tables (OIDs).
    tables: Vec<u32>,
    /// The publication is `FOR ALL TABLES`.
    all_tables: bool,
}

/// Checks the source, then begins a history or checks the resumed one.
pub(super) async fn prepare<F: FnMut(CaptureEvent) + Send>(
    store: &mut Store,
    run: &mut Run<'_, F>,
) -> Result<Connected> {
    let opts = run.opts;
    let mut client = sql::connect(&opts.conninfo).await?;
    let source = preflight(&client, run, store.watermark().is_none()).await?;
    let mut repl = ReplicationClient::connect(opts.conninfo.config()).await?;
    let ident = repl.identify_system().await?;
    check_same_source(store, &source.server, &ident)?;
    let slot = catalog::slot(&client, &opts.slot).await?;
    let mut assembler = Assembler::from_catalog(store.catalog());
    if !source.all_tables {
        assembler.set_published(Some(source.tables.iter().copied().collect::<HashSet<u32>>()));
    }
    match (store.watermark(), slot) {
        (None, None) => {
            let history = History {
                client: &mut client,
                repl: &mut repl,
                assembler: &mut assembler,
                source: &source,
                ident: &ident,
            };
            history.begin(store, run).await?;
        }
        (None, Some(_)) => {
            return Err(CaptureError::SlotWithoutHistory {
                slot: opts.slot.clone(),
            })
        }
        (Some(w), None) => {
            return Err(CaptureError::SlotMissing {
                slot: opts.slot.clone(),
                commit_time: w.commit_time,
                commit_lsn: w.commit_lsn,
            })
        }
        (Some(_), Some(slot)) => check_resumed_slot(&opts.slot, &slot, store.scanned_through())?,
    }
    Ok(Connected {
        client,
        repl,
        assembler,
    })
}

/// Server settings and privileges, the publication and its tables' keys,
/// the DDL capture; fixes `--until caught-up`'s target at the first session.
/// A table without a usable key refuses a `fresh` history (nothing is
/// stored yet, the advice says what to fix); a resumed history goes on and
/// the stream records such a table as uncaptured.
async fn preflight<F: FnMut(CaptureEvent) + Send>(
    client: &Client,
    run: &mut Run<'_, F>,
    fresh: bool,
) -> Result<Source> {
    let opts = run.opts;
    let server = catalog::check_server(client).await?;
    if opts.until == Until::CaughtUp && run.target.is_none() {
        run.target = Some(catalog::current_wal_lsn(client).await?);
    }
    catalog::ensure_publication(client, &opts.publication, &opts.tables).await?;
    let published = catalog::published_tables(client, &opts.publication).await?;
    for (oid, _) in &published {
        let schema = catalog::describe_table(client, *oid).await?;
        match catalog::check_identity(&schema) {
            Err(CaptureError::NoReplicaIdentity { table, reason }) if !fresh => {
                run.notice(format!("table {table} is not captured: {reason}"));
            }
            checked => checked?,
        }
    }
    let all_tables: bool = client
        .query_one(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[&opts.publication],
        )
        .await?
        .get(0);
    if all_tables {
        let unlogged = catalog::unlogged_tables(client).await?;
        if !unlogged.is_empty() {
            let names: Vec<String> = unlogged.iter().map(ToString::to_string).collect();
            run.notice(format!(
                "unlogged tables are not captured (their changes are not written to the WAL): {}",
                names.join(", ")
            ));
        }
    }
    if !ddl::install(client, &opts.publication, server.superuser).await? {
        run.notice(
            "DDL capture is off (creating event triggers needs a superuser): column changes are recorded at the \
             table's next row change, and DDL-only transactions, ADD COLUMN defaults for existing rows and \
             rewriting ALTERs are not captured exactly"
                .into(),
        );
    }
    Ok(Source {
        server,
        tables: published.into_iter().map(|(oid, _)| oid).collect(),
        all_tables,
    })
}

/// Refuses a store that holds the history of another database.
fn check_same_source(store: &Store, server: &ServerInfo, ident: &SystemIdentity) -> Result<()> {
    match store.source_info()? {
        Some(src) if src.system_id != ident.system_id || src.database != server.database => {
            Err(CaptureError::WrongSource {
                stored_database: src.database,
                stored_system: src.system_id,
                database: server.database.clone(),
                system: ident.system_id.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// Checks that an existing slot continues the store's history: it decodes
/// pgoutput, still has its WAL, was not confirmed past what the store
/// holds (`stored`), and nobody else is streaming from it.
fn check_resumed_slot(name: &str, slot: &SlotInfo, stored: Lsn) -> Result<()> {
    if slot.plugin.as_deref() != Some("pgoutput") {
        return Err(CaptureError::SlotPlugin {
            slot: name.to_owned(),
            plugin: slot.plugin.clone(),
        });
    }
    if slot.wal_status.as_deref() == Some("lost") {
        return Err(CaptureError::SlotInvalidated { slot: name.to_owned() });
    }
    if let Some(confirmed) = slot.confirmed_flush.filter(|c| *c > stored) {
        return Err(CaptureError::SlotAhead {
            slot: name.to_owned(),
            confirmed,
            stored,
        });
    }
    if slot.active {
        return Err(CaptureError::SlotInUse { slot: name.to_owned() });
    }
    Ok(())
}

/// Beginning a new history on an empty store.
struct History<'c> {
    client: &'c mut Client,
    repl: &'c mut ReplicationClient,
    assembler: &'c mut Assembler,
    source: &'c Source,
    ident: &'c SystemIdentity,
}

impl History<'_> {
    /// Creates the slot, stores the base state at its consistent point (the
    /// rows copied in its snapshot, or only the tables' shapes), and records
    /// which source the store belongs to.
    async fn begin<F: FnMut(CaptureEvent) + Send>(self, store: &mut Store, run: &mut Run<'_, F>) -> Result<()> {
        let opts = run.opts;
        catalog::check_free_slot(self.client).await?;
        let created = self
            .repl
            .create_logical_slot(&opts.slot, "pgoutput", SlotSnapshot::Export)
            .await?;
        let cp = created.consistent_point;
        // Every streamed commit is at or above the consistent point.
        let base = Lsn(cp.0.saturating_sub(1));
        run.notice(format!("created replication slot {} at {cp}", opts.slot));
        let tables = &self.source.tables;
        if opts.snapshot {
            let name = created.snapshot_name.clone().unwrap_or_default();
            let plan = CopyPlan {
                snapshot_name: &name,
                tables,
                base_lsn: base,
                end_lsn: cp,
            };
            let on_event = &mut run.on_event;
            run.summary.copied_rows = snapshot::copy_tables(self.client, store, self.assembler, &plan, |p| {
                on_event(CaptureEvent::Copy(p.clone()))
            })
            .await?;
        } else {
            snapshot::record_shapes(self.client, store, self.assembler, tables, base, cp).await?;
        }
        store.set_source_info(&SourceInfo {
            system_id: self.ident.system_id.clone(),
            database: self.source.server.database.clone(),
            slot: opts.slot.clone(),
            publication: opts.publication.clone(),
            slot_consistent_point: cp,
            conninfo_redacted: opts.conninfo.to_string(),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> SlotInfo {
        SlotInfo {
            plugin: Some("pgoutput".into()),
            database: Some("db".into()),
            confirmed_flush: Some(Lsn(100)),
            wal_status: Some("reserved".into()),
            active: false,
        }
    }

    #[test]
    fn a_slot_at_or_behind_the_store_continues_the_history() {
        check_resumed_slot("s", &healthy(), Lsn(100)).expect("same position");
        check_resumed_slot("s", &healthy(), Lsn(200)).expect("store ahead");
    }

    #[test]
    fn a_slot_confirmed_past_the_store_is_a_gap() {
        let err = check_resumed_slot("s", &healthy(), Lsn(99)).expect_err("gap");
        assert!(
            matches!(&err, CaptureError::SlotAhead { slot, confirmed: Lsn(100), stored: Lsn(99) } if slot == "s"),
            "{err:?}"
        );
        assert!(err.is_gap());
    }

    #[test]
    fn an_invalidated_slot_is_a_gap() {
        let slot = SlotInfo {
            wal_status: Some("lost".into()),
            ..healthy()
        };
        let err = check_resumed_slot("s", &slot, Lsn(100)).expect_err("gap");
        assert!(matches!(err, CaptureError::SlotInvalidated { .. }), "{err:?}");
        assert!(err.is_gap());
    }

    #[test]
    fn a_slot_in_use_or_of_another_plugin_is_refused_but_no_gap() {
        let busy = SlotInfo {
            active: true,
            ..healthy()
        };
        let err = check_resumed_slot("s", &busy, Lsn(100)).expect_err("in use");
        assert!(matches!(err, CaptureError::SlotInUse { .. }), "{err:?}");
        assert!(!err.is_gap() && !err.is_transient());
        let other = SlotInfo {
            plugin: Some("test_decoding".into()),
            ..healthy()
        };
        let err = check_resumed_slot("s", &other, Lsn(100)).expect_err("plugin");
        assert!(
            matches!(&err, CaptureError::SlotPlugin { plugin: Some(p), .. } if p == "test_decoding"),
            "{err:?}"
        );
    }
}
