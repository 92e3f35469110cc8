//! `asof verify` against a running `tail`: an intact store verifies, a
//! store that missed changes is caught with exactly those keys named, a
//! verification beside live writes leaves the tail undisturbed, and a
//! large table's few differences are found without shipping the table.

use std::time::Duration;

use crate::support::*;

const VERIFY_TIMEOUT: Duration = Duration::from_secs(180);

/// Types whose text forms are easy to get subtly wrong, NULLs and empty
/// strings, text keys that differ in case and beyond ASCII, a composite
/// key, and a table without a key holding identical rows.
const KINDS: &str = "
CREATE TABLE kinds (id int PRIMARY KEY, t text, f float8, r real, ts timestamptz, tsn timestamp,
    n numeric, b bool, j jsonb, arr int[], by bytea, d date, iv interval, c char(4), ip inet);
CREATE TABLE names (name text PRIMARY KEY, v text);
CREATE TABLE lines (order_id bigint, sku text, qty int, PRIMARY KEY (order_id, sku));
CREATE TABLE loose (a int, b text);
ALTER TABLE loose REPLICA IDENTITY FULL;
INSERT INTO kinds VALUES
  (1, 'one', 0.1, 0.1, '2026-11-20 09:00:00.123456+00', '2026-11-20 09:00:00', 1.50, true, '{\"a\": [1, null]}',
   '{1,NULL,3}', '\\x00ff', '2026-11-20', '1 day 02:03:04', 'ab', '10.0.0.1'),
  (2, '', 1e300, -0.0, NULL, NULL, 'NaN', false, 'null', '{}', '\\x', '0001-01-01 BC', '-1 mon', '', '::1/128'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO names VALUES ('a', '1'), ('B', '2'), ('b', '3'), ('é', '4'), ('Z', NULL), ('', 'empty key'), ('a b', ''), ('ä', '5');
INSERT INTO lines VALUES (1, 'apple', 3), (1, 'Apple', 1), (-5, 'fig', 2), (10, 'pear', NULL);
INSERT INTO loose VALUES (1, 'x'), (1, 'x'), (1, ''), (NULL, NULL), (NULL, NULL);
";

/// Changes streamed after the initial copy.
const KIND_CHANGES: &str = "
INSERT INTO kinds VALUES (4, 'four', 3.141592653589793, 2.5, now(), '2026-01-01', 123456789.000000001, true,
    '[]', '{{1,2},{3,4}}', '\\xdeadbeef', '2026-02-28', '3 years', 'x', '192.168.0.0/16');
UPDATE kinds SET t = 'uno', n = n * 3, f = f / 3 WHERE id = 1;
UPDATE kinds SET t = NULL, c = NULL WHERE id = 2;
DELETE FROM kinds WHERE id = 3;
INSERT INTO names VALUES ('A', 'capital'), ('ß', 'eszett'), ('z', 'lower');
UPDATE names SET v = NULL WHERE name = 'é';
DELETE FROM names WHERE name = 'B';
INSERT INTO lines VALUES (1, 'banana', 6), (2, 'apple', 1);
UPDATE lines SET qty = 0 WHERE order_id = -5;
DELETE FROM lines WHERE order_id = 10;
INSERT INTO loose VALUES (2, 'y'), (2, 'y');
DELETE FROM loose WHERE ctid = (SELECT ctid FROM loose WHERE b = 'x' LIMIT 1);
";

/// Starts a tail and waits until its initial copy of `table` is readable.
fn tail_with_copy(pg: &pg_fixture::PgCluster, dir: &std::path::Path, table: &str) -> (Asof, Tail) {
    let store = store_in(dir);
    let asof = Asof::new(&store);
    let tail = Tail::spawn(&store, &pg.conninfo(), dir);
    eventually("the initial copy", Duration::from_secs(60), || {
        asof.run(&["snapshot", table, "--format", "csv"]).code == Some(0)
    });
    (asof, tail)
}

fn verify(asof: &Asof, pg: &pg_fixture::PgCluster, extra: &[&str]) -> Out {
    let conninfo = pg.conninfo();
    let mut args = vec!["verify", conninfo.as_str()];
    args.extend_from_slice(extra);
    asof.run_timeout(&args, VERIFY_TIMEOUT)
}

/// Runs `statements` with asof's DDL capture
/// switched off, so that tables dropped from the publication and added back
/// are not read afresh: the store misses what changed in between.
fn unseen_by_the_ddl_capture(pg: &pg_fixture::PgCluster, statements: &str) {
    let switch = |state: &str| {
        format!(
            "DO $$ DECLARE t text; BEGIN
               FOR t IN SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'asof\\_ddl\\_%' LOOP
                 EXECUTE format('ALTER EVENT TRIGGER %I {state}', t);
               END LOOP;
             END $$;"
        )
    };
    sql(pg, &switch("DISABLE"));
    sql(pg, statements);
    sql(pg, &switch("ENABLE"));
}

/// Exit 1 with the verdict as the last stderr line; the differing keys on stdout.
#[track_caller]
fn differs(out: Out) -> (String, String) {
    out.assert_no_panic();
    assert_eq!(out.code, Some(1), "expected exit 1:\n{}", out.everything());
    let last = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.starts_with("asof: the store differs"), "{}", out.everything());
    (out.text(), out.stderr.clone())
}

