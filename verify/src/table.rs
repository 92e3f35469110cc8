//! Comparing one table: is it at the source, with the same columns, and
//! the same rows.

use std::ops::ControlFlow;

use changelog::keys::encode_user_key;
use changelog::{Coverage, DatumRef, Store, TableName, TableSchema};
use materializer::{Cut, QueryError, TableAt};
use tokio_postgres::Client;

use crate::bisect::{Bisect, StoreRow};
use crate::error::VerifyError;
use crate::fingerprint::{fingerprint, row_hash};
use crate::report::{Outcome, TableReport};
use crate::sql::TableSql;

/// Compares `name` in the store at `cut` with the source's snapshot.
pub async fn compare(store: &Store, client: &Client, name: &TableName, cut: Cut) -> Result<TableReport, VerifyError> {
    let mut report = TableReport {
        table: name.clone(),
        store_rows: 0,
        source_rows: None,
        keyed: true,
        outcome: Outcome::Equal,
        differences: Vec::new(),
        differing: 0,
        incomplete: false,
        ranges_compared: 0,
        rows_listed: 0,
        kept: 0,
    };
    let source_columns = source_columns(client, name).await?;
    let table = match materializer::table_at(store, name, cut) {
        Ok(t) => t,
        Err(QueryError::UnknownTable { .. }) => {
            report.outcome = Outcome::MissingInStore;
            return Ok(report);
        }
        Err(source) => return Err(VerifyError::Query { lsn: cut.lsn, source }),
    };
    let Some(source_columns) = source_columns else {
        report.outcome = Outcome::MissingAtSource;
        return Ok(report);
    };
    // Columns the capture leaves out (generated ones, or outside the
    // publication's column list) are compared by their absence.
    let omitted = |c: &String| table.coverage.omitted.iter().any(|o| &o.name == c);
    let source_columns: Vec<String> = source_columns.into_iter().filter(|c| !omitted(c)).collect();
    let store_columns: Vec<String> = table.schema.column_names().map(str::to_owned).collect();
    if sorted(&store_columns) != sorted(&source_columns) {
        report.outcome = Outcome::ColumnsDiffer(store_columns, source_columns);
        return Ok(report);
    }
    let sql = TableSql::new(table.schema, table.coverage.row_filter.as_deref());
    let key_types: Vec<u32> = table
        .schema
        .columns
        .iter()
        .filter(|c| c.is_key)
        .map(|c| c.type_oid)
        .collect();
    let rows = store_rows(store, &table, &key_types, cut)?;
    report.store_rows = rows.len() as u64;
    report.keyed = has_usable_key(table.schema);
    if !report.keyed {
        let row = client.query_one(&sql.unordered(), &[]).await?;
        let count: i64 = row.try_get(0)?;
        let fp: Option<String> = row.try_get(1)?;
        let mut hashes: Vec<_> = rows.iter().map(|r| r.hash).collect();
        hashes.sort_unstable();
        report.source_rows = Some(u64::try_from(count).unwrap_or(0));
        report.ranges_compared = 1;
        if report.source_rows != Some(report.store_rows) || fingerprint(&hashes) != fp {
            report.outcome = Outcome::RowsDiffer;
        }
        return Ok(report);
    }
    let found = Bisect {
        client,
        sql: &sql,
        table: table.id,
        key_types: &key_types,
        rows: &rows,
        keeps_unpublished_deletes: keeps_unpublished_deletes(table.coverage),
    }
    .run()
    .await?;
    report.source_rows = Some(found.source_rows);
    report.ranges_compared = found.ranges;
    report.rows_listed = found.listed;
    report.differing = found.differing;
    report.incomplete = found.incomplete;
    report.differences = found.named;
    report.kept = found.kept;
    if report.differing > 0
        || report.incomplete
        || report.source_rows != Some(report.store_rows.saturating_sub(found.kept))
    {
        report.outcome = Outcome::RowsDiffer;
    }
    Ok(report)
}

/// Whether the publication leaves out only removals (deletes, truncates):
/// then every source row must be in the store as it is, and store rows the
/// source removed are kept on purpose. A publication that leaves out
/// inserts or updates leaves nothing to compare row by row.
fn keeps_unpublished_deletes(coverage: &Coverage) -> bool {
    let ops = &coverage.unpublished_operations;
    !ops.is_empty() && ops.iter().all(|o| o == "delete" || o == "truncate")
}

/// A key that identifies rows one by one: the primary key or a replica
/// identity index. Under `REPLICA IDENTITY FULL` without either, every
/// column is the "key", which may repeat (the store counts the copies)
/// and hold NULLs.
fn has_usable_key(schema: &TableSchema) -> bool {
    schema.columns.iter().any(|c| c.is_key) && !schema.counts_copies()
}

fn sorted(names: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = names.iter().map(String::as_str).collect();
    v.sort_unstable();
    v
}

/// The table's columns at the source in the snapshot, `None` when it has
/// no such table.
async fn source_columns(client: &Client, name: &TableName) -> Result<Option<Vec<String>>, VerifyError> {
    let found = client
        .query_opt(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&name.schema, &name.name],
        )
        .await?;
    let Some(row) = found else {
        return Ok(None);
    };
    let oid: u32 = row.try_get(0)?;
    let columns = client
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped \
             ORDER BY attnum",
            &[&oid],
        )
        .await?;
    Ok(Some(columns.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?))
}

/// The store's rows at `cut`, in key order, with their keys and hashes.
fn store_rows(store: &Store, table: &TableAt<'_>, key_types: &[u32], cut: Cut) -> Result<Vec<StoreRow>, VerifyError> {
    let key_at: Vec<usize> = table.schema.key_indices();
    let mut rows = Vec::new();
    materializer::snapshot(store, table, cut, |values| {
        let key = key_at
            .iter()
            .map(|&i| values.get(i).copied().unwrap_or(DatumRef::Missing));
        let text = key
            .clone()
            .map(|v| match v {
                DatumRef::Text(b) => b.to_vec(),
                DatumRef::Null | DatumRef::Missing => Vec::new(),
            })
            .collect();
        rows.push(StoreRow {
            key: encode_user_key(table.id, key_types, key),
            text,
            hash: row_hash(values),
        });
        Ok::<_, QueryError>(ControlFlow::Continue(()))
    })
    .map_err(|source| VerifyError::Query { lsn: cut.lsn, source })?;
    Ok(rows)
}
