//! Helpers for running `asof` as a real process and for asking a fixture
//! PostgreSQL what it shows (COPY CSV bytes, WAL position, clock).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pg_fixture::PgCluster;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_asof");

/// Every subcommand, in the order the help examples run.
pub const SUBCOMMANDS: &[&str] = &[
    "tail",
    "follow",
    "snapshot",
    "get",
    "history",
    "diff",
    "changes",
    "tables",
    "sql",
    "export",
    "status",
    "compact",
    "verify",
    "demo",
    "uninstall",
];

/// How long any single `asof` invocation may take before the test gives up.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Environment variables that would change what `asof` or `psql` do.
pub const SCRUBBED_ENV: &[&str] = &[
    "ASOF_STORE",
    "ASOF_LOG",
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGOPTIONS",
    "PGTZ",
    "PGDATESTYLE",
    "PGCLIENTENCODING",
    "PGSERVICE",
    "PGSSLMODE",
];

/// What one `asof` run did.
#[derive(Debug)]
pub struct Out {
    /// What was run (for failure messages).
    pub what: String,
    /// Exit code; `None` when killed (by the timeout).
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    fn from_output(what: String, o: Output) -> Out {
        Out {
            what,
            code: o.status.code(),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Stdout as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap_or_else(|_| panic!("{}: stdout is not UTF-8", self.what))
    }

    /// Everything printed, for searching for secrets.
    pub fn everything(&self) -> String {
        format!("{}{}", String::from_utf8_lossy(&self.stdout), self.stderr)
    }

    fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.code,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }

    /// No panic, no backtrace hint, whatever the outcome.
    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "a panic:\n{}",
            self.describe()
        );
        assert!(self.code.is_some(), "killed after the timeout:\n{}", self.describe());
        self
    }

    /// Exit code 0 and no panic.
    #[track_caller]
    pub fn ok(self) -> Out {
        self.assert_no_panic();
        assert_eq!(self.code, Some(0), "expected success:\n{}", self.describe());
        assert!(
            !self.stderr.lines().any(|l| l.starts_with("asof: ")),
            "an error line on success:\n{}",
            self.describe()
        );
        self
    }

    /// Exit code 2 and one `asof: ` error line (returned without the prefix).
    #[track_caller]
    pub fn usage_error(self) -> String {
        self.assert_no_panic();
        assert_eq!(
            self.code,
            Some(2),
            "expected a usage error (exit 2):\n{}",
            self.describe()
        );
        self.error_line()
    }

    /// Exit code 1 and one `asof: ` error line (returned without the prefix).
    #[track_caller]
    pub fn runtime_error(self) -> String {
        self.assert_no_panic();
        assert_eq!(
            self.code,
            Some(1),
            "expected a runtime error (exit 1):\n{}",
            self.describe()
        );
        self.error_line()
    }

    /// Exit code 2 from the argument parser (clap's own report).
    #[track_caller]
    pub fn clap_error(self) -> String {
        self.assert_no_panic();
        assert_eq!(
            self.code,
            Some(2),
            "expected a usage error (exit 2):\n{}",
            self.describe()
        );
        assert!(
            self.stdout.is_empty(),
            "data on stdout with an error:\n{}",
            self.describe()
        );
        assert!(
            self.stderr.starts_with("error: "),
            "not a clap error:\n{}",
            self.describe()
        );
        self.stderr
    }

    /// The error is the last line of stderr, the only one starting with
    /// `asof: `; nothing went to stdout.
    #[track_caller]
    fn error_line(&self) -> String {
        assert!(
            self.stdout.is_empty(),
            "data on stdout with an error:\n{}",
            self.describe()
        );
        let errors: Vec<&str> = self.stderr.lines().filter(|l| l.starts_with("asof: ")).collect();
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one `asof: ` line:\n{}",
            self.describe()
        );
        let last = self.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
        assert_eq!(
            last,
            errors[0],
            "the error is not the last line of stderr (a multi-line error?):\n{}",
            self.describe()
        );
        assert!(
            !self.stderr.contains("Caused by") && !self.stderr.contains("Error {"),
            "{}",
            self.describe()
        );
        errors[0]["asof: ".len()..].to_string()
    }
}

