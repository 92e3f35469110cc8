//! Reading the source's catalog: settings, privileges, publications, slots
//! and table shapes, with errors that say how to fix what is missing.

use std::collections::HashMap;

use changelog::{Column, CommitTime, Coverage, Lsn, Omission, OmittedColumn, TableName, TableSchema};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient};

use crate::error::{CaptureError, Result};
use crate::identity::{self, KeyMembership};

/// Quotes an identifier for SQL.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal for SQL.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A schema-qualified, quoted table name.
pub fn qualified(t: &TableName) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

/// Facts about the server and the connected role.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// `server_version_num`.
    pub version_num: i32,
    /// Whether the role is a superuser (may create event triggers and
    /// publications for all tables).
    pub superuser: bool,
    /// Database name.
    pub database: String,
}

/// Checks `wal_level`, the server version and the REPLICATION privilege.
pub async fn check_server(client: &Client) -> Result<ServerInfo> {
    let row = client
        .query_one(
            "SELECT current_setting('wal_level'), current_setting('server_version_num')::int, \
                    r.rolsuper, r.rolreplication, current_database() \
             FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await?;
    let wal_level: String = row.get(0);
    let version_num: i32 = row.get(1);
    let superuser: bool = row.get(2);
    let replication: bool = row.get(3);
    let database: String = row.get(4);
    if wal_level != "logical" {
        return Err(CaptureError::WalLevel { actual: wal_level });
    }
    if version_num < 140_000 {
        return Err(CaptureError::ServerTooOld { version_num });
    }
    if !superuser && !replication {
        return Err(CaptureError::MissingReplicationPrivilege);
    }
    Ok(ServerInfo {
        version_num,
        superuser,
        database,
    })
}

/// A replication slot as `pg_replication_slots` shows it.
#[derive(Clone, Debug)]
pub struct SlotInfo {
    /// Output plugin.
    pub plugin: Option<String>,
    /// Database it belongs to.
    pub database: Option<String>,
    /// Position the client confirmed.
    pub confirmed_flush: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: Option<String>,
    /// Whether a walsender is using it now.
    pub active: bool,
}

/// Looks up a slot.
pub async fn slot(client: &impl GenericClient, name: &str) -> Result<Option<SlotInfo>> {
    let row = client
        .query_opt(
            "SELECT plugin::text, database::text, confirmed_flush_lsn::text, wal_status, active \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await?;
    Ok(row.map(|r| SlotInfo {
        plugin: r.get(0),
        database: r.get(1),
        confirmed_flush: r.get::<_, Option<String>>(2).and_then(|s| s.parse().ok()),
        wal_status: r.get(3),
        active: r.get(4),
    }))
}

/// Errors unless a new slot can be created.
pub async fn check_free_slot(client: &impl GenericClient) -> Result<()> {
    let row = client
        .query_one(
            "SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int",
            &[],
        )
        .await?;
    let free: i32 = row.get(0);
    if free <= 0 {
        return Err(CaptureError::NoFreeSlot);
    }
    Ok(())
}

/// The server's current WAL position.
pub async fn current_wal_lsn(client: &Client) -> Result<Lsn> {
    let s: String = client.query_one("SELECT pg_current_wal_lsn()::text", &[]).await?.get(0);
    s.parse().map_err(CaptureError::ServerLsn)
}

/// The server's clock now, in the time base of its commit timestamps.
pub async fn server_clock(client: &Client) -> Result<CommitTime> {
    let us: i64 = client
        .query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint", &[])
        .await?
        .get(0);
    Ok(CommitTime::from_unix_micros(us))
}

/// The comment asof puts on a publication it created, so that removing
/// asof drops its own publication and never the user's.
pub const PUBLICATION_MARK: &str = "created by asof";

/// Creates the publication when missing: for the given tables, or for all
/// tables when none are given, marked with [`PUBLICATION_MARK`]. Returns
/// whether it was created.
///
/// It publishes partitions through their root: a partitioned table is then
/// captured as one table, keyed by its own key, whose changes (a row moving
/// between partitions too) arrive as the root's.
pub async fn ensure_publication(client: &impl GenericClient, name: &str, tables: &[TableName]) -> Result<bool> {
    if publication_mark(client, name).await?.is_some() {
        return Ok(false);
    }
    let target = if tables.is_empty() {
        "FOR ALL TABLES".to_string()
    } else {
        format!(
            "FOR TABLE {}",
            tables.iter().map(qualified).collect::<Vec<_>>().join(", ")
        )
    };
    let pubname = quote_ident(name);
    client
        .batch_execute(&format!(
            "CREATE PUBLICATION {pubname} {target} WITH (publish_via_partition_root = true); \
             COMMENT ON PUBLICATION {pubname} IS {}",
            quote_literal(PUBLICATION_MARK)
        ))
        .await
        .map_err(|e| match e.code() {
            Some(&SqlState::INSUFFICIENT_PRIVILEGE) => CaptureError::PublicationDenied {
                publication: name.to_owned(),
                target,
            },
            Some(&SqlState::UNDEFINED_TABLE) => CaptureError::PublicationTableMissing {
                publication: name.to_owned(),
                message: db_message(&e),
            },
            _ => CaptureError::Sql(e),
        })?;
    Ok(true)
}

/// Whether the publication exists (outer `Some`) and carries asof's mark
/// (`Some(true)`).
pub async fn publication_mark(client: &impl GenericClient, name: &str) -> Result<Option<bool>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT obj_description(oid, 'pg_publication') IS NOT DISTINCT FROM $2 FROM pg_publication WHERE pubname = $1",
            &[&name, &PUBLICATION_MARK],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string())
}

