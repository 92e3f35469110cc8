//! Where the initial copy reads a table from, when DDL may have committed
//! after the copy's snapshot was taken.
//!
//! Inside the snapshot the catalog (queried with SQL) shows each table as
//! it was then, but names in a statement, locks and the table's storage
//! are resolved in the catalog as it is now. So the copy locks every table
//! through its name now ([`lock_tables`], after which no DDL can commit on
//! it until the copy ends), and reads each one through its name and column
//! names now, matched by OID and column number to its shape in the
//! snapshot ([`copy_source`]). DDL that committed between the snapshot and
//! the lock is in the stream, at its own position; what it changed is
//! either still readable as of the snapshot (a renamed table or column, an
//! added column, a type change without a rewrite) or is not (a dropped
//! table, a dropped column, or storage rewritten or truncated: rows written
//! by a rewrite are invisible to an older snapshot). When a table is not
//! readable the copy stores nothing and a new history begins with a new
//! slot, whose snapshot is newer than that DDL; only a table that keeps
//! changing through every attempt is recorded as not captured, with the
//! reason, until the stream brings its rows again.

use tokio_postgres::error::SqlState;
use tokio_postgres::GenericClient;

use crate::catalog::quote_ident;
use crate::error::{CaptureError, Result};

/// How often a lock is retried when its table was renamed between looking
/// its name up and locking it.
const LOCK_ATTEMPTS: usize = 20;

/// Postgres's name for a dropped column that keeps its number.
const DROPPED_COLUMN: &str = "........pg.dropped.";

/// Locks every table (by OID) in `ACCESS SHARE` mode, through its current
/// name, in the copy's transaction. A table dropped since the snapshot is
/// skipped: [`copy_source`] reports it.
pub async fn lock_tables(txn: &impl GenericClient, tables: &[u32]) -> Result<()> {
    for &oid in tables {
        lock_table(txn, oid).await?;
    }
    Ok(())
}

async fn lock_table(txn: &impl GenericClient, oid: u32) -> Result<()> {
    for _ in 0..LOCK_ATTEMPTS {
        let Some(name) = current_name(txn, oid).await? else {
            return Ok(());
        };
        txn.batch_execute("SAVEPOINT asof_lock").await?;
        match txn
            .batch_execute(&format!("LOCK TABLE {name} IN ACCESS SHARE MODE"))
            .await
        {
            Ok(()) => {
                txn.batch_execute("RELEASE SAVEPOINT asof_lock").await?;
                // Renamed while waiting, and the name taken by another table.
                if current_name(txn, oid).await?.as_deref() == Some(name.as_str()) {
                    return Ok(());
                }
            }
            // Renamed or dropped while waiting for the lock.
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                txn.batch_execute("ROLLBACK TO SAVEPOINT asof_lock").await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CaptureError::TableKeepsChanging { oid })
}

/// The table's quoted (schema-qualified when needed) name now, `None` when
/// it no longer exists.
async fn current_name(txn: &impl GenericClient, oid: u32) -> Result<Option<String>> {
    let row = txn
        .query_one(
            "SELECT CASE WHEN has_table_privilege($1::oid, 'SELECT') IS NOT NULL THEN $1::oid::regclass::text END",
            &[&oid],
        )
        .await?;
    Ok(row.get(0))
}

/// Where to read a table's rows as of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopySource {
    /// The statement that prints the snapshot's columns, in order.
    Readable {
        /// `COPY <table now> (<columns now>) TO STDOUT`, or for a
        /// partitioned table or a row filter `COPY (SELECT <columns now>
        /// FROM <table now> [WHERE <filter>])`.
        sql: String,
    },
    /// The rows as of the snapshot cannot be read; why.
    Unreadable(String),
}

/// Finds how to read the table's `columns` (numbers, as in the snapshot)
/// as of the snapshot, only the rows matching `row_filter` (a publication's
/// row filter) when given. Call with the table locked.
pub async fn copy_source(
    txn: &impl GenericClient,
    oid: u32,
    columns: &[i16],
    row_filter: Option<&str>,
) -> Result<CopySource> {
    let row = txn
        .query_one(
            "SELECT CASE WHEN has_table_privilege($1::oid, 'SELECT') IS NOT NULL THEN $1::oid::regclass::text END, \
                    c.relfilenode = coalesce(pg_relation_filenode($1::oid), 0), c.relkind = 'p' \
             FROM pg_catalog.pg_class c WHERE c.oid = $1",
            &[&oid],
        )
        .await?;
    let Some(name) = row.get::<_, Option<String>>(0) else {
        return Ok(CopySource::Unreadable(
            "it was dropped after the initial copy's snapshot, so its rows then could not be read".into(),
        ));
    };
    let same_storage: bool = row.get(1);
    let partitioned: bool = row.get(2);
    if !same_storage {
        return Ok(CopySource::Unreadable(
            "it was rewritten or truncated after the initial copy's snapshot, so its rows then could not be read; \
             it is captured again when DDL rewrites it"
                .into(),
        ));
    }
    let numbers: Vec<i32> = columns.iter().map(|n| i32::from(*n)).collect();
    let names: Vec<String> = txn
        .query_one(
            "SELECT coalesce(array_agg((pg_identify_object_as_address('pg_class'::regclass, $1::oid, n)).object_names[3] \
                    ORDER BY o), '{}') FROM unnest($2::int4[]) WITH ORDINALITY AS u(n, o)",
            &[&oid, &numbers],
        )
        .await?
        .get(0);
    if names.iter().any(|n| n.starts_with(DROPPED_COLUMN)) {
        return Ok(CopySource::Unreadable(
            "a column was dropped after the initial copy's snapshot, so its rows then could not be read; it is \
             captured again when DDL rewrites it"
                .into(),
        ));
    }
    let now = names.iter().map(|n| quote_ident(n)).collect::<Vec<_>>().join(", ");
    // COPY reads a partitioned table (its partitions' rows), or some rows,
    // only through a query; a row filter names columns as the table has
    // them, as the publication applies it.
    // `COPY t ()` is not SQL, but `SELECT FROM t` prints an empty line
    // per row of a table without columns.
    let sql = match (row_filter, partitioned || columns.is_empty()) {
        (Some(filter), _) => format!("COPY (SELECT {now} FROM {name} WHERE {filter}) TO STDOUT"),
        (None, true) => format!("COPY (SELECT {now} FROM {name}) TO STDOUT"),
        (None, false) => format!("COPY {name} ({now}) TO STDOUT"),
    };
    Ok(CopySource::Readable { sql })
}
