//! What `asof tail` leaves on the source database: nothing after a refused
//! or failed start, a killed first run that can simply be run again, and
//! `asof uninstall` removing everything it installed.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pg_fixture::PgCluster;

use crate::support::*;

/// Every slot, publication, event trigger and `asof_` function the
/// database has, one per line, sorted.
fn installed(pg: &PgCluster) -> Vec<String> {
    pg.query_rows(
        "SELECT 'slot ' || slot_name FROM pg_replication_slots \
         UNION ALL SELECT 'publication ' || pubname FROM pg_publication \
         UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger \
         UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proname LIKE 'asof\\_%' \
         ORDER BY 1",
    )
    .expect("read the catalogs")
    .into_iter()
    .map(|r| r[0].clone().expect("non-null"))
    .collect()
}

/// `tail` as a background process, until stopped.
fn spawn_tail(store: &std::path::Path, conninfo: &str, extra: &[&str]) -> Child {
    let mut cmd = Command::new(BIN);
    for v in SCRUBBED_ENV {
        cmd.env_remove(v);
    }
    cmd.arg("--store")
        .arg(store)
        .args(["tail", conninfo])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tail")
}

fn query_value(pg: &PgCluster, sql: &str) -> String {
    pg.query_one_value(sql).expect("query").unwrap_or_default()
}

#[test]
fn a_start_refused_for_a_table_without_identity_leaves_nothing() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE good (id int PRIMARY KEY, v text); INSERT INTO good VALUES (1, 'a');
         CREATE TABLE nopk (a int, b text); INSERT INTO nopk VALUES (1, 'x'), (2, NULL);",
    );
    let dir = scratch();
    let a = Asof::new(store_in(dir.path()));
    let e = a
        .run_timeout(
            &["tail", &pg.conninfo(), "--until", "caught-up"],
            Duration::from_secs(60),
        )
        .runtime_error();
    assert!(e.contains("nopk") && e.contains("REPLICA IDENTITY FULL"), "{e}");
    assert_eq!(installed(&pg), Vec::<String>::new());
    // With a publication for all tables left behind, these would fail.
    sql(
        &pg,
        "UPDATE nopk SET b = 'z' WHERE a = 1; DELETE FROM nopk WHERE a = 2;",
    );
}

#[test]
fn a_start_failing_on_a_missing_grant_leaves_nothing_and_can_be_run_again() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'a');
         CREATE TABLE b (id int PRIMARY KEY, v text); INSERT INTO b VALUES (2, 'b');
         CREATE PUBLICATION mine FOR TABLE a, b;
         CREATE ROLE capture LOGIN REPLICATION;
         GRANT SELECT ON a TO capture;
         CREATE TABLE owned (id int PRIMARY KEY, v text); INSERT INTO owned VALUES (3, 'c');
         ALTER TABLE owned OWNER TO capture;
         REVOKE SELECT ON owned FROM capture;
         GRANT CREATE ON DATABASE postgres TO capture;",
    );
    let conn = format!("host=127.0.0.1 port={} user=capture dbname=postgres", pg.port());
    let dir = scratch();
    let before = installed(&pg);
    assert_eq!(before, ["publication mine"]);

    // The user's own publication: refused, and the publication stays.
    let mine = Asof::new(dir.path().join("mine"));
    let tail_mine = ["tail", &conn, "--publication", "mine", "--until", "caught-up"];
    let e = mine.run_timeout(&tail_mine, Duration::from_secs(60)).runtime_error();
    assert!(e.contains("GRANT SELECT ON \"public\".\"b\""), "{e}");
    assert_eq!(installed(&pg), before);

    // A publication this run would create: refused, and it is not created.
    let own = Asof::new(dir.path().join("own"));
    let tail_own = [
        "tail",
        &conn,
        "--publication",
        "own_pub",
        "--slot",
        "own_slot",
        "--tables",
        "public.owned",
        "--until",
        "caught-up",
    ];
    let e = own.run_timeout(&tail_own, Duration::from_secs(60)).runtime_error();
    assert!(e.contains("GRANT SELECT ON \"public\".\"owned\""), "{e}");
    assert_eq!(installed(&pg), before);

    // After the grants, the same commands on the same stores succeed.
    sql(&pg, "GRANT SELECT ON b TO capture; GRANT SELECT ON owned TO capture;");
    mine.run_timeout(&tail_mine, Duration::from_secs(60)).ok();
    own.run_timeout(&tail_own, Duration::from_secs(60)).ok();
    assert_eq!(mine.snapshot_csv("b", "now").text(), "id,v\n2,b\n");
    assert_eq!(own.snapshot_csv("owned", "now").text(), "id,v\n3,c\n");
    assert_eq!(
        installed(&pg),
        ["publication mine", "publication own_pub", "slot asof", "slot own_slot"]
    );

    // Uninstall keeps the user's publication and drops asof's own.
    let out = asof_raw(["uninstall", pg.conninfo().as_str(), "--publication", "mine"]).ok();
    assert!(out.text().contains("kept publication mine"), "{}", out.text());
    asof_raw([
        "uninstall",
        pg.conninfo().as_str(),
        "--publication",
        "own_pub",
        "--slot",
        "own_slot",
    ])
    .ok();
    assert_eq!(installed(&pg), ["publication mine"]);
}

