//! The capture session: checks, slot and publication, initial copy, then
//! the replication stream into the store, acknowledging only what is
//! durable. [`capture`] reconnects with backoff after transient failures.
//!
//! Exactly-once, step by step:
//! 1. Each committed transaction is appended to the store in one atomic,
//!    synced batch (several transactions may share a batch).
//! 2. Only then does the writer report its end LSN as durable, and only
//!    such reports move the flush position sent to the server. So the
//!    slot's confirmed position never passes what the store holds.
//! 3. On restart the stream resumes at the store's watermark; the server
//!    re-sends transactions after the slot's confirmed position, and the
//!    store skips any at or below its watermark by commit LSN.
//! 4. When idle, the server's keepalive position is first recorded durably
//!    in the store and then acknowledged, so WAL does not pile up and a
//!    restart never sees a slot confirmed beyond the store.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use changelog::{
    ChangeRecord, CommitInfo, CommitTime, Lsn, SchemaChange, SourceInfo, Store, TableName, Transaction, Xid,
};
use tokio::sync::watch;

use crate::assemble::{Assembler, Fed};
use crate::catalog;
use crate::conninfo::ConnInfo;
use crate::ddl;
use crate::error::{CaptureError, Result};
use crate::pgoutput::Message;
use crate::replication::{ReplicationClient, ReplicationEvent, SlotSnapshot};
use crate::snapshot::{self, CopyProgress};
use crate::sql;
use crate::writer::{Writer, WriterCmd, WriterEvent};

/// A transaction with more records than this is written to the store in
/// chunks as it arrives instead of being held in memory.
pub const SPILL_RECORDS: usize = 100_000;
/// A batch handed to the writer while it is busy grows up to this many
/// records before the stream waits for the writer.
const MAX_BATCH_RECORDS: usize = 50_000;
/// How often a status update is sent when nothing else prompts one.
const STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// When to stop capturing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Run until shut down.
    Forever,
    /// Stop once everything committed before the capture started is durable.
    CaughtUp,
    /// Stop once everything committed at or before this LSN is durable.
    Lsn(Lsn),
}

/// What to capture and how.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// The source.
    pub conninfo: ConnInfo,
    /// Replication slot name.
    pub slot: String,
    /// Publication name.
    pub publication: String,
    /// Tables for a new publication (empty: all tables).
    pub tables: Vec<TableName>,
    /// Copy existing rows when starting a new history.
    pub snapshot: bool,
    /// When to stop.
    pub until: Until,
}

/// Something worth telling the user while capturing.
#[derive(Clone, Debug)]
pub enum CaptureEvent {
    /// A one-line notice (set-up decisions, limitations, reconnects).
    Notice(String),
    /// Progress of the initial copy.
    Copy(CopyProgress),
    /// Progress of the stream.
    Stream(StreamProgress),
}

/// Stream progress and lag.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamProgress {
    /// Row changes stored by this capture.
    pub records: u64,
    /// Transactions stored by this capture.
    pub txns: u64,
    /// Last durable commit.
    pub watermark: Option<changelog::Watermark>,
    /// Acknowledged position.
    pub confirmed: Lsn,
    /// The server's WAL end as last reported.
    pub server_wal_end: Lsn,
}

impl std::fmt::Display for CaptureSummary {
    /// `N transactions (M changes)`, plus the rows of an initial copy.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} transactions ({} changes)", self.txns, self.records)?;
        if self.copied_rows > 0 {
            write!(f, ", {} rows copied", self.copied_rows)?;
        }
        Ok(())
    }
}

impl StreamProgress {
    /// Bytes of WAL between the server's end and what is acknowledged.
    pub fn lag_bytes(&self) -> u64 {
        self.server_wal_end.0.saturating_sub(self.confirmed.0)
    }
}

/// How a capture ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct CaptureSummary {
    /// Transactions stored.
    pub txns: u64,
    /// Records stored.
    pub records: u64,
    /// Rows copied by the initial copy.
    pub copied_rows: u64,
    /// The last acknowledged position.
    pub confirmed: Lsn,
}

