//! One client's session: the moment it reads at (`asof.at`), the engine
//! at that moment, its other settings, and running its statements.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use asof_sql::{Engine, SqlError, Typing};
use changelog::CommitTime;
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::execution::context::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::SQLOptions;
use materializer::{Cut, Resolved, When};

use crate::error::PgError;
use crate::protocol::Column;
use crate::statement::Command;
use crate::stores::Stores;
use crate::wire_types::{oid, pg_type_of};

/// The setting that chooses the moment a session reads at.
pub const ASOF_AT: &str = "asof.at";

/// What every session of a server shares.
pub struct Shared {
    /// The store's views.
    pub stores: Arc<Stores>,
    /// How columns are typed.
    pub typing: Typing,
    /// The engine at the latest cut seen, shared by the sessions at `now`
    /// and reused while the log has not grown.
    pub latest: Mutex<Option<(Cut, Arc<Engine>)>>,
}

impl Shared {
    /// What sessions share, over these views of the store.
    pub fn new(stores: Arc<Stores>, typing: Typing) -> Shared {
        Shared {
            stores,
            typing,
            latest: Mutex::new(None),
        }
    }
}

/// The moment a session reads at.
enum Moment {
    /// The latest captured state, caught up before each statement.
    Now,
    /// A fixed moment, resolved when it was set.
    Fixed {
        /// As the client wrote it.
        asked: String,
        /// What it resolved to.
        at: Resolved,
        /// The engine at it.
        engine: Arc<Engine>,
    },
}

/// A planned query.
pub struct Planned {
    /// The engine it was planned in (its cut).
    pub engine: Arc<Engine>,
    /// The plan, placeholders unbound.
    pub plan: LogicalPlan,
    /// The plan optimized once, placeholders unbound, when the optimizer
    /// takes it so: each execution binds it and plans it physically, as
    /// Postgres runs a generic plan.
    pub optimized: Option<LogicalPlan>,
    /// The engine's session state and task context, taken once (copying
    /// them costs as much as planning a look-up).
    pub state: Arc<SessionState>,
    pub task: Arc<TaskContext>,
    /// Its result columns.
    pub columns: Vec<Column>,
    /// Their Arrow types.
    pub types: Vec<DataType>,
    /// The types its placeholders take, `$1` first, where the query gives them.
    pub params: Vec<Option<DataType>>,
}

/// What a statement answers.
pub enum Answer {
    /// Rows, then the command tag `SELECT n`.
    Rows(SendableRecordBatchStream),
    /// Done, with this command tag.
    Done(String),
}

/// One client's session.
pub struct Session {
    shared: Arc<Shared>,
    moment: Moment,
    /// Other settings, kept so `SHOW` answers what `SET` set; only
    /// `asof.at` changes answers.
    settings: BTreeMap<String, String>,
}

impl Session {
    /// A session at `now`.
    pub fn new(shared: Arc<Shared>) -> Session {
        Session {
            shared,
            moment: Moment::Now,
            settings: BTreeMap::new(),
        }
    }