/// Runs `asof` with these arguments (no implicit `--store`).
pub fn asof_raw<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Out {
    asof_with(args, &[], DEFAULT_TIMEOUT)
}

/// Runs `asof` with arguments, extra environment and a time limit.
pub fn asof_with<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>, env: &[(&str, &str)], timeout: Duration) -> Out {
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
    let what = format!(
        "asof {}",
        args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    );
    let mut cmd = assert_cmd::Command::new(BIN);
    for v in SCRUBBED_ENV {
        cmd.env_remove(v);
    }
    cmd.env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(&args).timeout(timeout);
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    Out::from_output(what, o)
}

/// `asof --store <dir> ...` for one store.
#[derive(Clone, Debug)]
pub struct Asof {
    pub store: PathBuf,
}

impl Asof {
    pub fn new(store: impl Into<PathBuf>) -> Asof {
        Asof { store: store.into() }
    }

    /// Runs `asof --store <store> <args>`.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_timeout(args, DEFAULT_TIMEOUT)
    }

    /// Like [`Asof::run`] with a time limit.
    pub fn run_timeout(&self, args: &[&str], timeout: Duration) -> Out {
        let mut all: Vec<&OsStr> = vec![OsStr::new("--store"), self.store.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        asof_with(all, &[], timeout)
    }

    /// `asof tail <conninfo> --until caught-up`, which must succeed.
    pub fn catch_up(&self, conninfo: &str) -> Out {
        self.run(&["tail", conninfo, "--until", "caught-up"]).ok()
    }

    /// The commit LSN a WHEN resolves to (as `tables` states it on stderr).
    pub fn cut_lsn(&self, when: &str) -> String {
        let out = self.run(&["tables", "--at", when]).ok();
        out.stderr
            .split("(lsn ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or_else(|| panic!("no cut in {}", out.stderr))
            .to_string()
    }

    /// `snapshot <table> --at <when> --format csv`, which must succeed.
    pub fn snapshot_csv(&self, table: &str, at: &str) -> Out {
        self.run(&["snapshot", table, "--at", at, "--format", "csv"]).ok()
    }
}

/// A moment Postgres showed right after a commit.
#[derive(Clone, Debug)]
pub struct Moment {
    /// `pg_current_wal_lsn()`, e.g. `0/16B3748`.
    pub lsn: String,
    /// `clock_timestamp()` as `2026-11-20T09:00:00.123456Z`.
    pub rfc3339: String,
    /// The same instant as `2026-11-20 18:00:00.123456+09`.
    pub offset_form: String,
    /// The same instant as `2026-11-20 09:00:00.123456` (no offset: UTC).
    pub naive_utc: String,
}

impl Moment {
    /// `lsn:<lsn>`.
    pub fn at_lsn(&self) -> String {
        format!("lsn:{}", self.lsn)
    }
}

/// Reads the WAL position and the clock right now.
pub fn moment(pg: &PgCluster) -> Moment {
    let rows = pg
        .query_rows(
            "WITH c AS (SELECT clock_timestamp() AS t) \
             SELECT pg_current_wal_lsn()::text, \
                    to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
                    to_char(t AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI:SS.US') || '+09', \
                    to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') \
             FROM c",
        )
        .expect("read the moment");
    let r = &rows[0];
    let v = |i: usize| r[i].clone().expect("non-null");
    Moment {
        lsn: v(0),
        rfc3339: v(1),
        offset_form: v(2),
        naive_utc: v(3),
    }
}

/// Runs SQL through `psql` (TCP, the fixture's conninfo) and returns stdout
/// exactly as printed.
pub fn psql(pg: &PgCluster, sql: &str) -> Vec<u8> {
    let mut cmd = std::process::Command::new(pg.pg_bin("psql"));
    for v in SCRUBBED_ENV {
        cmd.env_remove(v);
    }
    cmd.env("PGCLIENTENCODING", "UTF8");
    let o = cmd
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &pg.conninfo(), "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        o.status.success(),
        "psql failed on {sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// `COPY (<query>) TO STDOUT (FORMAT csv, HEADER)`, byte for byte.
pub fn copy_csv(pg: &PgCluster, query: &str) -> Vec<u8> {
    psql(pg, &format!("COPY ({query}) TO STDOUT (FORMAT csv, HEADER)"))
}

/// Runs SQL with the fixture's helper.
pub fn sql(pg: &PgCluster, sql: &str) {
    pg.execute(sql).unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"));
}

/// Shows bytes readably in an assertion message.
pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts two byte strings are equal, printing both as text when not.
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], want: &[u8], context: &str) {
    if got != want {
        panic!(
            "{context}: output differs from Postgres\n--- asof ---\n{}\n--- postgres ---\n{}",
            show(got),
            show(want)
        );
    }
}