#[test]
fn an_intact_store_verifies() {
    let pg = cluster();
    sql(&pg, KINDS);
    let dir = scratch();
    let (asof, mut tail) = tail_with_copy(&pg, dir.path(), "kinds");
    sql(&pg, KIND_CHANGES);
    let out = verify(&asof, &pg, &[]).ok();
    assert_eq!(out.text(), "", "no differing keys");
    for table in ["public.kinds", "public.names", "public.lines"] {
        assert!(out.stderr.contains(&format!("{table}: equal")), "{}", out.stderr);
    }
    assert!(
        out.stderr.contains("public.loose: equal") && out.stderr.contains("fingerprint only"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("the store equals the source"), "{}", out.stderr);
    // Only the named tables.
    let out = verify(&asof, &pg, &["--tables", "public.names,lines"]).ok();
    assert!(!out.stderr.contains("kinds"), "{}", out.stderr);
    // A table the store does not have is a difference, not a skip.
    let (stdout, stderr) = differs(verify(&asof, &pg, &["--tables", "names,nosuch"]));
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("public.nosuch: DIFFERS: no such table in the store") && stderr.contains("1 of 2 tables"),
        "{stderr}"
    );
    assert_eq!(tail.terminate(Duration::from_secs(20)), Some(0), "{}", tail.stderr());
}

#[test]
fn a_store_that_missed_changes_is_caught_with_the_keys_named() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         CREATE TABLE u (k text, n int, v text, PRIMARY KEY (k, n));
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g;
         INSERT INTO u VALUES ('a', 1, 'x'), ('b', 2, 'y');
         CREATE PUBLICATION asof FOR TABLE t, u;",
    );
    let dir = scratch();
    let (asof, mut tail) = tail_with_copy(&pg, dir.path(), "t");
    sql(&pg, "UPDATE t SET v = 'seen' WHERE id = 1");
    verify(&asof, &pg, &[]).ok();

    // Changes made while the tables are not published never reach the store.
    unseen_by_the_ddl_capture(
        &pg,
        "ALTER PUBLICATION asof DROP TABLE t, u;
         UPDATE t SET v = 'missed' WHERE id IN (3, 17);
         DELETE FROM t WHERE id = 5;
         INSERT INTO t VALUES (100, 'new');
         UPDATE u SET v = 'z' WHERE k = 'b';
         ALTER PUBLICATION asof ADD TABLE t, u;",
    );
    sql(&pg, "UPDATE t SET v = 'seen again' WHERE id = 2");

    let (stdout, stderr) = differs(verify(&asof, &pg, &[]));
    assert_eq!(
        stdout,
        "public.t key 3: values differ\n\
         public.t key 5: in the store but not at the source\n\
         public.t key 17: values differ\n\
         public.t key 100: missing from the store\n\
         public.u key (b, 2): values differ\n",
        "{stderr}"
    );
    assert!(stderr.contains("public.t: DIFFERS: 4 keys"), "{stderr}");
    assert!(stderr.contains("2 of 2 tables"), "{stderr}");
    assert_eq!(tail.terminate(Duration::from_secs(20)), Some(0), "{}", tail.stderr());
}

