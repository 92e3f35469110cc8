//! Randomized workloads against a real PostgreSQL: after capture, the
//! as-of answer at every commit (by LSN and by timestamp) must be exactly
//! what Postgres showed right after that commit, value for value. A second
//! workload makes transactions larger than the server's decoding memory, so
//! they are streamed before they end: held open while others commit, cut
//! back by rolled-back savepoints (some around DDL), or rolled back whole.

use asof_tests::{assert_matches, connect, conninfo, observe, open_store, Observation};
use cdc_source::conninfo::parse_conninfo;
use cdc_source::{CaptureOptions, Until};
use pg_fixture::PgCluster;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const SETUP: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE typed (
  id int8 PRIMARY KEY, i2 int2, i4 int4, num numeric, f8 float8, b bool, txt text, vc varchar(20),
  by bytea, js json, jsb jsonb, u uuid, d date, tm time, ts timestamp, tstz timestamptz,
  iv interval, ia int4[], ta text[], m mood);
CREATE TABLE comp (k1 text, k2 int4, v text, big text, PRIMARY KEY (k1, k2));
ALTER TABLE comp ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE plain (id int4 PRIMARY KEY, v text, n int4);
INSERT INTO plain VALUES (1, 'one', 1), (2, '', NULL), (3, NULL, 3);
INSERT INTO comp VALUES ('a', 1, 'x', repeat('A', 9000)), ('ab', 1, 'y', NULL);
CREATE TABLE bag (a int4, b text);
ALTER TABLE bag REPLICA IDENTITY FULL;
INSERT INTO bag VALUES (1, 'x'), (1, 'x'), (2, NULL), (2, NULL), (3, '');
"#;

/// Tables and the order of the store's keys: `bag` has no primary key and
/// holds identical rows, keyed by all its columns (NULL first).
const TABLES: [(&str, &str); 4] = [
    ("typed", "id"),
    ("comp", "k1 COLLATE \"C\", k2"),
    ("plain", "id"),
    ("bag", "a NULLS FIRST, b COLLATE \"C\" NULLS FIRST"),
];

/// Column of `typed` with the SQL type and a strategy of literals.
fn typed_value(col: usize) -> BoxedStrategy<String> {
    let lit = |s: &str, ty: &str| format!("'{}'::{ty}", s.replace('\'', "''"));
    let pick = move |opts: &'static [&'static str], ty: &'static str| {
        proptest::sample::select(opts).prop_map(move |s| lit(s, ty)).boxed()
    };
    match col {
        0 => (-32768i32..32768).prop_map(|n| format!("{n}::int2")).boxed(),
        1 => any::<i32>().prop_map(|n| format!("{n}::int4")).boxed(),
        2 => pick(
            &[
                "0",
                "-1.5",
                "NaN",
                "12345678901234567890.123456789012345678901",
                "0.00000000000000000001",
                "1e10",
            ],
            "numeric",
        ),
        3 => pick(
            &[
                "0",
                "-0",
                "Infinity",
                "-Infinity",
                "NaN",
                "1.5e300",
                "3.14159",
                "1e-310",
            ],
            "float8",
        ),
        4 => pick(&["true", "false"], "bool"),
        5 => "[a-c,\"'\\\\\n\t é]{0,12}".prop_map(move |s| lit(&s, "text")).boxed(),
        6 => "[a-z ,]{0,20}".prop_map(move |s| lit(&s, "varchar(20)")).boxed(),
        7 => pick(&["\\x", "\\x00ff10", "\\x5c27"], "bytea"),
        8 => pick(
            &[
                "{\"a\": [1, 2, {\"b\": null}]}",
                "[]",
                "\"x\\u0041\"",
                "{\"k\":1,  \"k\":2}",
            ],
            "json",
        ),
        9 => pick(
            &["{\"a\": [1, 2, {\"b\": null}]}", "{}", "{\"k\":1,  \"k\":2}", "3.50"],
            "jsonb",
        ),
        10 => pick(
            &[
                "00000000-0000-0000-0000-000000000000",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            ],
            "uuid",
        ),
        11 => pick(&["2026-11-20", "4713-01-01 BC", "infinity", "2000-02-29"], "date"),
        12 => pick(&["00:00:00", "23:59:59.999999", "12:34:56.5"], "time"),
        13 => pick(
            &[
                "2026-11-20 09:00:00.123456",
                "infinity",
                "-infinity",
                "1999-12-31 23:59:59",
            ],
            "timestamp",
        ),
        14 => pick(
            &["2026-11-20 09:00:00+09", "2026-11-20 09:00:00.5-03:30", "epoch"],
            "timestamptz",
        ),
        15 => pick(
            &["1 year 2 mons 3 days 04:05:06.789", "-1 day", "0", "PT1M"],
            "interval",
        ),
        16 => pick(&["{1,NULL,3}", "{}", "{{1,2},{3,4}}"], "int4[]"),
        17 => pick(&["{\"a,b\",\"c\\\"d\",NULL}", "{\"\"}", "{x}"], "text[]"),
        _ => pick(&["sad", "ok", "happy"], "mood"),
    }
}

