//! The capture's rules for what it may not guess, against a real
//! PostgreSQL: tables without a key, unlogged and temporary tables, the
//! DDL session's output settings, and user names that collide with the
//! DDL capture's own SQL. As-of answers must equal what Postgres's own COPY
//! printed at that moment (in the capture's fixed output settings), and
//! what is not captured must not be answered at all.

use std::time::{Duration, Instant};

use asof_tests::{assert_matches, collect, connect, observe, open_store, runtime, store_table, Notices, Observation};
use cdc_source::{CaptureEvent, CaptureOptions, Until};
use changelog::{Lsn, SchemaChange, Store};
use materializer::When;
use pg_fixture::PgCluster;

use asof_tests::capture_options as options;

/// A capture running while the test changes the database.
struct Live {
    stop: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<cdc_source::Result<cdc_source::CaptureSummary>>,
}

fn start_live(
    rt: &tokio::runtime::Runtime,
    pg: &PgCluster,
    dir: &std::path::Path,
    opts: CaptureOptions,
    notices: &Notices,
) -> Live {
    let slot = opts.slot.clone();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let handle = rt.spawn(cdc_source::capture(open_store(dir), opts, stop_rx, collect(notices)));
    let live = Live { stop, handle };
    wait_streaming(rt, pg, &slot, live)
}

/// A capture held right after it created its first slot, before it
/// copies: what the test does before calling the returned `resume` lands
/// between the slot's snapshot and the copy. `resume` waits until the
/// capture streams.
fn start_held_after_slot<'a>(
    rt: &'a tokio::runtime::Runtime,
    pg: &'a PgCluster,
    dir: &std::path::Path,
    opts: CaptureOptions,
    notices: &Notices,
) -> impl FnOnce() -> Live + 'a {
    let slot = opts.slot.clone();
    let (created_tx, created) = std::sync::mpsc::channel();
    let (resume, resumed) = std::sync::mpsc::channel::<()>();
    let mut on_notice = collect(notices);
    let mut first = true;
    let on_event = move |e: CaptureEvent| {
        let slot_created = matches!(&e, CaptureEvent::Notice(n) if n.starts_with("created replication slot"));
        on_notice(e);
        if slot_created && std::mem::take(&mut first) {
            let _ = created_tx.send(());
            let _ = resumed.recv_timeout(Duration::from_secs(60));
        }
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let handle = rt.spawn(cdc_source::capture(open_store(dir), opts, stop_rx, on_event));
    created
        .recv_timeout(Duration::from_secs(90))
        .expect("the slot was created");
    move || {
        resume.send(()).expect("resume");
        wait_streaming(rt, pg, &slot, Live { stop, handle })
    }
}

/// Waits until the capture streams from its slot (its history has begun).
fn wait_streaming(rt: &tokio::runtime::Runtime, pg: &PgCluster, slot: &str, live: Live) -> Live {
    let start = Instant::now();
    let active = format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active");
    while pg.query_one_value(&active).ok().flatten().as_deref() != Some("1") {
        if live.handle.is_finished() {
            panic!("the capture stopped before streaming: {:?}", rt.block_on(live.handle));
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "gave up waiting for the slot"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    live
}

/// Stops the live capture, then catches up once more in a new session (a
/// restart must accept everything the live capture recorded).
fn finish(
    rt: &tokio::runtime::Runtime,
    live: Live,
    dir: &std::path::Path,
    opts: CaptureOptions,
    notices: &Notices,
) -> Store {
    let _ = live.stop.send(true);
    rt.block_on(live.handle).expect("join").expect("live capture");
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let opts = CaptureOptions {
        until: Until::CaughtUp,
        sql_catch_up_above: Some(cdc_source::SQL_CATCH_UP_ABOVE),
        streaming: true,
        copy_connections: cdc_source::default_copy_connections(),
        ..opts
    };
    rt.block_on(cdc_source::capture(open_store(dir), opts, rx, collect(notices)))
        .expect("catch up");
    Store::open_read_only(dir).expect("open")
}

fn notices_about<'a>(notices: &'a [String], what: &str) -> Vec<&'a String> {
    notices.iter().filter(|n| n.contains(what)).collect()
}

/// Asserts the store answers nothing for `table` at `lsn`.
fn assert_unanswered(store: &Store, lsn: Lsn, table: &str) {
    let got = store_table(store, When::Lsn(lsn), table);
    assert!(got.is_none(), "{table} at {lsn} answered as if captured: {got:?}");
}

