//! `asof tail --metrics`: the Prometheus endpoint scraped during a capture,
//! and addresses that cannot be listened on.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::*;

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

/// The status line and body of `GET path`, or `None` when nothing answers.
fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.lines().next()?.to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))?
        .parse()
        .ok()?;
    assert_eq!(length, body.len(), "Content-Length of {path}:\n{response}");
    Some((status, body.to_string()))
}

/// The samples of a scrape: `name{labels}` to value.
fn scrape(port: u16) -> Option<HashMap<String, f64>> {
    let (status, body) = get(port, "/metrics")?;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    let samples = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample line {l:?}"));
            let value = value.parse().unwrap_or_else(|_| panic!("sample value in {l:?}"));
            (name.to_string(), value)
        })
        .collect();
    Some(samples)
}

fn value(samples: &HashMap<String, f64>, name: &str) -> f64 {
    *samples.get(name).unwrap_or_else(|| panic!("no {name} in {samples:#?}"))
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

#[test]
fn metrics_follow_a_capture_through_a_workload_and_a_reconnect() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, 3) g;",
    );
    let dir = scratch();
    let store = store_in(dir.path());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut tail = Tail::spawn_with(&store, &pg.conninfo(), dir.path(), &["--metrics", &addr]);
    let streaming = |m: &HashMap<String, f64>| m.get("asof_capture_state{state=\"streaming\"}") == Some(&1.0);
    eventually("the capture to stream", Duration::from_secs(60), || {
        scrape(port).is_some_and(|m| streaming(&m))
    });

    let first = scrape(port).expect("scrape");
    assert_eq!(value(&first, "asof_initial_copy_rows_total"), 3.0, "{first:#?}");
    assert_eq!(value(&first, "asof_slot_active"), 1.0);
    assert_eq!(value(&first, "asof_reconnects_total"), 0.0);
    assert_eq!(value(&first, "asof_errors_total{kind=\"stream\"}"), 0.0);
    let (status, _) = get(port, "/nothing-here").expect("an answer for another path");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    // 20 transactions of 3 changes each.
    for i in 0..20 {
        sql(
            &pg,
            &format!(
                "BEGIN; INSERT INTO t VALUES ({a}, 1), ({b}, 1); UPDATE t SET v = v + 1 WHERE id = 1; COMMIT;",
                a = 100 + 2 * i,
                b = 101 + 2 * i
            ),
        );
    }
    let committed = now_seconds();
    let mut last = HashMap::new();
    eventually(
        "the workload to be stored and acknowledged",
        Duration::from_secs(60),
        || {
            last = scrape(port).expect("scrape");
            value(&last, "asof_transactions_stored_total") == 20.0
                && value(&last, "asof_changes_stored_total") == 60.0
                && value(&last, "asof_lag_bytes") == 0.0
        },
    );
    assert_eq!(value(&last, "asof_lag_seconds"), 0.0, "{last:#?}");
    let commit_time = value(&last, "asof_last_commit_timestamp_seconds");
    assert!(
        (commit_time - committed).abs() < 5.0,
        "last commit {commit_time}, workload ended at {committed}"
    );
    assert!(value(&last, "asof_acknowledged_lsn") > 0.0);
    assert_eq!(
        value(&last, "asof_acknowledged_lsn"),
        value(&last, "asof_source_wal_end_lsn")
    );
    eventually("the store's size", Duration::from_secs(30), || {
        value(&scrape(port).expect("scrape"), "asof_store_size_bytes") > 0.0
    });

    // Losing the replication connection counts a reconnect and an error,
    // and the totals carry on across it.
    sql(
        &pg,
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'asof'",
    );
    eventually("a reconnect", Duration::from_secs(60), || {
        let m = scrape(port).expect("scrape");
        value(&m, "asof_reconnects_total") >= 1.0 && streaming(&m)
    });
    sql(&pg, "INSERT INTO t VALUES (1000, 1)");
    eventually("the change after the reconnect", Duration::from_secs(60), || {
        last = scrape(port).expect("scrape");
        value(&last, "asof_transactions_stored_total") == 21.0 && value(&last, "asof_changes_stored_total") == 61.0
    });
    assert!(value(&last, "asof_errors_total{kind=\"stream\"}") >= 1.0, "{last:#?}");

    assert_eq!(tail.terminate(Duration::from_secs(30)), Some(0), "{}", tail.stderr());
    assert!(
        tail.stderr().contains(&format!("metrics at http://{addr}/metrics")),
        "{}",
        tail.stderr()
    );
}

#[test]
fn a_bad_metrics_address_is_a_usage_error() {
    for bad in ["nonsense", "127.0.0.1", "127.0.0.1:99999"] {
        let line = asof_raw(["tail", "host=localhost", "--metrics", bad]).usage_error();
        assert!(line.starts_with("--metrics: expected HOST:PORT"), "{bad}: {line}");
    }
}

#[test]
fn a_taken_metrics_address_stops_before_the_capture_starts() {
    let pg = cluster();
    sql(&pg, "CREATE TABLE t (id int PRIMARY KEY)");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let dir = scratch();
    let store = store_in(dir.path());
    let line = Asof::new(&store)
        .run(&["tail", &pg.conninfo(), "--metrics", &addr, "--until", "caught-up"])
        .runtime_error();
    assert!(
        line.starts_with(&format!("cannot listen for metrics on {addr}: ")),
        "{line}"
    );
    assert!(!store.exists(), "the store was created");
    let slots = copy_csv(&pg, "SELECT count(*) FROM pg_replication_slots");
    assert_eq!(show(&slots), "count\n0\n", "a slot was created");
}
