//! A table without a primary key under `REPLICA IDENTITY FULL` holds
//! identical rows, and an UPDATE or DELETE changes one copy of a row at a
//! time. Against a real PostgreSQL: after the initial copy of duplicated
//! rows, updates that make rows collide, deletes of one copy, several
//! changes to one row in a transaction, added and dropped columns and a
//! truncate, the as-of answer at every commit is exactly what Postgres
//! showed then, copy for copy.

use std::ops::ControlFlow;

use asof_tests::{assert_matches, capture_options, connect, observe, open_store, runtime, Observation};
use cdc_source::Until;
use changelog::{CommitTime, Datum, TableName};
use materializer::{HistoryOp, QueryError, When};
use pg_fixture::PgCluster;

const SETUP: &str = "CREATE TABLE t (a int4); ALTER TABLE t REPLICA IDENTITY FULL; \
     INSERT INTO t SELECT g FROM generate_series(1, 6) g, generate_series(1, 2);";

/// One copy of the row where `cond` holds.
fn one(cond: &str) -> String {
    format!("ctid = (SELECT ctid FROM t WHERE {cond} LIMIT 1)")
}

fn capture(rt: &tokio::runtime::Runtime, pg: &PgCluster, dir: &std::path::Path) {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let opts = capture_options(pg, "multiset", "asof_multiset", Until::CaughtUp);
    rt.block_on(cdc_source::capture(open_store(dir), opts, rx, |_| {}))
        .expect("capture");
}

#[test]
fn identical_rows_are_counted_through_updates_deletes_and_ddl() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute(SETUP).expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let client = rt.block_on(connect(&pg, "postgres"));
    // The initial copy; the slot keeps every later change for the next run.
    capture(&rt, &pg, dir.path());
    // Rows in the store's key order: NULL first, integers numerically.
    let mut order = "a NULLS FIRST".to_string();
    let mut observations: Vec<Observation> = vec![rt.block_on(observe(&client, &[("t", order.as_str())]))];
    let steps: Vec<(String, Option<&str>)> = vec![
        // Each of 1..6 twice becomes 1,1,4,4,9,9,...: every update moves
        // one copy onto a row another update may just have written.
        ("UPDATE t SET a = a * a".into(), None),
        (format!("DELETE FROM t WHERE {}", one("a = 4")), None),
        ("INSERT INTO t VALUES (4), (4), (7), (NULL), (NULL)".into(), None),
        // One transaction touching the same rows several times.
        (
            format!(
                "BEGIN; UPDATE t SET a = a + 1 WHERE a = 4; DELETE FROM t WHERE {}; \
                 INSERT INTO t VALUES (5); UPDATE t SET a = 4 WHERE {}; COMMIT",
                one("a = 5"),
                one("a = 5")
            ),
            None,
        ),
        ("UPDATE t SET a = a WHERE a = 9".into(), None),
        (format!("DELETE FROM t WHERE {}", one("a IS NULL")), None),
        (
            "ALTER TABLE t ADD COLUMN b int4 DEFAULT 0".into(),
            Some("a NULLS FIRST, b NULLS FIRST"),
        ),
        (format!("UPDATE t SET b = 1 WHERE {}", one("a = 9")), None),
        (format!("DELETE FROM t WHERE {}", one("a = 16")), None),
        ("INSERT INTO t VALUES (9, 1), (9, 0)".into(), None),
        ("ALTER TABLE t DROP COLUMN b".into(), Some("a NULLS FIRST")),
        // After the drop the rows (9, 0) and (9, 1) are four copies of 9.
        (format!("DELETE FROM t WHERE {}", one("a = 9")), None),
        ("UPDATE t SET a = a * 10 WHERE a = 36".into(), None),
        (
            "ALTER TABLE t ADD COLUMN c text".into(),
            Some("a NULLS FIRST, c NULLS FIRST"),
        ),
        (format!("DELETE FROM t WHERE {}", one("a = 25")), None),
        (format!("UPDATE t SET c = 'x' WHERE {}", one("a = 360")), None),
        ("TRUNCATE t".into(), None),
        ("INSERT INTO t VALUES (1, 'y'), (1, 'y'), (2, NULL)".into(), None),
        (format!("DELETE FROM t WHERE {}", one("a = 1")), None),
    ];
    for (sql, new_order) in &steps {
        rt.block_on(client.batch_execute(sql)).expect(sql);
        if let Some(o) = new_order {
            order = (*o).to_string();
        }
        observations.push(rt.block_on(observe(&client, &[("t", order.as_str())])));
    }
    capture(&rt, &pg, dir.path());
    let store = changelog::Store::open_read_only(dir.path()).expect("open");
    assert_matches(&store, &observations);

    // The history of the row 4 counts its copies at each change.
    let at = |i: usize| {
        materializer::resolve(&store, When::Lsn(observations[i].lsn), CommitTime::now())
            .expect("resolve")
            .cut
    };
    let t = materializer::table_at(&store, &TableName::parse("t"), at(3)).expect("table");
    let key = materializer::user_key(&t, &["4"]).expect("key");
    let history: Vec<(HistoryOp, u64)> = materializer::history(&store, &t, &key)
        .expect("history")
        .into_iter()
        .filter(|h| h.cut.lsn <= observations[5].lsn)
        .map(|h| (h.op, h.copies))
        .collect();
    assert_eq!(
        history,
        [
            (HistoryOp::Read, 2),
            // 2 and 4 squared: the copies of 4 moved on, two came in.
            (HistoryOp::Update, 2),
            (HistoryOp::Delete, 1),
            (HistoryOp::Insert, 3),
            (HistoryOp::Delete, 1),
        ]
    );
    let found = materializer::get(&store, &t, &key, at(3)).expect("get").expect("row 4");
    assert_eq!((found.row, found.copies), (vec![Datum::text("4")], 3));
    // A diff lists the copies added and removed.
    let mut diff = Vec::new();
    materializer::diff(&store, Some(&t), &t, at(2), at(3), |e| {
        diff.push((e.kind, e.copies, e.after.or(e.before)));
        Ok::<_, QueryError>(ControlFlow::Continue(()))
    })
    .expect("diff");
    assert_eq!(
        diff,
        [
            (materializer::DiffKind::Inserted, 2, Some(vec![Datum::Null])),
            (materializer::DiffKind::Inserted, 2, Some(vec![Datum::text("4")])),
            (materializer::DiffKind::Inserted, 1, Some(vec![Datum::text("7")])),
        ]
    );
}