#[test]
fn tables_without_a_key_are_never_answered_and_are_picked_up_once_keyed() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE base (id int PRIMARY KEY, v text); INSERT INTO base VALUES (1, 'a')")
        .expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let notices = Notices::default();
    let opts = options(&pg, "keys", "asof_keys", Until::Forever);
    let live = start_live(&rt, &pg, dir.path(), opts.clone(), &notices);
    let client = rt.block_on(connect(&pg, "postgres"));
    let run = |sql: &str| rt.block_on(client.batch_execute(sql)).expect(sql);
    let look = |tables: &[(&str, &str)]| rt.block_on(observe(&client, tables));

    let mut captured: Vec<Observation> = Vec::new();
    let mut unanswered: Vec<(Lsn, &str)> = Vec::new();
    // Created without a key: its rows would collapse into one.
    run("CREATE TABLE nokey (a int, b text); INSERT INTO nokey VALUES (1, 'x'), (2, 'x'), (3, NULL)");
    run("INSERT INTO base VALUES (2, 'b'); INSERT INTO nokey VALUES (4, 'y')");
    unanswered.push((look(&[]).lsn, "nokey"));
    // A zero-column table, then under FULL (a count of empty rows), then
    // with a column.
    run("CREATE TABLE bare (); INSERT INTO bare DEFAULT VALUES");
    unanswered.push((look(&[]).lsn, "bare"));
    run("ALTER TABLE bare REPLICA IDENTITY FULL");
    captured.push(look(&[("bare", "ctid")]));
    run("INSERT INTO bare DEFAULT VALUES; INSERT INTO bare DEFAULT VALUES");
    captured.push(look(&[("bare", "ctid")]));
    run("CREATE TABLE later_full (a int, b text); INSERT INTO later_full VALUES (1, 'p'), (2, NULL), (3, 'p')");
    unanswered.push((look(&[]).lsn, "later_full"));
    // Fixing the identity captures each from that point, rows and all.
    run("ALTER TABLE nokey ADD PRIMARY KEY (a)");
    captured.push(look(&[("nokey", "a"), ("base", "id")]));
    run("UPDATE nokey SET b = 'z' WHERE a = 1; DELETE FROM nokey WHERE a = 2");
    captured.push(look(&[("nokey", "a")]));
    run("ALTER TABLE bare ADD COLUMN v int; INSERT INTO bare VALUES (7), (8), (NULL)");
    captured.push(look(&[("bare", "v NULLS FIRST")]));
    run("ALTER TABLE later_full REPLICA IDENTITY FULL");
    captured.push(look(&[("later_full", "a, b")]));
    run("UPDATE later_full SET b = 'q' WHERE a = 2");
    captured.push(look(&[("later_full", "a, b")]));
    // A captured table that loses its key stops being answered.
    run("CREATE TABLE loses (id int PRIMARY KEY, v text); INSERT INTO loses VALUES (1, 'one')");
    captured.push(look(&[("loses", "id")]));
    run("ALTER TABLE loses DROP CONSTRAINT loses_pkey; INSERT INTO loses VALUES (1, 'one')");
    unanswered.push((look(&[]).lsn, "loses"));
    // Under REPLICA IDENTITY NOTHING the primary key still tells rows apart
    // (Postgres then allows only inserts).
    run("CREATE TABLE nothing (id int PRIMARY KEY, v text); ALTER TABLE nothing REPLICA IDENTITY NOTHING");
    run("INSERT INTO nothing VALUES (1, 'a'), (2, 'a')");
    captured.push(look(&[("nothing", "id")]));
    // A table that stays without a key does not stop a restart.
    run("CREATE TABLE stays (a int); INSERT INTO stays VALUES (1)");
    unanswered.push((look(&[]).lsn, "stays"));

    let store = finish(&rt, live, dir.path(), opts, &notices);
    assert_matches(&store, &captured);
    for (lsn, table) in &unanswered {
        assert_unanswered(&store, *lsn, table);
    }
    // Recorded, with its reason, so readers can tell.
    let recorded = store.catalog().tables().any(|(_, e)| {
        e.history.versions().iter().any(|v| {
            matches!(&v.change, SchemaChange::Uncaptured { schema, reason } if schema.name.name == "nokey" && reason.contains("ALTER TABLE"))
        })
    });
    assert!(recorded, "nokey's uncaptured state is not in the store");
    let stays = store.catalog().tables().find_map(|(_, e)| {
        e.history
            .uncaptured_reason()
            .filter(|r| r.contains("\"stays\""))
            .map(String::from)
    });
    assert!(stays.is_some(), "stays is not recorded as uncaptured");

    let notices = notices.lock().expect("notices").clone();
    let nokey = notices_about(&notices, "public.nokey is not captured");
    assert!(
        nokey
            .iter()
            .any(|n| n.contains("ALTER TABLE \"public\".\"nokey\" REPLICA IDENTITY FULL")),
        "{notices:#?}"
    );
    // Advice fits the table's state: without columns, FULL captures it.
    let bare = notices_about(&notices, "public.bare is not captured");
    assert!(
        bare.len() == 1
            && bare
                .iter()
                .all(|n| n.contains("no columns") && n.contains("REPLICA IDENTITY FULL")),
        "{notices:#?}"
    );
    assert!(
        !notices_about(&notices, "public.nokey has a key now").is_empty(),
        "{notices:#?}"
    );
    assert!(
        !notices_about(&notices, "public.stays is not captured").is_empty(),
        "{notices:#?}"
    );
}

