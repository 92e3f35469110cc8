//! A running fixture cluster: where it is, how to reach it, SQL helpers,
//! and its life cycle (stop, kill, restart, drop).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::builder::PgClusterBuilder;
use crate::client;
use crate::privileges::RunAs;
use crate::process::{self, Launch, Postmaster, Shutdown, StartFailure};
use crate::FixtureError;

/// The superuser role initdb creates, and the database the helpers use.
pub(crate) const SERVER_ROLE: &str = "postgres";
const DEFAULT_DBNAME: &str = "postgres";
/// The only address the server listens on.
const HOST: &str = "127.0.0.1";
/// Start attempts on fresh ports before a port collision becomes an error.
const PORT_ATTEMPTS: usize = 5;

/// A private PostgreSQL cluster in a temporary directory, with its server
/// running as a child process. Dropping it stops the server and deletes
/// the directory (also when a test panics).
#[derive(Debug)]
pub struct PgCluster {
    /// `None` only while dropping.
    dir: Option<TempDir>,
    root: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<RunAs>,
    password: Option<String>,
    keep_on_drop: bool,
    start_timeout: Duration,
    port: u16,
    /// `None` while stopped.
    postmaster: Option<Postmaster>,
}

/// What the builder hands over once the directory is initialised.
pub(crate) struct Parts {
    pub(crate) dir: TempDir,
    pub(crate) data_dir: PathBuf,
    pub(crate) log_file: PathBuf,
    pub(crate) bin_dir: PathBuf,
    pub(crate) run_as: Option<RunAs>,
    pub(crate) password: Option<String>,
    pub(crate) keep_on_drop: bool,
    pub(crate) start_timeout: Duration,
}

impl PgCluster {
    /// Creates and starts a cluster with default options.
    pub fn start() -> Result<PgCluster, FixtureError> {
        PgCluster::builder().start()
    }

    /// Options: extra settings, durability, password authentication, ...
    pub fn builder() -> PgClusterBuilder {
        PgClusterBuilder::default()
    }

    pub(crate) fn new(parts: Parts) -> PgCluster {
        PgCluster {
            root: parts.dir.path().to_path_buf(),
            dir: Some(parts.dir),
            data_dir: parts.data_dir,
            log_file: parts.log_file,
            bin_dir: parts.bin_dir,
            run_as: parts.run_as,
            password: parts.password,
            keep_on_drop: parts.keep_on_drop,
            start_timeout: parts.start_timeout,
            port: 0,
            postmaster: None,
        }
    }

    /// The TCP port the server listens on (stable across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address the server listens on: always `127.0.0.1`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The directory holding the server's Unix socket (connections there
    /// are always trusted).
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's log file.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The directory of the PostgreSQL binaries in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The path of a PostgreSQL program of the same installation, e.g.
    /// `pg_bin("pg_recvlogical")`. It is not checked that it exists.
    pub fn pg_bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// The superuser role: `postgres`.
    pub fn user(&self) -> &str {
        SERVER_ROLE
    }

    /// The default database: `postgres`.
    pub fn dbname(&self) -> &str {
        DEFAULT_DBNAME
    }

    /// The role's password, when built with
    /// [`PgClusterBuilder::password_auth`].
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// A libpq key=value connection string for TCP, e.g.
    /// `host=127.0.0.1 port=54321 user=postgres dbname=postgres`.
    pub fn conninfo(&self) -> String {
        let mut s = format!(
            "host={HOST} port={} user={SERVER_ROLE} dbname={DEFAULT_DBNAME}",
            self.port
        );
        if let Some(password) = &self.password {
            let escaped = password.replace('\\', "\\\\").replace('\'', "\\'");
            s.push_str(&format!(" password='{escaped}'"));
        }
        s
    }

    /// A `postgresql://` URI for TCP.
    pub fn uri(&self) -> String {
        let credentials = match &self.password {
            Some(password) => format!("{SERVER_ROLE}:{}", percent_encode(password)),
            None => SERVER_ROLE.to_owned(),
        };
        format!("postgresql://{credentials}@{HOST}:{}/{DEFAULT_DBNAME}", self.port)
    }