    /// The engine to run the next statement in: at the fixed moment, or
    /// caught up with the log at `now`.
    pub fn engine(&mut self) -> Result<Arc<Engine>, PgError> {
        if let Moment::Fixed { engine, .. } = &self.moment {
            return Ok(engine.clone());
        }
        let store = self.shared.stores.fresh().map_err(store_error)?;
        let at = materializer::resolve(&store, When::Now, CommitTime::now()).map_err(query_error)?;
        let mut latest = self.shared.latest.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cut, engine)) = latest.as_ref() {
            if *cut == at.cut {
                return Ok(engine.clone());
            }
        }
        let engine = Arc::new(Engine::new(store, at.cut, self.shared.typing).map_err(PgError::from_sql)?);
        *latest = Some((at.cut, engine.clone()));
        Ok(engine)
    }

    /// Whether a plan made in `engine` still reads at the session's moment.
    pub fn is_current(&mut self, engine: &Arc<Engine>) -> Result<bool, PgError> {
        Ok(Arc::ptr_eq(&self.engine()?, engine))
    }

    /// Plans a query (placeholders unbound); writes are refused.
    pub async fn plan(&mut self, sql: &str) -> Result<Planned, PgError> {
        let engine = self.engine()?;
        let state = engine.context().state();
        let plan = asof_sql::pg_catalog::plan(&state, sql)
            .await
            .map_err(PgError::from_datafusion)?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|_| PgError::read_only(first_word(sql)))?;
        let fields = plan.schema().fields();
        let columns = fields
            .iter()
            .map(|f| Column {
                name: f.name().clone(),
                pg_type: pg_type_of(f),
            })
            .collect();
        let types = fields.iter().map(|f| f.data_type().clone()).collect();
        let mut by_name = plan.get_parameter_types().map_err(PgError::from_datafusion)?;
        let count = by_name
            .keys()
            .filter_map(|k| k.strip_prefix('$')?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        let params = (1..=count)
            .map(|i| by_name.remove(&format!("${i}")).flatten())
            .collect();
        // A plan the optimizer cannot take with its placeholders unbound is
        // optimized at each execution instead.
        let optimized = state.optimize(&plan).ok();
        let task = Arc::new(TaskContext::from(&state));
        Ok(Planned {
            engine,
            plan,
            optimized,
            state: Arc::new(state),
            task,
            columns,
            types,
            params,
        })
    }

    /// Runs a planned query with its placeholders bound to `params`.
    pub async fn run(&self, planned: &Planned, params: Vec<ScalarValue>) -> Result<SendableRecordBatchStream, PgError> {
        let state = &planned.state;
        let bind = |plan: &LogicalPlan| match planned.params.is_empty() && params.is_empty() {
            true => Ok(plan.clone()),
            false => plan.clone().with_param_values(params.clone()),
        };
        let plan = match &planned.optimized {
            Some(optimized) => bind(optimized),
            None => bind(&planned.plan).and_then(|p| state.optimize(&p)),
        }
        .map_err(PgError::from_datafusion)?;
        let physical = state
            .query_planner()
            .create_physical_plan(&plan, state.as_ref())
            .await
            .map_err(PgError::from_datafusion)?;
        execute_stream(physical, Arc::clone(&planned.task)).map_err(PgError::from_datafusion)
    }

    /// The result columns of a command that is not a query (`SHOW`), if it
    /// has any.
    pub fn command_columns(command: &Command) -> Option<Vec<Column>> {
        match command {
            Command::Show(name) => Some(vec![Column {
                name: name.clone(),
                pg_type: oid::TEXT,
            }]),
            _ => None,
        }
    }

    /// Runs a command that is not a query.
    pub fn command(&mut self, command: &Command) -> Result<Answer, PgError> {
        match command {
            Command::Query(_) => Err(PgError::new("XX000", "a query is not a command")),
            Command::Set { name, value } if name == ASOF_AT => {
                self.set_at(value.as_deref().unwrap_or("now"))?;
                Ok(Answer::Done("SET".into()))
            }
            Command::Set { name, value } => {
                check_setting(name, value.as_deref())?;
                match value {
                    Some(v) => self.settings.insert(name.clone(), v.clone()),
                    None => self.settings.remove(name),
                };
                Ok(Answer::Done("SET".into()))
            }
            Command::Reset(name) => {
                if name == ASOF_AT || name == "all" {
                    self.moment = Moment::Now;
                }
                if name == "all" {
                    self.settings.clear();
                } else {
                    self.settings.remove(name);
                }
                Ok(Answer::Done("RESET".into()))
            }
            Command::Show(name) => {
                let value = self.show(name)?;
                let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
                let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec![value]))])
                    .map_err(|e| PgError::new("XX000", e.to_string()))?;
                let stream = MemoryStream::try_new(vec![batch], schema, None).map_err(PgError::from_datafusion)?;
                Ok(Answer::Rows(Box::pin(stream)))
            }
            Command::Transaction(tag, _) => Ok(Answer::Done((*tag).to_string())),
            Command::Write(word) => Err(PgError::read_only(word)),
            Command::Unsupported(word) => Err(PgError::new(
                "0A000",
                format!("{word} is not supported: this server answers queries only"),
            )),
        }
    }

    fn set_at(&mut self, asked: &str) -> Result<(), PgError> {
        let when: When = asked
            .parse()
            .map_err(|e: materializer::ParseWhenError| PgError::new("22023", e.to_string()))?;
        if when == When::Now {
            self.moment = Moment::Now;
            return Ok(());
        }
        let store = self.shared.stores.fresh().map_err(store_error)?;
        let at = materializer::resolve(&store, when, CommitTime::now()).map_err(query_error)?;
        let engine = Arc::new(Engine::new(store, at.cut, self.shared.typing).map_err(PgError::from_sql)?);
        self.moment = Moment::Fixed {
            asked: asked.to_string(),
            at,
            engine,
        };
        Ok(())
    }

    fn show(&mut self, name: &str) -> Result<String, PgError> {
        if name == ASOF_AT {
            let (asked, at) = match &self.moment {
                Moment::Fixed { asked, at, .. } => (asked.clone(), *at),
                Moment::Now => {
                    let store = self.shared.stores.fresh().map_err(store_error)?;
                    let at = materializer::resolve(&store, When::Now, CommitTime::now()).map_err(query_error)?;
                    ("now".to_string(), at)
                }
            };
            let mut text = format!("{asked}: as of {}", at.cut);
            if let Some(reach) = at.beyond_log {
                text.push_str(&format!(
                    " (the latest captured state; the log is complete through lsn {reach})"
                ));
            }
            return Ok(text);
        }
        if let Some(v) = self.settings.get(name) {
            return Ok(v.clone());
        }
        default_setting(name)
            .map(str::to_string)
            .ok_or_else(|| PgError::new("42704", format!("unrecognized configuration parameter \"{name}\"")))
    }
}