#[test]
fn a_new_history_refuses_a_table_without_a_key_with_fitting_advice() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE bare ()").expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let err = rt
        .block_on(cdc_source::capture(
            open_store(dir.path()),
            options(&pg, "fresh", "asof_fresh", Until::CaughtUp),
            rx,
            |_| {},
        ))
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        matches!(err, cdc_source::CaptureError::NoReplicaIdentity { .. })
            && text.contains("no columns")
            && text.contains("REPLICA IDENTITY FULL"),
        "{text}"
    );
}

/// Output settings a DDL session might use, each different from the fixed ones.
const ODD_SESSION: &str = "SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'SQL, DMY'; \
     SET IntervalStyle = 'sql_standard'; SET extra_float_digits = 0; SET bytea_output = 'escape'";

#[test]
fn values_never_depend_on_the_session_that_changed_them() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute(
        "CREATE TABLE vals (id int PRIMARY KEY, n int4, tz timestamptz, d date, iv interval, f8 float8, by bytea, \
                            f4 float4, ts text);
         INSERT INTO vals VALUES
           (1, 1, '2026-11-20 09:00:00.5+00', '2026-02-03', '1 year 2 mons 3 days 04:05:06.789', 0.1, '\\x00ff5c',
            0.1, '2026-01-02 03:04:05'),
           (2, NULL, '-infinity', '4713-01-01 BC', '-1 day', 1e-310, '\\x', 3.14159, '1999-12-31 23:59:59'),
           (3, 3, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL)",
    )
    .expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let notices = Notices::default();
    let opts = options(&pg, "vals", "asof_vals", Until::Forever);
    let live = start_live(&rt, &pg, dir.path(), opts.clone(), &notices);
    let observer = rt.block_on(connect(&pg, "postgres"));
    let ddl = rt.block_on(connect(&pg, "postgres"));
    rt.block_on(ddl.batch_execute(ODD_SESSION)).expect("odd session");
    let settings = |c: &tokio_postgres::Client| -> Vec<String> {
        let row = rt
            .block_on(c.query_one(
                "SELECT current_setting('TimeZone'), current_setting('DateStyle'), current_setting('IntervalStyle'), \
                        current_setting('extra_float_digits'), current_setting('bytea_output')",
                &[],
            ))
            .expect("settings");
        (0..5).map(|i| row.get::<_, String>(i)).collect()
    };
    let before = settings(&ddl);
    let tables = [("vals", "id")];
    let mut observations = vec![rt.block_on(observe(&observer, &tables))];
    for step in [
        // Rewrites: every row is read again by the DDL capture.
        "ALTER TABLE vals ALTER COLUMN n TYPE int8",
        "ALTER TABLE vals ALTER COLUMN f4 TYPE float8",
        "ALTER TABLE vals ALTER COLUMN ts TYPE timestamptz USING ts::timestamptz",
        // Values older rows take in added columns.
        "ALTER TABLE vals ADD COLUMN a_tz timestamptz DEFAULT '2026-01-02 03:04:05.25+00', \
                          ADD COLUMN a_d date DEFAULT '2026-12-31', \
                          ADD COLUMN a_iv interval DEFAULT '3 days 04:05:06', \
                          ADD COLUMN a_f8 float8 DEFAULT 0.1, \
                          ADD COLUMN a_by bytea DEFAULT '\\x5c00ff'",
        "BEGIN; ALTER TABLE vals ALTER COLUMN n TYPE int4; INSERT INTO vals (id) VALUES (4); COMMIT",
    ] {
        rt.block_on(ddl.batch_execute(step)).expect(step);
        observations.push(rt.block_on(observe(&observer, &tables)));
    }
    // The DDL session keeps its own settings.
    assert_eq!(settings(&ddl), before);
    assert_eq!(before[0], "Asia/Tokyo");
    let store = finish(&rt, live, dir.path(), opts, &notices);
    assert_matches(&store, &observations);
}