const TYPED_COLS: [&str; 19] = [
    "i2", "i4", "num", "f8", "b", "txt", "vc", "by", "js", "jsb", "u", "d", "tm", "ts", "tstz", "iv", "ia", "ta", "m",
];

#[derive(Clone, Debug)]
enum Op {
    InsertTyped(i64, Vec<Option<String>>),
    UpdateTyped(i64, usize, Option<String>),
    MoveTyped(i64, i64),
    DeleteTyped(i64),
    InsertComp(usize, i32, Option<String>, Option<u8>),
    UpdateCompV(usize, i32, Option<String>),
    UpdateCompBig(usize, i32, u8),
    DeleteComp(usize, i32),
    UpsertPlain(i32, Option<String>),
    DeletePlain(i32),
    TruncatePlain,
    InsertBag(i32, Option<String>, u8),
    UpdateBagOne(i32, i32),
    UpdateBagAll,
    DeleteBagOne(i32),
    AddColumn(bool, u8),
    DropAddedColumn,
    RewritePlainN,
}

const K1: [&str; 5] = ["", "a", "ab", "b", "a b"];

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(0.8, "[a-c ,\"']{0,6}")
}

fn op() -> impl Strategy<Value = Op> {
    let typed_row = (0..19usize)
        .map(|c| proptest::option::weighted(0.8, typed_value(c)))
        .collect::<Vec<_>>();
    prop_oneof![
        4 => (0..20i64, typed_row).prop_map(|(id, vals)| Op::InsertTyped(id, vals)),
        4 => (0..20i64, 0..19usize).prop_flat_map(|(id, c)| (Just(id), Just(c), proptest::option::weighted(0.8, typed_value(c))))
            .prop_map(|(id, c, v)| Op::UpdateTyped(id, c, v)),
        1 => (0..20i64, 0..20i64).prop_map(|(a, b)| Op::MoveTyped(a, b)),
        2 => (0..20i64).prop_map(Op::DeleteTyped),
        3 => (0..5usize, 0..3i32, opt_text(), proptest::option::of(any::<u8>())).prop_map(|(a, b, v, big)| Op::InsertComp(a, b, v, big)),
        3 => (0..5usize, 0..3i32, opt_text()).prop_map(|(a, b, v)| Op::UpdateCompV(a, b, v)),
        1 => (0..5usize, 0..3i32, any::<u8>()).prop_map(|(a, b, c)| Op::UpdateCompBig(a, b, c)),
        1 => (0..5usize, 0..3i32).prop_map(|(a, b)| Op::DeleteComp(a, b)),
        4 => (0..10i32, opt_text()).prop_map(|(id, v)| Op::UpsertPlain(id, v)),
        2 => (0..10i32).prop_map(Op::DeletePlain),
        1 => Just(Op::TruncatePlain),
        3 => (0..4i32, proptest::option::weighted(0.8, "[ab]{0,1}"), 1..4u8).prop_map(|(a, b, n)| Op::InsertBag(a, b, n)),
        2 => (0..4i32, 0..4i32).prop_map(|(a, b)| Op::UpdateBagOne(a, b)),
        1 => Just(Op::UpdateBagAll),
        2 => (0..4i32).prop_map(Op::DeleteBagOne),
        1 => (any::<bool>(), any::<u8>()).prop_map(|(d, n)| Op::AddColumn(d, n)),
        1 => Just(Op::DropAddedColumn),
        1 => Just(Op::RewritePlainN),
    ]
}

fn lit(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("'{}'", s.replace('\'', "''")),
        None => "NULL".into(),
    }
}

