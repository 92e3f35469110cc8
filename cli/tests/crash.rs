//! Crash safety of the capture: `asof tail` is killed with SIGKILL at
//! random moments while a workload runs, and restarted each time, reading
//! what piled up either through the replication stream or through the SQL
//! decoding interface. Some transactions exceed the server's decoding
//! memory, so the server streams them before they end. In the
//! end the store must answer, at every commit, exactly what Postgres showed:
//! no change lost, none stored twice.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use asof_tests::{assert_matches, connect, conninfo, observe};
use changelog::Lsn;
use pg_fixture::PgCluster;

const TABLES: [(&str, &str); 2] = [("t", "id"), ("big", "id")];

/// A small deterministic generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The xid of every stored transaction, in commit order.
fn stored_xids(store: &changelog::Store) -> Vec<u32> {
    store
        .commits(Lsn::ZERO, Lsn::MAX)
        .expect("commits")
        .iter()
        .map(|c| c.xid.0)
        .collect()
}

/// What a test captures with: the source's conninfo, a store in a
/// directory of its own, and the `asof` binary.
struct Capture {
    conn: String,
    store: std::path::PathBuf,
    asof: std::path::PathBuf,
    /// Holds the store's directory until the test ends.
    _dir: tempfile::TempDir,
}

impl Capture {
    fn of(pg: &PgCluster) -> Capture {
        let dir = tempfile::tempdir().expect("tempdir");
        Capture {
            conn: conninfo(pg, "postgres"),
            store: dir.path().join("store"),
            _dir: dir,
            asof: assert_cmd::cargo::cargo_bin("asof"),
        }
    }
}

/// Runs `asof tail --until caught-up` to completion.
fn catch_up(asof: &std::path::Path, store: &std::path::Path, conn: &str) {
    let ok = Command::new(asof)
        .arg("--store")
        .arg(store)
        .args(["tail", conn, "--until", "caught-up"])
        .status()
        .expect("tail");
    assert!(ok.success());
}

#[test]
fn killed_tail_loses_and_doubles_nothing() {
    let seed = std::env::var("ASOF_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash test seed: {seed} (replay with ASOF_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let pg = PgCluster::builder()
        .setting("logical_decoding_work_mem", "64kB")
        .start()
        .expect("postgres");
    pg.execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text, n int8);
         CREATE TABLE big (id int PRIMARY KEY, note text, body text);
         ALTER TABLE big ALTER COLUMN body SET STORAGE EXTERNAL;
         INSERT INTO t SELECT i, 'v' || i, i FROM generate_series(1, 200) i;
         INSERT INTO big SELECT i, 'n', repeat(chr(65 + i % 26), 5000) FROM generate_series(1, 20) i;",
    )
    .expect("setup");
    let Capture {
        conn,
        store,
        asof,
        _dir,
    } = Capture::of(&pg);

    // Start history (slot + initial copy) before the workload.
    catch_up(&asof, &store, &conn);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt.block_on(connect(&pg, "postgres"));
    let mut observations = vec![rt.block_on(observe(&client, &TABLES))];
    let mut kills = 0;
    let mut child = None;
    let mut xids: Vec<u32> = Vec::new();
    for txn in 0..400u64 {
        // Keep a capture running most of the time, killing it at random.
        if child.is_none() && rng.below(3) > 0 {
            // Half the captures read what piled up through the SQL decoding
            // interface before they stream.
            let catch_up = if rng.below(2) == 0 { "0" } else { "off" };
            child = Some(
                Command::new(&asof)
                    .arg("--store")
                    .arg(&store)
                    .args(["tail", &conn, "--sql-catch-up-above", catch_up])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn tail"),
            );
        }
        if rng.below(20) == 0 {
            if let Some(mut c) = child.take() {
                c.kill().expect("SIGKILL");
                c.wait().expect("reap");
                kills += 1;
            }
        }
        let id = 1 + rng.below(300);
        let sql = match rng.below(8) {
            0 => format!("INSERT INTO t VALUES ({id}, 'i{txn}', {txn}) ON CONFLICT (id) DO UPDATE SET v = 'u{txn}'"),
            1 => format!("DELETE FROM t WHERE id = {id}"),
            2 => format!("UPDATE t SET n = n + 1 WHERE id % 7 = {}", txn % 7),
            3 => format!("UPDATE big SET note = 'note {txn}' WHERE id = {}", 1 + id % 20),
            4 => format!(
                "INSERT INTO t SELECT i, 'bulk', {txn} FROM generate_series({}, {}) i ON CONFLICT DO NOTHING",
                1000 + txn * 10,
                1009 + txn * 10
            ),
            5 => format!(
                "UPDATE t SET v = v || '.' WHERE id = {id}; DELETE FROM t WHERE id = {}",
                id + 1
            ),
            // Larger than the decoding memory: streamed before it ends.
            6 => format!("UPDATE t SET v = repeat('s', 600) || '{txn}' WHERE id <= 300"),
            _ => format!(
                "SAVEPOINT a; INSERT INTO t SELECT i, repeat('r', 400), {txn} FROM generate_series(200000, 200399) i; \
                 ROLLBACK TO SAVEPOINT a; UPDATE t SET n = -n WHERE id = {id}"
            ),
        };
        // Every transaction also touches one row, so each one is sent and
        // stored; its xid is kept to check it is stored exactly once.
        let msgs = rt
            .block_on(client.simple_query(&format!(
                "BEGIN; {sql}; UPDATE big SET note = note WHERE id = 1; SELECT pg_current_xact_id()::text; COMMIT"
            )))
            .expect("workload");
        let xid = msgs
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse::<u64>().ok()),
                _ => None,
            })
            .expect("xid");
        xids.push(xid as u32);
        observations.push(rt.block_on(observe(&client, &TABLES)));
        if rng.below(4) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(30)));
        }
    }
    if let Some(mut c) = child.take() {
        c.kill().expect("SIGKILL");
        c.wait().expect("reap");
        kills += 1;
    }
    eprintln!("killed the capture {kills} times");
    let start = Instant::now();
    catch_up(&asof, &store, &conn);
    eprintln!("final catch-up took {:?}", start.elapsed());

    let store = changelog::Store::open_read_only(&store).expect("open store");
    assert_matches(&store, &observations);
    // Exactly the workload's transactions, each once, in commit order,
    // after the initial copy (xid 0).
    let stored = stored_xids(&store);
    assert_eq!(stored.first(), Some(&0), "the initial copy comes first");
    assert_eq!(
        &stored[1..],
        &xids[..],
        "every transaction stored exactly once, in order"
    );
    assert!(kills > 0);
    let streamed: i64 = pg
        .query_one_value("SELECT coalesce(sum(stream_txns), 0)::int8 FROM pg_stat_replication_slots")
        .expect("slot statistics")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    eprintln!("transactions streamed by the server: {streamed}");
    assert!(streamed > 0, "no transaction was streamed");
}