#[test]
fn no_user_name_breaks_the_capture() {
    let pg = PgCluster::start().expect("postgres");
    // Every name the DDL capture's SQL uses, reserved words, and odd text.
    let columns = [
        "t",
        "v",
        "c",
        "n",
        "a",
        "i",
        "p",
        "pt",
        "r",
        "x",
        "asof_row",
        "oid",
        "rel",
        "cmd",
        "done",
        "payload",
        "rewritten",
        "v_rel",
        "v_row",
        "v_cmd",
        "v_payload",
        "select",
        "from",
        "user",
        "order",
        "group",
        "table",
        "Mixed Case",
        "quo\"te",
        "com,ma",
    ];
    let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let tables = [
        ("public", "t"),
        ("public", "asof_row"),
        ("public", "select"),
        ("My Schema", "Weird \"Name\", with comma"),
        ("from", "user"),
    ];
    let mut setup = String::new();
    for (schema, table) in &tables {
        let q = format!("{}.{}", quoted(schema), quoted(table));
        let cols: Vec<String> = columns.iter().map(|c| format!("{} text", quoted(c))).collect();
        setup.push_str(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE {q} (id int PRIMARY KEY, {}); \
             INSERT INTO {q} (id, \"t\", \"user\") VALUES (1, '1', 'u'), (2, NULL, 'w');",
            quoted(schema),
            cols.join(", ")
        ));
    }
    // A trigger an earlier release left for the same publication under
    // another name must go, or every message would come twice.
    setup.push_str(
        "CREATE FUNCTION public.asof_ddl_end_my_pub() RETURNS event_trigger LANGUAGE plpgsql AS $f$
         BEGIN -- p.pubname = 'My,Pub'
           IF tg_tag <> 'CREATE PUBLICATION' THEN RAISE EXCEPTION 'stale trigger'; END IF;
         END $f$;
         CREATE EVENT TRIGGER asof_ddl_end_my_pub ON ddl_command_end EXECUTE FUNCTION public.asof_ddl_end_my_pub();",
    );
    pg.execute(&setup).expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let notices = Notices::default();
    // Capitals and a comma in the publication's name as well.
    let opts = options(&pg, "names", "My,Pub", Until::Forever);
    let live = start_live(&rt, &pg, dir.path(), opts.clone(), &notices);
    let client = rt.block_on(connect(&pg, "postgres"));
    let names: Vec<String> = tables
        .iter()
        .map(|(s, t)| format!("{}.{}", quoted(s), quoted(t)))
        .collect();
    let observed: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "id")).collect();
    let mut observations = vec![rt.block_on(observe(&client, &observed))];
    for q in &names {
        for step in [
            // A rewrite: the rows are read again through the capture's SQL.
            format!("ALTER TABLE {q} ALTER COLUMN \"t\" TYPE int8 USING \"t\"::int8"),
            format!("ALTER TABLE {q} ADD COLUMN \"where\" text DEFAULT 'f'"),
            format!("UPDATE {q} SET \"user\" = \"user\" || '!', \"select\" = 's' WHERE id = 1"),
            format!("ALTER TABLE {q} ALTER COLUMN \"asof_row\" TYPE int4 USING length(\"user\")"),
            format!("INSERT INTO {q} (id, \"t\") VALUES (3, 3)"),
        ] {
            rt.block_on(client.batch_execute(&step)).expect(&step);
            observations.push(rt.block_on(observe(&client, &observed)));
        }
    }
    let store = finish(&rt, live, dir.path(), opts, &notices);
    assert_matches(&store, &observations);
}

#[test]
fn unlogged_and_temporary_tables_are_not_answered() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute(
        "CREATE TABLE base (id int PRIMARY KEY); CREATE UNLOGGED TABLE early (id int PRIMARY KEY); \
         INSERT INTO early VALUES (1)",
    )
    .expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let notices = Notices::default();
    let opts = options(&pg, "unlogged", "asof_unlogged", Until::Forever);
    let live = start_live(&rt, &pg, dir.path(), opts.clone(), &notices);
    let client = rt.block_on(connect(&pg, "postgres"));
    let other = rt.block_on(connect(&pg, "postgres"));
    let run = |c: &tokio_postgres::Client, sql: &str| rt.block_on(c.batch_execute(sql)).expect(sql);
    run(
        &client,
        "CREATE UNLOGGED TABLE ul (id int PRIMARY KEY, v text); INSERT INTO ul VALUES (1, 'a'), (2, 'b')",
    );
    run(
        &other,
        "CREATE TEMP TABLE scratch (id int PRIMARY KEY); INSERT INTO scratch VALUES (1)",
    );
    run(
        &client,
        "INSERT INTO base VALUES (1); UPDATE ul SET v = 'c' WHERE id = 1",
    );
    let before = rt.block_on(observe(&client, &[("base", "id")]));
    // Made logged, it is captured from then on, rows and all.
    run(&client, "ALTER TABLE ul SET LOGGED");
    let after = rt.block_on(observe(&client, &[("base", "id"), ("ul", "id")]));
    run(&client, "UPDATE ul SET v = 'd' WHERE id = 2");
    let later = rt.block_on(observe(&client, &[("ul", "id")]));
    let store = finish(&rt, live, dir.path(), opts, &notices);
    assert_matches(&store, &[before.clone(), after, later]);
    for table in ["ul", "early"] {
        assert_unanswered(&store, before.lsn, table);
    }
    let names: Vec<String> = store
        .catalog()
        .tables()
        .flat_map(|(_, e)| {
            e.history
                .versions()
                .iter()
                .filter_map(|v| v.schema())
                .map(|s| s.name.to_string())
        })
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("scratch") || n.contains("early")),
        "{names:?}"
    );
    let notices = notices.lock().expect("notices").clone();
    assert!(
        notices
            .iter()
            .any(|n| n.contains("unlogged") && n.contains("public.early")),
        "{notices:#?}"
    );
    assert!(
        notices.iter().any(|n| n.contains("public.ul is unlogged")),
        "{notices:#?}"
    );
    assert!(!notices.iter().any(|n| n.contains("scratch")), "{notices:#?}");
}