#[test]
fn verifying_beside_live_writes_leaves_the_tail_undisturbed() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE events (id int PRIMARY KEY, n int, note text);
         INSERT INTO events SELECT g, 0, 'seed' FROM generate_series(1, 500) g;",
    );
    let dir = scratch();
    let (asof, mut tail) = tail_with_copy(&pg, dir.path(), "events");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                sql(
                    &pg,
                    &format!(
                        "BEGIN; INSERT INTO events VALUES ({}, {i}, 'live'); \
                         UPDATE events SET n = n + 1 WHERE id = {}; DELETE FROM events WHERE id = {}; COMMIT;",
                        1000 + i,
                        1 + i % 500,
                        1000 + i / 2
                    ),
                );
            }
            i
        });
        for _ in 0..2 {
            let out = verify(&asof, &pg, &[]).ok();
            assert!(out.stderr.contains("public.events: equal"), "{}", out.stderr);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(writer.join().expect("writer") > 0);
    });
    // The tail kept going: it captures what follows, and the store is exact.
    sql(&pg, "INSERT INTO events VALUES (-1, -1, 'after')");
    eventually("the tail to capture a later insert", Duration::from_secs(30), || {
        asof.run(&["get", "events", "-1"]).text().contains("after")
    });
    let want = copy_csv(&pg, "SELECT * FROM events ORDER BY id");
    eventually("the store to match", Duration::from_secs(30), || {
        asof.snapshot_csv("events", "now").stdout == want
    });
    assert_eq!(tail.terminate(Duration::from_secs(20)), Some(0), "{}", tail.stderr());
}

#[test]
fn a_few_differences_in_many_rows_are_found_by_bisection() {
    const ROWS: u64 = 50_000;
    let pg = cluster();
    sql(
        &pg,
        &format!(
            "CREATE TABLE big (id bigint PRIMARY KEY, v text, n numeric);
             INSERT INTO big SELECT g, md5(g::text), g / 7.0 FROM generate_series(1, {ROWS}) g;
             CREATE TABLE words (w text, n int, v text, PRIMARY KEY (w, n));
             INSERT INTO words SELECT (ARRAY['É', 'e', 'E', 'é', 'it''s', ''])[g % 6 + 1] || (g % 97)::text, g, 'v'
               FROM generate_series(1, 5000) g;
             CREATE PUBLICATION asof FOR TABLE big, words;"
        ),
    );
    let dir = scratch();
    let (asof, mut tail) = tail_with_copy(&pg, dir.path(), "big");
    unseen_by_the_ddl_capture(
        &pg,
        "ALTER PUBLICATION asof DROP TABLE big, words;
         UPDATE big SET v = 'x' WHERE id IN (7, 31337); DELETE FROM big WHERE id = 49999;
         UPDATE words SET v = 'w' WHERE n IN (2000, 4001);
         ALTER PUBLICATION asof ADD TABLE big, words;",
    );
    let (stdout, stderr) = differs(verify(&asof, &pg, &[]));
    assert_eq!(
        stdout,
        "public.big key 7: values differ\n\
         public.big key 31337: values differ\n\
         public.big key 49999: in the store but not at the source\n\
         public.words key (24, 4001): values differ\n\
         public.words key (E60, 2000): values differ\n",
        "{stderr}"
    );
    let listed: u64 = stderr
        .split(" rows listed")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of listed rows:\n{stderr}"));
    assert!(listed <= 3 * 256 + 3, "listed {listed} rows of {ROWS}:\n{stderr}");
    assert_eq!(tail.terminate(Duration::from_secs(20)), Some(0), "{}", tail.stderr());
}

