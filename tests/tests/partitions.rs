//! Partitioned tables against a real PostgreSQL. asof's own publication
//! publishes partitions through their root, so a root is answered as the
//! user sees it; a publication of the leaves answers each partition. Both
//! must equal what Postgres's own COPY of the root and of each partition
//! printed after every commit, through rows moving between partitions,
//! DDL on the parent, and partitions attached, detached and created.

use asof_tests::live::Live;
use asof_tests::{assert_matches, connect, observe, runtime, store_table, Notices, Observation};
use cdc_source::{CaptureOptions, Until};
use changelog::{Lsn, Store};
use materializer::When;
use pg_fixture::PgCluster;

fn options(pg: &PgCluster, slot: &str, publication: &str) -> CaptureOptions {
    asof_tests::capture_options(pg, slot, publication, Until::Forever)
}

fn assert_unanswered(store: &Store, lsn: Lsn, table: &str) {
    let got = store_table(store, When::Lsn(lsn), table);
    assert!(got.is_none(), "{table} at {lsn} answered: {got:?}");
}

const ORDER: &str = "id, k";

#[test]
fn partitioned_roots_and_their_leaves_are_answered_as_postgres_shows_them() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute(
        "CREATE TABLE m (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k); \
         CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (10); \
         CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (10) TO (20); \
         INSERT INTO m VALUES (1, 1, 'a'), (2, 15, 'b'); \
         CREATE PUBLICATION leaves FOR ALL TABLES",
    )
    .expect("setup");
    let rt = runtime();
    let notices = Notices::default();
    let roots = Live::start(&rt, &pg, options(&pg, "roots", "asof_roots"), &notices);
    let leaves = Live::start(&rt, &pg, options(&pg, "leaves", "leaves"), &notices);
    let client = rt.block_on(connect(&pg, "postgres"));
    let run = |sql: &str| rt.block_on(client.batch_execute(sql)).expect(sql);
    let look = |tables: &[&str]| {
        let t: Vec<(&str, &str)> = tables.iter().map(|t| (*t, ORDER)).collect();
        rt.block_on(observe(&client, &t))
    };
    let (mut at_root, mut at_leaf): (Vec<Observation>, Vec<Observation>) = (Vec::new(), Vec::new());
    let mut step = |sql: &str, root_tables: &[&str], leaf_tables: &[&str]| {
        run(sql);
        let o = look(root_tables);
        let lsn = o.lsn;
        at_root.push(o);
        at_leaf.push(look(leaf_tables));
        lsn
    };

    let first = step("", &["m"], &["m1", "m2"]);
    step("INSERT INTO m VALUES (3, 5, 'c'), (4, 12, 'd')", &["m"], &["m1", "m2"]);
    // Moves a row between partitions: one row at the root.
    step("UPDATE m SET k = 11 WHERE id = 1", &["m"], &["m1", "m2"]);
    step("DELETE FROM m WHERE id = 2", &["m"], &["m1", "m2"]);
    // DDL on the parent reaches every partition at its own position.
    step("ALTER TABLE m ADD COLUMN d int DEFAULT 7", &["m"], &["m1", "m2"]);
    step("ALTER TABLE m DROP COLUMN v", &["m"], &["m1", "m2"]);
    step("INSERT INTO m VALUES (5, 6, 8)", &["m"], &["m1", "m2"]);
    step(
        "CREATE TABLE m3 (id int, k int, d int, PRIMARY KEY (id, k)); INSERT INTO m3 VALUES (6, 25, 1), (7, 26, 2)",
        &["m", "m3"],
        &["m1", "m2", "m3"],
    );
    let attached = step(
        "ALTER TABLE m ATTACH PARTITION m3 FOR VALUES FROM (20) TO (30)",
        &["m"],
        &["m1", "m2", "m3"],
    );
    step("UPDATE m SET k = 3 WHERE id = 6", &["m"], &["m1", "m2", "m3"]);
    step("ALTER TABLE m DETACH PARTITION m1", &["m", "m1"], &["m1", "m2", "m3"]);
    step("UPDATE m1 SET d = 9 WHERE id = 6", &["m", "m1"], &["m1"]);
    step(
        "CREATE TABLE m4 PARTITION OF m FOR VALUES FROM (30) TO (40); INSERT INTO m4 VALUES (8, 35, 0)",
        &["m"],
        &["m2", "m3", "m4"],
    );
    // A root created while capturing.
    step(
        "CREATE TABLE q (id int, k text, PRIMARY KEY (id, k)) PARTITION BY LIST (k); \
         CREATE TABLE q_eu PARTITION OF q FOR VALUES IN ('eu'); \
         CREATE TABLE q_us PARTITION OF q FOR VALUES IN ('us'); \
         INSERT INTO q VALUES (1, 'eu'), (2, 'us'), (3, 'eu')",
        &["q"],
        &["q_eu", "q_us"],
    );
    step("UPDATE q SET k = 'us' WHERE id = 1", &["q"], &["q_eu", "q_us"]);
    step("ALTER TABLE q ADD COLUMN note text", &["q"], &["q_eu", "q_us"]);
    step("DROP TABLE q_us", &["q"], &["q_eu"]);
    // Rewrites every partition: the root is read afresh.
    step(
        "ALTER TABLE m ALTER COLUMN d TYPE text USING d::text || '!'",
        &["m"],
        &["m2", "m3", "m4"],
    );
    let last = step("TRUNCATE m", &["m"], &["m2", "m3", "m4"]);

    let (store, _dir) = roots.finish(&rt, &notices);
    assert_matches(&store, &at_root);
    // Through the root, an attached table is a partition, not a table.
    assert_unanswered(&store, attached, "m3");
    for leaf in ["m1", "m2"] {
        assert_unanswered(&store, first, leaf);
    }
    let (store, _dir) = leaves.finish(&rt, &notices);
    let said = notices.lock().expect("notices").clone();
    assert!(
        said.iter()
            .any(|n| n.contains("public.m is captured as its partitions")),
        "{said:#?}"
    );
    assert_matches(&store, &at_leaf);
    // Published through its leaves, the root itself is no table.
    assert_unanswered(&store, last, "m");
}

