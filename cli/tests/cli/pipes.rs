//! `asof ... | head`: a reader that goes away ends the program quietly
//! (exit 0, no error line), whatever the command and format.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Runs `asof --store <store> <args>`, reads `keep` bytes of stdout, closes
/// the pipe, and returns the exit code and stderr.
fn run_into_closed_pipe(store: &std::path::Path, args: &[&str], keep: usize) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .env_remove("ASOF_STORE")
        .env_remove("RUST_BACKTRACE")
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn asof");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; keep];
    stdout.read_exact(&mut buf).expect("the first bytes of output");
    drop(stdout);
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), reader.join().expect("stderr reader"))
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE big (id int PRIMARY KEY, v text);
         INSERT INTO big SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 6000) AS i;
         CREATE TABLE fat (id int PRIMARY KEY, n int, v text);
         INSERT INTO fat VALUES (1, 0, '');",
    );
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let from = moment(&pg).at_lsn();
    let conninfo = pg.conninfo();
    // Six versions of one row, each ~300 KB: even one row is more than any
    // output buffer.
    for n in 1..=6 {
        sql(
            &pg,
            &format!(
                "UPDATE fat SET n = {n}, v = (SELECT string_agg(md5((i * {n})::text), '') FROM generate_series(1, 9000) AS i) WHERE id = 1"
            ),
        );
    }
    sql(&pg, "UPDATE big SET v = 'changed' WHERE id % 2 = 0");
    asof.catch_up(&pg.conninfo());

    let cases: &[&[&str]] = &[
        &["snapshot", "big", "--format", "csv"],
        &["snapshot", "big", "--format", "jsonl"],
        &["snapshot", "big", "--format", "table"],
        &["history", "fat", "1", "--format", "jsonl"],
        &["history", "fat", "1", "--format", "csv"],
        &["history", "fat", "1", "--format", "table"],
        &["get", "fat", "1", "--format", "jsonl"],
        &["get", "fat", "1", "--format", "csv"],
        &["diff", "big", "--from", &from, "--format", "jsonl"],
        &["diff", "big", "--from", &from, "--format", "csv"],
        &["changes", "--from", &from],
        &["changes"],
        // Lines printed after a pause (a query of the source, a phase of
        // the demo) meet the closed pipe.
        &["status", "--source", &conninfo],
        &["demo"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        let (code, stderr) = run_into_closed_pipe(&asof.store, args, 16);
        let quiet = !stderr.contains("panicked") && !stderr.lines().any(|l| l.starts_with("asof: "));
        if code != Some(0) || !quiet {
            failures.push(format!("`asof {}` exited with {code:?}:\n{stderr}", args.join(" ")));
        }
    }
    assert!(failures.is_empty(), "into a closed pipe:\n{}", failures.join("\n"));
}