/// The observation with one column left out (a column that is not captured).
fn without_column(mut o: Observation, table: &str, column: &str) -> Observation {
    if let Some((cols, rows)) = o.tables.get_mut(table) {
        if let Some(i) = cols.iter().position(|c| c == column) {
            cols.remove(i);
            for r in rows.iter_mut() {
                r.remove(i);
            }
        }
    }
    o
}

#[test]
fn generated_columns_are_left_out_consistently_and_said_so() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute(
        "CREATE TABLE gen (id int PRIMARY KEY, v int, twice int GENERATED ALWAYS AS (v * 2) STORED, w text);
         INSERT INTO gen (id, v, w) VALUES (1, 1, 'a'), (2, NULL, 'b')",
    )
    .expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let notices = Notices::default();
    let opts = options(&pg, "gen", "asof_gen", Until::Forever);
    let live = start_live(&rt, &pg, dir.path(), opts.clone(), &notices);
    let client = rt.block_on(connect(&pg, "postgres"));
    let run = |sql: &str| rt.block_on(client.batch_execute(sql)).expect(sql);
    let look = |tables: &[(&str, &str)]| {
        without_column(
            without_column(rt.block_on(observe(&client, tables)), "gen", "twice"),
            "gen2",
            "g",
        )
    };
    let mut seen = vec![look(&[("gen", "id")])];
    run("INSERT INTO gen (id, v, w) VALUES (3, 3, 'c'); UPDATE gen SET v = 10 WHERE id = 1");
    seen.push(look(&[("gen", "id")]));
    // A rewrite re-reads every row: without the generated column too.
    run("ALTER TABLE gen ALTER COLUMN id TYPE bigint");
    seen.push(look(&[("gen", "id")]));
    run("CREATE TABLE gen2 (id int PRIMARY KEY, g text GENERATED ALWAYS AS (id::text || 'x') STORED, v int)");
    run("INSERT INTO gen2 (id, v) VALUES (1, 5), (2, 6); DELETE FROM gen WHERE id = 2");
    seen.push(look(&[("gen", "id"), ("gen2", "id")]));
    let store = finish(&rt, live, dir.path(), opts, &notices);
    assert_matches(&store, &seen);
    let notices = notices.lock().expect("notices").clone();
    for (table, col) in [("public.gen", "twice"), ("public.gen2", "g")] {
        assert!(
            notices
                .iter()
                .any(|n| n.contains(table) && n.contains(&format!("column {col} (generated) not captured"))),
            "{notices:#?}"
        );
    }
}