    /// A driver configuration for TCP (`127.0.0.1`, the port, `postgres`,
    /// database `postgres`, the password if any).
    pub fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(HOST)
            .port(self.port)
            .user(SERVER_ROLE)
            .dbname(DEFAULT_DBNAME);
        if let Some(password) = &self.password {
            config.password(password.as_str());
        }
        config
    }

    /// Runs one or more SQL statements in database `postgres`. Blocks; can
    /// be called from inside a tokio runtime too.
    pub fn execute(&self, sql: &str) -> Result<(), FixtureError> {
        self.execute_in(DEFAULT_DBNAME, sql)
    }

    /// [`PgCluster::execute`] in another database.
    pub fn execute_in(&self, dbname: &str, sql: &str) -> Result<(), FixtureError> {
        client::execute(&self.socket_config(dbname)?, sql)
    }

    /// Runs SQL in database `postgres` and returns the rows of all its
    /// statements, each value in Postgres's text form and `None` for NULL.
    pub fn query_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, FixtureError> {
        self.query_rows_in(DEFAULT_DBNAME, sql)
    }

    /// [`PgCluster::query_rows`] in another database.
    pub fn query_rows_in(&self, dbname: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, FixtureError> {
        Ok(client::query(&self.socket_config(dbname)?, sql)?.rows)
    }

    /// Runs a query that yields exactly one row of one column and returns
    /// that value (`None` for NULL). Any other shape is an error.
    pub fn query_one_value(&self, sql: &str) -> Result<Option<String>, FixtureError> {
        self.query_one_value_in(DEFAULT_DBNAME, sql)
    }

    /// [`PgCluster::query_one_value`] in another database.
    pub fn query_one_value_in(&self, dbname: &str, sql: &str) -> Result<Option<String>, FixtureError> {
        let output = client::query(&self.socket_config(dbname)?, sql)?;
        let rows = output.rows.len();
        let columns = output.rows.first().map_or(output.columns, Vec::len);
        if rows == 1 && columns == 1 {
            let value = output.rows.into_iter().next().and_then(|row| row.into_iter().next());
            return Ok(value.flatten());
        }
        Err(FixtureError::NotOneValue {
            sql: sql.to_owned(),
            rows,
            columns,
        })
    }

    /// Creates a database owned by `postgres`.
    pub fn create_database(&self, name: &str) -> Result<(), FixtureError> {
        self.execute(&format!("CREATE DATABASE {}", client::quote_ident(name)))
    }

    /// Whether the server process is alive.
    pub fn is_running(&mut self) -> bool {
        self.postmaster.as_mut().is_some_and(Postmaster::is_running)
    }

    /// Stops the server cleanly (fast shutdown: sessions are ended, a
    /// checkpoint is written). No-op when already stopped.
    pub fn stop(&mut self) -> Result<(), FixtureError> {
        self.shut_down(Shutdown::Fast)
    }

    /// Stops the server abruptly (immediate shutdown: no checkpoint), as a
    /// crash would; the next [`PgCluster::restart`] runs crash recovery.
    /// Committed transactions survive, since their WAL reached the OS.
    pub fn kill(&mut self) -> Result<(), FixtureError> {
        self.shut_down(Shutdown::Immediate)
    }

    /// Stops the server if it runs (cleanly), then starts it again on the
    /// same port with the same data.
    pub fn restart(&mut self) -> Result<(), FixtureError> {
        self.stop()?;
        match self.start_postmaster(self.port) {
            Ok(()) => Ok(()),
            Err(StartFailure::Failed(e)) => Err(e),
            Err(StartFailure::PortInUse) => Err(self.port_taken(format!(
                "port {} was taken by another process while the server was down",
                self.port
            ))),
        }
    }

    pub(crate) fn start_on_free_port(&mut self) -> Result<(), FixtureError> {
        for _ in 0..PORT_ATTEMPTS {
            match self.start_postmaster(process::free_port()?) {
                Ok(()) => return Ok(()),
                // Another process bound the port between our probe and the
                // server's bind; try a fresh one.
                Err(StartFailure::PortInUse) => continue,
                Err(StartFailure::Failed(e)) => return Err(e),
            }
        }
        Err(self.port_taken(format!(
            "{PORT_ATTEMPTS} free ports in a row were taken before the server could bind them"
        )))
    }

    fn port_taken(&self, reason: String) -> FixtureError {
        FixtureError::StartFailed {
            reason,
            log_file: self.log_file.clone(),
            log_tail: String::new(),
            source: None,
        }
    }

    fn start_postmaster(&mut self, port: u16) -> Result<(), StartFailure> {
        let probe = client::socket_config(&self.root, port, SERVER_ROLE, DEFAULT_DBNAME);
        let postmaster = Postmaster::start(&Launch {
            bin_dir: &self.bin_dir,
            data_dir: &self.data_dir,
            log_file: &self.log_file,
            port,
            run_as: self.run_as,
            probe: &probe,
            timeout: self.start_timeout,
        })?;
        self.port = port;
        self.postmaster = Some(postmaster);
        Ok(())
    }

    fn shut_down(&mut self, mode: Shutdown) -> Result<(), FixtureError> {
        match self.postmaster.take() {
            Some(mut postmaster) => postmaster.shut_down(mode).map(drop),
            None => Ok(()),
        }
    }

    fn socket_config(&self, dbname: &str) -> Result<tokio_postgres::Config, FixtureError> {
        if self.postmaster.is_none() {
            return Err(FixtureError::NotRunning);
        }
        Ok(client::socket_config(&self.root, self.port, SERVER_ROLE, dbname))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // The data is about to be deleted, so there is nothing to
        // checkpoint, unless it is being kept for inspection.
        let mode = if self.keep_on_drop {
            Shutdown::Fast
        } else {
            Shutdown::Immediate
        };
        // Errors cannot be reported from drop; shut_down escalates to
        // SIGKILL, so the process is gone either way.
        let _ = self.shut_down(mode);
        if let Some(dir) = self.dir.take() {
            if self.keep_on_drop {
                let root = dir.keep();
                eprintln!(
                    "pg-fixture: kept the cluster in {} (start it with: {} -D {} -p {})",
                    root.display(),
                    self.bin_dir.join("postgres").display(),
                    self.data_dir.display(),
                    self.port
                );
            } else {
                // Best effort: a failure leaves a directory in the temp
                // dir, which is better than panicking in drop.
                let _ = dir.close();
            }
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("a b@c/d%"), "a%20b%40c%2Fd%25");
        assert_eq!(percent_encode("Ab1-._~"), "Ab1-._~");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
