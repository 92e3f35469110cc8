//! Edges a careful user meets: a horizon beyond the log, rows found by the
//! initial copy, names typed as psql reads them, a private store directory,
//! plain-text logs and a status line that says how far the capture got.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

fn history_ops(a: &Asof, key: &[&str]) -> Vec<String> {
    let mut args = vec!["history"];
    args.extend_from_slice(key);
    args.extend_from_slice(&["--format", "jsonl"]);
    json_lines(&a.run(&args).ok())
        .iter()
        .map(|e| e["op"].as_str().expect("op").to_string())
        .collect()
}

#[test]
fn compacting_beyond_the_log_is_refused_and_keeps_history() {
    let shop = Shop::build();
    let a = &shop.asof;
    let before = history_ops(a, &["orders", "1"]);
    assert_eq!(before.len(), 3, "{before:?}");
    for future in ["+1h", "2999-01-01T00:00:00Z", "lsn:FFFF/0"] {
        let line = a.run(&["compact", "--before", future]).usage_error();
        assert!(line.contains("beyond the end of the log"), "{future}: {line}");
    }
    assert_eq!(history_ops(a, &["orders", "1"]), before, "nothing was folded away");
    // A past moment still compacts.
    a.run(&["compact", "--before", &shop.m[2].at_lsn()]).ok();
    assert_eq!(history_ops(a, &["orders", "1"]), ["base"]);
}

#[test]
fn copied_rows_are_reads_and_names_fold_as_in_psql() {
    let shop = Shop::build();
    let a = &shop.asof;
    // Found by the initial copy, then changed.
    let hist = json_lines(&a.run(&["history", "orders", "1", "--format", "jsonl"]).ok());
    assert_eq!(hist[0]["op"], Value::from("read"), "{hist:?}");
    // Inserted after the copy began.
    assert_eq!(history_ops(a, &["orders", "3"])[0], "insert");

    // Unquoted names fold to lower case; quoted ones keep their case.
    let lower = a.run(&["snapshot", "orders", "--format", "csv"]).ok().stdout;
    for typed in ["ORDERS", "Orders", "public.Orders", "PUBLIC.orders", "\"orders\""] {
        let out = a.run(&["snapshot", typed, "--format", "csv"]).ok();
        assert_eq!(out.stdout, lower, "{typed}");
    }
    let line = a.run(&["snapshot", "\"ORDERS\"", "--format", "csv"]).runtime_error();
    assert!(line.contains("ORDERS"), "a quoted name keeps its case: {line}");
}

#[cfg(unix)]
#[test]
fn the_store_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let pg = cluster();
    sql(&pg, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let dir = scratch();
    let a = Asof::new(store_in(dir.path()));
    a.catch_up(&pg.conninfo());
    let mode = std::fs::metadata(&a.store).expect("store dir").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "store directory mode {mode:o}");
}

/// A `tail` whose stderr goes to a file, not a terminal, under load: its
/// log has no colour codes, and its periodic status line names the last
/// commit and a lag.
#[test]
fn a_logged_tail_is_plain_text_and_names_its_last_commit() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0);",
    );
    let dir = scratch();
    let store = store_in(dir.path());
    let log_path = dir.path().join("tail.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(BIN)
        .env("ASOF_LOG", "cdc_source=debug")
        .env_remove("NO_COLOR")
        .arg("--store")
        .arg(&store)
        .args(["tail", &pg.conninfo()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn asof tail");
    // Keep committing until a status line has been written (every ten
    // seconds when stderr is not a terminal).
    let start = Instant::now();
    let mut n = 0;
    let text = loop {
        n += 1;
        sql(&pg, &format!("UPDATE t SET v = {n} WHERE id = 1"));
        std::thread::sleep(Duration::from_millis(200));
        let mut text = String::new();
        std::fs::File::open(&log_path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .expect("read log");
        if text.contains("changes/s") || start.elapsed() > Duration::from_secs(60) {
            break text;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        text.contains("logical replication started"),
        "the debug log is there:\n{text}"
    );
    assert!(!text.contains('\x1b'), "colour codes in a log file:\n{text:?}");
    let status = text
        .lines()
        .find(|l| l.contains("changes/s"))
        .unwrap_or_else(|| panic!("no status line within a minute:\n{text}"));
    assert!(!status.contains("last commit none"), "{status}");
    assert!(status.contains("last commit 20"), "the last commit's time: {status}");
}

/// Columns logical replication does not send are named wherever a user
/// reads the table: `tables`, and a note beside every answer about it.
#[test]
fn columns_that_are_not_captured_are_named_beside_every_answer() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE g (id int PRIMARY KEY, v int, twice int GENERATED ALWAYS AS (v * 2) STORED);
         INSERT INTO g (id, v) VALUES (1, 2);
         CREATE TABLE plain (id int PRIMARY KEY);",
    );
    let dir = scratch();
    let a = Asof::new(store_in(dir.path()));
    a.catch_up(&pg.conninfo());
    let first = a.cut_lsn("now");
    let note = "note: table public.g: column twice (generated) not captured";

    let tables = show(&a.run(&["tables"]).ok().stdout);
    let line = |t: &str, name: &str| -> String {
        t.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {t}"))
            .to_string()
    };
    assert!(
        line(&tables, "public.g ").ends_with("column twice (generated) not captured"),
        "{tables}"
    );
    assert!(!line(&tables, "public.plain ").contains("not captured"), "{tables}");

    let snap = a.run(&["snapshot", "g", "--format", "csv"]).ok();
    assert_eq!(show(&snap.stdout), "id,v\n1,2\n");
    assert!(snap.stderr.contains(note), "{}", snap.stderr);
    for args in [
        &["get", "g", "1"][..],
        &["history", "g", "1"],
        &["diff", "g", "--from", &format!("lsn:{first}")],
    ] {
        let out = a.run(args).ok();
        assert!(out.stderr.contains(note), "{args:?}: {}", out.stderr);
    }
    let plain = a.run(&["snapshot", "plain"]).ok();
    assert!(!plain.stderr.contains("not captured"), "{}", plain.stderr);

    // A generated column added during capture is named from its own moment;
    // earlier answers keep the earlier note.
    sql(
        &pg,
        "ALTER TABLE g ADD COLUMN later text GENERATED ALWAYS AS (id::text) STORED; INSERT INTO g (id, v) VALUES (2, 3);",
    );
    a.catch_up(&pg.conninfo());
    let now = a.run(&["snapshot", "g", "--format", "csv"]).ok();
    assert_eq!(show(&now.stdout), "id,v\n1,2\n2,3\n");
    assert!(
        now.stderr
            .contains("note: table public.g: columns twice (generated), later (generated) not captured"),
        "{}",
        now.stderr
    );
    let then = a.run(&["snapshot", "g", "--at", &format!("lsn:{first}")]).ok();
    assert!(
        then.stderr.contains(note) && !then.stderr.contains("later"),
        "{}",
        then.stderr
    );
}
