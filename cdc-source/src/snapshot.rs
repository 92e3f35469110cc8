//! The initial copy: every published table, read in the slot's exported
//! snapshot and stored as the base state at the slot's consistent point.
//!
//! Why the copy and the stream meet exactly: `CREATE_REPLICATION_SLOT ...
//! (SNAPSHOT 'export')` returns a consistent point C and a snapshot that
//! sees exactly the transactions committed before C. The copy runs in a
//! REPEATABLE READ transaction that imports that snapshot, so it reads the
//! database as of C. Streaming starts at C, and the slot decodes exactly
//! the transactions that commit after C. Nothing is seen twice and nothing
//! is missed. The copy is stored as one transaction just below C (every
//! streamed commit LSN is at or above C), and the store's watermark end LSN
//! is C, so the first acknowledgement is C.
//!
//! DDL committed after the snapshot is in the stream at its own position;
//! the copy locks its tables and reads each by OID, as the snapshot shows
//! it ([`crate::copy_source`]), so such DDL neither stops the copy nor
//! changes what it reads. Generated columns are left out, as pgoutput
//! leaves them out, and a notice says so.

use std::sync::Arc;

use changelog::{
    BulkRows, ChangeRecord, CommitInfo, CommitTime, Coverage, Lsn, SchemaChange, SpillTxn, Store, TableId, TableSchema,
    Transaction, Xid,
};
use tokio_postgres::Client;

use crate::assemble::Assembler;
use crate::bulk_copy::{Builder, Built};
use crate::catalog;
use crate::conninfo::ConnInfo;
use crate::copy_readers::{Parsed, Piece, Readers, Shape};
use crate::copy_source::{self, CopySource};
use crate::error::{CaptureError, Result};

/// A piece of a table read on one connection: large enough that its
/// statement and its partial last block are small beside it (8 KiB pages).
const MIN_PIECE_PAGES: u64 = 2048;

/// Progress of the copy, reported as rows arrive.
#[derive(Clone, Debug, Default)]
pub struct CopyProgress {
    /// The first table not yet copied in full (others after it may be
    /// being read too).
    pub table: String,
    /// Rows copied so far (all tables).
    pub rows: u64,
    /// Rows of this table copied so far.
    pub table_rows: u64,
    /// The planner's estimate of this table's rows, when it has one.
    pub table_estimate: Option<u64>,
    /// Bytes of COPY data read so far.
    pub bytes: u64,
    /// Tables done.
    pub tables_done: usize,
    /// Tables in all.
    pub tables_total: usize,
}

/// What to copy and where it goes in the log.
#[derive(Clone, Debug)]
pub struct CopyPlan<'a> {
    /// The source, for the copy's other connections.
    pub conninfo: &'a ConnInfo,
    /// Connections reading at once (each imports the snapshot).
    pub connections: usize,
    /// The exported snapshot to read in.
    pub snapshot_name: &'a str,
    /// The publication: each table is read as it publishes it.
    pub publication: &'a str,
    /// Tables (OIDs) to copy.
    pub tables: &'a [u32],
    /// Commit LSN of the stored base transaction.
    pub base_lsn: Lsn,
    /// Its end LSN (the slot's consistent point).
    pub end_lsn: Lsn,
    /// Its commit time: the server's clock just before the slot was
    /// created, so no commit after the consistent point is earlier.
    pub base_time: CommitTime,
    /// Give up, storing nothing, when a table cannot be read as of the
    /// snapshot (DDL rewrote or dropped it before the copy locked it), so
    /// that the caller can begin again with a newer snapshot.
    pub restart_when_stale: bool,
}

/// What a copy did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Copied {
    /// Stored every table; this many rows.
    Rows(u64),
    /// Stored nothing: this table could not be read as of the snapshot.
    Stale {
        /// The table.
        table: changelog::TableName,
        /// Why.
        reason: String,
    },
}

