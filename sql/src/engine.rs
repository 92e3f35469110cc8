//! A DataFusion session over a store at one cut: every table captured then
//! is registered, and `asof_at('schema.table', 'WHEN')` reads a table at
//! another moment inside the same query.

use std::sync::{Arc, Mutex, PoisonError};

use changelog::{CommitTime, Store, TableName};
use datafusion::catalog::{MemorySchemaProvider, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue, TableReference};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{SessionConfig, SessionContext};
use materializer::{Cut, Resolved, When};

use crate::error::{Result, SqlError};
use crate::pg_catalog;
use crate::table::AsOfTable;
use crate::types::Typing;

/// DataFusion's default catalog; its default schema is `public`, like
/// Postgres's, so bare names of `public` tables resolve as they do there.
const CATALOG: &str = "datafusion";

/// The name of the table function that reads a table at another moment.
pub const ASOF_AT: &str = "asof_at";

/// SQL over a store at one cut.
pub struct Engine {
    ctx: SessionContext,
    asof_at: Arc<AsofAt>,
}

impl Engine {
    /// A session at `cut` in which every table captured then is
    /// registered under its schema-qualified name.
    pub fn new(store: Arc<Store>, cut: Cut, typing: Typing) -> Result<Engine> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, "public");
        let ctx = SessionContext::new_with_config(config);
        let catalog = ctx
            .catalog(CATALOG)
            .ok_or_else(|| DataFusionError::Internal("no default catalog".into()))?;
        let tables = materializer::tables_at(&store, cut);
        for table in &tables {
            let name = &table.schema.name;
            if catalog.schema(&name.schema).is_none() {
                catalog.register_schema(&name.schema, Arc::new(MemorySchemaProvider::new()))?;
            }
            let provider = AsOfTable::new(store.clone(), table, cut, typing);
            ctx.register_table(
                TableReference::partial(name.schema.as_str(), name.name.as_str()),
                Arc::new(provider),
            )?;
        }
        let source = store.source_info()?;
        let database = source.as_ref().map_or("asof", |s| s.database.as_str());
        let user = source
            .as_ref()
            .and_then(|s| conninfo_user(&s.conninfo_redacted))
            .unwrap_or("asof");
        pg_catalog::register(&ctx, CATALOG, &tables, database, user)?;
        drop(tables);
        let asof_at = Arc::new(AsofAt {
            store,
            typing,
            resolved: Mutex::new(Vec::new()),
        });
        ctx.register_udtf(ASOF_AT, asof_at.clone());
        Ok(Engine { ctx, asof_at })
    }

    /// Plans and starts `sql`; its rows stream from the returned stream.
    pub async fn query(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        let plan = pg_catalog::plan(&self.ctx.state(), sql)
            .await
            .map_err(SqlError::from_datafusion)?;
        let frame = self
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(SqlError::from_datafusion)?;
        frame.execute_stream().await.map_err(SqlError::from_datafusion)
    }

    /// The moments `asof_at` calls resolved to while planning, in order:
    /// (table, what was asked, the cut it resolved to).
    pub fn other_moments(&self) -> Vec<(TableName, String, Resolved)> {
        self.asof_at
            .resolved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The DataFusion session, for callers that need more of it.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }
}

/// `asof_at('schema.table', 'WHEN')`: the table at another moment.
#[derive(Debug)]
struct AsofAt {
    store: Arc<Store>,
    typing: Typing,
    resolved: Mutex<Vec<(TableName, String, Resolved)>>,
}

impl AsofAt {
    fn provider(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        let [table, when] = args else {
            return Err(usage());
        };
        let (Some(table), Some(when)) = (string_literal(table), string_literal(when)) else {
            return Err(usage());
        };
        let name = parse_table_name(&table)?;
        let at = materializer::resolve(&self.store, when.parse::<When>()?, CommitTime::now())?;
        let found = materializer::table_at(&self.store, &name, at.cut)?;
        let provider = AsOfTable::new(self.store.clone(), &found, at.cut, self.typing);
        self.resolved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name, when, at));
        Ok(Arc::new(provider))
    }
}

impl TableFunctionImpl for AsofAt {
    fn call_with_args(&self, args: TableFunctionArgs) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        self.provider(args.exprs())
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }
}

fn usage() -> SqlError {
    SqlError::DataFusion(DataFusionError::Plan(format!(
        "{ASOF_AT} takes two text literals: {ASOF_AT}('schema.table', 'WHEN')"
    )))
}

fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Some(s.clone()),
        _ => None,
    }
}

/// `schema.table` or `table` (in `public`), read as psql reads a name (as
/// the other commands do).
fn parse_table_name(s: &str) -> Result<TableName> {
    let name = TableName::parse(s);
    if name.name.is_empty() || name.schema.is_empty() {
        return Err(SqlError::TableName(s.to_string()));
    }
    Ok(name)
}

/// The `user=` of a connection string, if it names one.
fn conninfo_user(conninfo: &str) -> Option<&str> {
    conninfo
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("user="))
        .filter(|u| !u.is_empty())
}
