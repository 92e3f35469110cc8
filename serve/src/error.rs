//! Errors: [`ServeError`] for starting the server, [`PgError`] for what a
//! client is told (an ErrorResponse with a SQLSTATE).

use std::path::PathBuf;

use asof_sql::SqlError;
use datafusion::error::DataFusionError;
use materializer::QueryError;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The store could not be opened.
    #[error("cannot open the store at {}", .path.display())]
    Store {
        /// The store's directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: changelog::StoreError,
    },
    /// The listen address could not be bound (in use, not local, ...).
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file the server needs could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("cannot use the TLS certificate {} and key {}", .cert.display(), .key.display())]
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The cause.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// Preparing password verification failed.
    #[error("cannot prepare password verification")]
    Password(#[source] openssl::error::ErrorStack),
    /// The configuration cannot be served safely as given.
    #[error("{0}")]
    Config(String),
    /// Accepting or handling connections failed.
    #[error("the server failed")]
    Io(#[source] std::io::Error),
}

/// An error as a client sees it: SQLSTATE and message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (SQLSTATE {code})")]
pub struct PgError {
    /// The SQLSTATE.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

impl PgError {
    /// An error with this SQLSTATE.
    pub fn new(code: &'static str, message: impl Into<String>) -> PgError {
        PgError {
            code,
            message: message.into(),
        }
    }

    /// The connection failed.
    pub fn io(e: std::io::Error) -> PgError {
        PgError::new("08006", e.to_string())
    }

    /// The client broke the protocol.
    pub fn protocol(message: &str) -> PgError {
        PgError::new("08P01", message)
    }

    /// A statement that would change something, on a read-only server.
    pub fn read_only(command: &str) -> PgError {
        PgError::new("25006", format!("cannot execute {command} in a read-only transaction"))
    }

    /// A query or store error, with the SQLSTATE closest to its kind.
    pub fn from_sql(e: SqlError) -> PgError {
        let code = match &e {
            SqlError::Query(q) => query_code(q),
            SqlError::When(_) => "22007",
            SqlError::Value(_) => "22P02",
            SqlError::TableName(_) => "42602",
            SqlError::DataFusion(d) => datafusion_code(d),
            _ => "XX000",
        };
        PgError::new(code, error_chain(&e))
    }

    /// A DataFusion error raised outside a query's result stream.
    pub fn from_datafusion(e: DataFusionError) -> PgError {
        PgError::from_sql(SqlError::from_datafusion(e))
    }
}

fn query_code(e: &QueryError) -> &'static str {
    match e {
        QueryError::UnknownTable { .. } | QueryError::NotCaptured { .. } => "42P01",
        QueryError::Store(_) => "XX000",
        // Moments outside history, bad keys and the like: the request
        // cannot be answered as asked.
        _ => "22023",
    }
}

fn datafusion_code(e: &DataFusionError) -> &'static str {
    match e.find_root() {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::SchemaError(..) => "42703",
        DataFusionError::Plan(m) if m.contains("table") && m.contains("not found") => "42P01",
        DataFusionError::Plan(_) => "42000",
        DataFusionError::ResourcesExhausted(_) => "53000",
        DataFusionError::ArrowError(..) => "22000",
        DataFusionError::Execution(_) => "22000",
        _ => "XX000",
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