#[test]
fn a_user_publication_through_the_root_copies_and_streams() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute(
        "CREATE TABLE m (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k); \
         CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (10); \
         CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (10) TO (20); \
         INSERT INTO m VALUES (1, 1, 'a'), (2, 15, 'b'), (3, 16, 'c'); \
         CREATE PUBLICATION viaroot FOR TABLE m WITH (publish_via_partition_root = true)",
    )
    .expect("setup");
    let rt = runtime();
    let notices = Notices::default();
    let live = Live::start(&rt, &pg, options(&pg, "viaroot", "viaroot"), &notices);
    let client = rt.block_on(connect(&pg, "postgres"));
    let run = |sql: &str| rt.block_on(client.batch_execute(sql)).expect(sql);
    let look = || rt.block_on(observe(&client, &[("m", ORDER)]));
    let mut seen = vec![look()];
    run("INSERT INTO m VALUES (4, 4, 'd'); UPDATE m SET k = 2 WHERE id = 2");
    seen.push(look());
    // Postgres does not send a TRUNCATE of one partition through the root:
    // the root keeps those rows in its answers (documented).
    let before_truncate = seen.last().expect("seen").clone();
    run("TRUNCATE m2");
    let truncated = look();
    run("TRUNCATE m; INSERT INTO m VALUES (9, 9, 'z')");
    seen.push(look());
    let (store, _dir) = live.finish(&rt, &notices);
    assert_matches(&store, &seen);
    let rows = store_table(&store, When::Lsn(truncated.lsn), "m").expect("m");
    assert_eq!(Some(&rows), before_truncate.tables.get("m"));
    assert_ne!(Some(&rows), truncated.tables.get("m"));
    let notices = notices.lock().expect("notices").clone();
    assert!(
        notices.iter().any(|n| n.contains("TRUNCATE") && n.contains("public.m")),
        "{notices:#?}"
    );
    // And where answers are read: the root's coverage says so.
    let cut = materializer::resolve(&store, When::Now, changelog::CommitTime::now()).expect("now");
    let m = materializer::table_at(&store, &changelog::TableName::new("public", "m"), cut.cut).expect("m");
    assert!(m.coverage.partition_truncates_unseen, "{:?}", m.coverage);
}

#[test]
fn a_user_publication_of_a_root_s_leaves_follows_new_partitions() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute(
        "CREATE TABLE m (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k); \
         CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (10); \
         INSERT INTO m VALUES (1, 1, 'a'); \
         CREATE PUBLICATION some_leaves FOR TABLE m",
    )
    .expect("setup");
    let rt = runtime();
    let notices = Notices::default();
    let live = Live::start(&rt, &pg, options(&pg, "some_leaves", "some_leaves"), &notices);
    let client = rt.block_on(connect(&pg, "postgres"));
    let run = |sql: &str| rt.block_on(client.batch_execute(sql)).expect(sql);
    let look = |tables: &[&str]| {
        let t: Vec<(&str, &str)> = tables.iter().map(|t| (*t, ORDER)).collect();
        rt.block_on(observe(&client, &t))
    };
    let mut seen = vec![look(&["m1"])];
    // Not published until attached, and then with the rows it has.
    run("CREATE TABLE m2 (id int, k int, v text, PRIMARY KEY (id, k)); INSERT INTO m2 VALUES (2, 12, 'b')");
    run("ALTER TABLE m ATTACH PARTITION m2 FOR VALUES FROM (10) TO (20)");
    seen.push(look(&["m1", "m2"]));
    run("CREATE TABLE m3 PARTITION OF m FOR VALUES FROM (20) TO (30); INSERT INTO m VALUES (3, 25, 'c')");
    seen.push(look(&["m1", "m2", "m3"]));
    run("UPDATE m SET k = 5 WHERE id = 3; ALTER TABLE m ADD COLUMN d int DEFAULT 4");
    seen.push(look(&["m1", "m2", "m3"]));
    let (store, _dir) = live.finish(&rt, &notices);
    assert_matches(&store, &seen);
}