#[test]
fn killed_during_the_initial_copy_copies_once_in_the_end() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = Rng(seed);
    let pg = PgCluster::builder()
        .setting("logical_decoding_work_mem", "64kB")
        .start()
        .expect("postgres");
    // `t` is loaded in bulk (a primary key); `bag` (no key, every column
    // its identity) goes through the spill, in the same transaction.
    pg.execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text, n int8);
         CREATE TABLE bag (a int, b text);
         ALTER TABLE bag REPLICA IDENTITY FULL;
         INSERT INTO t SELECT i, 'v' || i, i * 7 FROM generate_series(1, 300000) i;
         INSERT INTO bag SELECT i % 10, 'b' FROM generate_series(1, 1000) i;
         ANALYZE",
    )
    .expect("setup");
    let Capture {
        conn,
        store,
        asof,
        _dir,
    } = Capture::of(&pg);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt.block_on(connect(&pg, "postgres"));
    let tables = [("t", "id"), ("bag", "a")];
    for kill in 0..4 {
        let mut child = Command::new(&asof)
            .arg("--store")
            .arg(&store)
            .args(["tail", &conn])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tail");
        let started = Instant::now();
        if kill == 0 {
            // The first kill lands while files of the copy are being built.
            let building = || std::fs::read_dir(store.join("bulk")).is_ok_and(|mut d| d.next().is_some());
            while !building() {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the copy never built a file"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        } else {
            std::thread::sleep(Duration::from_millis(100 + rng.below(900)));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        eprintln!("kill {kill} after {:?} (seed {seed})", started.elapsed());
        if kill == 0 {
            // Opening for writing recovers: nothing of the copy is left.
            let s = changelog::Store::open(&store, &changelog::StoreOptions::default()).expect("open store");
            assert_eq!(s.watermark(), None, "killed after the copy was stored");
            for t in [0, 1] {
                let left = s.count_versions(changelog::TableId(t)).expect("count");
                assert_eq!(left, 0, "table {t} keeps {left} versions of the killed copy");
            }
        }
        // What the next copy reads differs from what the killed one wrote:
        // anything of it left behind would show.
        pg.execute(&format!(
            "DELETE FROM t WHERE id % 10 = {kill}; UPDATE t SET v = 'k{kill}' WHERE id % 7 = {kill}; \
             DELETE FROM bag WHERE a = {kill}"
        ))
        .expect("change");
    }
    catch_up(&asof, &store, &conn);
    // What Postgres shows now is what the store must hold now.
    let now = rt.block_on(observe(&client, &tables));
    assert!(
        !store.join("bulk").exists() || std::fs::read_dir(store.join("bulk")).expect("bulk").next().is_none(),
        "files of an interrupted copy are left in the store"
    );
    let store = changelog::Store::open_read_only(&store).expect("open store");
    assert_matches(&store, &[now]);
    let stored = stored_xids(&store);
    assert_eq!(stored.first(), Some(&0), "the initial copy comes first");
    assert_eq!(stored.iter().filter(|x| **x == 0).count(), 1, "one initial copy");
}

/// Holds the slot `asof` the way a killed run's server process does:
/// streaming from it, never acknowledging anything. The runtime drives the
/// stream.
fn hold_slot(conn: &str) -> (tokio::runtime::Runtime, cdc_source::replication::LogicalStream) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config: tokio_postgres::Config = conn.parse().expect("conninfo");
    let held = rt.block_on(async {
        let repl = cdc_source::replication::ReplicationClient::connect(&config)
            .await
            .expect("replication connection");
        repl.start_logical(
            "asof",
            Lsn::ZERO,
            &[("proto_version", "1"), ("publication_names", "asof")],
        )
        .await
        .expect("hold the slot")
    });
    (rt, held)
}