/// The SQL of one op; `state` tracks added columns and plain.n's type.
fn sql(op: &Op, added: &mut Vec<String>, next_col: &mut u32, n_is_big: &mut bool) -> Option<String> {
    Some(match op {
        Op::InsertTyped(id, vals) => {
            let v: Vec<String> = vals
                .iter()
                .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
                .collect();
            format!(
                "INSERT INTO typed (id, {}) VALUES ({id}, {}) ON CONFLICT (id) DO NOTHING",
                TYPED_COLS.join(", "),
                v.join(", ")
            )
        }
        Op::UpdateTyped(id, c, v) => {
            format!(
                "UPDATE typed SET {} = {} WHERE id = {id}",
                TYPED_COLS[*c],
                v.clone().unwrap_or_else(|| "NULL".into())
            )
        }
        Op::MoveTyped(a, b) => {
            format!("UPDATE typed SET id = {b} WHERE id = {a} AND NOT EXISTS (SELECT 1 FROM typed WHERE id = {b})")
        }
        Op::DeleteTyped(id) => format!("DELETE FROM typed WHERE id = {id}"),
        Op::InsertComp(a, b, v, big) => format!(
            "INSERT INTO comp VALUES ({}, {b}, {}, {}) ON CONFLICT DO NOTHING",
            lit(&Some(K1[*a].into())),
            lit(v),
            big.map_or("NULL".into(), |c| format!("repeat(chr({}), 9000)", 65 + c % 26))
        ),
        // Leaves `big` untouched: pgoutput sends it as "unchanged TOAST".
        Op::UpdateCompV(a, b, v) => format!(
            "UPDATE comp SET v = {} WHERE k1 = {} AND k2 = {b}",
            lit(v),
            lit(&Some(K1[*a].into()))
        ),
        Op::UpdateCompBig(a, b, c) => format!(
            "UPDATE comp SET big = repeat(chr({}), 8500) || v WHERE k1 = {} AND k2 = {b}",
            65 + c % 26,
            lit(&Some(K1[*a].into()))
        ),
        Op::DeleteComp(a, b) => format!("DELETE FROM comp WHERE k1 = {} AND k2 = {b}", lit(&Some(K1[*a].into()))),
        Op::UpsertPlain(id, v) => {
            format!(
                "INSERT INTO plain (id, v) VALUES ({id}, {0}) ON CONFLICT (id) DO UPDATE SET v = {0}",
                lit(v)
            )
        }
        Op::DeletePlain(id) => format!("DELETE FROM plain WHERE id = {id}"),
        Op::TruncatePlain => "TRUNCATE plain".into(),
        Op::InsertBag(a, b, n) => format!("INSERT INTO bag SELECT {a}, {} FROM generate_series(1, {n})", lit(b)),
        // One copy of a row changes: it may join other copies of the new row.
        Op::UpdateBagOne(from, to) => {
            format!("UPDATE bag SET a = {to} WHERE ctid = (SELECT ctid FROM bag WHERE a = {from} LIMIT 1)")
        }
        Op::UpdateBagAll => "UPDATE bag SET a = a * a % 4".into(),
        Op::DeleteBagOne(a) => format!("DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE a = {a} LIMIT 1)"),
        Op::AddColumn(with_default, n) => {
            *next_col += 1;
            let name = format!("c{next_col}");
            let table = if n % 2 == 0 { "plain" } else { "typed" };
            added.push(format!("{table}.{name}"));
            let def = if *with_default {
                format!(" DEFAULT 'd{n}'")
            } else {
                String::new()
            };
            format!("ALTER TABLE {table} ADD COLUMN {name} text{def}")
        }
        Op::DropAddedColumn => {
            let col = added.pop()?;
            let (table, name) = col.split_once('.')?;
            format!("ALTER TABLE {table} DROP COLUMN {name}")
        }
        // int4 <-> int8 rewrites the table: values must be re-read.
        Op::RewritePlainN => {
            *n_is_big = !*n_is_big;
            if *n_is_big {
                "ALTER TABLE plain ALTER COLUMN n TYPE int8 USING n * 2".into()
            } else {
                "ALTER TABLE plain ALTER COLUMN n TYPE int4 USING (n / 2)::int4".into()
            }
        }
    })
}

