//! Exactly once under SIGKILL: the publisher at least 20 times during a
//! workload with a spilled transaction, then a follower at least 10 times.

use std::path::Path;
use std::time::{Duration, Instant};

use asof_tests::{assert_matches, connect, conninfo, observe, store_table};
use changelog::{Lsn, Store};
use kafka_fixture::KafkaCluster;
use materializer::When;
use pg_fixture::PgCluster;

use crate::support::{commit_lsns, kill, run, run_ok, spawn, topic_transactions, Rng, TOPIC};

const OBSERVED: [(&str, &str); 2] = [("t", "id"), ("big", "id")];

/// Rows of the one transaction too large to hold in memory.
const SPILLED_ROWS: u64 = 110_000;

/// Runs one workload transaction and returns its xid.
fn transaction(rt: &tokio::runtime::Runtime, client: &tokio_postgres::Client, sql: &str) -> u32 {
    let msgs = rt
        .block_on(client.simple_query(&format!(
            "BEGIN; {sql}; UPDATE big SET note = note WHERE id = 1; SELECT pg_current_xact_id()::text; COMMIT"
        )))
        .expect("workload");
    msgs.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse::<u64>().ok()),
            _ => None,
        })
        .expect("xid") as u32
}

fn random_sql(rng: &mut Rng, n: u64) -> String {
    let id = 1 + rng.below(300);
    match rng.below(6) {
        0 => format!("INSERT INTO t VALUES ({id}, 'i{n}', {n}) ON CONFLICT (id) DO UPDATE SET v = 'u{n}'"),
        1 => format!("DELETE FROM t WHERE id = {id}"),
        2 => format!("UPDATE t SET n = n + 1 WHERE id % 7 = {}", n % 7),
        3 => format!("UPDATE big SET note = 'note {n}' WHERE id = {}", 1 + id % 20),
        4 => format!(
            "INSERT INTO t SELECT i, 'bulk', {n} FROM generate_series({}, {}) i ON CONFLICT DO NOTHING",
            1000 + n * 10,
            1009 + n * 10
        ),
        _ => format!(
            "UPDATE t SET v = v || '.' WHERE id = {id}; DELETE FROM t WHERE id = {}",
            id + 1
        ),
    }
}

fn setup(pg: &PgCluster) {
    pg.execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text, n int8);
         CREATE TABLE big (id int PRIMARY KEY, note text, body text);
         CREATE TABLE bulk (id int8 PRIMARY KEY, payload text);
         ALTER TABLE big ALTER COLUMN body SET STORAGE EXTERNAL;
         INSERT INTO t SELECT i, 'v' || i, i FROM generate_series(1, 200) i;
         INSERT INTO big SELECT i, 'n', repeat(chr(65 + i % 26), 5000) FROM generate_series(1, 20) i;",
    )
    .expect("setup");
}

