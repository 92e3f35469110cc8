//! Creating a cluster: the builder's options, `initdb` and the first start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cluster::{PgCluster, SERVER_ROLE};
use crate::conf::{self, ServerConf, TcpAuth};
use crate::privileges::RunAs;
use crate::{binaries, FixtureError};

/// Default time the server gets to accept connections after a start.
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Options for a [`PgCluster`]; get one from [`PgCluster::builder`].
///
/// ```no_run
/// let cluster = pg_fixture::PgCluster::builder()
///     .setting("max_wal_size", "1GB")
///     .durable(true)
///     .start()?;
/// # Ok::<(), pg_fixture::FixtureError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct PgClusterBuilder {
    settings: Vec<(String, String)>,
    durable: bool,
    password: Option<String>,
    keep_on_drop: bool,
    bin_dir: Option<PathBuf>,
    parent_dir: Option<PathBuf>,
    start_timeout: Duration,
}

impl Default for PgClusterBuilder {
    fn default() -> Self {
        PgClusterBuilder {
            settings: Vec::new(),
            durable: false,
            password: None,
            keep_on_drop: false,
            bin_dir: None,
            parent_dir: None,
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }
}

impl PgClusterBuilder {
    /// Adds a `postgresql.conf` parameter. It is written after the
    /// fixture's own settings, so it overrides them (except the port,
    /// which is given on the server's command line).
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Keeps `fsync` on (and lets `initdb` sync), for tests about
    /// durability itself. Off by default because it only costs time when
    /// the data is thrown away.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Requires `scram-sha-256` password authentication on TCP and gives
    /// the `postgres` role this password. [`PgCluster::config`],
    /// [`PgCluster::conninfo`] and [`PgCluster::uri`] then carry it. The
    /// Unix socket stays trusted; the fixture's SQL helpers use it.
    pub fn password_auth(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// On drop, shuts the server down cleanly but keeps its directory, and
    /// prints where it is to stderr. For debugging a failing test.
    pub fn keep_on_drop(mut self, keep: bool) -> Self {
        self.keep_on_drop = keep;
        self
    }

    /// Uses the server binaries in `dir` instead of searching
    /// (`$ASOF_PG_BIN`, `PATH`, `/usr/lib/postgresql/*/bin`).
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Creates the cluster's directory under `dir` instead of the system
    /// temp directory (e.g. to benchmark on a particular disk). Keep the
    /// path short: the Unix socket lives there, and socket paths are
    /// limited to about 100 bytes.
    pub fn parent_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.parent_dir = Some(dir.into());
        self
    }

    /// How long the server may take to accept connections after a start
    /// (default 60 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Creates the cluster with `initdb` and starts the server on a free
    /// port. On error nothing is left behind.
    pub fn start(self) -> Result<PgCluster, FixtureError> {
        for (name, _) in &self.settings {
            conf::validate_setting_name(name)?;
        }
        let bin_dir = binaries::locate(self.bin_dir.as_deref())?;
        let run_as = RunAs::for_current_process()?;

        let parent = self.parent_dir.unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("asof-pg-")
            .tempdir_in(&parent)
            .map_err(|e| FixtureError::io(format!("creating the cluster directory in {}", parent.display()), e))?;
        let root = dir.path().to_path_buf();
        let data_dir = root.join("data");
        let log_file = root.join("postgres.log");
        let chown = |path: &Path| match run_as {
            Some(run_as) => run_as
                .chown_recursive(path)
                .map_err(|e| FixtureError::io(format!("handing {} to the server user", path.display()), e)),
            None => Ok(()),
        };

        // initdb creates data/ inside root, as the server user.
        chown(&root)?;
        initdb(&bin_dir, &data_dir, &root, self.durable, run_as)?;
        conf::append_server_conf(
            &data_dir,
            &ServerConf {
                socket_dir: &root,
                durable: self.durable,
                extra: &self.settings,
            },
        )?;
        let tcp_auth = match self.password {
            Some(_) => TcpAuth::ScramSha256,
            None => TcpAuth::Trust,
        };
        conf::write_hba(&data_dir, tcp_auth)?;
        std::fs::File::create(&log_file)
            .map_err(|e| FixtureError::io(format!("creating {}", log_file.display()), e))?;
        chown(&root)?;

        let mut cluster = PgCluster::new(crate::cluster::Parts {
            dir,
            data_dir,
            log_file,
            bin_dir,
            run_as,
            password: self.password,
            keep_on_drop: self.keep_on_drop,
            start_timeout: self.start_timeout,
        });
        // From here on, dropping `cluster` on error cleans up.
        cluster.start_on_free_port()?;
        if let Some(password) = cluster.password().map(str::to_owned) {
            cluster.execute(&format!(
                "ALTER ROLE {} PASSWORD {}",
                crate::client::quote_ident(SERVER_ROLE),
                crate::client::quote_literal(&password)
            ))?;
        }
        Ok(cluster)
    }
}

fn initdb(
    bin_dir: &Path,
    data_dir: &Path,
    cwd: &Path,
    durable: bool,
    run_as: Option<RunAs>,
) -> Result<(), FixtureError> {
    let mut command = Command::new(bin_dir.join("initdb"));
    command
        .arg("-D")
        .arg(data_dir)
        .arg("--auth=trust")
        .arg(format!("--username={SERVER_ROLE}"))
        .arg("--encoding=UTF8")
        // C collation: byte order, identical on every machine.
        .arg("--locale=C")
        .current_dir(cwd)
        .stdin(Stdio::null());
    if !durable {
        command.arg("--no-sync");
    }
    if let Some(run_as) = run_as {
        run_as.apply(&mut command);
    }
    let output = command
        .output()
        .map_err(|e| FixtureError::io(format!("running {}", bin_dir.join("initdb").display()), e))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Err(FixtureError::InitdbFailed {
        status: output.status,
        output: text,
    })
}