/// Each relation a publication publishes: `pg_publication_tables t` with
/// its class `c` (and namespace `n`).
pub(crate) const PUBLISHED: &str = "pg_publication_tables t JOIN pg_namespace n ON n.nspname = t.schemaname \
     JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename";

/// The kinds of change publication `p` does not publish, as a `text[]`.
pub(crate) const UNPUBLISHED_OPERATIONS: &str = "array_remove(ARRAY[CASE WHEN NOT p.pubinsert THEN 'insert' END, \
     CASE WHEN NOT p.pubupdate THEN 'update' END, CASE WHEN NOT p.pubdelete THEN 'delete' END, \
     CASE WHEN NOT p.pubtruncate THEN 'truncate' END], NULL)";

/// The tables a publication covers, with their OIDs.
pub async fn published_tables(client: &impl GenericClient, publication: &str) -> Result<Vec<(u32, TableName)>> {
    let rows = client
        .query(
            &format!(
                "SELECT c.oid, t.schemaname::text, t.tablename::text FROM {PUBLISHED} WHERE t.pubname = $1 \
                 ORDER BY 2, 3"
            ),
            &[&publication],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, u32>(0),
                TableName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
            )
        })
        .collect())
}

/// Unlogged tables, which a `FOR ALL TABLES` publication leaves out.
pub async fn unlogged_tables(client: &impl GenericClient) -> Result<Vec<TableName>> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'u' ORDER BY 1, 2",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect())
}

/// What a publication publishes of one table: its columns, its rows and
/// its kinds of change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Published columns (`pg_publication_tables.attnames`: every column
    /// when the publication has no column list).
    pub columns: Vec<String>,
    /// The row filter, when the publication has one for the table.
    pub row_filter: Option<String>,
    /// Kinds of change the publication does not publish.
    pub unpublished_operations: Vec<String>,
}

/// Each published table's [`Scope`] (as of the client's snapshot), by OID.
pub async fn publication_scopes(client: &impl GenericClient, publication: &str) -> Result<HashMap<u32, Scope>> {
    let rows = client
        .query(
            &format!(
                "SELECT c.oid, coalesce(t.attnames::text[], '{{}}'), t.rowfilter, {UNPUBLISHED_OPERATIONS} \
                 FROM {PUBLISHED} JOIN pg_publication p ON p.pubname = t.pubname WHERE t.pubname = $1"
            ),
            &[&publication],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, u32>(0),
                Scope {
                    columns: r.get(1),
                    row_filter: r.get(2),
                    unpublished_operations: r.get(3),
                },
            )
        })
        .collect())
}

/// Reads a table's shape from the catalog (as of the client's snapshot).
/// The key is the primary key, else the replica identity index, else every
/// column under `REPLICA IDENTITY FULL`. Generated columns are left out:
/// pgoutput does not send them, and a column the stream lacks must not be
/// in the copy either.
pub async fn describe_table(client: &impl GenericClient, oid: u32) -> Result<TableSchema> {
    Ok(describe_columns(client, oid, None).await?.schema)
}

/// A table's shape with what the shape leaves out and where its columns
/// are in the table.
#[derive(Clone, Debug)]
pub struct DescribedTable {
    /// The captured shape.
    pub schema: TableSchema,
    /// Column numbers (`attnum`) of the shape's columns, in order.
    pub numbers: Vec<i16>,
    /// What of the table the shape leaves out.
    pub coverage: Coverage,
}