#[test]
fn killed_publishers_and_followers_lose_and_double_nothing() {
    let mut rng = Rng::seeded();
    let pg = PgCluster::start().expect("postgres");
    setup(&pg);
    let kafka = KafkaCluster::start().expect("kafka");
    let brokers = kafka.bootstrap_servers();
    let conn = conninfo(&pg, "postgres");
    let dir = tempfile::tempdir().expect("tempdir");
    let publisher = dir.path().join("publisher");
    let tail = ["tail", conn.as_str(), "--kafka", brokers.as_str(), "--topic", TOPIC];
    let caught_up = [&tail[..], &["--until", "caught-up"]].concat();

    // The slot, the initial copy, and its publication.
    run_ok(&publisher, &caught_up);

    let rt = asof_tests::runtime();
    let client = rt.block_on(connect(&pg, "postgres"));
    let mut observations = vec![rt.block_on(observe(&client, &OBSERVED))];
    let mut xids = Vec::new();
    let mut kills = 0;
    let mut child = None;
    // A follower runs beside the publisher and is killed at random too,
    // so kills land while it applies what the publisher just wrote.
    let follower = dir.path().join("follower");
    let follow = ["follow", brokers.as_str(), TOPIC];
    let mut follower_kills = 0;
    let mut following = None;
    let total = 240u64;
    for n in 0..total {
        if child.is_none() && rng.below(3) > 0 {
            child = Some(spawn(&publisher, &tail));
        }
        if following.is_none() && rng.below(2) == 0 {
            following = Some(spawn(&follower, &follow));
        }
        let due = follower_kills < 10 && n >= total - 2 * (10 - follower_kills);
        if rng.below(12) == 0 || due {
            if let Some(c) = following.take() {
                std::thread::sleep(Duration::from_millis(rng.below(300)));
                kill(c);
                follower_kills += 1;
            }
        }
        // Kill often enough for at least 20 kills, at random moments.
        let due = kills < 20 && n >= total - 2 * (20 - kills);
        if rng.below(8) == 0 || due {
            if let Some(c) = child.take() {
                // Give it a moment to get somewhere before the kill.
                std::thread::sleep(Duration::from_millis(rng.below(400)));
                kill(c);
                kills += 1;
            }
        }
        let sql = match n {
            // A transaction too large for memory: spilled to the store and
            // published in several Kafka transactions.
            100 => format!("INSERT INTO bulk SELECT i, md5(i::text) FROM generate_series(1, {SPILLED_ROWS}) i"),
            _ => random_sql(&mut rng, n),
        };
        xids.push(transaction(&rt, &client, &sql));
        // Read commands work beside a running follower.
        let applied = || {
            Store::open_read_only(&follower)
                .ok()
                .and_then(|s| s.watermark())
                .is_some()
        };
        if n % 60 == 59 && following.is_some() && applied() {
            let (code, stderr) = run(&follower, &["snapshot", "t", "--format", "csv"]);
            assert_eq!(code, Some(0), "snapshot beside a running follower: {stderr}");
        }
        observations.push(rt.block_on(observe(&client, &OBSERVED)));
    }
    if let Some(c) = child.take() {
        kill(c);
        kills += 1;
    }
    if let Some(c) = following.take() {
        kill(c);
        follower_kills += 1;
    }
    eprintln!("killed the publisher {kills} times, the follower {follower_kills} times");
    assert!(follower_kills >= 10, "only {follower_kills} follower kills");
    assert!(kills >= 20, "only {kills} kills");
    run_ok(&publisher, &caught_up);

    // An independent read_committed consumer sees every transaction once,
    // in commit order: the copy, then the workload.
    let published = topic_transactions(&brokers, TOPIC);
    let seen: Vec<u32> = published.iter().map(|t| t.commit.xid.0).collect();
    assert_eq!(seen.first(), Some(&0), "the initial copy comes first");
    assert_eq!(
        &seen[1..],
        &xids[..],
        "every transaction published exactly once, in order"
    );
    let lsns = commit_lsns(&published);
    let store = Store::open_read_only(&publisher).expect("publisher store");
    let stored: Vec<Lsn> = store
        .commits(Lsn::ZERO, Lsn::MAX)
        .expect("commits")
        .iter()
        .map(|c| c.commit_lsn)
        .collect();
    assert_eq!(lsns, stored, "the topic holds exactly the store's transactions");
    let spilled = published
        .iter()
        .find(|t| t.records.len() as u64 >= SPILLED_ROWS)
        .expect("the spilled transaction");
    assert_eq!(spilled.records.len() as u64, SPILLED_ROWS + 1);

    // The follower, killed along the way, catches up; and one more, new
    // follower rebuilds the whole history, killed while it does.
    run_ok(&follower, &[&follow[..], &["--until", "caught-up"]].concat());
    let rebuilt = dir.path().join("rebuilt");
    for _ in 0..3 {
        let c = spawn(&rebuilt, &follow);
        std::thread::sleep(Duration::from_millis(100 + rng.below(500)));
        kill(c);
    }
    let started = Instant::now();
    run_ok(&rebuilt, &[&follow[..], &["--until", "caught-up"]].concat());
    eprintln!("a new follower caught up in {:?}", started.elapsed());
    assert_same_answers(
        &store,
        &Store::open_read_only(&rebuilt).expect("rebuilt"),
        &publisher,
        &rebuilt,
    );

    let replica = Store::open_read_only(&follower).expect("follower store");
    assert_matches(&replica, &observations);
    assert_same_answers(&store, &replica, &publisher, &follower);
}

/// The follower answers exactly as the store the capture wrote: every
/// table at every commit, the log as change events, and row histories.
fn assert_same_answers(store: &Store, replica: &Store, store_dir: &Path, replica_dir: &Path) {
    let commits = store.commits(Lsn::ZERO, Lsn::MAX).expect("commits");
    let replica_commits = replica.commits(Lsn::ZERO, Lsn::MAX).expect("commits");
    assert_eq!(commits, replica_commits, "the same commits, times and xids");
    for c in &commits {
        for t in ["t", "big"] {
            let at = When::Lsn(c.commit_lsn);
            assert_eq!(
                store_table(store, at, t),
                store_table(replica, at, t),
                "table {t} at {}",
                c.commit_lsn
            );
        }
    }
    let last = When::Lsn(commits.last().expect("a commit").commit_lsn);
    assert_eq!(store_table(store, last, "bulk"), store_table(replica, last, "bulk"));
    for args in [
        vec!["changes", "--format", "jsonl"],
        vec!["history", "t", "5", "--format", "csv"],
        vec!["history", "big", "1", "--format", "csv"],
        vec!["snapshot", "bulk", "--format", "csv"],
        vec!["tables"],
    ] {
        let a = asof_stdout(store_dir, &args);
        let b = asof_stdout(replica_dir, &args);
        assert!(
            a == b,
            "asof {args:?} differs between the capture's store and the follower's"
        );
    }
    let (code, _) = run(replica_dir, &["status"]);
    assert_eq!(code, Some(0));
}

fn asof_stdout(store: &Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(crate::support::asof_bin())
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run asof");
    assert!(
        out.status.success(),
        "asof {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