/// A re-read is a full read inside the DDL's transaction: DDL that leaves
/// every stored value reading the same reads nothing again, and a renamed
/// enum value re-reads exactly the tables that store the type (through an
/// array, a domain and a composite), not one that stores another type.
#[test]
fn only_ddl_that_changes_how_stored_rows_read_reads_them_again() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute(
        "CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE TYPE spare AS ENUM ('x');
         CREATE TYPE unused AS ENUM ('u');
         CREATE TYPE pair AS (a int, m mood);
         CREATE DOMAIN dmood AS mood;
         CREATE TABLE plain (id int PRIMARY KEY, vc varchar(3), code text NOT NULL UNIQUE, p pair);
         CREATE TABLE moods (id int PRIMARY KEY, ms mood[], d dmood);
         CREATE TABLE other (id int PRIMARY KEY, s spare);
         INSERT INTO plain VALUES (1, 'a', 'x', ROW(1, 'sad'));
         INSERT INTO moods VALUES (1, '{sad}', 'sad');
         INSERT INTO other VALUES (1, 'x')",
    )
    .expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let notices = Notices::default();
    let opts = options(&pg, "reread", "asof_reread", Until::Forever);
    let live = start_live(&rt, &pg, dir.path(), opts.clone(), &notices);
    let client = rt.block_on(connect(&pg, "postgres"));
    let (copied, _) = rt.block_on(asof_tests::position(&client));
    let tables = [("plain", "id"), ("moods", "id"), ("other", "id")];
    let mut seen = vec![rt.block_on(observe(&client, &tables))];
    for step in [
        "ALTER TABLE plain ADD COLUMN n int DEFAULT 3",
        "ALTER TABLE plain RENAME COLUMN n TO m",
        "ALTER TABLE plain ALTER COLUMN vc SET STATISTICS 100",
        "ALTER TABLE plain ALTER COLUMN vc TYPE text",
        "ALTER TABLE plain REPLICA IDENTITY DEFAULT",
        "ALTER TYPE mood ADD VALUE 'glad'",
        "ALTER TYPE pair RENAME ATTRIBUTE a TO b",
        "ALTER TYPE unused RENAME VALUE 'u' TO 'v'",
    ] {
        rt.block_on(client.batch_execute(step)).expect(step);
    }
    let (unchanged, _) = rt.block_on(asof_tests::position(&client));
    seen.push(rt.block_on(observe(&client, &tables)));
    rt.block_on(client.batch_execute("ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'"))
        .expect("rename value");
    seen.push(rt.block_on(observe(&client, &tables)));
    let store = finish(&rt, live, dir.path(), opts, &notices);
    assert_matches(&store, &seen);
    let mut reread = Vec::new();
    store
        .for_each_log_entry::<changelog::StoreError>(copied, Lsn(u64::MAX), |e| {
            // The initial copy's reads end at or before `copied`.
            if let (changelog::ChangeRecord::ReadStart { table }, true) = (e.record, e.commit_lsn > copied) {
                let name = store.catalog().tables().find(|(id, _)| *id == table);
                let name = name.and_then(|(_, t)| t.current_schema()).map(|s| s.name.to_string());
                reread.push((e.commit_lsn > unchanged, name.unwrap_or_default()));
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .expect("log");
    reread.sort();
    assert_eq!(
        reread,
        [(true, "public.moods".to_owned()), (true, "public.plain".to_owned())]
    );
}

#[test]
fn ddl_committed_during_the_initial_copy_lands_at_its_own_position() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute(
        "CREATE TABLE a_big (id int PRIMARY KEY, v text);
         INSERT INTO a_big SELECT i, repeat('x', 20) || i FROM generate_series(1, 300000) i;
         CREATE TABLE b_rename (id int PRIMARY KEY, v text); INSERT INTO b_rename VALUES (1, 'r1'), (2, 'r2');
         CREATE TABLE b_add (id int PRIMARY KEY, v text); INSERT INTO b_add VALUES (1, 'a1'), (2, 'a2');
         CREATE TABLE b_type (id int PRIMARY KEY, v int); INSERT INTO b_type VALUES (1, 10), (2, 20);
         CREATE TABLE b_drop (id int PRIMARY KEY); INSERT INTO b_drop VALUES (1);
         CREATE TABLE b_col (id int PRIMARY KEY, v text, gone int); INSERT INTO b_col VALUES (1, 'c', 5)",
    )
    .expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let notices = Notices::default();
    let client = rt.block_on(connect(&pg, "postgres"));
    let all = [
        ("a_big", "id"),
        ("b_rename", "id"),
        ("b_add", "id"),
        ("b_type", "id"),
        ("b_drop", "id"),
        ("b_col", "id"),
    ];
    let base = rt.block_on(observe(&client, &all));
    let opts = options(&pg, "during", "asof_during", Until::Forever);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (copying_tx, copying) = std::sync::mpsc::channel();
    let mut on_notice = collect(&notices);
    let on_event = move |e: CaptureEvent| match &e {
        CaptureEvent::Copy(p) if p.table == "public.a_big" && p.rows > 0 => {
            let _ = copying_tx.send(());
        }
        _ => on_notice(e),
    };
    let handle = rt.spawn(cdc_source::capture(
        open_store(dir.path()),
        opts.clone(),
        stop_rx,
        on_event,
    ));
    copying.recv_timeout(Duration::from_secs(90)).expect("the copy started");
    // The slot exists: this position is at or after the copy's base.
    let at_base = rt.block_on(observe(&client, &[])).lsn;
    // Committed while a_big is being copied, on tables not copied yet and
    // on a_big itself.
    let ddl = rt.block_on(connect(&pg, "postgres"));
    let other = rt.block_on(connect(&pg, "postgres"));
    let ddl_done = rt.spawn(async move {
        ddl.batch_execute(
            "ALTER TABLE b_rename RENAME TO b_renamed;
             ALTER TABLE b_add ADD COLUMN z int DEFAULT 7;
             ALTER TABLE b_type ALTER COLUMN v TYPE bigint;
             DROP TABLE b_drop;
             ALTER TABLE b_col DROP COLUMN gone",
        )
        .await
    });
    let big_done = rt.spawn(async move {
        other
            .batch_execute("ALTER TABLE a_big ADD COLUMN w text DEFAULT 'w'")
            .await
    });
    rt.block_on(ddl_done).expect("join").expect("ddl");
    rt.block_on(big_done).expect("join").expect("ddl on a_big");
    let mut seen = vec![rt.block_on(observe(
        &client,
        &[
            ("a_big", "id"),
            ("b_renamed", "id"),
            ("b_add", "id"),
            ("b_type", "id"),
            ("b_col", "id"),
        ],
    ))];
    rt.block_on(
        client.batch_execute("ALTER TABLE a_big ALTER COLUMN v TYPE varchar(80); UPDATE b_add SET z = 8 WHERE id = 1"),
    )
    .expect("ddl after");
    seen.push(rt.block_on(observe(&client, &[("a_big", "id"), ("b_add", "id")])));
    let live = Live { stop, handle };
    let store = finish(&rt, live, dir.path(), opts, &notices);
    // As of the copy's snapshot: what Postgres showed before the DDL.
    for (t, _) in all {
        let got = store_table(&store, When::Lsn(at_base), t);
        assert_eq!(got.as_ref(), base.tables.get(t), "{t} as of the copy");
    }
    assert_matches(&store, &seen);
    assert_unanswered(&store, seen[1].lsn, "b_drop");
    assert_unanswered(&store, seen[1].lsn, "b_rename");
}

/// A transaction that commits after the slot's snapshot but before the
/// copy starts is in the stream, not the copy: it keeps its own commit
/// time, so the moment right after it reads it, and no moment between the
/// slot and the copy falls before the history.
#[test]
fn a_commit_between_the_slot_and_the_copy_keeps_its_time() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE w (id int PRIMARY KEY, v int); INSERT INTO w VALUES (1, 10)")
        .expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let notices = Notices::default();
    let client = rt.block_on(connect(&pg, "postgres"));
    let opts = options(&pg, "between", "asof_between", Until::Forever);
    let resume = start_held_after_slot(&rt, &pg, dir.path(), opts.clone(), &notices);
    rt.block_on(client.batch_execute("INSERT INTO w VALUES (2, 20)"))
        .expect("insert");
    let mut seen = vec![rt.block_on(observe(&client, &[("w", "id")]))];
    // The copy starts after this, later than the insert and the moment.
    std::thread::sleep(Duration::from_millis(50));
    let live = resume();
    rt.block_on(client.batch_execute("UPDATE w SET v = 21 WHERE id = 2"))
        .expect("update");
    seen.push(rt.block_on(observe(&client, &[("w", "id")])));
    let store = finish(&rt, live, dir.path(), opts, &notices);
    assert_matches(&store, &seen);
}