/// Captures until `until` is reached or `shutdown` turns true, reconnecting
/// after transient failures.
pub async fn capture(
    store: Store,
    opts: CaptureOptions,
    mut shutdown: watch::Receiver<bool>,
    mut on_event: impl FnMut(CaptureEvent) + Send,
) -> Result<CaptureSummary> {
    let mut store = Some(store);
    let mut summary = CaptureSummary::default();
    let mut target: Option<Lsn> = match opts.until {
        Until::Lsn(l) => Some(l),
        _ => None,
    };
    let mut backoff = Duration::from_millis(500);
    // Reconnecting makes sense once the source was reached; a source that
    // is unreachable from the start is a configuration error to report.
    let mut streamed_once = false;
    while let Some(s) = store.take() {
        let (s, result) = session(
            s,
            &opts,
            &mut target,
            &mut shutdown,
            &mut on_event,
            &mut summary,
            &mut streamed_once,
        )
        .await;
        store = s;
        match result {
            Ok(()) => return Ok(summary),
            Err(e) if streamed_once && e.is_transient() && !*shutdown.borrow() => {
                on_event(CaptureEvent::Notice(format!(
                    "connection lost ({}); reconnecting in {:?}",
                    chain(&e),
                    backoff
                )));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return Ok(summary),
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
    Err(CaptureError::Setup("the store was lost".into()))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

async fn session(
    mut store: Store,
    opts: &CaptureOptions,
    target: &mut Option<Lsn>,
    shutdown: &mut watch::Receiver<bool>,
    on_event: &mut (impl FnMut(CaptureEvent) + Send),
    summary: &mut CaptureSummary,
    streamed_once: &mut bool,
) -> (Option<Store>, Result<()>) {
    let prepared = prepare(&mut store, opts, target, on_event, summary).await;
    let (client, repl, assembler) = match prepared {
        Ok(p) => p,
        Err(e) => return (Some(store), Err(e)),
    };
    *streamed_once = true;
    let start = store.scanned_through();
    let writer = match Writer::spawn(store) {
        Ok(w) => w,
        // The OS refused a thread; the store was closed with the closure.
        Err(e) => {
            return (
                None,
                Err(CaptureError::Setup(format!(
                    "cannot start the store writer thread: {e}"
                ))),
            )
        }
    };
    let (store, result) = stream(
        writer, client, repl, assembler, start, opts, *target, shutdown, on_event, summary,
    )
    .await;
    (Some(store), result)
}

async fn prepare(
    store: &mut Store,
    opts: &CaptureOptions,
    target: &mut Option<Lsn>,
    on_event: &mut (impl FnMut(CaptureEvent) + Send),
    summary: &mut CaptureSummary,
) -> Result<(tokio_postgres::Client, ReplicationClient, Assembler)> {
    let mut client = sql::connect(&opts.conninfo).await?;
    let server = catalog::check_server(&client).await?;
    if opts.until == Until::CaughtUp && target.is_none() {
        *target = Some(catalog::current_wal_lsn(&client).await?);
    }
    catalog::ensure_publication(&client, &opts.publication, &opts.tables).await?;
    let published = catalog::published_tables(&client, &opts.publication).await?;
    for (oid, _) in &published {
        let schema = catalog::describe_table(&client, *oid).await?;
        catalog::check_identity(&schema)?;
    }
    let all_tables: bool = client
        .query_one(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[&opts.publication],
        )
        .await?
        .get(0);
    if !ddl::install(&client, &opts.publication, server.superuser).await? {
        on_event(CaptureEvent::Notice(
            "DDL capture is off (creating event triggers needs a superuser): column changes are recorded at the \
             table's next row change, and DDL-only transactions, ADD COLUMN defaults for existing rows and \
             rewriting ALTERs are not captured exactly"
                .into(),
        ));
    }
    let mut repl = ReplicationClient::connect(opts.conninfo.config()).await?;
    let ident = repl.identify_system().await?;
    let slot = catalog::slot(&client, &opts.slot).await?;
    let mut assembler = Assembler::from_catalog(store.catalog());
    if !all_tables {
        assembler.set_published(Some(published.iter().map(|(o, _)| *o).collect::<HashSet<u32>>()));
    }
    if let Some(src) = store.source_info()? {
        if src.system_id != ident.system_id || src.database != server.database {
            return Err(CaptureError::WrongSource(format!(
                "this store holds the history of database {} on system {}, not {} on {}",
                src.database, src.system_id, server.database, ident.system_id
            )));
        }
    }
    match (store.watermark(), slot) {
        (None, None) => {
            catalog::check_free_slot(&client).await?;
            let created = repl
                .create_logical_slot(&opts.slot, "pgoutput", SlotSnapshot::Export)
                .await?;
            let cp = created.consistent_point;
            let base = Lsn(cp.0.saturating_sub(1));
            on_event(CaptureEvent::Notice(format!(
                "created replication slot {} at {cp}",
                opts.slot
            )));
            let oids: Vec<u32> = published.iter().map(|(o, _)| *o).collect();
            if opts.snapshot {
                let name = created.snapshot_name.clone().unwrap_or_default();
                let plan = snapshot::CopyPlan {
                    snapshot_name: &name,
                    tables: &oids,
                    base_lsn: base,
                    end_lsn: cp,
                };
                summary.copied_rows = snapshot::copy_tables(&mut client, store, &mut assembler, &plan, |p| {
                    on_event(CaptureEvent::Copy(p.clone()))
                })
                .await?;
            } else {
                // History starts empty at the slot: record the shapes only.
                let mut records = Vec::new();
                for oid in oids {
                    let schema = catalog::describe_table(&client, oid).await?;
                    let table = assembler.register(schema.clone());
                    records.push(ChangeRecord::Schema {
                        table,
                        change: SchemaChange::Define {
                            schema,
                            backfill: Vec::new(),
                        },
                    });
                }
                let commit = CommitInfo {
                    commit_lsn: base,
                    end_lsn: cp,
                    commit_time: CommitTime::now(),
                    xid: Xid(0),
                };
                store.append(&[Transaction { commit, records }])?;
            }
            store.set_source_info(&SourceInfo {
                system_id: ident.system_id.clone(),
                database: server.database.clone(),
                slot: opts.slot.clone(),
                publication: opts.publication.clone(),
                slot_consistent_point: cp,
                conninfo_redacted: opts.conninfo.to_string(),
            })?;
        }
        (None, Some(_)) => {
            return Err(CaptureError::Setup(format!(
                "replication slot {s} already exists but this store is empty, so there is no consistent starting \
                 point; drop the slot (SELECT pg_drop_replication_slot('{s}')) or choose another with --slot",
                s = opts.slot
            )))
        }
        (Some(w), None) => {
            return Err(CaptureError::Gap(format!(
                "replication slot {} no longer exists (was it dropped?); changes after {} (lsn {}) may be lost, \
                 so this history cannot continue. Start a new store to begin a new history",
                opts.slot, w.commit_time, w.commit_lsn
            )))
        }
        (Some(_), Some(slot)) => {
            if slot.plugin.as_deref() != Some("pgoutput") {
                return Err(CaptureError::Setup(format!(
                    "replication slot {} does not use pgoutput",
                    opts.slot
                )));
            }
            if slot.wal_status.as_deref() == Some("lost") {
                return Err(CaptureError::Gap(format!(
                    "replication slot {} was invalidated (its WAL was removed); history has a gap and cannot continue",
                    opts.slot
                )));
            }
            if slot.confirmed_flush.is_some_and(|c| c > store.scanned_through()) {
                return Err(CaptureError::Gap(format!(
                    "replication slot {} was confirmed up to {} but this store only holds up to {}: it was \
                     recreated or used by another consumer, and the changes in between are gone",
                    opts.slot,
                    slot.confirmed_flush.unwrap_or_default(),
                    store.scanned_through()
                )));
            }
            if slot.active {
                return Err(CaptureError::Setup(format!(
                    "replication slot {} is in use by another connection",
                    opts.slot
                )));
            }
        }
    }
    Ok((client, repl, assembler))
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    mut writer: Writer,
    client: tokio_postgres::Client,
    repl: ReplicationClient,
    mut assembler: Assembler,
    start: Lsn,
    opts: &CaptureOptions,
    target: Option<Lsn>,
    shutdown: &mut watch::Receiver<bool>,
    on_event: &mut (impl FnMut(CaptureEvent) + Send),
    summary: &mut CaptureSummary,
) -> (Store, Result<()>) {
    let result = run_stream(
        &mut writer,
        &client,
        repl,
        &mut assembler,
        start,
        opts,
        target,
        shutdown,
        on_event,
        summary,
    )
    .await;
    let store = writer.join();
    (store, result)
}

#[allow(clippy::too_many_arguments)]
async fn run_stream(
    writer: &mut Writer,
    client: &tokio_postgres::Client,
    repl: ReplicationClient,
    assembler: &mut Assembler,
    start: Lsn,
    opts: &CaptureOptions,
    target: Option<Lsn>,
    shutdown: &mut watch::Receiver<bool>,
    on_event: &mut (impl FnMut(CaptureEvent) + Send),
    summary: &mut CaptureSummary,
) -> Result<()> {
    let pubs = opts.publication.clone();
    let options = [
        ("proto_version", "1"),
        ("publication_names", pubs.as_str()),
        ("messages", "true"),
    ];
    let mut stream = repl.start_logical(&opts.slot, start, &options).await?;
    let mut progress = StreamProgress {
        confirmed: start,
        ..StreamProgress::default()
    };
    let mut batch: Vec<Transaction> = Vec::new();
    let mut batch_records = 0usize;
    let mut in_flight = 0usize;
    let mut spilling = false;
    let mut stopping = *shutdown.borrow();
    // With a stop LSN, a transaction committing past it is not stored.
    let stop_lsn = match opts.until {
        Until::Lsn(l) => Some(l),
        _ => None,
    };
    let mut past_stop = false;
    let mut last_report = Instant::now();
    let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        // Stop when asked (between transactions) or when the target is durable.
        let idle = !assembler.in_transaction() && batch.is_empty() && in_flight == 0;
        let reached = past_stop || target.is_some_and(|t| progress.confirmed >= t);
        if idle && (stopping || reached) {
            stream
                .send_status(progress.confirmed, progress.confirmed, progress.confirmed, false)
                .await?;
            summary.confirmed = progress.confirmed;
            let _ = stream.finish().await;
            return Ok(());
        }
        tokio::select! {
            biased;
            ev = writer.rx.recv() => {
                match ev {
                    Some(WriterEvent::Durable { lsn, records, txns }) => {
                        in_flight = in_flight.saturating_sub(1);
                        summary.records += records;
                        summary.txns += txns;
                        progress.records += records;
                        progress.txns += txns;
                        if lsn > progress.confirmed {
                            progress.confirmed = lsn;
                            // The store is durable up to `lsn`: acknowledge it.
                            stream.send_status(lsn, lsn, lsn, false).await?;
                        }
                    }
                    Some(WriterEvent::Failed(e)) => return Err(e.into()),
                    None => return Err(CaptureError::Setup("the store writer stopped".into())),
                }
            }
            changed = shutdown.changed(), if !stopping => {
                if changed.is_err() || *shutdown.borrow() {
                    stopping = true;
                }
            }
            _ = status_tick.tick() => {
                stream.send_status(progress.confirmed, progress.confirmed, progress.confirmed, false).await?;
            }
            ev = stream.next_event() => {
                let Some(ev) = ev? else {
                    return Err(CaptureError::Replication(crate::replication::ReplicationError::Closed));
                };
                match ev {
                    ReplicationEvent::XLogData { wal_start, wal_end, data, .. } => {
                        progress.server_wal_end = progress.server_wal_end.max(wal_end);
                        let msg = Message::parse(&data).map_err(|e| CaptureError::Protocol { lsn: wal_start, message: e.to_string() })?;
                        if let Message::Relation(r) = &msg {
                            for (oid, typmod) in assembler.unknown_types(r) {
                                let name = catalog::type_name(client, oid, typmod).await?;
                                assembler.type_names.insert((oid, typmod), name);
                            }
                        }
                        match assembler.feed(msg, wal_start)? {
                            Fed::Committed(txn) if stop_lsn.is_some_and(|l| txn.commit.commit_lsn > l) => {
                                if spilling {
                                    // Dropping the writer's open spill removes it.
                                    spilling = false;
                                }
                                past_stop = true;
                            }
                            Fed::Committed(txn) => {
                                if spilling {
                                    spilling = false;
                                    writer.tx.send(WriterCmd::SpillFinish(txn.commit, txn.records)).await.map_err(|_| writer_gone())?;
                                    in_flight += 1;
                                } else {
                                    batch_records += txn.records.len();
                                    batch.push(txn);
                                }
                            }
                            Fed::Nothing => {
                                if let Some(open) = assembler.open_mut() {
                                    if open.records.len() >= SPILL_RECORDS {
                                        if !spilling {
                                            // Keep the writer's order: earlier transactions first.
                                            if !batch.is_empty() {
                                                dispatch(writer, &mut batch, &mut batch_records, &mut in_flight).await?;
                                            }
                                            writer.tx.send(WriterCmd::SpillBegin(open.final_lsn)).await.map_err(|_| writer_gone())?;
                                            spilling = true;
                                        }
                                        open.spilled += open.records.len() as u64;
                                        let chunk = std::mem::take(&mut open.records);
                                        writer.tx.send(WriterCmd::SpillChunk(chunk)).await.map_err(|_| writer_gone())?;
                                    }
                                }
                            }
                        }
                    }
                    ReplicationEvent::Keepalive { wal_end, reply_requested, .. } => {
                        progress.server_wal_end = progress.server_wal_end.max(wal_end);
                        let idle = !assembler.in_transaction() && batch.is_empty() && in_flight == 0;
                        if idle && wal_end > progress.confirmed {
                            // Nothing captured lies before wal_end: record that, then acknowledge.
                            writer.tx.send(WriterCmd::NoteScanned(wal_end)).await.map_err(|_| writer_gone())?;
                            in_flight += 1;
                        } else if reply_requested {
                            stream.send_status(progress.confirmed, progress.confirmed, progress.confirmed, false).await?;
                        }
                    }
                }
            }
        }
        // Group commit: hand the batch over when the writer is idle, or when
        // it has grown large (then wait for room in the writer's queue).
        if !batch.is_empty() && (in_flight == 0 || batch_records >= MAX_BATCH_RECORDS) {
            dispatch(writer, &mut batch, &mut batch_records, &mut in_flight).await?;
        }
        if last_report.elapsed() >= Duration::from_millis(500) {
            last_report = Instant::now();
            on_event(CaptureEvent::Stream(progress));
        }
    }
}

/// Hands the collected transactions to the writer as one batch.
async fn dispatch(
    writer: &Writer,
    batch: &mut Vec<Transaction>,
    records: &mut usize,
    in_flight: &mut usize,
) -> Result<()> {
    writer
        .tx
        .send(WriterCmd::Append(std::mem::take(batch)))
        .await
        .map_err(|_| writer_gone())?;
    *records = 0;
    *in_flight += 1;
    Ok(())
}

fn writer_gone() -> CaptureError {
    CaptureError::Setup("the store writer stopped".into())
}