/// Copies the plan's tables in its snapshot into the store as one
/// transaction.
///
/// This connection's transaction imports the snapshot, locks the tables
/// and describes them; the rows are read by [`CopyPlan::connections`] readers
/// ([`crate::copy_readers`]), a large table in ranges of its pages, and
/// stored as they arrive: one table's rows in several blocks and several
/// tables at once. Every table's shape and read start come first in the
/// log, then its rows, then (for a table loaded in bulk) one entry for
/// them all.
pub async fn copy_tables(
    client: &mut Client,
    store: &mut Store,
    assembler: &mut Assembler,
    plan: &CopyPlan<'_>,
    mut progress: impl FnMut(&CopyProgress),
) -> Result<Copied> {
    let CopyPlan {
        conninfo,
        connections,
        snapshot_name,
        publication,
        tables,
        base_lsn,
        end_lsn,
        base_time,
        restart_when_stale,
    } = *plan;
    let txn = client.transaction().await?;
    txn.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    txn.batch_execute(&format!(
        "SET TRANSACTION SNAPSHOT {}",
        catalog::quote_literal(snapshot_name)
    ))
    .await?;
    let commit = base_commit(base_lsn, end_lsn, base_time);
    // No DDL commits on a locked table until the copy ends; DDL committed
    // before the lock is handled by `copy_source`.
    copy_source::lock_tables(&txn, tables).await?;
    let scopes = catalog::publication_scopes(&txn, publication).await?;
    let mut sources = Vec::with_capacity(tables.len());
    for &oid in tables {
        let described = catalog::describe_columns(&txn, oid, scopes.get(&oid)).await?;
        catalog::check_identity(&described.schema)?;
        let filter = described.coverage.row_filter.as_deref();
        let source = copy_source::copy_source(&txn, oid, &described.numbers, filter).await?;
        if let (CopySource::Unreadable(reason), true) = (&source, restart_when_stale) {
            return Ok(Copied::Stale {
                table: described.schema.name,
                reason: reason.clone(),
            });
        }
        sources.push((oid, described, source));
    }
    // Every table's shape and read start, before any row.
    let mut sp = store.begin_spill(base_lsn)?;
    let mut head: Vec<ChangeRecord> = Vec::with_capacity(2 * tables.len());
    let mut copied: Vec<Table> = Vec::with_capacity(tables.len());
    let mut pieces: Vec<Piece> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (oid, described, source) in sources {
        let schema = described.schema;
        note_coverage(assembler, &schema.name, &described.coverage);
        let readable = match source {
            CopySource::Readable(r) => r,
            CopySource::Unreadable(reason) => {
                let table = assembler.register_uncaptured(schema.clone(), reason.clone());
                head.push(ChangeRecord::Schema {
                    table,
                    change: SchemaChange::Uncaptured { schema, reason },
                });
                continue;
            }
        };
        catalog::check_select(&txn, oid, &schema.name).await?;
        let width = schema.columns.len();
        let (name, coverage) = (schema.name.clone(), described.coverage);
        let id = assembler.register(schema.clone(), coverage.clone());
        let bulk = BulkRows::accepts(&schema);
        head.push(define(id, schema, coverage));
        head.push(ChangeRecord::ReadStart { table: id });
        let shape = match bulk {
            true => Shape::Bulk { width },
            false => Shape::Records { table: id, width },
        };
        let ranges = readable.ranges((readable.pages / MIN_PIECE_PAGES).min(connections as u64));
        let index = copied.len();
        let estimate = catalog::estimated_rows(&txn, oid).await?;
        names.push(readable.name().to_owned());
        for range in &ranges {
            pieces.push(Piece {
                table: index,
                name: name.clone(),
                sql: readable.sql(*range),
                shape,
                estimate: estimate.map(|rows| readable.share_of(rows, *range)),
            });
        }
        copied.push(Table {
            name: name.to_string(),
            estimate,
            id,
            bulk,
            loader: None,
            pieces: ranges.len(),
            building: 0,
            rows: 0,
            done: false,
        });
    }
    store.spill(&mut sp, &head)?;
    for t in &mut copied {
        if t.bulk {
            t.loader = Some(Arc::new(store.bulk_rows(&sp, t.id)?));
        }
    }
    let mut p = CopyProgress {
        tables_total: tables.len(),
        ..CopyProgress::default()
    };
    let uncaptured = tables.len() - copied.len();
    report(&copied, uncaptured, &mut p, &mut progress);
    let wanted = connections.clamp(1, pieces.len().max(1));
    let (mut connected, mut refused) = (0usize, None::<CaptureError>);
    if !pieces.is_empty() {
        let mut readers = Readers::start(conninfo, snapshot_name, &names, pieces, wanted)?;
        let mut builder = Builder::start(wanted + 1)?;
        let here = readers.read_here(txn.client());
        tokio::pin!(here);
        let mut here_done = false;
        loop {
            tokio::select! {
                () = &mut here, if !here_done => here_done = true,
                parsed = readers.recv() => {
                    let Some(parsed) = parsed else { break };
                    let parsed = parsed?;
                    let rows = parsed.rows();
                    match parsed {
                        Parsed::Connected(Ok(())) => connected += 1,
                        Parsed::Connected(Err(e)) => {
                            refused.get_or_insert(e);
                        }
                        Parsed::Block { table, block, bytes } => {
                            let t = table_at(&mut copied, table)?;
                            t.rows += rows;
                            t.building += 1;
                            let loader = t.loader.clone().ok_or_else(|| mixed_up("a block of a table not loaded in bulk"))?;
                            p.rows += rows;
                            p.bytes += bytes;
                            builder.send(loader, table, block).await?;
                        }
                        Parsed::Records { table, records, bytes } => {
                            table_at(&mut copied, table)?.rows += rows;
                            p.rows += rows;
                            p.bytes += bytes;
                            store.spill(&mut sp, &records)?;
                        }
                        Parsed::PieceDone { table, bytes } => {
                            let t = table_at(&mut copied, table)?;
                            t.pieces = t.pieces.saturating_sub(1);
                            p.bytes += bytes;
                        }
                    }
                }
                built = builder.recv() => land(store, &mut sp, &mut copied, &readers, built?)?,
            }
            end_loaded_tables(store, &mut sp, &mut copied)?;
            report(&copied, uncaptured, &mut p, &mut progress);
        }
        while builder.in_flight() > 0 {
            land(store, &mut sp, &mut copied, &readers, builder.recv().await?)?;
        }
        builder.finish();
        readers.join();
        end_loaded_tables(store, &mut sp, &mut copied)?;
    }
    if copied.iter().any(|t| !t.done) {
        return Err(mixed_up("the readers ended before every table was read"));
    }
    if let Some(e) = refused {
        assembler.note(format!(
            "the initial copy read on {} of {wanted} connections; the others could not begin: {}",
            connected + 1,
            crate::capture::chain(&e)
        ));
    }
    report(&copied, uncaptured, &mut p, &mut progress);
    store.finish_spill(sp, &commit, &[])?;
    txn.commit().await?;
    Ok(Copied::Rows(p.rows))
}