/// DDL that commits after the copy's snapshot but before the copy locks the
/// table (a rewrite here) leaves rows the snapshot cannot read: the copy
/// begins again with a newer snapshot instead of leaving the table out.
#[test]
fn ddl_committed_before_the_copy_locks_a_table_begins_the_copy_again() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE w (id int PRIMARY KEY, v int); INSERT INTO w VALUES (1, 10), (2, 20)")
        .expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let notices = Notices::default();
    let client = rt.block_on(connect(&pg, "postgres"));
    let opts = options(&pg, "stale", "asof_stale", Until::Forever);
    // Holding the capture after its slot while the DDL commits puts the
    // DDL between the slot's snapshot and the copy.
    let resume = start_held_after_slot(&rt, &pg, dir.path(), opts.clone(), &notices);
    pg.execute("ALTER TABLE w ALTER COLUMN v TYPE bigint; UPDATE w SET v = 21 WHERE id = 2")
        .expect("ddl");
    let live = resume();
    // The history begins with the new slot, after the DDL.
    rt.block_on(client.batch_execute("INSERT INTO w VALUES (3, 30)"))
        .expect("insert");
    let seen = vec![rt.block_on(observe(&client, &[("w", "id")]))];
    let store = finish(&rt, live, dir.path(), opts, &notices);
    assert_matches(&store, &seen);
    let notices = notices.lock().expect("notices").clone();
    assert!(
        !notices_about(&notices, "table public.w changed before the initial copy").is_empty(),
        "{notices:#?}"
    );
    assert!(notices_about(&notices, "is not captured").is_empty(), "{notices:#?}");
}