/// Polls `cond` until it holds or `limit` passes.
#[track_caller]
pub fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh scratch directory.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("asof-cli-test")
        .tempdir()
        .expect("tempdir")
}

/// A store path inside `dir` (not yet created).
pub fn store_in(dir: &Path) -> PathBuf {
    dir.join("store")
}

/// Parses JSON lines.
pub fn json_lines(out: &Out) -> Vec<serde_json::Value> {
    out.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {l}", out.what)))
        .collect()
}

/// Starts a default fixture cluster.
pub fn cluster() -> PgCluster {
    PgCluster::start().expect("start a fixture PostgreSQL")
}

/// A cluster holding the small shop used by the query tests, captured into
/// a store, with the moments after each step.
pub struct Shop {
    pub pg: PgCluster,
    pub _dir: tempfile::TempDir,
    pub asof: Asof,
    /// m[0]: after the initial copy; m[1..]: after each later transaction.
    pub m: Vec<Moment>,
}

/// The shop's schema and rows before the first capture (they arrive by
/// the initial copy).
pub const SHOP_SCHEMA: &str = "
CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, amount numeric(10,2), note text);
CREATE TABLE order_lines (order_id bigint, line_no int, sku text, qty int, PRIMARY KEY (order_id, line_no));
INSERT INTO orders VALUES (1, 'new', 10.00, NULL), (2, 'new', 20.50, 'gift');
INSERT INTO order_lines VALUES (1, 1, 'apple', 3), (1, 2, 'pear', 1), (2, 1, 'fig', 7);
";

/// The shop's transactions after the initial copy; a moment is taken after each.
pub const SHOP_TXNS: &[&str] = &[
    // m1
    "BEGIN;
     INSERT INTO orders VALUES (3, 'new', 5.25, '');
     UPDATE orders SET status = 'paid' WHERE id = 1;
     UPDATE order_lines SET qty = 4 WHERE order_id = 1 AND line_no = 1;
     COMMIT;",
    // m2
    "BEGIN;
     UPDATE orders SET status = 'shipped', note = 'fast' WHERE id = 1;
     DELETE FROM orders WHERE id = 2;
     DELETE FROM order_lines WHERE order_id = 2;
     COMMIT;",
    // m3
    "BEGIN;
     CREATE TABLE refunds (id int PRIMARY KEY, order_id bigint, amount numeric(10,2));
     INSERT INTO refunds VALUES (1, 3, 5.25);
     INSERT INTO orders VALUES (2, 'reborn', 1.00, NULL);
     UPDATE orders SET amount = 99.99 WHERE id = 3;
     COMMIT;",
    // m4
    "TRUNCATE order_lines;",
    // m5
    "INSERT INTO order_lines VALUES (3, 1, 'kiwi', 2);",
];

impl Shop {
    /// Builds the shop: schema, initial copy, the transactions, a final catch-up.
    pub fn build() -> Shop {
        let pg = cluster();
        sql(&pg, SHOP_SCHEMA);
        let dir = scratch();
        let asof = Asof::new(store_in(dir.path()));
        asof.catch_up(&pg.conninfo());
        let mut m = vec![moment(&pg)];
        for t in SHOP_TXNS {
            sql(&pg, t);
            m.push(moment(&pg));
        }
        asof.catch_up(&pg.conninfo());
        Shop { pg, _dir: dir, asof, m }
    }

    /// Postgres's CSV of a shop table now.
    pub fn pg_csv(&self, table: &str) -> Vec<u8> {
        let order = if table == "order_lines" {
            "order_id, line_no"
        } else {
            "id"
        };
        copy_csv(&self.pg, &format!("SELECT * FROM {table} ORDER BY {order}"))
    }
}

