//! A session's set-up, before anything streams: checks of the server, the
//! slot and the published tables, then either beginning a new history
//! (slot, initial copy) or checking that the existing slot continues the
//! store's history without a gap.
//!
//! A refused or failed start leaves the source as it was. Every check that
//! can refuse runs before anything is created, and the publication and the
//! DDL capture are created in one transaction with the checks of the
//! tables they publish, so a refusal rolls them back. What this start
//! created is remembered; if the new history fails before it is stored
//! (slot creation, the initial copy), exactly that is removed again, never
//! what existed before. Before creating a slot the store records which
//! slot its first run uses, so a first run that was killed (and could not
//! clean up) is recognised by the next: its slot is dropped and created
//! again, and its partial copy was already discarded when the store opened.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use changelog::{Lsn, SourceInfo, Store};
use tokio_postgres::Client;

use super::{chain, CaptureEvent, Run, Until};
use crate::assemble::Assembler;
use crate::catalog::{self, ServerInfo, SlotInfo};
use crate::ddl;
use crate::error::{CaptureError, Result};
use crate::replication::{ReplicationClient, SlotSnapshot, SystemIdentity};
use crate::snapshot::{self, Copied, CopyPlan};
use crate::sql;
use crate::uninstall::{self, Installed};

/// How long a slot may stay active after the run that streamed from it is
/// gone (killed, or its connection lost) before it counts as in use: the
/// server's process for that run holds the slot until it notices the lost
/// connection.
const SLOT_RELEASE_WAIT: Duration = Duration::from_secs(10);

/// How many snapshots a new history tries before it records a table DDL
/// keeps changing under the copy as not captured.
const COPY_ATTEMPTS: usize = 5;

/// The source, checked and ready to stream.
pub(super) struct Connected {
    /// For catalog look-ups while streaming (type names).
    pub client: Client,
    /// The replication connection, not yet streaming.
    pub repl: ReplicationClient,
    /// The published tables as the store knows them.
    pub assembler: Assembler,
    /// Where transactions streamed before they end are held.
    pub scratch: std::path::PathBuf,
}

/// What the preflight learnt about the source.
struct Source {
    server: ServerInfo,
    /// Published tables (OIDs).
    tables: Vec<u32>,
    /// The publication is `FOR ALL TABLES`.
    all_tables: bool,
}

/// How this session starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// The store holds a history; its slot continues it.
    Resume,
    /// The store is empty: a new history. `leftover`: the slot exists,
    /// left by this store's own unfinished first run.
    Begin { leftover: bool },
}

/// Checks the source, then begins a history or checks the resumed one.
pub(super) async fn prepare<F: FnMut(CaptureEvent) + Send>(
    store: &mut Store,
    run: &mut Run<'_, F>,
) -> Result<Connected> {
    let opts = run.opts;
    let mut client = sql::connect(&opts.conninfo).await?;
    let server = catalog::check_server(&client).await?;
    if opts.until == Until::CaughtUp && run.target.is_none() {
        run.target = Some(catalog::current_wal_lsn(&client).await?);
    }
    let mut repl = ReplicationClient::connect(opts.conninfo.config()).await?;
    let ident = repl.identify_system().await?;
    let start = plan_start(store, &client, &opts.slot, &server, &ident).await?;
    let (source, mut created) = preflight(&mut client, run, server, start != Start::Resume).await?;
    let mut assembler = Assembler::from_catalog(store.catalog());
    assembler.set_publication(&opts.publication);
    if !source.all_tables {
        assembler.set_published(Some(source.tables.iter().copied().collect::<HashSet<u32>>()));
    }
    if let Start::Begin { leftover } = start {
        let history = History {
            client: &mut client,
            repl: &mut repl,
            assembler: &mut assembler,
            source: &source,
            ident: &ident,
        };
        if let Err(e) = history.begin(store, run, leftover, &mut created).await {
            take_back(run, &created).await;
            return Err(e);
        }
    }
    Ok(Connected {
        client,
        repl,
        assembler,
        scratch: store.scratch_dir()?,
    })
}