/// A capture restarted at once after a kill can find the slot still held:
/// the server's process for the killed run keeps it until it notices the
/// lost connection. The restart waits for the slot instead of giving up.
#[test]
fn restarted_while_the_killed_runs_slot_is_still_held_resumes() {
    let pg = PgCluster::builder().start().expect("postgres");
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text, n int8); INSERT INTO t VALUES (1, 'a', 1);")
        .expect("setup");
    let Capture {
        conn,
        store,
        asof,
        _dir,
    } = Capture::of(&pg);
    catch_up(&asof, &store, &conn);

    let (rt, held) = hold_slot(&conn);
    let active = || pg.query_one_value("SELECT active::text FROM pg_replication_slots WHERE slot_name = 'asof'");
    assert_eq!(active().expect("slot").as_deref(), Some("true"));
    pg.execute("UPDATE t SET v = 'b' WHERE id = 1; INSERT INTO t VALUES (2, 'c', 2);")
        .expect("change");
    let client = rt.block_on(connect(&pg, "postgres"));
    let now = rt.block_on(observe(&client, &[("t", "id")]));

    let mut restarted = Command::new(&asof)
        .arg("--store")
        .arg(&store)
        .args(["tail", &conn, "--until", "caught-up"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("tail");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        restarted.try_wait().expect("tail").is_none(),
        "the restart gave up while the slot was held"
    );
    assert_eq!(
        active().expect("slot").as_deref(),
        Some("true"),
        "the slot was released early"
    );
    drop(held);
    let out = restarted.wait_with_output().expect("tail");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let store = changelog::Store::open_read_only(&store).expect("open store");
    assert_matches(&store, &[now]);
}

/// The held slot of a killed run can also be dropped while the restart
/// waits for it: the restart then reports the slot as missing (a gap in
/// the history), not as in use.
#[test]
fn a_slot_dropped_while_the_restart_waits_is_reported_missing() {
    let pg = PgCluster::builder().start().expect("postgres");
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');")
        .expect("setup");
    let Capture {
        conn,
        store,
        asof,
        _dir,
    } = Capture::of(&pg);
    catch_up(&asof, &store, &conn);

    let (_rt, _held) = hold_slot(&conn);
    // Something to stream, so the restart cannot end without the slot.
    pg.execute("UPDATE t SET v = 'b' WHERE id = 1;").expect("change");
    let restarted = Command::new(&asof)
        .arg("--store")
        .arg(&store)
        .args(["tail", &conn, "--until", "caught-up"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("tail");
    std::thread::sleep(Duration::from_secs(2));
    // Dropped the moment its holder lets go (the restart polls ten times
    // a second, so it all but never sees the slot free in between).
    pg.execute(
        "DO $$ BEGIN \
           PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots \
             WHERE slot_name = 'asof' AND active_pid IS NOT NULL; \
           LOOP \
             BEGIN \
               PERFORM pg_drop_replication_slot('asof'); \
               EXIT; \
             EXCEPTION WHEN object_in_use THEN PERFORM pg_sleep(0.0002); \
             END; \
           END LOOP; \
         END $$",
    )
    .expect("drop the held slot");
    let out = restarted.wait_with_output().expect("tail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "resumed without its slot: {stderr}");
    assert!(
        (stderr.contains("replication slot asof no longer exists") || stderr.contains("does not exist"))
            && !stderr.contains("in use"),
        "{stderr}"
    );
}