#[test]
fn a_tail_killed_during_the_initial_copy_can_be_run_again() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE big (id int PRIMARY KEY, pad text);
         INSERT INTO big SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 600000) i;",
    );
    let dir = scratch();
    let a = Asof::new(store_in(dir.path()));
    let mut child = spawn_tail(&a.store, &pg.conninfo(), &["--until", "caught-up"]);
    eventually("the initial copy to run", Duration::from_secs(60), || {
        query_value(
            &pg,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %big%' AND state = 'active'",
        ) == "1"
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let status = a.run(&["status"]).ok().text();
    assert!(
        status.contains("watermark:    none"),
        "the copy finished first:\n{status}"
    );
    assert!(installed(&pg).contains(&"slot asof".to_owned()), "{:?}", installed(&pg));

    sql(
        &pg,
        "UPDATE big SET pad = 'changed' WHERE id = 7; DELETE FROM big WHERE id = 8;",
    );
    let out = a.run_timeout(
        &["tail", &pg.conninfo(), "--until", "caught-up"],
        Duration::from_secs(300),
    );
    let out = out.ok();
    assert!(out.stderr.contains("unfinished first run"), "{}", out.stderr);
    let got = a.snapshot_csv("big", "now").stdout;
    let want = copy_csv(&pg, "SELECT * FROM big ORDER BY id");
    assert!(got == want, "the re-run's copy differs from Postgres");
}

#[test]
fn uninstall_removes_everything_and_refuses_while_tail_runs() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');",
    );
    let dir = scratch();
    let a = Asof::new(dir.path().join("first"));
    a.catch_up(&pg.conninfo());
    let all = installed(&pg);
    assert!(all.contains(&"slot asof".to_owned()) && all.contains(&"publication asof".to_owned()));
    assert_eq!(
        all.iter().filter(|o| o.starts_with("event trigger asof_ddl_")).count(),
        4,
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|o| o.starts_with("function asof_ddl_")).count(),
        4,
        "{all:?}"
    );

    // Refused while a capture streams from the slot; nothing is dropped.
    let mut tail = spawn_tail(&a.store, &pg.conninfo(), &[]);
    eventually("tail to stream", Duration::from_secs(60), || {
        query_value(&pg, "SELECT count(*) FROM pg_replication_slots WHERE active") == "1"
    });
    let e = asof_raw(["uninstall", pg.conninfo().as_str()]).runtime_error();
    assert!(e.contains("slot asof is in use"), "{e}");
    assert_eq!(installed(&pg), all);
    // SIGTERM: the capture stops cleanly.
    let term = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", tail.id())])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    assert!(tail.wait().expect("reap").success());

    let dry = asof_raw(["uninstall", pg.conninfo().as_str(), "--dry-run"]).ok().text();
    assert_eq!(
        dry.lines().filter(|l| l.starts_with("would drop ")).count(),
        all.len(),
        "{dry}"
    );
    assert_eq!(installed(&pg), all);
    let done = asof_raw(["uninstall", pg.conninfo().as_str()]).ok().text();
    assert_eq!(
        done.lines().filter(|l| l.starts_with("dropped ")).count(),
        all.len(),
        "{done}"
    );
    assert_eq!(installed(&pg), Vec::<String>::new());
    let again = asof_raw(["uninstall", pg.conninfo().as_str()]).ok().text();
    assert!(again.contains("nothing of asof's found"), "{again}");

    // A new store captures again from scratch.
    sql(&pg, "INSERT INTO t VALUES (2, 'b');");
    let b = Asof::new(dir.path().join("second"));
    b.catch_up(&pg.conninfo());
    assert_eq!(b.snapshot_csv("t", "now").text(), "id,v\n1,a\n2,b\n");
    assert_eq!(installed(&pg), all);
}

#[test]
fn a_copy_failing_after_the_slot_was_created_removes_what_the_start_created() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');",
    );
    // Another session holds the table, so the initial copy times out
    // waiting for it, after the slot was created.
    let mut holder = Command::new(pg.pg_bin("psql"))
        .args([
            "-X",
            "-q",
            "-d",
            &pg.conninfo(),
            "-c",
            "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start psql");
    eventually("the lock", Duration::from_secs(30), || {
        query_value(
            &pg,
            "SELECT count(*) FROM pg_locks WHERE relation = 't'::regclass AND mode = 'AccessExclusiveLock' AND granted",
        ) == "1"
    });
    let dir = scratch();
    let a = Asof::new(store_in(dir.path()));
    let conn = format!("{} options='-c lock_timeout=1000'", pg.conninfo());
    let out = a.run_timeout(&["tail", &conn, "--until", "caught-up"], Duration::from_secs(60));
    let stderr = out.stderr.clone();
    let e = out.runtime_error();
    assert!(e.contains("lock timeout"), "{e}");
    assert!(stderr.contains("removed what it created"), "{stderr}");
    assert_eq!(installed(&pg), Vec::<String>::new());

    sql(
        &pg,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE t%'",
    );
    let _ = holder.kill();
    let _ = holder.wait();
    a.catch_up(&conn);
    assert_eq!(a.snapshot_csv("t", "now").text(), "id,v\n1,a\n");
}

#[test]
fn a_slot_that_is_not_asofs_leftover_is_still_refused() {
    let pg = cluster();
    sql(&pg, "CREATE TABLE t (id int PRIMARY KEY)");
    sql(&pg, "SELECT pg_create_logical_replication_slot('asof', 'pgoutput')");
    let dir = scratch();
    let a = Asof::new(store_in(dir.path()));
    let e = a
        .run_timeout(
            &["tail", &pg.conninfo(), "--until", "caught-up"],
            Duration::from_secs(60),
        )
        .runtime_error();
    assert!(e.contains("slot asof already exists"), "{e}");
    assert_eq!(installed(&pg), ["slot asof"]);
}