/// Decides between a new history and a resumed one, refusing a slot that
/// cannot continue the store's history, before anything is created.
async fn plan_start(
    store: &Store,
    client: &Client,
    slot_name: &str,
    server: &ServerInfo,
    ident: &SystemIdentity,
) -> Result<Start> {
    let slot = catalog::slot(client, slot_name).await?;
    let Some(w) = store.watermark() else {
        return match slot {
            None => {
                catalog::check_free_slot(client).await?;
                Ok(Start::Begin { leftover: false })
            }
            Some(slot) if is_first_run_slot(store.source_info()?.as_ref(), slot_name, &slot, server, ident) => {
                Ok(Start::Begin { leftover: true })
            }
            Some(_) => Err(CaptureError::SlotWithoutHistory {
                slot: slot_name.to_owned(),
            }),
        };
    };
    check_same_source(store, server, ident)?;
    let missing = || CaptureError::SlotMissing {
        slot: slot_name.to_owned(),
        commit_time: w.commit_time,
        commit_lsn: w.commit_lsn,
    };
    let slot = match slot {
        // The store's write lock is held, so an active slot is most likely
        // this store's own previous run, killed a moment ago. It can also
        // be dropped while we wait, which is then what to report.
        Some(slot) if slot.active => released_slot(client, slot_name).await?.ok_or_else(missing)?,
        Some(slot) => slot,
        None => return Err(missing()),
    };
    check_resumed_slot(slot_name, &slot, store.scanned_through())?;
    Ok(Start::Resume)
}