/// [`describe_table`], with column numbers and what is left out, within
/// what the publication publishes of the table (`scope`) when given.
pub async fn describe_columns(client: &impl GenericClient, oid: u32, scope: Option<&Scope>) -> Result<DescribedTable> {
    let head = client
        .query_one(
            "SELECT n.nspname::text, c.relname::text, c.relreplident::text, c.relkind = 'p' FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[&oid],
        )
        .await?;
    let name = TableName::new(head.get::<_, String>(0), head.get::<_, String>(1));
    let ident = identity::from_relreplident(&head.get::<_, String>(2));
    let partitioned: bool = head.get(3);
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod), a.atttypmod, \
                    coalesce(a.attnum = ANY((SELECT i.indkey FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary)::int2[]), false), \
                    coalesce(a.attnum = ANY((SELECT i.indkey FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisreplident)::int2[]), false), \
                    a.attnum, a.attgenerated <> '' \
             FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await?;
    let mut omitted = Vec::new();
    let mut kept = Vec::with_capacity(rows.len());
    for r in rows {
        let column: String = r.get(0);
        if r.get::<_, bool>(7) {
            omitted.push(OmittedColumn {
                name: column,
                why: Omission::Generated,
            });
        } else if scope.is_some_and(|s| !s.columns.contains(&column)) {
            omitted.push(OmittedColumn {
                name: column,
                why: Omission::NotPublished,
            });
        } else {
            kept.push(r);
        }
    }
    let numbers = kept.iter().map(|r| r.get(6)).collect();
    let membership: Vec<KeyMembership> = kept
        .iter()
        .map(|r| KeyMembership {
            in_primary_key: r.get(4),
            in_identity_index: r.get(5),
        })
        .collect();
    let columns = kept
        .iter()
        .zip(identity::key_columns(ident, &membership))
        .map(|(r, is_key)| Column {
            name: r.get(0),
            type_oid: r.get(1),
            type_name: r.get(2),
            type_modifier: r.get(3),
            is_key,
        })
        .collect();
    Ok(DescribedTable {
        schema: TableSchema {
            name,
            relation_oid: oid,
            columns,
            replica_identity: ident,
        },
        numbers,
        coverage: Coverage {
            omitted,
            row_filter: scope.and_then(|s| s.row_filter.clone()),
            partition_truncates_unseen: partitioned,
            unpublished_operations: scope.map(|s| s.unpublished_operations.clone()).unwrap_or_default(),
        },
    })
}

/// The partitioned tables some of these relations are partitions of (a
/// publication that publishes the leaves captures them, not the root).
pub async fn partition_roots(client: &impl GenericClient, oids: &[u32]) -> Result<Vec<TableName>> {
    let rows = client
        .query(
            "SELECT DISTINCT n.nspname::text, r.relname::text FROM pg_class c \
             JOIN pg_class r ON r.oid = pg_partition_root(c.oid) JOIN pg_namespace n ON n.oid = r.relnamespace \
             WHERE c.oid = ANY($1) AND c.relispartition ORDER BY 1, 2",
            &[&oids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect())
}

/// Errors when the table's rows could not be told apart
/// ([`identity::missing_key`]): a capture does not start with such a table.
pub fn check_identity(schema: &TableSchema) -> Result<()> {
    match identity::missing_key(schema) {
        None => Ok(()),
        Some(reason) => Err(CaptureError::NoReplicaIdentity {
            table: schema.name.clone(),
            reason,
        }),
    }
}

/// The planner's estimate of a table's rows (with its partitions'), for
/// the copy's progress; `None` before the table was ever analyzed.
pub async fn estimated_rows(client: &impl GenericClient, oid: u32) -> Result<Option<u64>> {
    let estimate: Option<f64> = client
        .query_one(
            "SELECT sum(reltuples)::float8 FROM pg_class WHERE (oid = $1::oid \
             OR oid IN (SELECT relid FROM pg_partition_tree($1::oid))) AND relkind <> 'p' AND reltuples >= 0",
            &[&oid],
        )
        .await?
        .get(0);
    // Rounded, and far from any overflow: an estimate of rows.
    Ok(estimate.map(|n| n.round() as u64))
}

/// Errors unless the role may read the table (needed for the initial copy).
pub async fn check_select(client: &impl GenericClient, oid: u32, name: &TableName) -> Result<()> {
    let ok: bool = client
        .query_one("SELECT has_table_privilege($1::oid, 'SELECT')", &[&oid])
        .await?
        .get(0);
    if !ok {
        return Err(CaptureError::MissingSelectPrivilege {
            table: name.clone(),
            qualified: qualified(name),
        });
    }
    Ok(())
}

/// `format_type` for a type OID and modifier (names for Relation messages).
pub async fn type_name(client: &Client, oid: u32, typmod: i32) -> Result<String> {
    Ok(client
        .query_one("SELECT format_type($1::oid, $2::int)", &[&oid, &typmod])
        .await?
        .get(0))
}
