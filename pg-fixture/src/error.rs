//! The one error type of this crate.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// Why a fixture operation failed.
///
/// Messages are written for the person running the tests or `asof demo`:
/// they say what to install or change. Underlying causes are attached as
/// [`std::error::Error::source`], not repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// No directory with both `initdb` and `postgres` was found.
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found{}; install them \
         (Debian: apt-get install postgresql) or set ASOF_PG_BIN",
        in_dir(.looked_in.as_deref())
    )]
    BinariesNotFound {
        /// The directory that was named explicitly (builder or
        /// `ASOF_PG_BIN`) and lacked the binaries; `None` after a search.
        looked_in: Option<PathBuf>,
    },

    /// The process runs as root, which PostgreSQL refuses, and there is no
    /// `postgres` OS user to run the server as instead.
    #[error(
        "running as root, but there is no `postgres` OS user to run the server as; \
         create one (Debian: apt-get install postgresql creates it) or run as a non-root user"
    )]
    NoPostgresUser,

    /// A builder setting cannot be written to `postgresql.conf`.
    #[error("invalid server setting name {name:?}: expected letters, digits, `_` or `.`")]
    InvalidSetting {
        /// The offending parameter name.
        name: String,
    },

    /// A file-system or process operation failed.
    #[error("{action}")]
    Io {
        /// What was being done, e.g. "creating the cluster directory".
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// `initdb` ran and failed.
    #[error("initdb failed ({status}):\n{output}")]
    InitdbFailed {
        /// initdb's exit status.
        status: ExitStatus,
        /// What initdb printed (stdout and stderr).
        output: String,
    },

    /// The server did not come up; the end of its log says why.
    #[error(
        "PostgreSQL did not start: {reason}\n--- last lines of {} ---\n{log_tail}",
        log_file.display()
    )]
    StartFailed {
        /// What went wrong, e.g. "the server exited (exit status: 1)".
        reason: String,
        /// The server's log file (removed with the cluster unless
        /// `keep_on_drop` is set).
        log_file: PathBuf,
        /// The last lines of that log.
        log_tail: String,
        /// The last connection error seen while waiting, if any.
        #[source]
        source: Option<tokio_postgres::Error>,
    },

    /// The server is stopped (after [`crate::PgCluster::stop`] or
    /// [`crate::PgCluster::kill`]); call [`crate::PgCluster::restart`].
    #[error("the PostgreSQL server of this fixture is not running")]
    NotRunning,

    /// Connecting to the fixture's own server failed.
    #[error("could not connect to the fixture's PostgreSQL server (database {dbname:?})")]
    Connect {
        /// The database connected to.
        dbname: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A SQL statement failed.
    #[error("SQL failed: {sql}")]
    Sql {
        /// The statement text as given.
        sql: String,
        /// The driver's error (carries the server's message and SQLSTATE).
        #[source]
        source: tokio_postgres::Error,
    },

    /// [`crate::PgCluster::query_one_value`] got other than one row of one
    /// column.
    #[error("expected exactly one row with one column, got {rows} row(s) with {columns} column(s): {sql}")]
    NotOneValue {
        /// The statement text as given.
        sql: String,
        /// How many rows came back.
        rows: usize,
        /// How many columns the first row had (0 without rows).
        columns: usize,
    },

    /// A helper thread panicked (a bug in this crate or its dependencies).
    #[error("pg-fixture helper thread panicked")]
    HelperPanicked,
}

impl FixtureError {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        FixtureError::Io {
            action: action.into(),
            source,
        }
    }
}

fn in_dir(dir: Option<&Path>) -> String {
    match dir {
        Some(dir) => format!(" in {}", dir.display()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_and_clusters_cross_threads() {
        // `asof demo` wraps errors in anyhow and may move the cluster.
        fn check<T: Send + Sync + 'static>() {}
        check::<super::FixtureError>();
        check::<crate::PgCluster>();
    }
}