/// Captures until caught up; with `via_sql`, any backlog is read through
/// the SQL decoding interface first.
fn capture_until_caught_up(
    rt: &tokio::runtime::Runtime,
    store: changelog::Store,
    conn: &str,
    slot: &str,
    via_sql: bool,
) {
    let opts = CaptureOptions {
        conninfo: parse_conninfo(conn).expect("conninfo"),
        slot: slot.into(),
        publication: "asof_test".into(),
        tables: Vec::new(),
        snapshot: true,
        until: Until::CaughtUp,
        sql_catch_up_above: via_sql.then_some(0),
        streaming: true,
        copy_connections: cdc_source::default_copy_connections(),
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    rt.block_on(cdc_source::capture(store, opts, rx, |_| {}))
        .expect("capture");
}

type LiveCapture = tokio::task::JoinHandle<Result<cdc_source::CaptureSummary, cdc_source::CaptureError>>;

/// A capture running until told to stop (at once, with `stopped`).
fn spawn_live_capture(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    conn: &str,
    slot: &str,
    stopped: bool,
) -> (tokio::sync::watch::Sender<bool>, LiveCapture) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(stopped);
    let store = open_store(dir);
    let opts = CaptureOptions {
        conninfo: parse_conninfo(conn).expect("conninfo"),
        slot: slot.into(),
        publication: "asof_test".into(),
        tables: Vec::new(),
        snapshot: true,
        until: Until::Forever,
        sql_catch_up_above: Some(cdc_source::SQL_CATCH_UP_ABOVE),
        streaming: true,
        copy_connections: cdc_source::default_copy_connections(),
    };
    (stop_tx, rt.spawn(cdc_source::capture(store, opts, stop_rx, |_| {})))
}

fn run_case(pg: &PgCluster, rt: &tokio::runtime::Runtime, case: usize, txns: &[(Vec<Op>, bool)]) {
    let db = format!("case{case}");
    pg.create_database(&db).expect("create db");
    pg.execute_in(&db, SETUP).expect("setup");
    let conn = conninfo(pg, &db);
    // Slots are per cluster, not per database.
    let slot = format!("asof_test_{case}");
    let dir = tempfile::tempdir().expect("tempdir");
    let client = rt.block_on(connect(pg, &db));
    let mut observations: Vec<Observation> = Vec::new();
    // The initial copy, then a live capture running while the workload runs;
    // every other case instead leaves the workload to pile up in the slot
    // and reads it in the end through the SQL decoding interface.
    let via_sql = case % 2 == 1;
    capture_until_caught_up(rt, open_store(dir.path()), &conn, &slot, false);
    observations.push(rt.block_on(observe(&client, &TABLES)));
    let (stop_tx, live) = spawn_live_capture(rt, dir.path(), &conn, &slot, via_sql);
    let (mut added, mut next_col, mut n_is_big) = (Vec::new(), 0u32, false);
    for (ops, alone) in txns {
        let stmts: Vec<String> = ops
            .iter()
            .filter_map(|op| sql(op, &mut added, &mut next_col, &mut n_is_big))
            .collect();
        if stmts.is_empty() {
            continue;
        }
        // Some transactions run one statement alone (DDL-only transactions).
        let batch = if *alone { stmts[..1].to_vec() } else { stmts };
        let body = format!("BEGIN;\n{};\nCOMMIT;", batch.join(";\n"));
        if let Err(e) = rt.block_on(client.batch_execute(&body)) {
            // A generated statement Postgres refused (e.g. a re-added column
            // name clash): the transaction rolled back, nothing to observe.
            rt.block_on(client.batch_execute("ROLLBACK")).ok();
            let _ = e;
            continue;
        }
        observations.push(rt.block_on(observe(&client, &TABLES)));
    }
    finish_case(rt, (stop_tx, live), dir.path(), (&conn, &slot), via_sql, &observations);
}

/// Stops the live capture, catches up once more (`via_sql`: through the
/// SQL decoding interface) and checks every observation against the store.
fn finish_case(
    rt: &tokio::runtime::Runtime,
    (stop_tx, live): (tokio::sync::watch::Sender<bool>, LiveCapture),
    dir: &std::path::Path,
    (conn, slot): (&str, &str),
    via_sql: bool,
    observations: &[Observation],
) {
    let _ = stop_tx.send(true);
    rt.block_on(live).expect("join").expect("live capture");
    capture_until_caught_up(rt, open_store(dir), conn, slot, via_sql);
    let store = changelog::Store::open_read_only(dir).expect("open");
    assert_matches(&store, observations);
}

