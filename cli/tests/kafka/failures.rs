//! A broker of three lost and brought back mid-stream, and the ways
//! publishing and following end: each with one clear line, the right exit
//! code, and nothing acknowledged past what Kafka holds.

use std::time::{Duration, Instant};

use asof_tests::{assert_matches, connect, conninfo, observe};
use changelog::{Lsn, Store};
use kafka_fixture::KafkaCluster;
use pg_fixture::PgCluster;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::support::{kill, run, run_ok, spawn, topic_records, topic_transactions, TOPIC};

fn one_error_line(stderr: &str) -> &str {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("asof: ")).collect();
    assert_eq!(errors.len(), 1, "expected one `asof: ` line:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0]
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn xid_of(pg: &PgCluster, sql: &str) -> u32 {
    let rows = pg
        .query_rows(&format!(
            "WITH w AS ({sql} RETURNING 1) SELECT pg_current_xact_id()::text FROM w LIMIT 1"
        ))
        .expect("workload");
    let xid = rows[0][0].as_deref().expect("xid");
    xid.parse::<u64>().expect("xid") as u32
}

fn confirmed_flush(pg: &PgCluster) -> Lsn {
    let rows = pg
        .query_rows("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'asof'")
        .expect("slot");
    rows[0][0].as_deref().expect("confirmed").parse().expect("lsn")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How a background `asof` ended, waiting for it as for anything else.
fn exit_of(mut child: std::process::Child, what: &str) -> std::process::ExitStatus {
    let mut status = None;
    wait_for(what, || {
        status = child.try_wait().expect("wait");
        status.is_some()
    });
    status.expect("exited")
}

#[test]
fn unreachable_brokers_end_publishing_and_following_with_one_line() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)").expect("setup");
    let conn = conninfo(&pg, "postgres");
    let dir = tempfile::tempdir().expect("tempdir");
    let brokers = format!("127.0.0.1:{}", closed_port());
    let store = dir.path().join("store");
    let (code, stderr) = run(
        &store,
        &[
            "tail",
            &conn,
            "--kafka",
            &brokers,
            "--topic",
            TOPIC,
            "--kafka-timeout",
            "3",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains(&brokers) && line.contains("did not answer"), "{line}");
    // Nothing was installed on the source.
    let slots = pg
        .query_rows("SELECT count(*)::text FROM pg_replication_slots")
        .expect("slots");
    assert_eq!(slots[0][0].as_deref(), Some("0"));

    let (code, stderr) = run(
        &dir.path().join("follower"),
        &[
            "follow",
            &brokers,
            TOPIC,
            "--until",
            "caught-up",
            "--kafka-timeout",
            "3",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains("did not answer"), "{line}");

    for bad in [
        vec!["tail", conn.as_str(), "--kafka", "nohost", "--topic", TOPIC],
        vec!["tail", conn.as_str(), "--kafka", "h:1", "--topic", "bad topic"],
        vec!["tail", conn.as_str(), "--kafka", "h:1"],
        vec!["follow", "h:1", TOPIC, "--until", "forever"],
    ] {
        let (code, stderr) = run(&store, &bad);
        assert_eq!(code, Some(2), "{bad:?}: {stderr}");
    }
}

#[test]
fn a_lost_cluster_stops_the_publisher_with_nothing_acknowledged_past_kafka() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .expect("setup");
    let mut kafka = KafkaCluster::start().expect("kafka");
    let brokers = kafka.bootstrap_servers();
    let conn = conninfo(&pg, "postgres");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let tail = [
        "tail",
        conn.as_str(),
        "--kafka",
        brokers.as_str(),
        "--topic",
        TOPIC,
        "--kafka-timeout",
        "5",
    ];
    run_ok(&store, &[&tail[..], &["--until", "caught-up"]].concat());
    let first = xid_of(&pg, "INSERT INTO t VALUES (1, 'one')");
    let publisher = spawn(&store, &tail);
    wait_for("the first row on the topic", || {
        topic_transactions(&brokers, TOPIC)
            .iter()
            .any(|t| t.commit.xid.0 == first)
    });

    // A second publisher of the topic from another store is refused
    // before it touches Kafka; the first goes on.
    let (code, stderr) = run(&dir.path().join("other"), &[&tail[..], &["--slot", "other"]].concat());
    assert_eq!(code, Some(1), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains("published from another store"), "{line}");

    kafka.kill(1).expect("kill the broker");
    let lost = xid_of(&pg, "INSERT INTO t VALUES (2, 'two')");
    let status = exit_of(publisher, "the publisher to give up");
    assert_eq!(status.code(), Some(1));
    let confirmed = confirmed_flush(&pg);

    kafka.restart(1).expect("restart the broker");
    let (code, stderr) = run(&store, &[&tail[..], &["--until", "caught-up"]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let published = topic_transactions(&brokers, TOPIC);
    let xids: Vec<u32> = published.iter().map(|t| t.commit.xid.0).collect();
    assert_eq!(xids.iter().filter(|x| **x == lost).count(), 1, "{xids:?}");
    // The slot was not acknowledged past what Kafka held when it was lost.
    let lost_commit = published.iter().find(|t| t.commit.xid.0 == lost).expect("lost").commit;
    assert!(
        confirmed <= lost_commit.commit_lsn,
        "acknowledged {confirmed}, past the unpublished commit at {}",
        lost_commit.commit_lsn
    );
    assert_eq!(xids.iter().filter(|x| **x == first).count(), 1, "{xids:?}");
}

#[test]
fn three_brokers_lose_one_mid_stream_and_take_it_back_with_tables_fanned_out() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text, n int8);
         INSERT INTO t SELECT i, 'v' || i, i FROM generate_series(1, 100) i;",
    )
    .expect("setup");
    let mut kafka = KafkaCluster::builder().brokers(3).start().expect("kafka");
    let brokers = kafka.bootstrap_servers();
    let conn = conninfo(&pg, "postgres");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let tail = [
        "tail",
        conn.as_str(),
        "--kafka",
        brokers.as_str(),
        "--topic",
        TOPIC,
        "--fan-out",
        "shop",
    ];
    run_ok(&store, &[&tail[..], &["--until", "caught-up"]].concat());
    let leader = partition_leader(&brokers);

    let rt = asof_tests::runtime();
    let client = rt.block_on(connect(&pg, "postgres"));
    let mut observations = vec![rt.block_on(observe(&client, &[("t", "id")]))];
    let mut xids = Vec::new();
    let publisher = spawn(&store, &tail);
    for n in 0..90u32 {
        if n == 30 {
            kafka.kill(leader).expect("kill the leader");
        }
        if n == 60 {
            kafka.restart(leader).expect("restart");
        }
        let id = 1 + n % 120;
        xids.push(xid_of(
            &pg,
            &format!("INSERT INTO t VALUES ({id}, 'x{n}', {n}) ON CONFLICT (id) DO UPDATE SET n = t.n + 1"),
        ));
        observations.push(rt.block_on(observe(&client, &[("t", "id")])));
        std::thread::sleep(Duration::from_millis(20));
    }
    let last = *xids.last().expect("xids");
    wait_for("the last transaction on the topic", || {
        topic_transactions(&brokers, TOPIC)
            .iter()
            .any(|t| t.commit.xid.0 == last)
    });
    kill(publisher);
    let seen: Vec<u32> = topic_transactions(&brokers, TOPIC)
        .iter()
        .map(|t| t.commit.xid.0)
        .collect();
    assert_eq!(seen.first(), Some(&0));
    assert_eq!(
        &seen[1..],
        &xids[..],
        "nothing lost or doubled across the broker's loss"
    );

    let follower = dir.path().join("follower");
    run_ok(&follower, &["follow", &brokers, TOPIC, "--until", "caught-up"]);
    assert_matches(&Store::open_read_only(&follower).expect("follower"), &observations);

    // The per-table topic holds exactly the log's changes of `t`, in order,
    // keyed by primary key, as Debezium names and writes them.
    let of_t = |r: &kafka_log::TopicRecord| {
        let v: serde_json::Value = serde_json::from_slice(&r.value).ok()?;
        (v["source"]["table"] == "t" && v["op"].is_string()).then(|| (r.key.clone(), r.value.clone()))
    };
    let expected: Vec<_> = topic_records(&brokers, TOPIC)
        .iter()
        .filter_map(|(_, r)| of_t(r))
        .collect();
    let fanned: Vec<_> = topic_records(&brokers, "shop.public.t")
        .into_iter()
        .map(|(_, r)| (r.key, r.value))
        .collect();
    assert_eq!(expected.len(), 100 + 90, "the copy and the workload");
    assert!(expected
        .iter()
        .all(|(k, _)| k.as_deref().is_some_and(|k| k.starts_with(b"{\"id\":"))));
    assert_eq!(fanned, expected);
}