/// Settings a client may set that would change how values are printed:
/// only the values this server prints in are accepted.
fn check_setting(name: &str, value: Option<&str>) -> Result<(), PgError> {
    let Some(value) = value else { return Ok(()) };
    let v = value.to_ascii_lowercase().replace(['-', '_'], "");
    let ok = match name {
        "client_encoding" => v == "utf8" || v == "unicode",
        "datestyle" => v.starts_with("iso"),
        "timezone" => ["utc", "etc/utc", "gmt", "z", "zulu", "universal", "+00", "0"].contains(&v.as_str()),
        "intervalstyle" => v == "postgres",
        "standard_conforming_strings" => v == "on",
        "bytea_output" => v == "hex",
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(PgError::new(
            "22023",
            format!(
                "{name} cannot be set to {value:?} here: values are printed in {}",
                default_setting(name).unwrap_or("the server's settings")
            ),
        ))
    }
}

/// The values the server announces at connect time and answers `SHOW` with.
pub fn default_setting(name: &str) -> Option<&'static str> {
    Some(match name {
        "server_version" => SERVER_VERSION,
        "server_version_num" => "160000",
        "server_encoding" | "client_encoding" => "UTF8",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "timezone" => "UTC",
        "integer_datetimes"
        | "standard_conforming_strings"
        | "default_transaction_read_only"
        | "transaction_read_only" => "on",
        "is_superuser" | "in_hot_standby" => "off",
        "bytea_output" => "hex",
        "extra_float_digits" => "1",
        "search_path" => "public",
        "transaction_isolation" | "default_transaction_isolation" => "repeatable read",
        "max_identifier_length" => "63",
        _ => return None,
    })
}

/// The version announced: the Postgres whose text formats are followed.
pub const SERVER_VERSION: &str = "16.0 (asof)";

fn first_word(sql: &str) -> &str {
    sql.split_whitespace().next().unwrap_or("statement")
}

fn store_error(e: changelog::StoreError) -> PgError {
    PgError::from_sql(SqlError::from(e))
}

fn query_error(e: materializer::QueryError) -> PgError {
    PgError::from_sql(SqlError::Query(e))
}
