//! The capture across a PostgreSQL restart, a dropped slot, and an idle
//! database.

use std::time::{Duration, Instant};

use asof_tests::runtime;
use asof_tests::{assert_matches, connect, conninfo, observe, open_store};
use cdc_source::conninfo::parse_conninfo;
use cdc_source::{CaptureError, CaptureOptions, Until};
use changelog::Lsn;
use pg_fixture::PgCluster;

fn options(conn: &str, slot: &str, until: Until) -> CaptureOptions {
    CaptureOptions {
        conninfo: parse_conninfo(conn).expect("conninfo"),
        slot: slot.into(),
        publication: "asof_pub".into(),
        tables: vec![changelog::TableName::new("public", "t")],
        snapshot: true,
        until,
        sql_catch_up_above: Some(cdc_source::SQL_CATCH_UP_ABOVE),
        streaming: true,
        copy_connections: cdc_source::default_copy_connections(),
    }
}

/// Waits for `cond`, failing after a generous bound (a liveness check, not
/// a timing measurement).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(90), "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn survives_a_postgres_restart_mid_stream() {
    let mut pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')")
        .expect("setup");
    let conn = conninfo(&pg, "postgres");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let live = rt.spawn(cdc_source::capture(
        open_store(dir.path()),
        options(&conn, "s1", Until::Forever),
        stop_rx,
        |e| {
            if let cdc_source::CaptureEvent::Notice(n) = e {
                eprintln!("capture: {n}");
            }
        },
    ));
    eventually("the slot to exist", || {
        pg.query_one_value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 's1' AND active")
            .ok()
            .flatten()
            .as_deref()
            == Some("1")
    });
    let mut observations = Vec::new();
    let client = rt.block_on(connect(&pg, "postgres"));
    for i in 2..20 {
        rt.block_on(client.batch_execute(&format!(
            "INSERT INTO t VALUES ({i}, 'v{i}'); UPDATE t SET v = v || '+' WHERE id = {}",
            i - 1
        )))
        .expect("write");
        observations.push(rt.block_on(observe(&client, &[("t", "id")])));
    }
    drop(client);
    pg.restart().expect("restart");
    let client = rt.block_on(connect(&pg, "postgres"));
    for i in 20..40 {
        rt.block_on(client.batch_execute(&format!(
            "INSERT INTO t VALUES ({i}, 'w{i}'); DELETE FROM t WHERE id = {}",
            i - 15
        )))
        .expect("write");
        observations.push(rt.block_on(observe(&client, &[("t", "id")])));
    }
    let last = observations.last().map(|o| o.lsn).expect("observations");
    // The live capture reconnects by itself; wait until it holds everything.
    let slot_confirmed = || {
        pg.query_one_value("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 's1'")
            .ok()
            .flatten()
            .and_then(|s| s.parse::<Lsn>().ok())
            .is_some_and(|l| l >= last)
    };
    eventually("the capture to reconnect and catch up", || {
        slot_confirmed() || live.is_finished()
    });
    let _ = stop.send(true);
    rt.block_on(live).expect("join").expect("capture");
    let store = changelog::Store::open_read_only(dir.path()).expect("open");
    assert_matches(&store, &observations);
}

#[test]
fn a_dropped_slot_is_a_gap_not_a_silent_restart() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')")
        .expect("setup");
    let conn = conninfo(&pg, "postgres");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_stop, rx) = tokio::sync::watch::channel(false);
    rt.block_on(cdc_source::capture(
        open_store(dir.path()),
        options(&conn, "s2", Until::CaughtUp),
        rx.clone(),
        |_| {},
    ))
    .expect("first capture");
    pg.execute("SELECT pg_drop_replication_slot('s2'); INSERT INTO t VALUES (2, 'lost')")
        .expect("drop slot");
    let err = rt
        .block_on(cdc_source::capture(
            open_store(dir.path()),
            options(&conn, "s2", Until::CaughtUp),
            rx,
            |_| {},
        ))
        .expect_err("must refuse to continue");
    assert!(
        matches!(&err, CaptureError::SlotMissing { slot, .. } if slot == "s2"),
        "{err:?}"
    );
    assert!(err.is_gap(), "{err:?}");
}

#[test]
fn an_idle_slot_still_advances() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE other (id int PRIMARY KEY)")
        .expect("setup");
    let conn = conninfo(&pg, "postgres");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let live = rt.spawn(cdc_source::capture(
        open_store(dir.path()),
        options(&conn, "s3", Until::Forever),
        rx,
        |_| {},
    ));
    eventually("the slot to exist", || {
        pg.query_one_value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 's3' AND active")
            .ok()
            .flatten()
            .as_deref()
            == Some("1")
    });
    // Busy only with a table outside the publication.
    pg.execute("INSERT INTO other SELECT generate_series(1, 10000)")
        .expect("unpublished writes");
    let target: Lsn = pg
        .query_one_value("SELECT pg_current_wal_lsn()::text")
        .expect("lsn")
        .expect("lsn")
        .parse()
        .expect("lsn");
    eventually("the slot's confirmed position to pass the unpublished writes", || {
        pg.query_one_value("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 's3'")
            .ok()
            .flatten()
            .and_then(|s| s.parse::<Lsn>().ok())
            .is_some_and(|l| l >= target)
    });
    let _ = stop.send(true);
    rt.block_on(live).expect("join").expect("capture");
    let store = changelog::Store::open_read_only(dir.path()).expect("open");
    assert!(
        store.scanned_through() >= target,
        "the store records how far the log is known complete"
    );
}

#[test]
fn a_transaction_too_large_for_memory_is_spilled_and_exact() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE u (id int PRIMARY KEY)")
        .expect("setup");
    let conn = conninfo(&pg, "postgres");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let mut opts = options(&conn, "s4", Until::CaughtUp);
    opts.tables = Vec::new();
    rt.block_on(cdc_source::capture(
        open_store(dir.path()),
        opts.clone(),
        rx.clone(),
        |_| {},
    ))
    .expect("start");
    let client = rt.block_on(connect(&pg, "postgres"));
    let n = cdc_source::SPILL_RECORDS as i64 * 5 / 2;
    // One transaction: more rows than the in-memory limit, then an update of
    // rows written by an earlier chunk, a truncate of another table in the
    // middle, and more rows after it.
    rt.block_on(client.batch_execute(&format!(
        "BEGIN;
         INSERT INTO u SELECT generate_series(1, 1000);
         INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, {n}) i;
         UPDATE t SET v = v || '!' WHERE id % 1000 = 0;
         TRUNCATE u;
         INSERT INTO u VALUES (7);
         DELETE FROM t WHERE id % 3 = 0;
         COMMIT"
    )))
    .expect("big transaction");
    let observations = vec![rt.block_on(observe(&client, &[("t", "id"), ("u", "id")]))];
    rt.block_on(cdc_source::capture(open_store(dir.path()), opts, rx, |_| {}))
        .expect("capture");
    let store = changelog::Store::open_read_only(dir.path()).expect("open");
    assert_matches(&store, &observations);
}