/// An LSN's numeric value (`0/16B3748` -> 0x16B3748; empty -> 0).
pub fn lsn_value(s: &str) -> u64 {
    if s.is_empty() {
        return 0;
    }
    let s = s.strip_prefix("lsn:").unwrap_or(s);
    let (hi, lo) = s.split_once('/').unwrap_or_else(|| panic!("not an LSN: {s}"));
    (u64::from_str_radix(hi, 16).expect("hex") << 32) | u64::from_str_radix(lo, 16).expect("hex")
}

/// psql-style table: every `|` of the header lines up with those of every
/// row, the separator has `+` there, and a row count closes it.
#[track_caller]
pub fn assert_aligned(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "too short for a table:\n{text}");
    let bars = |l: &str| -> Vec<usize> {
        l.chars()
            .enumerate()
            .filter(|(_, ch)| *ch == '|' || *ch == '+')
            .map(|(i, _)| i)
            .collect()
    };
    for l in &lines {
        assert!(
            !l.chars().any(char::is_control),
            "a raw control character breaks the layout: {l:?}\nin\n{text}"
        );
    }
    let header = bars(lines[0]);
    assert_eq!(bars(lines[1]), header, "separator misaligned:\n{text}");
    assert!(lines[1].chars().all(|c| c == '-' || c == '+'), "separator:\n{text}");
    let width = lines[1].chars().count();
    let last = lines.len() - 1;
    assert!(
        lines[last].starts_with('(') && lines[last].ends_with(')'),
        "row count at the end:\n{text}"
    );
    for l in &lines[2..last] {
        let b = bars(l);
        assert!(header.iter().all(|p| b.contains(p)), "row misaligned:\n{l}\nin\n{text}");
        assert!(
            l.chars().count() <= width,
            "row wider than the separator:\n{l}\nin\n{text}"
        );
    }
}

/// Runs a group of checks, recording a failure instead of stopping, so that
/// one failing group does not hide the others; see [`assert_no_problems`].
pub fn check(problems: &mut Vec<String>, what: &str, f: impl FnOnce()) {
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        problems.push(format!("{what}: {msg}"));
    }
}

/// Fails with every recorded problem.
#[track_caller]
pub fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} failed group(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// A background `asof tail`, killed hard if the test fails before it ends.
pub struct Tail {
    child: Option<Child>,
    stderr_path: std::path::PathBuf,
}

impl Tail {
    pub fn spawn(store: &std::path::Path, conninfo: &str, log_dir: &std::path::Path) -> Tail {
        Tail::spawn_with(store, conninfo, log_dir, &[])
    }

    /// [`Tail::spawn`] with more options after the connection string.
    pub fn spawn_with(store: &std::path::Path, conninfo: &str, log_dir: &std::path::Path, options: &[&str]) -> Tail {
        let stderr_path = log_dir.join("tail.stderr");
        let stdout_path = log_dir.join("tail.stdout");
        let mut cmd = Command::new(BIN);
        cmd.env_remove("ASOF_STORE")
            .env_remove("RUST_BACKTRACE")
            .env_remove("PGPASSWORD");
        let child = cmd
            .arg("--store")
            .arg(store)
            .args(["tail", conninfo])
            .args(options)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .expect("spawn asof tail");
        Tail {
            child: Some(child),
            stderr_path,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let pid = child.id().to_string();
        let st = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(st.success(), "kill -TERM {pid} failed");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status.code();
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The Python with pyarrow, duckdb and psycopg that scripts/setup.sh installs.
fn python() -> std::path::PathBuf {
    let venv = std::env::var_os("ASOF_PYTHON_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/asof-python/venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "no Python venv at {}: run scripts/setup.sh",
        python.display()
    );
    python
}

/// Runs the check script `tests/cli/NAME` with that Python; it must exit 0.
/// Returns what it printed.
#[track_caller]
pub fn python_check(name: &str, args: &[&str]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cli")
        .join(name);
    let o = std::process::Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    assert!(
        o.status.success(),
        "{name} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