/// The slot once no server process streams from it, or as it is after
/// [`SLOT_RELEASE_WAIT`] if one still does; `None` if it was dropped.
async fn released_slot(client: &Client, name: &str) -> Result<Option<SlotInfo>> {
    let waited = Instant::now();
    let mut said = false;
    loop {
        let slot = catalog::slot(client, name).await?;
        if !slot.as_ref().is_some_and(|s| s.active) || waited.elapsed() > SLOT_RELEASE_WAIT {
            return Ok(slot);
        }
        if !said {
            tracing::info!(slot = name, "waiting for the server to release the slot");
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `slot` is the one an empty store's own first run created (and
/// was cut short): the store's record names it on this database, and it
/// was never acknowledged past where it was created. Any other slot is
/// not asof's to drop.
fn is_first_run_slot(
    record: Option<&SourceInfo>,
    name: &str,
    slot: &SlotInfo,
    server: &ServerInfo,
    ident: &SystemIdentity,
) -> bool {
    record.is_some_and(|r| {
        r.slot == name
            && r.system_id == ident.system_id
            && r.database == server.database
            && slot.plugin.as_deref() == Some("pgoutput")
            // Zero: killed between creating the slot and recording where.
            && (r.slot_consistent_point == Lsn::ZERO || slot.confirmed_flush == Some(r.slot_consistent_point))
    })
}

/// In one transaction: the publication (created when missing) and its
/// tables' keys, the privilege to copy them, and the DDL capture. A check
/// that refuses rolls the publication and triggers back. Returns what
/// the transaction created. A table without a usable key refuses a new
/// history (nothing is stored yet, the advice says what to fix); a resumed
/// history goes on and the stream records such a table as uncaptured.
async fn preflight<F: FnMut(CaptureEvent) + Send>(
    client: &mut Client,
    run: &mut Run<'_, F>,
    server: ServerInfo,
    begin: bool,
) -> Result<(Source, Vec<Installed>)> {
    let opts = run.opts;
    let mut created = Vec::new();
    let txn = client.transaction().await?;
    ddl::drop_stale(&txn, &opts.publication, server.superuser).await?;
    if catalog::ensure_publication(&txn, &opts.publication, &opts.tables).await? {
        created.push(Installed::Publication(opts.publication.clone()));
    }
    let published = catalog::published_tables(&txn, &opts.publication).await?;
    for (oid, name) in &published {
        let schema = catalog::describe_table(&txn, *oid).await?;
        match catalog::check_identity(&schema) {
            Err(CaptureError::NoReplicaIdentity { table, reason }) if !begin => {
                run.notice(format!("table {table} is not captured: {reason}"));
            }
            checked => checked?,
        }
        if begin && opts.snapshot {
            catalog::check_select(&txn, *oid, name).await?;
        }
    }
    let flags = txn
        .query_one(
            "SELECT puballtables, pubviaroot FROM pg_publication WHERE pubname = $1",
            &[&opts.publication],
        )
        .await?;
    let (all_tables, via_root): (bool, bool) = (flags.get(0), flags.get(1));
    // Through the root, what Postgres does not send is said with each
    // root's coverage; without it the root is not a table of its own.
    if !via_root {
        let oids: Vec<u32> = published.iter().map(|(oid, _)| *oid).collect();
        for root in catalog::partition_roots(&txn, &oids).await? {
            run.notice(format!(
                "partitioned table {root} is captured as its partitions, not as one table: the publication does \
                 not publish via the root (publish_via_partition_root)"
            ));
        }
    }
    if all_tables {
        let unlogged = catalog::unlogged_tables(&txn).await?;
        if !unlogged.is_empty() {
            let names: Vec<String> = unlogged.iter().map(ToString::to_string).collect();
            run.notice(format!(
                "unlogged tables are not captured (their changes are not written to the WAL): {}",
                names.join(", ")
            ));
        }
    }
    let had_ddl = ddl::is_installed(&txn, &opts.publication).await?;
    let ddl_on = ddl::install(&txn, &opts.publication, server.superuser).await?;
    if ddl_on && !had_ddl {
        created.extend(uninstall::ddl_objects(&opts.publication));
    }
    txn.commit().await?;
    if !ddl_on {
        run.notice(
            "DDL capture is off (creating event triggers needs a superuser): column changes are recorded at the \
             table's next row change, and DDL-only transactions, ADD COLUMN defaults for existing rows and \
             rewriting ALTERs are not captured exactly"
                .into(),
        );
    }
    let source = Source {
        server,
        tables: published.into_iter().map(|(oid, _)| oid).collect(),
        all_tables,
    };
    Ok((source, created))
}

/// Removes what a failed start created (newest first), on a connection of
/// its own since the failure may have broken the others. A removal that
/// fails is reported, with the command that finishes it.
async fn take_back<F: FnMut(CaptureEvent) + Send>(run: &mut Run<'_, F>, created: &[Installed]) {
    if created.is_empty() {
        return;
    }
    let newest_first: Vec<Installed> = created.iter().rev().cloned().collect();
    let listed = newest_first
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let outcome = match sql::connect(&run.opts.conninfo).await {
        Ok(client) => uninstall::remove(&client, &newest_first).await.map_err(|e| chain(&e)),
        Err(e) => Err(chain(&e)),
    };
    match outcome {
        Ok(()) => run.notice(format!("the start failed; removed what it created: {listed}")),
        Err(why) => run.notice(format!(
            "the start failed and could not remove {listed} ({why}); `asof uninstall` removes them"
        )),
    }
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
    /// which source the store belongs to. The slot, once created, is added
    /// to `created`.
    async fn begin<F: FnMut(CaptureEvent) + Send>(
        self,
        store: &mut Store,
        run: &mut Run<'_, F>,
        leftover: bool,
        created: &mut Vec<Installed>,
    ) -> Result<()> {
        let opts = run.opts;
        if leftover {
            drop_leftover_slot(self.client, self.repl, &opts.slot).await?;
            run.notice(format!(
                "dropped replication slot {}, left by this store's unfinished first run",
                opts.slot
            ));
        }
        let mut info = SourceInfo {
            system_id: self.ident.system_id.clone(),
            database: self.source.server.database.clone(),
            slot: opts.slot.clone(),
            publication: opts.publication.clone(),
            slot_consistent_point: Lsn::ZERO,
            conninfo_redacted: opts.conninfo.to_string(),
        };
        // Before the slot exists, so a run killed after creating it is
        // recognised by the next one (see `is_first_run_slot`).
        store.set_source_info(&info)?;
        let tables = &self.source.tables;
        for attempt in 1..=COPY_ATTEMPTS {
            let base_time = catalog::server_clock(self.client).await?;
            let slot = self
                .repl
                .create_logical_slot(&opts.slot, "pgoutput", SlotSnapshot::Export)
                .await?;
            created.push(Installed::Slot(opts.slot.clone()));
            let cp = slot.consistent_point;
            info.slot_consistent_point = cp;
            store.set_source_info(&info)?;
            // Every streamed commit is at or above the consistent point.
            let base = cp.prev();
            run.notice(format!("created replication slot {} at {cp}", opts.slot));
            if !opts.snapshot {
                let commit = snapshot::base_commit(base, cp, base_time);
                snapshot::record_shapes(self.client, store, self.assembler, &opts.publication, tables, commit).await?;
                break;
            }
            let name = slot.snapshot_name.clone().unwrap_or_default();
            let plan = CopyPlan {
                conninfo: &opts.conninfo,
                connections: opts.copy_connections,
                snapshot_name: &name,
                publication: &opts.publication,
                tables,
                base_lsn: base,
                end_lsn: cp,
                base_time,
                restart_when_stale: attempt < COPY_ATTEMPTS,
            };
            let on_event = &mut run.on_event;
            // A copy cut short leaves chunks the store discards when it is
            // next opened (they are marked in flight).
            let copied = snapshot::copy_tables(self.client, store, self.assembler, &plan, |p| {
                on_event(CaptureEvent::Copy(p.clone()))
            })
            .await?;
            match copied {
                Copied::Rows(rows) => {
                    run.summary.copied_rows = rows;
                    break;
                }
                // DDL committed between the slot's snapshot and the copy's
                // locks: a newer snapshot sees the table as it is now.
                Copied::Stale { table, reason } => {
                    run.notice(format!(
                        "table {table} changed before the initial copy could lock it ({reason}); beginning again \
                         with a new slot"
                    ));
                    self.repl.drop_slot(&opts.slot, false).await?;
                    created.retain(|i| *i != Installed::Slot(opts.slot.clone()));
                }
            }
        }
        for notice in self.assembler.take_notices() {
            run.notice(notice);
        }
        Ok(())
    }
}

/// Drops the slot a killed first run of this store left, once the server
/// noticed that run is gone.
async fn drop_leftover_slot(client: &Client, repl: &mut ReplicationClient, name: &str) -> Result<()> {
    if released_slot(client, name).await?.is_some_and(|s| s.active) {
        return Err(CaptureError::SlotInUse { slot: name.to_owned() });
    }
    repl.drop_slot(name, false).await?;
    Ok(())
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

    fn record() -> SourceInfo {
        SourceInfo {
            system_id: "sys".into(),
            database: "db".into(),
            slot: "s".into(),
            publication: "p".into(),
            slot_consistent_point: Lsn(100),
            conninfo_redacted: String::new(),
        }
    }

    fn here() -> (ServerInfo, SystemIdentity) {
        let server = ServerInfo {
            version_num: 160_000,
            superuser: true,
            database: "db".into(),
        };
        let ident = SystemIdentity {
            system_id: "sys".into(),
            timeline: 1,
            xlog_pos: Lsn(200),
            dbname: Some("db".into()),
        };
        (server, ident)
    }

    #[test]
    fn only_the_store_s_own_unfinished_slot_is_a_leftover() {
        let (server, ident) = here();
        let leftover = |r: Option<&SourceInfo>, slot: &SlotInfo| is_first_run_slot(r, "s", slot, &server, &ident);
        assert!(leftover(Some(&record()), &healthy()));
        let killed_before_recording = SourceInfo {
            slot_consistent_point: Lsn::ZERO,
            ..record()
        };
        assert!(leftover(Some(&killed_before_recording), &healthy()));
        assert!(!leftover(None, &healthy()), "no record: another tool's slot");
        let moved = SlotInfo {
            confirmed_flush: Some(Lsn(150)),
            ..healthy()
        };
        assert!(!leftover(Some(&record()), &moved), "acknowledged since: not ours");
        let other_plugin = SlotInfo {
            plugin: Some("test_decoding".into()),
            ..healthy()
        };
        assert!(!leftover(Some(&record()), &other_plugin));
        let other_slot = SourceInfo {
            slot: "t".into(),
            ..record()
        };
        assert!(!leftover(Some(&other_slot), &healthy()));
        let other_system = SourceInfo {
            system_id: "other".into(),
            ..record()
        };
        assert!(!leftover(Some(&other_system), &healthy()));
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
