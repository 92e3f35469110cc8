//! Errors of SQL queries and exports.

use changelog::TableName;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::parquet::errors::ParquetError;
use materializer::{ParseWhenError, QueryError};

use crate::types::Unrepresentable;

/// A stored value that has no value of its column's Arrow type.
#[derive(Debug, thiserror::Error)]
#[error("{table}.{column} holds {value:?}, which cannot be read as {arrow_type}")]
pub struct ValueError {
    /// The table, schema-qualified.
    pub table: String,
    /// The column.
    pub column: String,
    /// The value (its start, for a long one) in Postgres's text.
    pub value: String,
    /// The column's Arrow type.
    pub arrow_type: String,
    /// Why not.
    #[source]
    pub reason: Unrepresentable,
}

/// Why a query or an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The store could not answer (unknown table, moment before history, ...).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A moment in `asof_at` that does not parse.
    #[error(transparent)]
    When(#[from] ParseWhenError),
    /// A stored value has no Arrow value of its column's type.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A table name in `asof_at` that is not `schema.table` or `table`.
    #[error("invalid table name {0:?}")]
    TableName(String),
    /// DataFusion rejected or failed the query (syntax, planning, execution).
    #[error("{}", datafusion_message(.0))]
    DataFusion(#[from] DataFusionError),
    /// Building Arrow data failed.
    #[error("building Arrow data failed")]
    Arrow(#[from] ArrowError),
    /// Writing Parquet failed.
    #[error("writing Parquet failed")]
    Parquet(#[from] ParquetError),
    /// Reading or writing a file failed.
    #[error("{what} {}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The export's target directory already holds files.
    #[error("{} is not empty (pass --force to write into it)", .0.display())]
    TargetNotEmpty(std::path::PathBuf),
    /// An export asked for a table that did not exist at the cut.
    #[error("no table {0} at the export's moment")]
    NoSuchTable(TableName),
}

impl SqlError {
    /// The error DataFusion carried out of a scan (a value or store
    /// error), found again so the user reads it as it was raised; any
    /// other DataFusion error as it is.
    pub fn from_datafusion(mut e: DataFusionError) -> SqlError {
        loop {
            e = match e {
                DataFusionError::Context(_, inner) => *inner,
                DataFusionError::Shared(inner) => match std::sync::Arc::try_unwrap(inner) {
                    Ok(inner) => inner,
                    Err(shared) => return SqlError::DataFusion(DataFusionError::Shared(shared)),
                },
                DataFusionError::ArrowError(arrow, context) => match *arrow {
                    ArrowError::ExternalError(ext) => DataFusionError::External(ext),
                    other => return SqlError::DataFusion(DataFusionError::ArrowError(Box::new(other), context)),
                },
                DataFusionError::External(ext) => {
                    return match ext.downcast::<SqlError>() {
                        Ok(sql) => *sql,
                        Err(other) => SqlError::DataFusion(DataFusionError::External(other)),
                    }
                }
                other => return SqlError::DataFusion(other),
            }
        }
    }
}

/// DataFusion's message without its internal prefixes and trailing
/// backtrace hints, on one line.
fn datafusion_message(e: &DataFusionError) -> String {
    let text = e.find_root().to_string();
    let text = text.split('\n').next().unwrap_or_default().trim();
    text.strip_prefix("Error during planning: ")
        .or_else(|| text.strip_prefix("SQL error: "))
        .or_else(|| text.strip_prefix("Execution error: "))
        .unwrap_or(text)
        .to_string()
}

impl From<changelog::StoreError> for SqlError {
    fn from(e: changelog::StoreError) -> Self {
        SqlError::Query(QueryError::Store(e))
    }
}

/// Result alias.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;
