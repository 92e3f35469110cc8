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

use changelog::{
    BulkRows, ChangeRecord, CommitInfo, CommitTime, Coverage, Lsn, RowImage, SchemaChange, Store, TableId, TableSchema,
    Transaction, Xid,
};
use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::Client;

use crate::assemble::Assembler;
use crate::bulk_copy::BulkCopy;
use crate::catalog;
use crate::copy_source::{self, CopySource};
use crate::error::{CaptureError, CopyProblem, Result};
use crate::text_formats::parse_copy_line;

/// Rows per chunk written to the store while copying.
const CHUNK_ROWS: usize = 20_000;

/// Progress of the copy, reported after each chunk and table.
#[derive(Clone, Debug, Default)]
pub struct CopyProgress {
    /// Table being copied.
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
pub async fn copy_tables(
    client: &mut Client,
    store: &mut Store,
    assembler: &mut Assembler,
    plan: &CopyPlan<'_>,
    mut progress: impl FnMut(&CopyProgress),
) -> Result<Copied> {
    let CopyPlan {
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
    let mut chunk: Vec<ChangeRecord> = Vec::with_capacity(CHUNK_ROWS + 2);
    let mut p = CopyProgress {
        tables_total: tables.len(),
        ..CopyProgress::default()
    };
    let mut values = Vec::new();
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
    let mut sp = store.begin_spill(base_lsn)?;
    for (oid, described, source) in sources {
        let schema = described.schema;
        p.table = schema.name.to_string();
        note_coverage(assembler, &schema.name, &described.coverage);
        let sql = match source {
            CopySource::Readable { sql } => sql,
            CopySource::Unreadable(reason) => {
                let table = assembler.register_uncaptured(schema.clone(), reason.clone());
                chunk.push(ChangeRecord::Schema {
                    table,
                    change: SchemaChange::Uncaptured { schema, reason },
                });
                p.tables_done += 1;
                progress(&p);
                continue;
            }
        };
        catalog::check_select(&txn, oid, &schema.name).await?;
        p.table_rows = 0;
        p.table_estimate = catalog::estimated_rows(&txn, oid).await?;
        progress(&p);
        let width = schema.columns.len();
        let name = schema.name.clone();
        let coverage = described.coverage;
        let table = assembler.register(schema.clone(), coverage.clone());
        let bulk = BulkRows::accepts(&schema);
        chunk.push(define(table, schema, coverage));
        chunk.push(ChangeRecord::ReadStart { table });
        // A table keyed by a unique key is loaded in bulk; its shape and
        // read start must be in the transaction first.
        let mut bulk = match bulk {
            true => {
                store.spill(&mut sp, &chunk)?;
                chunk.clear();
                Some(BulkCopy::start(store, &sp, table)?)
            }
            false => None,
        };
        let bad = |problem| CaptureError::CopyData {
            table: name.clone(),
            problem,
        };
        let stream = txn.copy_out(&sql).await?;
        pin_mut!(stream);
        let mut carry: Vec<u8> = Vec::new();
        while let Some(buf) = stream.try_next().await? {
            p.bytes += buf.len() as u64;
            // COPY data arrives in chunks that need not end on a row.
            let mut data: &[u8] = &buf;
            if !carry.is_empty() {
                match data.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        carry.extend_from_slice(data.get(..i).unwrap_or_default());
                        match &mut bulk {
                            Some(b) => b.push_line(&carry),
                            None => push_row(&carry, width, table, &mut values, &mut chunk),
                        }
                        .map_err(bad)?;
                        p.rows += 1;
                        p.table_rows += 1;
                        carry.clear();
                        data = data.get(i + 1..).unwrap_or_default();
                    }
                    None => {
                        carry.extend_from_slice(data);
                        continue;
                    }
                }
            }
            while let Some(i) = data.iter().position(|b| *b == b'\n') {
                let line = data.get(..i).unwrap_or_default();
                match &mut bulk {
                    Some(b) => b.push_line(line),
                    None => push_row(line, width, table, &mut values, &mut chunk),
                }
                .map_err(bad)?;
                data = data.get(i + 1..).unwrap_or_default();
                p.rows += 1;
                p.table_rows += 1;
            }
            carry.extend_from_slice(data);
            if let Some(b) = &mut bulk {
                if b.send_when_full(store, &mut sp).await? {
                    progress(&p);
                }
            }
            if chunk.len() >= CHUNK_ROWS {
                store.spill(&mut sp, &chunk)?;
                chunk.clear();
                progress(&p);
            }
        }
        if !carry.is_empty() {
            return Err(bad(CopyProblem::EndedInsideRow));
        }
        if let Some(b) = bulk {
            b.finish(store, &mut sp).await?;
        }
        p.tables_done += 1;
        progress(&p);
    }
    store.finish_spill(sp, &commit, &chunk)?;
    txn.commit().await?;
    Ok(Copied::Rows(p.rows))
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

fn push_row(
    line: &[u8],
    width: usize,
    table: TableId,
    values: &mut Vec<changelog::Datum>,
    chunk: &mut Vec<ChangeRecord>,
) -> Result<(), CopyProblem> {
    parse_copy_line(line, values)?;
    if values.len() != width && !(width == 0 && values.len() == 1) {
        return Err(CopyProblem::Width {
            expected: width,
            found: values.len(),
        });
    }
    if width == 0 {
        values.clear();
    }
    chunk.push(ChangeRecord::Read {
        table,
        row: RowImage(std::mem::take(values)),
    });
    Ok(())
}