/// One table of the copy.
struct Table {
    name: String,
    estimate: Option<u64>,
    id: TableId,
    /// Whether it is loaded in bulk, and its loader once it is.
    bulk: bool,
    loader: Option<Arc<BulkRows>>,
    /// Pieces not yet read to their end.
    pieces: usize,
    /// Blocks being built.
    building: usize,
    rows: u64,
    /// Read and stored in full.
    done: bool,
}

fn table_at(copied: &mut [Table], index: usize) -> Result<&mut Table> {
    copied
        .get_mut(index)
        .ok_or_else(|| mixed_up("rows of an unknown table"))
}

/// The copy's own bookkeeping went wrong (never expected).
fn mixed_up(what: &str) -> CaptureError {
    CaptureError::CopyThread(std::io::Error::other(what.to_owned()))
}

/// Moves a built block's files into the store and its buffer back to the
/// readers.
fn land(store: &mut Store, sp: &mut SpillTxn, copied: &mut [Table], readers: &Readers, built: Built) -> Result<()> {
    let (table, files, block) = built;
    readers.give_back(block);
    store.ingest_rows(sp, files?)?;
    let t = table_at(copied, table)?;
    t.building = t.building.saturating_sub(1);
    Ok(())
}

/// Ends the bulk load of each table read in full whose blocks are all in
/// the store: its rows take their place in the log.
fn end_loaded_tables(store: &mut Store, sp: &mut SpillTxn, copied: &mut [Table]) -> Result<()> {
    for t in copied
        .iter_mut()
        .filter(|t| !t.done && t.pieces == 0 && t.building == 0)
    {
        if t.bulk {
            store.finish_bulk(sp, t.id)?;
        }
        t.done = true;
    }
    Ok(())
}

/// Reports progress on the first table not yet copied in full.
fn report(copied: &[Table], uncaptured: usize, p: &mut CopyProgress, progress: &mut impl FnMut(&CopyProgress)) {
    p.tables_done = uncaptured + copied.iter().filter(|t| t.done).count();
    if let Some(t) = copied.iter().find(|t| !t.done).or(copied.last()) {
        p.table.clone_from(&t.name);
        p.table_rows = t.rows;
        p.table_estimate = t.estimate;
    }
    progress(p);
}

/// Starts a history without copying rows: it begins empty at the slot, so
/// only the published tables' shapes are stored, as one transaction at the
/// same place an initial copy would be (`commit`, from [`base_commit`]).
pub async fn record_shapes(
    client: &Client,
    store: &mut Store,
    assembler: &mut Assembler,
    publication: &str,
    tables: &[u32],
    commit: CommitInfo,
) -> Result<()> {
    let scopes = catalog::publication_scopes(client, publication).await?;
    let mut records = Vec::with_capacity(tables.len());
    for &oid in tables {
        let described = catalog::describe_columns(client, oid, scopes.get(&oid)).await?;
        note_coverage(assembler, &described.schema.name, &described.coverage);
        let (schema, coverage) = (described.schema, described.coverage);
        records.push(define(
            assembler.register(schema.clone(), coverage.clone()),
            schema,
            coverage,
        ));
    }
    store.append(&[Transaction { commit, records }])?;
    Ok(())
}

/// Says what of a table is not captured.
fn note_coverage(assembler: &mut Assembler, table: &changelog::TableName, coverage: &Coverage) {
    if let Some(note) = crate::coverage::notice(table, coverage) {
        assembler.note(note);
    }
}

/// The base transaction: just below the consistent point, ending at it,
/// at a time no later than any commit the stream brings after it (a later
/// time would push theirs forward, and moments between out of history).
pub fn base_commit(base_lsn: Lsn, end_lsn: Lsn, base_time: CommitTime) -> CommitInfo {
    CommitInfo {
        commit_lsn: base_lsn,
        end_lsn,
        commit_time: base_time,
        xid: Xid(0),
    }
}

/// A table's first shape in the log.
fn define(table: TableId, schema: TableSchema, coverage: Coverage) -> ChangeRecord {
    ChangeRecord::Schema {
        table,
        change: SchemaChange::Define {
            schema,
            backfill: Vec::new(),
            coverage,
        },
    }
}
