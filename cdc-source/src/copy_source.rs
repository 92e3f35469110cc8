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
    /// How to print the snapshot's columns, in order.
    Readable(Readable),
    /// The rows as of the snapshot cannot be read; why.
    Unreadable(String),
}

/// A table readable as of the snapshot, through its name and column names
/// now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readable {
    /// The quoted, qualified name now.
    name: String,
    /// The quoted column names now, comma-separated.
    columns: String,
    /// The publication's row filter.
    filter: Option<String>,
    /// A partitioned table: its rows are its partitions', which have their
    /// own `ctid`s.
    partitioned: bool,
    /// Its main fork's pages now (at least as many as in the snapshot).
    pub pages: u64,
}

/// Pages of a table, as `ctid`s number them: `start..end` (`None`: to the
/// end, however far the table has grown since).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRange {
    /// First page.
    pub start: u64,
    /// Page after the last.
    pub end: Option<u64>,
}

impl PageRange {
    /// The whole table.
    pub const ALL: PageRange = PageRange { start: 0, end: None };
}

impl Readable {
    /// The table's quoted, qualified name now.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the rows can be read in page ranges.
    pub fn splittable(&self) -> bool {
        !self.partitioned
    }

    /// `n` ranges of about equal pages covering the table, the last open
    /// (rows can only be read in ranges when [`Readable::splittable`]).
    pub fn ranges(&self, n: u64) -> Vec<PageRange> {
        let n = n.clamp(1, self.pages.max(1));
        if n == 1 || !self.splittable() {
            return vec![PageRange::ALL];
        }
        (0..n)
            .map(|i| PageRange {
                start: self.pages * i / n,
                end: (i + 1 < n).then(|| self.pages * (i + 1) / n),
            })
            .collect()
    }

    /// The part of the table's `rows` in `range`, by its share of the
    /// pages (the last range's end taken as the table's end now).
    pub fn share_of(&self, rows: u64, range: PageRange) -> u64 {
        let end = range.end.unwrap_or(self.pages).min(self.pages);
        match self.pages {
            0 => rows,
            pages => (u128::from(rows) * u128::from(end.saturating_sub(range.start)) / u128::from(pages))
                .try_into()
                .unwrap_or(rows),
        }
    }

    /// The statement that prints the rows of `range`.
    pub fn sql(&self, range: PageRange) -> String {
        let Readable {
            name,
            columns,
            filter,
            partitioned,
            ..
        } = self;
        // `ctid` ranges are TID range scans (PostgreSQL 14 and later): each
        // connection reads only its pages.
        let mut conditions: Vec<String> = Vec::new();
        if range != PageRange::ALL {
            if range.start > 0 {
                conditions.push(format!("ctid >= '({},0)'::tid", range.start));
            }
            if let Some(end) = range.end {
                conditions.push(format!("ctid < '({end},0)'::tid"));
            }
        }
        if let Some(f) = filter {
            conditions.push(format!("({f})"));
        }
        // COPY reads a partitioned table (its partitions' rows), some rows,
        // or a table without columns only through a query; `COPY t ()` is
        // not SQL, but `SELECT FROM t` prints an empty line per row. A
        // query names a plain table with ONLY, as `COPY t` reads it: an
        // inheritance child's rows are its own table's.
        if conditions.is_empty() && !partitioned && !columns.is_empty() {
            return format!("COPY {name} ({columns}) TO STDOUT");
        }
        let only = if *partitioned { "" } else { "ONLY " };
        let mut sql = format!("COPY (SELECT {columns} FROM {only}{name}");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(") TO STDOUT");
        sql
    }
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
    let listed = names.iter().map(|n| quote_ident(n)).collect::<Vec<_>>().join(", ");
    let pages: i64 = txn
        .query_one(
            "SELECT pg_relation_size($1::oid) / current_setting('block_size')::int8",
            &[&oid],
        )
        .await?
        .get(0);
    Ok(CopySource::Readable(Readable {
        name,
        columns: listed,
        // It names columns as the table has them now, as the publication
        // applies it.
        filter: row_filter.map(str::to_owned),
        partitioned,
        pages: pages.max(0) as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(partitioned: bool, filter: Option<&str>, pages: u64) -> Readable {
        Readable {
            name: "public.t".into(),
            columns: "a, \"B\"".into(),
            filter: filter.map(str::to_owned),
            partitioned,
            pages,
        }
    }

    #[test]
    fn a_whole_plain_table_is_copied_by_name() {
        let t = table(false, None, 10);
        assert_eq!(t.sql(PageRange::ALL), "COPY public.t (a, \"B\") TO STDOUT");
        let p = table(true, None, 0);
        assert_eq!(p.sql(PageRange::ALL), "COPY (SELECT a, \"B\" FROM public.t) TO STDOUT");
        let f = table(false, Some("a > 1"), 10);
        assert_eq!(
            f.sql(PageRange::ALL),
            "COPY (SELECT a, \"B\" FROM ONLY public.t WHERE (a > 1)) TO STDOUT"
        );
    }

    #[test]
    fn ranges_cover_every_page_once_and_the_last_is_open() {
        for pages in [0, 1, 2, 7, 1000, 14_037] {
            for n in 1..6 {
                let ranges = table(false, None, pages).ranges(n);
                assert!(!ranges.is_empty() && ranges.len() as u64 <= n);
                assert_eq!(ranges.first().map(|r| r.start), Some(0));
                assert_eq!(ranges.last().map(|r| r.end), Some(None));
                for w in ranges.windows(2) {
                    assert!(w[0].end == Some(w[1].start) && w[0].start < w[1].start, "{ranges:?}");
                }
            }
        }
        assert_eq!(table(true, None, 1000).ranges(4), vec![PageRange::ALL]);
    }

    #[test]
    fn a_range_reads_its_pages_with_the_filter() {
        let t = table(false, Some("a > 1"), 100);
        let r = t.ranges(2);
        assert_eq!(
            t.sql(r[0]),
            "COPY (SELECT a, \"B\" FROM ONLY public.t WHERE ctid < '(50,0)'::tid AND (a > 1)) TO STDOUT"
        );
        assert_eq!(
            table(false, None, 100).sql(r[1]),
            "COPY (SELECT a, \"B\" FROM ONLY public.t WHERE ctid >= '(50,0)'::tid) TO STDOUT"
        );
    }

    #[test]
    fn ranges_share_the_estimate_of_rows_by_pages() {
        let t = table(false, None, 1000);
        let shares: Vec<u64> = t.ranges(3).into_iter().map(|r| t.share_of(900, r)).collect();
        assert_eq!(shares, vec![299, 299, 300]);
        assert_eq!(t.share_of(900, PageRange::ALL), 900);
        assert_eq!(table(false, None, 0).share_of(7, PageRange::ALL), 7);
    }
}