/// The broker leading the log's partition.
fn partition_leader(brokers: &str) -> i32 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("client");
    let metadata = consumer
        .fetch_metadata(Some(TOPIC), Duration::from_secs(30))
        .expect("metadata");
    metadata
        .topics()
        .first()
        .and_then(|t| t.partitions().first())
        .map(|p| p.leader())
        .expect("a leader")
}

#[test]
fn a_publisher_fenced_by_a_newer_one_stops_with_exit_code_3() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)").expect("setup");
    let kafka = KafkaCluster::start().expect("kafka");
    let brokers = kafka.bootstrap_servers();
    let conn = conninfo(&pg, "postgres");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let tail = ["tail", conn.as_str(), "--kafka", brokers.as_str(), "--topic", TOPIC];
    run_ok(&store, &[&tail[..], &["--until", "caught-up"]].concat());
    let first = xid_of(&pg, "INSERT INTO t VALUES (1)");
    let older = spawn_logged(&store, &tail, &dir.path().join("older.log"));
    wait_for("the first row on the topic", || {
        topic_transactions(&brokers, TOPIC)
            .iter()
            .any(|t| t.commit.xid.0 == first)
    });

    // A newer publisher of the topic (as after a fail-over) takes the
    // transactional id: the older one is fenced at its next commit.
    let reader = Store::open_read_only(&store).expect("store");
    let mut newer = kafka_relay::Publisher::new(
        kafka_relay::PublishOptions {
            target: kafka_relay::Target {
                brokers: brokers.clone(),
                topic: TOPIC.into(),
            },
            server: TOPIC.into(),
            database: "postgres".into(),
            give_up_after: Duration::from_secs(30),
            fan_out: None,
        },
        &reader,
    )
    .expect("newer publisher");
    newer.publish(&reader, None, &[]).expect("take over");
    let second = xid_of(&pg, "INSERT INTO t VALUES (2)");
    let status = exit_of(older, "the fenced publisher to stop");
    let stderr = std::fs::read_to_string(dir.path().join("older.log")).expect("log");
    assert_eq!(status.code(), Some(3), "{stderr}");
    let line = one_error_line(&stderr);
    assert!(line.contains("took over topic"), "{line}");
    let xids: Vec<u32> = topic_transactions(&brokers, TOPIC)
        .iter()
        .map(|t| t.commit.xid.0)
        .collect();
    assert!(
        !xids.contains(&second),
        "the fenced publisher wrote after the take-over"
    );
    assert_eq!(xids.iter().filter(|x| **x == first).count(), 1);
}

/// Starts `asof` in the background with its stderr in `log`.
fn spawn_logged(store: &std::path::Path, args: &[&str], log: &std::path::Path) -> std::process::Child {
    std::process::Command::new(crate::support::asof_bin())
        .arg("--store")
        .arg(store)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn asof")
}