#[test]
fn a_store_nobody_tails_is_reported_behind_in_one_line() {
    let pg = cluster();
    sql(&pg, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo()).ok();
    sql(&pg, "INSERT INTO t VALUES (2)");
    let e = verify(&asof, &pg, &["--timeout", "1s"]).runtime_error();
    assert!(
        e.contains("did not reach the source's position") && e.contains("asof tail"),
        "{e}"
    );
    let e = verify(&asof, &pg, &["--timeout", "soon"]).usage_error();
    assert!(e.contains("--timeout"), "{e}");
    // No temporary slot is left behind; only the capture's own.
    assert_eq!(
        pg.query_one_value("SELECT string_agg(slot_name, ',') FROM pg_replication_slots")
            .expect("slots")
            .as_deref(),
        Some("asof")
    );
}

/// What the publication leaves out (rows outside its filter, columns
/// outside its list) and generated columns are not differences: the store
/// is compared with what is published.
#[test]
fn a_partly_published_table_verifies_against_what_is_published() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE rf (id int PRIMARY KEY, region text, v text, twice int GENERATED ALWAYS AS (id * 2) STORED);
         ALTER TABLE rf REPLICA IDENTITY FULL;
         INSERT INTO rf (id, region, v) VALUES (1, 'eu', 'a'), (2, 'us', 'b'), (3, 'eu', 'c');
         CREATE TABLE cl (id int PRIMARY KEY, v text, hidden text);
         INSERT INTO cl VALUES (1, 'a', 's1'), (2, 'b', 's2');
         CREATE PUBLICATION part_pub FOR TABLE rf WHERE (region = 'eu'), cl (id, v);",
    );
    let dir = scratch();
    let store = store_in(dir.path());
    let asof = Asof::new(&store);
    let mut tail = Tail::spawn_with(&store, &pg.conninfo(), dir.path(), &["--publication", "part_pub"]);
    eventually("the initial copy", Duration::from_secs(60), || {
        asof.run(&["snapshot", "rf", "--format", "csv"]).code == Some(0)
    });
    sql(
        &pg,
        "UPDATE rf SET region = 'eu' WHERE id = 2; DELETE FROM rf WHERE id = 3;
         UPDATE cl SET hidden = 'x' WHERE id = 1; UPDATE cl SET v = 'bb' WHERE id = 2;",
    );
    let out = verify(&asof, &pg, &[]).ok();
    for table in ["public.rf", "public.cl"] {
        assert!(out.stderr.contains(&format!("{table}: equal")), "{}", out.stderr);
    }
    assert_eq!(tail.terminate(Duration::from_secs(20)), Some(0), "{}", tail.stderr());
}

/// A publication that does not publish deletes keeps the rows the source
/// removed: they are counted, not differences, and every row the source
/// has must still be in the store as it is.
#[test]
fn rows_a_publication_did_not_delete_are_kept_not_differences() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE nd (id int PRIMARY KEY, v text);
         INSERT INTO nd SELECT g, 'v' || g FROM generate_series(1, 10) g;
         CREATE PUBLICATION keep FOR TABLE nd WITH (publish = 'insert, update');",
    );
    let dir = scratch();
    let store = store_in(dir.path());
    let asof = Asof::new(&store);
    let mut tail = Tail::spawn_with(&store, &pg.conninfo(), dir.path(), &["--publication", "keep"]);
    eventually("the initial copy", Duration::from_secs(60), || {
        asof.run(&["snapshot", "nd", "--format", "csv"]).code == Some(0)
    });
    sql(
        &pg,
        "DELETE FROM nd WHERE id IN (2, 3); UPDATE nd SET v = 'seen' WHERE id = 4;",
    );
    let out = verify(&asof, &pg, &[]).ok();
    assert!(
        out.stderr.contains("public.nd: equal") && out.stderr.contains("2 rows the source removed are kept"),
        "{}",
        out.stderr
    );
    // A change the store missed is still a difference.
    unseen_by_the_ddl_capture(
        &pg,
        "ALTER PUBLICATION keep DROP TABLE nd; UPDATE nd SET v = 'missed' WHERE id = 5;
         ALTER PUBLICATION keep ADD TABLE nd;",
    );
    let (stdout, stderr) = differs(verify(&asof, &pg, &[]));
    assert_eq!(stdout, "public.nd key 5: values differ\n", "{stderr}");
    assert_eq!(tail.terminate(Duration::from_secs(20)), Some(0), "{}", tail.stderr());
}
