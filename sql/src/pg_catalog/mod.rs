//! A read-only `pg_catalog` of the tables captured at a session's cut, so
//! clients that look at the catalog work: psql's `\dt` and `\d`, the
//! JDBC driver's type look-ups and `DatabaseMetaData`, and tools built on
//! them. A query at another moment sees the tables of that moment.
//!
//! What it is not: Postgres's whole catalog. Tables have no indexes,
//! constraints other than their key's `NOT NULL`, defaults or comments
//! here, so those catalogs are empty; functions of things the store does
//! not keep answer as Postgres does when there are none.

mod builtin;
mod functions;
mod rewrite;
mod tables;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::{DataFusionError, Result as DfResult, TableReference};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use materializer::TableAt;

pub use builtin::{len_of, typlen};
pub use functions::format_builtin;

/// The schema's name.
pub const SCHEMA: &str = "pg_catalog";

/// The role the catalog says owns everything.
pub(crate) struct Owner {
    oid: i64,
    name: String,
}

/// Every table of the catalog, with the OID it has in Postgres (a name
/// cast to `regclass`, such as `'pg_class'::regclass`, reads it).
const RELATIONS: &[(&str, i64)] = &[
    ("pg_namespace", 2615),
    ("pg_class", 1259),
    ("pg_attribute", 1249),
    ("pg_type", 1247),
    ("pg_database", 1262),
    ("pg_am", 2601),
    ("pg_roles", 12001),
    ("pg_tables", 12002),
    ("pg_index", 2610),
    ("pg_policy", 3256),
    ("pg_statistic_ext", 3381),
    ("pg_publication", 6104),
    ("pg_publication_rel", 6106),
    ("pg_publication_namespace", 6237),
    ("pg_trigger", 2620),
    ("pg_rewrite", 2618),
    ("pg_foreign_table", 3118),
    ("pg_partitioned_table", 3350),
    ("pg_constraint", 2606),
    ("pg_attrdef", 2604),
    ("pg_description", 2609),
    ("pg_inherits", 2611),
    ("pg_collation", 3456),
];

/// Every table of the catalog.
fn names() -> Vec<&'static str> {
    RELATIONS.iter().map(|(n, _)| *n).collect()
}

/// Registers `pg_catalog` and its functions in `ctx`, whose catalog is
/// `catalog`, for `tables` of `database`, captured from a connection as
/// `user`.
pub(crate) fn register(
    ctx: &SessionContext,
    catalog: &str,
    tables: &[TableAt<'_>],
    database: &str,
    user: &str,
) -> DfResult<()> {
    let owner = Owner {
        oid: 10,
        name: user.to_string(),
    };
    let ns = tables::Namespaces::of(tables);
    let filled: [(&str, RecordBatch); 8] = [
        ("pg_namespace", ns.batch(&owner)?),
        ("pg_class", tables::pg_class(tables, &ns, &owner)?),
        ("pg_attribute", tables::pg_attribute(tables)?),
        ("pg_type", tables::pg_type(tables, &ns, &owner)?),
        ("pg_database", tables::pg_database(database, &owner)?),
        ("pg_am", tables::pg_am()?),
        ("pg_roles", tables::pg_roles(&owner)?),
        ("pg_tables", tables::pg_tables(tables, &owner)?),
    ];
    ctx.catalog(catalog)
        .ok_or_else(|| DataFusionError::Internal(format!("no catalog {catalog}")))?
        .register_schema(SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
    for (name, batch) in filled {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        ctx.register_table(TableReference::partial(SCHEMA, name), Arc::new(table))?;
    }
    for (name, columns) in tables::EMPTY {
        let fields: Vec<Field> = columns.iter().map(|(c, t)| Field::new(*c, t.clone(), true)).collect();
        let table = MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]])?;
        ctx.register_table(TableReference::partial(SCHEMA, *name), Arc::new(table))?;
    }
    let type_names: BTreeMap<(u32, i32), String> = tables
        .iter()
        .flat_map(|t| &t.schema.columns)
        .map(|c| ((c.type_oid, c.type_modifier), c.type_name.clone()))
        .collect();
    let relations: BTreeMap<String, i64> = RELATIONS
        .iter()
        .map(|(n, oid)| (format!("{SCHEMA}.{n}"), *oid))
        .chain(
            tables
                .iter()
                .map(|t| (t.schema.name.to_string(), i64::from(t.schema.relation_oid))),
        )
        .collect();
    let visible = relations
        .iter()
        .filter(|(name, _)| name.starts_with("pg_catalog.") || name.starts_with("public."))
        .map(|(_, oid)| *oid)
        .collect();
    for f in functions::all(type_names, relations, visible, user, database) {
        ctx.register_udf(f);
    }
    Ok(())
}

/// Plans `sql` in `state`, after rewriting the Postgres spellings clients
/// use on the catalog (see [`rewrite`]).
pub async fn plan(state: &SessionState, sql: &str) -> DfResult<LogicalPlan> {
    let dialect = state.config().options().sql_parser.dialect;
    let mut statement = state.sql_to_statement(sql, &dialect)?;
    if let datafusion::sql::parser::Statement::Statement(s) = &mut statement {
        let empty: Vec<&str> = tables::EMPTY.iter().map(|(n, _)| *n).collect();
        rewrite::rewrite(s, &names(), &empty);
    }
    state.statement_to_plan(statement).await
}