/// DDL that queues behind the copy's locks before the copy's other
/// connections lock the tables would be granted before them, and wait for
/// the copy, which would wait for them. They do not wait: the copy's own
/// connection reads what they would have, and the DDL lands after the copy.
#[test]
fn ddl_queued_behind_the_copy_leaves_the_reading_to_its_own_connection() {
    let pg = std::sync::Arc::new(PgCluster::start().expect("postgres"));
    pg.execute(
        "CREATE TABLE q_big (id int PRIMARY KEY, v text);
         INSERT INTO q_big SELECT i, repeat('q', 100) || i FROM generate_series(1, 300000) i;
         CREATE TABLE q_alter (id int PRIMARY KEY, v text); INSERT INTO q_alter VALUES (1, 'a'), (2, 'b')",
    )
    .expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let notices = Notices::default();
    let client = rt.block_on(connect(&pg, "postgres"));
    let tables = [("q_big", "id"), ("q_alter", "id")];
    let base = rt.block_on(observe(&client, &tables));
    let opts = CaptureOptions {
        copy_connections: 3,
        ..options(&pg, "queued", "asof_queued", Until::Forever)
    };
    // The first progress report comes once the copy holds its locks and
    // before anything is read: the DDL queues then.
    let (ddl_tx, ddl_started) = std::sync::mpsc::channel();
    let mut on_notice = collect(&notices);
    let mut first = true;
    let hook = pg.clone();
    let on_event = move |e: CaptureEvent| {
        if matches!(e, CaptureEvent::Copy(_)) && std::mem::take(&mut first) {
            // After the slot and before the DDL: the copy's moment.
            let at_base = hook.query_one_value("SELECT (pg_current_wal_lsn() - 1)::text");
            let at_base: Lsn = at_base.ok().flatten().and_then(|l| l.parse().ok()).expect("lsn");
            let pg = hook.clone();
            let ddl = std::thread::spawn(move || pg.execute("ALTER TABLE q_alter ADD COLUMN z int DEFAULT 7"));
            let _ = ddl_tx.send((at_base, ddl));
            let waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'q_alter'::regclass";
            let start = Instant::now();
            while hook.query_one_value(waiting).ok().flatten().as_deref() != Some("1") {
                assert!(start.elapsed() < Duration::from_secs(60), "the DDL never queued");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        on_notice(e);
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let handle = rt.spawn(cdc_source::capture(
        open_store(dir.path()),
        opts.clone(),
        stop_rx,
        on_event,
    ));
    let live = wait_streaming(&rt, &pg, "queued", Live { stop, handle });
    let (at_base, ddl) = ddl_started.recv_timeout(Duration::from_secs(10)).expect("the DDL ran");
    ddl.join().expect("join").expect("ddl");
    rt.block_on(client.batch_execute("UPDATE q_alter SET z = 8 WHERE id = 1"))
        .expect("update");
    let seen = vec![rt.block_on(observe(&client, &tables))];
    let store = finish(&rt, live, dir.path(), opts, &notices);
    for (t, _) in tables {
        let got = store_table(&store, When::Lsn(at_base), t);
        assert_eq!(got.as_ref(), base.tables.get(t), "{t} as of the copy");
    }
    assert_matches(&store, &seen);
    let notices = notices.lock().expect("notices").clone();
    assert!(
        !notices_about(&notices, "the initial copy read on 1 of 3 connections").is_empty(),
        "{notices:#?}"
    );
}

#[test]
fn the_ddl_capture_is_installed_once_and_again_when_it_was_changed() {
    let pg = PgCluster::start().expect("postgres");
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')")
        .expect("setup");
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(&pg, "stamp", "asof_stamp", Until::CaughtUp);
    let run = || {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        rt.block_on(cdc_source::capture(open_store(dir.path()), opts.clone(), rx, |_| {}))
            .expect("capture");
    };
    let client = rt.block_on(connect(&pg, "postgres"));
    // Each trigger with its state, the row versions of it and of its
    // function (a replacement writes new ones), and the function's source.
    let installed = || -> Vec<(String, String, String, String, String)> {
        rt.block_on(client.query(
            "SELECT e.evtname::text, e.evtenabled::text, e.xmin::text, p.xmin::text, p.prosrc \
             FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid \
             WHERE e.evtname LIKE 'asof\\_ddl\\_%' ORDER BY 1",
            &[],
        ))
        .expect("triggers")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
    };
    let sources = |rows: &[(String, String, String, String, String)]| -> Vec<(String, String, String)> {
        rows.iter()
            .map(|(name, enabled, _, _, source)| (name.clone(), enabled.clone(), source.clone()))
            .collect()
    };
    run();
    let first = installed();
    assert_eq!(first.len(), 4, "{first:?}");
    assert!(first.iter().all(|t| t.1 == "O"), "{first:?}");
    run();
    assert_eq!(
        installed(),
        first,
        "a start replaced the install that was there and current"
    );

    rt.block_on(client.batch_execute("ALTER EVENT TRIGGER asof_ddl_end_asof_stamp DISABLE"))
        .expect("disable");
    run();
    assert_eq!(
        sources(&installed()),
        sources(&first),
        "a disabled trigger stayed disabled"
    );

    rt.block_on(client.batch_execute(
        "CREATE OR REPLACE FUNCTION public.asof_ddl_rewrite_asof_stamp() RETURNS event_trigger \
         LANGUAGE plpgsql AS $f$ BEGIN END $f$",
    ))
    .expect("replace");
    run();
    assert_eq!(
        sources(&installed()),
        sources(&first),
        "a function replaced by hand stayed"
    );

    // What was kept still captures DDL: the new column's value reads back.
    rt.block_on(client.batch_execute("ALTER TABLE t ADD COLUMN w int DEFAULT 7"))
        .expect("alter");
    let observed = rt.block_on(observe(&client, &[("t", "id")]));
    run();
    let store = open_store(dir.path());
    assert_matches(&store, &[observed]);
}