fn cases() -> u32 {
    std::env::var("ASOF_E2E_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

/// The runtime the captures run on, and a runner of `cases` cases that
/// does not shrink (each case costs a database).
fn runtime_and_runner(cases: u32) -> (tokio::runtime::Runtime, TestRunner) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 0,
        ..Config::default()
    });
    (rt, runner)
}

#[test]
fn randomized_workloads_match_postgres_at_every_commit() {
    let pg = PgCluster::builder()
        .setting("max_replication_slots", "40")
        .start()
        .expect("postgres");
    let (rt, mut runner) = runtime_and_runner(cases());
    let strategy = proptest::collection::vec(
        (proptest::collection::vec(op(), 1..5), proptest::bool::weighted(0.15)),
        5..40,
    );
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |txns| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            run_case(&pg, &rt, n, &txns);
            Ok(())
        })
        .unwrap();
}

/// Rows of `wide` are about 400 bytes: a few hundred changes exceed the
/// smallest `logical_decoding_work_mem` (64kB) and are streamed.
const WIDE: &str = "CREATE TABLE wide (id int4 PRIMARY KEY, v text);";

/// A statement of the streamed workload.
#[derive(Clone, Debug)]
enum Big {
    /// One of the small workload's.
    Small(Op),
    /// Inserts or overwrites `n` rows of `wide` from `lo` (well beyond the
    /// decoding memory).
    Fill(i32, i32, char),
    /// Deletes a range of `wide`.
    Clear(i32, i32),
    /// Adds a column to `wide`.
    Widen,
    /// Adds a column to `wide`, then fills rows of it: in a savepoint,
    /// the server streams the column's description before the savepoint
    /// ends.
    WidenThenFill(i32, i32, char),
    /// Statements as written (fixed cases only).
    Verbatim(&'static str),
}

/// How a statement runs inside its transaction.
#[derive(Clone, Copy, Debug)]
enum Wrap {
    Plain,
    /// Inside a savepoint that is rolled back.
    RolledBack,
    /// Inside a savepoint that is released.
    Released,
}

#[derive(Clone, Debug)]
struct BigTxn {
    steps: Vec<(Big, Wrap)>,
    /// Ends in ROLLBACK.
    aborted: bool,
    /// Left open on a second connection while this many later
    /// transactions commit (0: committed at once).
    held: u8,
}

fn big() -> impl Strategy<Value = Big> {
    prop_oneof![
        3 => op().prop_map(Big::Small),
        3 => (0..300i32, 150..600i32, proptest::char::range('a', 'z')).prop_map(|(lo, n, c)| Big::Fill(lo, n, c)),
        1 => (0..600i32, 1..300i32).prop_map(|(lo, n)| Big::Clear(lo, n)),
        1 => Just(Big::Widen),
        1 => (0..300i32, 150..600i32, proptest::char::range('a', 'z')).prop_map(|(lo, n, c)| Big::WidenThenFill(lo, n, c)),
    ]
}

fn big_txn() -> impl Strategy<Value = BigTxn> {
    let wrap = prop_oneof![3 => Just(Wrap::Plain), 2 => Just(Wrap::RolledBack), 1 => Just(Wrap::Released)];
    (
        proptest::collection::vec((big(), wrap), 1..5),
        proptest::bool::weighted(0.15),
        prop_oneof![3 => Just(0u8), 1 => 1..4u8],
    )
        .prop_map(|(steps, aborted, held)| BigTxn { steps, aborted, held })
}

/// The statements of one transaction. A held one only fills and clears
/// rows of `wide` from 1000 up, which the others never touch, and while it
/// is open the others leave `wide`'s shape alone, so no transaction waits
/// for another's locks.
fn big_sql(txn: &BigTxn, held: bool, holding: bool, state: &mut (Vec<String>, u32, bool, u32)) -> Vec<String> {
    let (added, next_col, n_is_big, wide_cols) = state;
    let fill = |lo: i32, n: i32, c: char| {
        let lo = lo + if held { 1000 } else { 0 };
        format!(
            "INSERT INTO wide (id, v) SELECT g, repeat('{c}', 380) || g FROM generate_series({lo}, {}) g \
             ON CONFLICT (id) DO UPDATE SET v = excluded.v",
            lo + n - 1
        )
    };
    let mut out = Vec::new();
    for (i, (step, wrap)) in txn.steps.iter().enumerate() {
        let stmt = match (step, held) {
            (Big::Fill(lo, n, c), _) => fill(*lo, *n, *c),
            (Big::Clear(lo, n), _) => {
                let lo = lo + if held { 1000 } else { 0 };
                format!("DELETE FROM wide WHERE id BETWEEN {lo} AND {}", lo + n - 1)
            }
            // DDL would wait for the held transaction's lock, or hold the
            // others up; the held one makes only changes to `wide`.
            (Big::Widen | Big::WidenThenFill(..) | Big::Verbatim(_) | Big::Small(_), true) => continue,
            (Big::Widen | Big::WidenThenFill(..) | Big::Verbatim(_), false) if holding => continue,
            (Big::Verbatim(sql), false) => (*sql).to_owned(),
            (Big::Widen, false) => {
                *wide_cols += 1;
                format!("ALTER TABLE wide ADD COLUMN w{wide_cols} text DEFAULT 'w{wide_cols}'")
            }
            (Big::WidenThenFill(lo, n, c), false) => {
                *wide_cols += 1;
                format!(
                    "ALTER TABLE wide ADD COLUMN w{wide_cols} text DEFAULT 'w{wide_cols}';\n{}",
                    fill(*lo, *n, *c)
                )
            }
            (Big::Small(op), false) => match sql(op, added, next_col, n_is_big) {
                Some(stmt) => stmt,
                None => continue,
            },
        };
        match wrap {
            Wrap::Plain => out.push(stmt),
            Wrap::RolledBack => out.extend([format!("SAVEPOINT s{i}"), stmt, format!("ROLLBACK TO SAVEPOINT s{i}")]),
            Wrap::Released => out.extend([format!("SAVEPOINT s{i}"), stmt, format!("RELEASE SAVEPOINT s{i}")]),
        }
    }
    out
}

/// Runs the streamed workload of one case: every commit is observed, the
/// live capture (or, every other case, a capture started afterwards from
/// the slot) must match each.
fn run_streamed_case(pg: &PgCluster, rt: &tokio::runtime::Runtime, case: usize, txns: &[BigTxn]) {
    let db = format!("streamed{case}");
    pg.create_database(&db).expect("create db");
    pg.execute_in(&db, &format!("{SETUP}{WIDE}")).expect("setup");
    let conn = conninfo(pg, &db);
    let slot = format!("asof_streamed_{case}");
    let dir = tempfile::tempdir().expect("tempdir");
    let tables: Vec<(&str, &str)> = TABLES.iter().copied().chain([("wide", "id")]).collect();
    let client = rt.block_on(connect(pg, &db));
    let other = rt.block_on(connect(pg, &db));
    capture_until_caught_up(rt, open_store(dir.path()), &conn, &slot, false);
    let mut observations = vec![rt.block_on(observe(&client, &tables))];
    let (stop_tx, live) = spawn_live_capture(rt, dir.path(), &conn, &slot, case % 2 == 1);
    let mut state = (Vec::new(), 0u32, false, 0u32);
    // The transaction open on `other`: how many more commits it waits for,
    // and whether it ends in ROLLBACK.
    let mut open: Option<(u8, bool)> = None;
    let run = |client: &tokio_postgres::Client, body: String| {
        if rt.block_on(client.batch_execute(&body)).is_err() {
            // A statement Postgres refused: the transaction is rolled back.
            rt.block_on(client.batch_execute("ROLLBACK")).ok();
            return false;
        }
        true
    };
    for txn in txns {
        if txn.held > 0 && open.is_none() {
            let stmts = big_sql(txn, true, false, &mut state);
            if !stmts.is_empty() && run(&other, format!("BEGIN;\n{};", stmts.join(";\n"))) {
                open = Some((txn.held, txn.aborted));
            }
            continue;
        }
        let stmts = big_sql(txn, false, open.is_some(), &mut state);
        if stmts.is_empty() {
            continue;
        }
        let end = if txn.aborted { "ROLLBACK" } else { "COMMIT" };
        if run(&client, format!("BEGIN;\n{};\n{end};", stmts.join(";\n"))) && !txn.aborted {
            observations.push(rt.block_on(observe(&client, &tables)));
        }
        if let Some((left, aborted)) = open.as_mut() {
            *left -= 1;
            if *left == 0 {
                let end = if *aborted { "ROLLBACK" } else { "COMMIT" };
                rt.block_on(other.batch_execute(end)).expect("end the held transaction");
                if !*aborted {
                    observations.push(rt.block_on(observe(&client, &tables)));
                }
                open = None;
            }
        }
    }
    if let Some((_, aborted)) = open {
        let end = if aborted { "ROLLBACK" } else { "COMMIT" };
        rt.block_on(other.batch_execute(end)).expect("end the held transaction");
        if !aborted {
            observations.push(rt.block_on(observe(&client, &tables)));
        }
    }
    finish_case(rt, (stop_tx, live), dir.path(), (&conn, &slot), false, &observations);
}

/// A cluster that streams every transaction beyond 64kB of changes.
fn streaming_cluster() -> PgCluster {
    PgCluster::builder()
        .setting("max_replication_slots", "40")
        .setting("logical_decoding_work_mem", "64kB")
        .start()
        .expect("postgres")
}

/// DDL inside savepoints of streamed transactions. The server sends a
/// logical message (the capture's description of a table) under the
/// transaction's own xid even when a savepoint wrote it, so the savepoint's
/// rollback must still take the description back.
#[test]
fn ddl_in_savepoints_of_streamed_transactions_matches_postgres() {
    let pg = streaming_cluster();
    let (rt, _) = runtime_and_runner(1);
    let txn = |steps: Vec<(Big, Wrap)>| BigTxn {
        steps,
        aborted: false,
        held: 0,
    };
    let cases = [
        vec![
            txn(vec![
                (Big::Fill(0, 300, 'a'), Wrap::Plain),
                (Big::WidenThenFill(0, 300, 'b'), Wrap::RolledBack),
            ]),
            txn(vec![
                (Big::WidenThenFill(100, 300, 'c'), Wrap::Released),
                (Big::WidenThenFill(0, 400, 'd'), Wrap::RolledBack),
            ]),
        ],
        vec![
            txn(vec![(Big::Fill(0, 200, 'a'), Wrap::Plain)]),
            // Nested: the inner savepoint is released into the outer one,
            // which is rolled back.
            txn(vec![(
                Big::Verbatim(
                    "SAVEPOINT a; ALTER TABLE wide ADD COLUMN n1 text DEFAULT 'n1'; SAVEPOINT b; \
                     ALTER TABLE plain ADD COLUMN n2 int4 DEFAULT 2; \
                     INSERT INTO wide (id, v) SELECT g, repeat('e', 380) FROM generate_series(0, 300) g \
                     ON CONFLICT (id) DO UPDATE SET v = excluded.v; RELEASE SAVEPOINT b; \
                     INSERT INTO wide (id, v) SELECT g, repeat('f', 380) FROM generate_series(200, 500) g \
                     ON CONFLICT (id) DO UPDATE SET v = excluded.v; ROLLBACK TO SAVEPOINT a",
                ),
                Wrap::Plain,
            )]),
            // A table dropped in a savepoint that is rolled back.
            txn(vec![(
                Big::Verbatim(
                    "SAVEPOINT d; DROP TABLE bag; \
                     INSERT INTO wide (id, v) SELECT g, repeat('g', 380) FROM generate_series(0, 400) g \
                     ON CONFLICT (id) DO UPDATE SET v = excluded.v; ROLLBACK TO SAVEPOINT d",
                ),
                Wrap::Plain,
            )]),
        ],
    ];
    for (n, txns) in cases.iter().enumerate() {
        run_streamed_case(&pg, &rt, n, txns);
    }
    assert_streamed(&pg);
}

#[test]
fn randomized_streamed_transactions_match_postgres_at_every_commit() {
    let pg = streaming_cluster();
    let (rt, mut runner) = runtime_and_runner(cases().div_ceil(2));
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&proptest::collection::vec(big_txn(), 5..25), |txns| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            run_streamed_case(&pg, &rt, n, &txns);
            Ok(())
        })
        .unwrap();
    assert_streamed(&pg);
}

/// The server did stream: otherwise a test proves nothing new.
fn assert_streamed(pg: &PgCluster) {
    let streamed: i64 = pg
        .query_one_value("SELECT coalesce(sum(stream_txns), 0)::int8 FROM pg_stat_replication_slots")
        .expect("slot statistics")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(streamed > 0, "no transaction was streamed");
}
