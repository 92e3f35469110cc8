//! `asof serve` with real clients: psql prints what it prints against
//! Postgres itself, psycopg's parameterized queries at a past moment give
//! Postgres's values and types then, passwords and TLS as configured,
//! writes refused, and a session at `now` following a running `tail`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pg_fixture::PgCluster;

use crate::support::*;

#[track_caller]
fn serve_check(args: &[&str]) -> String {
    python_check("serve_check.py", args)
}

const TYPES: &str = r#"
CREATE TABLE types (
  id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric(10,2), b bool,
  t text, v varchar(20), by bytea, d date, ts timestamp, tz timestamptz, u uuid, ai int4[], at text[],
  un numeric, j jsonb, iv interval);
INSERT INTO types VALUES
  (1, 1, -2, 9007199254740993, 0.1, 0.1, 12.50, true, 'plain', 'v', '\x00ff10', '2024-02-29',
   '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05+00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   '{1,NULL,3}', '{"a b","",x,"q\"\\"}', 1.5000, '{"k": [1, 2.5, null]}', '1 day 02:03:04'),
  (2, -32768, 2147483647, -1, 1e6, 1e20, -0.50, false, 'a,b "q"', '', '', '1999-12-31',
   '2000-01-01 00:00:00', '1970-01-01 00:00:00.5+00', '00000000-0000-0000-0000-000000000000',
   '{}', '{NULL,null}', -0.0001, '[]', '-1 mons'),
  (3, 0, 0, 0, -1.5e-7, 1.5e-7, 0, NULL, 'ünïcode ✓', NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, 'null', '00:00:00.000001'),
  (4, NULL, NULL, NULL, 'NaN', '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL);
CREATE TABLE customers (id int PRIMARY KEY, name text, region text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, status text, amount numeric(12,2));
INSERT INTO customers SELECT g, 'c' || g, (ARRAY['north','south','east'])[1 + g % 3] FROM generate_series(1, 30) g;
INSERT INTO orders SELECT g, 1 + g % 30, (ARRAY['new','paid','shipped'])[1 + g % 3], (g * 7 % 1000) / 4.0
  FROM generate_series(1, 500) g;
"#;

/// Values Postgres prints in ways only psql shows (BC dates, far years).
const EDGES: &str = "
CREATE TABLE edges (id int PRIMARY KEY, d date, ts timestamp, tz timestamptz);
INSERT INTO edges VALUES (1, '0044-03-15 BC', '0001-01-01 00:00:00 BC', '0001-12-31 23:59:59.999999+00 BC'),
  (2, '9999-12-31', '10000-01-01 00:00:00', '2262-04-11 23:47:16.854775+00');
";

/// A running `asof serve`, stopped when dropped.
struct Serve {
    child: Option<Child>,
    port: u16,
    stderr_path: PathBuf,
}

impl Serve {
    /// `asof --store <store> serve --listen 127.0.0.1:0 <args>`, once it listens.
    fn start(store: &Path, log_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
        let stderr_path = log_dir.join(format!("serve-{}.stderr", std::process::id() ^ rand_suffix()));
        let mut cmd = Command::new(BIN);
        for v in SCRUBBED_ENV {
            cmd.env_remove(v);
        }
        cmd.env_remove("ASOF_SERVE_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .arg("--store")
            .arg(store)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .expect("spawn asof serve");
        let mut serve = Serve {
            child: Some(child),
            port: 0,
            stderr_path,
        };
        let start = Instant::now();
        loop {
            let text = serve.stderr();
            // Only a whole line: the file can be read while it is written.
            let mut whole = text.split_inclusive('\n').filter_map(|l| l.strip_suffix('\n'));
            if let Some(addr) = whole.find_map(|l| l.strip_prefix("listening on ")) {
                serve.port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
                return serve;
            }
            if let Some(status) = serve.child.as_mut().expect("running").try_wait().expect("wait") {
                panic!("asof serve exited ({status}) before listening:\n{text}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "asof serve did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A libpq connection string to it.
    fn conninfo(&self, extra: &str) -> String {
        format!("host=127.0.0.1 port={} user=reader dbname=asof {extra}", self.port)
    }

    /// Sends SIGTERM; the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success());
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            if start.elapsed() > Duration::from_secs(30) {
                child.kill().ok();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// `psql -X -A -t` against `conninfo`, in UTC, with `-c` for each command.
fn psql_output(pg: &PgCluster, conninfo: &str, env: &[(&str, &str)], commands: &[&str]) -> Output {
    let mut cmd = Command::new(pg.pg_bin("psql"));
    for v in SCRUBBED_ENV {
        cmd.env_remove(v);
    }
    cmd.env("PGCLIENTENCODING", "UTF8")
        .env("PGTZ", "UTC")
        .env("PGCONNECT_TIMEOUT", "20");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args([
        "-X",
        "-A",
        "-t",
        "-w",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        "VERBOSITY=verbose",
        "-d",
        conninfo,
    ]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    cmd.output().expect("run psql")
}

/// psql's stdout, which must succeed.
#[track_caller]
fn psql_ok(pg: &PgCluster, conninfo: &str, env: &[(&str, &str)], commands: &[&str]) -> String {
    let o = psql_output(pg, conninfo, env, commands);
    assert!(
        o.status.success(),
        "psql {commands:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("UTF-8")
}

/// psql's stderr, which must fail.
#[track_caller]
fn psql_err(pg: &PgCluster, conninfo: &str, env: &[(&str, &str)], commands: &[&str]) -> String {
    let o = psql_output(pg, conninfo, env, commands);
    assert!(
        !o.status.success(),
        "psql {commands:?} succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A cluster with the `TYPES` tables and a store that has captured them.
fn types_captured() -> (PgCluster, tempfile::TempDir, Asof) {
    let pg = cluster();
    sql(&pg, TYPES);
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    (pg, dir, asof)
}

#[test]
fn serve_psql_prints_what_postgres_prints() {
    let pg = cluster();
    sql(&pg, TYPES);
    sql(&pg, EDGES);
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let mut serve = Serve::start(&asof.store, dir.path(), &[], &[]);
    let ours = serve.conninfo("");
    for query in [
        "SELECT * FROM types ORDER BY id",
        "SELECT * FROM edges ORDER BY id",
        "SELECT id, n, un, f4, f8 FROM types WHERE id = 2",
        "SELECT c.region, count(*) AS n, sum(o.amount) AS total FROM orders o JOIN customers c \
         ON c.id = o.customer_id GROUP BY c.region ORDER BY c.region",
        "SELECT id, status FROM orders WHERE id IN (3, 5, 700) ORDER BY id",
        "SELECT count(*) FROM orders WHERE id BETWEEN 10 AND 20 AND status = 'paid'",
    ] {
        let want = psql_ok(&pg, &pg.conninfo(), &[], &[query]);
        let got = psql_ok(&pg, &ours, &[], &[query]);
        assert_bytes_eq(got.as_bytes(), want.as_bytes(), query);
    }
    // Several statements in one simple query, and the settings clients ask for.
    let got = psql_ok(
        &pg,
        &ours,
        &[],
        &[
            "SELECT 1; SELECT 'two'",
            "SHOW server_encoding",
            "SHOW TimeZone",
            "SET client_encoding TO 'UTF8'",
            "SHOW standard_conforming_strings",
            "BEGIN",
            "SELECT count(*) FROM customers",
            "COMMIT",
        ],
    );
    assert_eq!(got, "1\ntwo\nUTF8\nUTC\nSET\non\nBEGIN\n30\nCOMMIT\n");
    // Errors come back as errors, and the connection goes on.
    let err = psql_err(&pg, &ours, &[], &["SELECT * FROM nowhere"]);
    assert!(err.contains("42P01"), "{err}");
    let err = psql_err(&pg, &ours, &[], &["SELEC 1"]);
    assert!(err.contains("42601"), "{err}");
    assert_eq!(serve.terminate(), Some(0), "{}", serve.stderr());
}

#[test]
fn serve_psycopg_with_parameters_at_a_past_moment() {
    let (pg, dir, asof) = types_captured();
    let then = moment(&pg);
    let recorded = dir.path().join("then.json");
    serve_check(&["record", &pg.conninfo(), recorded.to_str().expect("path")]);
    sql(
        &pg,
        "UPDATE types SET t = 'changed', f8 = 2 WHERE id <= 2; DELETE FROM types WHERE id = 3;
         UPDATE customers SET name = 'renamed' WHERE id % 2 = 0; DELETE FROM orders WHERE id % 5 = 0;
         INSERT INTO types (id, t) VALUES (9, 'new');",
    );
    asof.catch_up(&pg.conninfo());
    let serve = Serve::start(&asof.store, dir.path(), &[], &[]);
    let out = serve_check(&[
        "check",
        &serve.conninfo(""),
        &then.at_lsn(),
        recorded.to_str().expect("path"),
    ]);
    assert!(out.contains("queries agree"), "{out}");
}

/// The PostgreSQL JDBC driver's jar, fetched by the set-up script.
fn pgjdbc_jar() -> PathBuf {
    let jar = std::env::var_os("ASOF_PGJDBC_JAR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/asof-java/postgresql-42.7.11.jar"),
        PathBuf::from,
    );
    assert!(
        jar.is_file(),
        "{} is missing: scripts/setup.sh fetches it",
        jar.display()
    );
    jar
}

/// What the JDBC driver reads for `JdbcCheck.java`'s queries at `url`.
fn jdbc_check(url: &str, moment: Option<&str>) -> String {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/JdbcCheck.java");
    let out = Command::new("java")
        .arg("-Duser.timezone=UTC")
        .arg("-cp")
        .arg(pgjdbc_jar())
        .arg(program)
        .arg(url)
        .args(moment)
        .output()
        .expect("run java");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "JdbcCheck failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

#[test]
fn serve_psql_describes_tables_as_postgres_does() {
    let pg = cluster();
    sql(&pg, TYPES);
    sql(
        &pg,
        "CREATE SCHEMA sales; CREATE TABLE sales.regions (code text PRIMARY KEY, name varchar(30), rate numeric(5,3));",
    );
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let then = moment(&pg);
    let describe = ["\\dt", "\\dt sales.*", "\\d types", "\\d sales.regions"];
    let want: Vec<String> = describe
        .iter()
        .map(|c| psql_ok(&pg, &pg.conninfo(), &[], &[c]))
        .collect();
    sql(
        &pg,
        "ALTER TABLE types ADD COLUMN later timestamp(3); CREATE TABLE newer (id int PRIMARY KEY);",
    );
    asof.catch_up(&pg.conninfo());
    let mut serve = Serve::start(&asof.store, dir.path(), &[], &[]);
    let ours = serve.conninfo("");
    // At the earlier moment, psql describes what Postgres described then
    // (its `-t` leaves out the footers, such as the indexes Postgres lists).
    let set = format!("SET asof.at = '{}'", then.at_lsn());
    for (c, want) in describe.iter().zip(&want) {
        let got = psql_ok(&pg, &ours, &[], &[&set, c]);
        let got = got.strip_prefix("SET\n").unwrap_or(&got);
        assert_bytes_eq(got.as_bytes(), want.as_bytes(), c);
    }
    // At `now` it describes the table as altered, and the new table.
    let now = psql_ok(&pg, &ours, &[], &["\\d types", "\\dt"]);
    let want_now = psql_ok(&pg, &pg.conninfo(), &[], &["\\d types", "\\dt"]);
    assert_bytes_eq(now.as_bytes(), want_now.as_bytes(), "\\d types at now");
    assert!(
        now.contains("later|timestamp(3) without time zone") && now.contains("newer"),
        "{now}"
    );
    assert_eq!(serve.terminate(), Some(0), "{}", serve.stderr());
}

#[test]
fn serve_jdbc_reads_what_it_reads_from_postgres() {
    let (pg, dir, asof) = types_captured();
    let then = moment(&pg);
    let postgres_url = format!(
        "jdbc:postgresql://{}:{}/{}?user={}&sslmode=disable",
        pg.host(),
        pg.port(),
        pg.dbname(),
        pg.user()
    );
    let want = jdbc_check(&postgres_url, None);
    sql(
        &pg,
        "UPDATE types SET t = 'changed', f8 = 2 WHERE id <= 2; DELETE FROM types WHERE id = 3;
         DELETE FROM orders WHERE id % 5 = 0;",
    );
    asof.catch_up(&pg.conninfo());
    let serve = Serve::start(&asof.store, dir.path(), &[], &[]);
    let url = format!("jdbc:postgresql://127.0.0.1:{}/asof?user=reader", serve.port);
    let got = jdbc_check(&url, Some(&then.at_lsn()));
    assert_eq!(got.lines().count(), want.lines().count(), "got:\n{got}\nwant:\n{want}");
    for (g, w) in got.lines().zip(want.lines()) {
        assert_eq!(g, w, "JDBC reads differently from asof serve than from Postgres");
    }
    // At `now` it reads the changes.
    let now = jdbc_check(&url, None);
    assert!(now.contains("String changed"), "{now}");
}

#[test]
fn serve_cancels_a_running_query_on_request() {
    let (_pg, dir, asof) = types_captured();
    let serve = Serve::start(&asof.store, dir.path(), &[], &[]);
    let out = serve_check(&["cancel", &serve.conninfo("")]);
    assert!(
        out.contains("cancelled: canceling statement due to user request"),
        "{out}"
    );
    assert!(out.contains("the connection goes on"), "{out}");
}

#[test]
fn serve_requires_the_password_when_a_user_is_set() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);",
    );
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "s3cret pass\n").expect("write password");
    let serve = Serve::start(
        &asof.store,
        dir.path(),
        &[
            "--user",
            "reader",
            "--password-file",
            password_file.to_str().expect("path"),
        ],
        &[],
    );
    let got = psql_ok(
        &pg,
        &serve.conninfo(""),
        &[("PGPASSWORD", "s3cret pass")],
        &["SELECT count(*) FROM t"],
    );
    assert_eq!(got, "2\n");
    let err = psql_err(&pg, &serve.conninfo(""), &[("PGPASSWORD", "wrong")], &["SELECT 1"]);
    assert!(err.contains("password authentication failed"), "{err}");
    let err = psql_err(&pg, &serve.conninfo(""), &[], &["SELECT 1"]);
    assert!(err.contains("password"), "{err}");
    let other_user = format!("host=127.0.0.1 port={} user=someone dbname=asof", serve.port);
    let err = psql_err(&pg, &other_user, &[("PGPASSWORD", "s3cret pass")], &["SELECT 1"]);
    assert!(err.contains("password authentication failed"), "{err}");
    // The password from the environment works the same way.
    let env_serve = Serve::start(
        &asof.store,
        dir.path(),
        &["--user", "reader"],
        &[("ASOF_SERVE_PASSWORD", "envpw")],
    );
    let got = psql_ok(&pg, &env_serve.conninfo(""), &[("PGPASSWORD", "envpw")], &["SELECT 1"]);
    assert_eq!(got, "1\n");
    // No password and not loopback: refused before listening.
    let err = asof.run(&["serve", "--listen", "0.0.0.0:0"]).runtime_error();
    assert!(err.contains("not a loopback address"), "{err}");
    let err = asof.run(&["serve", "--user", "reader"]).usage_error();
    assert!(err.contains("ASOF_SERVE_PASSWORD"), "{err}");
}

#[test]
fn serve_over_tls_with_a_self_signed_certificate() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t VALUES (1, 'tls');",
    );
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        st.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let (cert_s, key_s) = (cert.to_str().expect("path"), key.to_str().expect("path"));
    let serve = Serve::start(
        &asof.store,
        dir.path(),
        &["--tls-cert", cert_s, "--tls-key", key_s, "--user", "reader"],
        &[("ASOF_SERVE_PASSWORD", "pw")],
    );
    let got = psql_ok(
        &pg,
        &serve.conninfo("sslmode=require"),
        &[("PGPASSWORD", "pw")],
        &["SELECT s FROM t", "\\conninfo"],
    );
    assert!(got.starts_with("tls\n"), "{got}");
    assert!(got.contains("SSL connection"), "not over TLS: {got}");
    // Unreadable or unusable certificates stop the server with one line.
    let err = asof
        .run(&["serve", "--tls-cert", "/nonexistent.pem", "--tls-key", key_s])
        .runtime_error();
    assert!(err.contains("/nonexistent.pem"), "{err}");
    let err = asof
        .run(&["serve", "--tls-cert", key_s, "--tls-key", key_s])
        .runtime_error();
    assert!(err.contains("TLS"), "{err}");
}

#[test]
fn serve_refuses_writes_and_bad_starts() {
    let pg = cluster();
    sql(&pg, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let serve = Serve::start(&asof.store, dir.path(), &[], &[]);
    let ours = serve.conninfo("");
    for write in [
        "INSERT INTO t VALUES (2)",
        "UPDATE t SET id = 3",
        "DELETE FROM t",
        "CREATE TABLE u (a int)",
        "DROP TABLE t",
    ] {
        let err = psql_err(&pg, &ours, &[], &[write]);
        assert!(err.contains("25006") && err.contains("read-only"), "{write}: {err}");
    }
    let err = psql_err(&pg, &ours, &[], &["SET asof.at = 'yesterday-ish'"]);
    assert!(err.contains("22023") && err.contains("invalid time"), "{err}");
    // The store is unchanged and still answers.
    assert_eq!(psql_ok(&pg, &ours, &[], &["SELECT count(*) FROM t"]), "1\n");
    // The same port twice, and a store that is not there.
    let port = serve.port.to_string();
    let err = asof
        .run(&["serve", "--listen", &format!("127.0.0.1:{port}")])
        .runtime_error();
    assert!(err.contains("cannot listen"), "{err}");
    let err = Asof::new(dir.path().join("missing")).run(&["serve"]).runtime_error();
    assert!(err.contains("store"), "{err}");
}

#[test]
fn serve_session_at_now_follows_a_running_tail_and_set_at_fixes_a_moment() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t VALUES (1, 'a');",
    );
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let then = moment(&pg);
    let mut tail = Tail::spawn(&asof.store, &pg.conninfo(), dir.path());
    let serve = Serve::start(&asof.store, dir.path(), &[], &[]);
    let ours = serve.conninfo("");
    assert_eq!(psql_ok(&pg, &ours, &[], &["SELECT count(*) FROM t"]), "1\n");
    sql(
        &pg,
        "INSERT INTO t VALUES (2, 'b'), (3, 'c'); UPDATE t SET s = 'A' WHERE id = 1;",
    );
    eventually("the new rows through asof serve", Duration::from_secs(60), || {
        psql_ok(&pg, &ours, &[], &["SELECT count(*) FROM t"]) == "3\n"
    });
    assert_eq!(psql_ok(&pg, &ours, &[], &["SELECT s FROM t WHERE id = 1"]), "A\n");
    // A statement prepared once (tokio-postgres: extended protocol, binary
    // results) answers at the latest cut each time it runs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&ours, tokio_postgres::NoTls)
            .await
            .expect("connect with tokio-postgres");
        tokio::spawn(connection);
        let stmt = client.prepare("SELECT s FROM t WHERE id = $1").await.expect("prepare");
        let s: String = client.query_one(&stmt, &[&2i32]).await.expect("run").get(0);
        assert_eq!(s, "b");
        sql(&pg, "UPDATE t SET s = 'B' WHERE id = 2");
        let start = Instant::now();
        loop {
            let s: String = client.query_one(&stmt, &[&2i32]).await.expect("run again").get(0);
            if s == "B" {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the update never showed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // One session: a fixed moment, then back to now.
    let at = format!("SET asof.at = '{}'", then.at_lsn());
    let got = psql_ok(
        &pg,
        &ours,
        &[],
        &[
            &at,
            "SELECT count(*), min(s) FROM t",
            "RESET asof.at",
            "SELECT count(*), min(s) FROM t",
            "SHOW asof.at",
        ],
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[..4], ["SET", "1|a", "RESET", "3|A"], "{got}");
    assert!(lines[4].starts_with("now: as of "), "{got}");
    assert_eq!(tail.terminate(Duration::from_secs(30)), Some(0), "{}", tail.stderr());
}

/// A small xorshift generator: the test's filters differ from run to run
/// and the seed is printed to replay one.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn int(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Random filters on the key columns of `k` (id int8) and `p` (a text, b int).
fn key_queries(rng: &mut Rng, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (x, y, z) = (rng.int(-200, 1300), rng.int(-200, 1300), rng.int(-200, 1300));
        let k = match rng.next() % 11 {
            0 => format!("id = {x}"),
            1 => format!("{x} = id"),
            2 => format!("id IN ({x}, {y}, {z}, {x})"),
            3 => format!("id BETWEEN {} AND {}", x.min(y), x.max(y)),
            4 => format!("id > {x}"),
            5 => format!("id >= {} AND id < {}", x.min(y), x.min(y) + rng.int(0, 40)),
            6 => format!("id < {x}"),
            7 => format!("id = {x} AND v > 0"),
            8 => format!("id IN ({x}, {y}) AND id > {z}"),
            9 => format!("id <= {x} OR v = 3"),
            _ => format!("id BETWEEN {x} AND {x}"),
        };
        out.push(format!("SELECT * FROM k WHERE {k} ORDER BY id"));
        let a = |rng: &mut Rng| format!("{}{}", rng.pick(&["a", "b", "c", "d", "e", "x"]), rng.int(0, 70));
        let (a1, a2, b) = (a(rng), a(rng), rng.int(0, 7));
        let p = match rng.next() % 7 {
            0 => format!("a = '{a1}' AND b = {b}"),
            1 => format!("a = '{a1}' AND b IN ({b}, {})", b + 1),
            2 => format!("a IN ('{a1}', '{a2}') AND b IN (0, 1, 6)"),
            3 => format!("a > '{a1}'"),
            4 => format!("a BETWEEN '{}' AND '{}'", a1.clone().min(a2.clone()), a1.max(a2)),
            5 => format!("a = '{a1}'"),
            _ => format!("a < '{a1}' AND b = {b}"),
        };
        out.push(format!("SELECT * FROM p WHERE {p} ORDER BY a, b"));
    }
    out
}

#[test]
fn serve_key_filters_answer_as_postgres_does() {
    let seed = std::env::var("ASOF_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(rand_suffix()) | 1);
    println!("ASOF_TEST_SEED={seed}");
    let mut rng = Rng(seed);
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE k (id int8 PRIMARY KEY, v int);
         CREATE TABLE p (a text COLLATE \"C\", b int, v text, PRIMARY KEY (a, b));
         INSERT INTO k SELECT g * 3, g FROM generate_series(-50, 400) g;
         INSERT INTO p SELECT chr(97 + g % 5) || (g / 5), g % 7, 'v' || g FROM generate_series(0, 300) g
           ON CONFLICT DO NOTHING;",
    );
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let then = moment(&pg);
    let queries = key_queries(&mut rng, 40);
    let commands: Vec<&str> = queries.iter().map(String::as_str).collect();
    let want_then = psql_ok(&pg, &pg.conninfo(), &[], &commands);
    sql(
        &pg,
        "UPDATE k SET v = -v WHERE id % 4 = 0; DELETE FROM k WHERE id % 7 = 0;
         INSERT INTO k SELECT g * 3 + 1, g FROM generate_series(0, 100) g;
         UPDATE p SET v = 'changed' WHERE b = 2; DELETE FROM p WHERE b = 5;
         INSERT INTO p SELECT 'e' || g, 9, 'new' FROM generate_series(0, 30) g;",
    );
    asof.catch_up(&pg.conninfo());
    let want_now = psql_ok(&pg, &pg.conninfo(), &[], &commands);
    let serve = Serve::start(&asof.store, dir.path(), &[], &[]);
    let got_now = psql_ok(&pg, &serve.conninfo(""), &[], &commands);
    assert_bytes_eq(got_now.as_bytes(), want_now.as_bytes(), "key filters now");
    let at = format!("SET asof.at = '{}'", then.at_lsn());
    let mut with_at = vec![at.as_str()];
    with_at.extend(&commands);
    let got_then = psql_ok(&pg, &serve.conninfo(""), &[], &with_at);
    let got_then = got_then.strip_prefix("SET\n").expect("SET first");
    assert_bytes_eq(
        got_then.as_bytes(),
        want_then.as_bytes(),
        "key filters at a past moment",
    );
}

/// The private directories of readers under `tmp`.
fn reader_dirs(tmp: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(tmp)
        .expect("read the temporary directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("asof-reader"))
        })
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn a_killed_reader_leaves_no_directory_once_another_reader_opens() {
    let pg = cluster();
    sql(&pg, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp dir");
    let tmp_env = tmp.to_str().expect("utf-8 path");

    // Stopped as a service manager stops it: its directory goes with it.
    let mut stopped = Serve::start(&asof.store, dir.path(), &[], &[("TMPDIR", tmp_env)]);
    assert_eq!(reader_dirs(&tmp).len(), 1, "a reader has its own directory");
    assert_eq!(stopped.terminate(), Some(0));
    assert_eq!(reader_dirs(&tmp), Vec::<PathBuf>::new());

    // Killed: nothing runs to remove it, so the next reader does.
    let killed = Serve::start(&asof.store, dir.path(), &[], &[("TMPDIR", tmp_env)]);
    let left = reader_dirs(&tmp);
    assert_eq!(left.len(), 1);
    drop(killed);
    assert_eq!(reader_dirs(&tmp), left, "a killed reader cannot clean up");
    let live = Serve::start(&asof.store, dir.path(), &[], &[("TMPDIR", tmp_env)]);
    let now = reader_dirs(&tmp);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, left, "the killed reader's directory is gone");
    // A reader beside a live one leaves the live one's directory alone.
    let out = asof_with(
        ["--store", asof.store.to_str().expect("utf-8 path"), "tables"],
        &[("TMPDIR", tmp_env)],
        Duration::from_secs(60),
    )
    .ok();
    assert!(out.text().contains("public.t"), "{}", out.text());
    assert_eq!(reader_dirs(&tmp), now);
    assert_eq!(
        psql_ok(&pg, &live.conninfo(""), &[], &["SELECT count(*) FROM t"]),
        "1\n"
    );
}
