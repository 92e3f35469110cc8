//! Reads beside a running `asof tail`, a second writer refused, and SIGTERM.

use std::time::Duration;

use crate::support::*;

#[test]
fn snapshots_while_tail_runs_then_sigterm_exits_zero() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE events (id int PRIMARY KEY, payload text); INSERT INTO events VALUES (0, 'seed');",
    );
    let dir = scratch();
    let store = store_in(dir.path());
    let asof = Asof::new(&store);
    let mut tail = Tail::spawn(&store, &pg.conninfo(), dir.path());

    // The initial copy becomes visible to readers while the tail keeps running.
    eventually("the initial copy to be readable", Duration::from_secs(30), || {
        let o = asof.run(&["snapshot", "events", "--format", "csv"]);
        o.assert_no_panic();
        o.code == Some(0) && o.stdout == b"id,payload\n0,seed\n"
    });

    for i in 1..=5 {
        sql(&pg, &format!("INSERT INTO events VALUES ({i}, 'row {i}')"));
        // Several readers at once, while the tail writes.
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| s.spawn(|| asof.run(&["snapshot", "events", "--format", "csv"]).ok()))
                .collect();
            for h in handles {
                let out = h.join().expect("reader thread");
                assert!(out.text().starts_with("id,payload\n0,seed\n"), "{}", out.text());
            }
        });
        let want = format!("{i},row {i}\n");
        eventually(&format!("row {i} to be readable"), Duration::from_secs(30), || {
            asof.run(&["snapshot", "events", "--format", "csv"])
                .ok()
                .text()
                .ends_with(&want)
        });
    }

    // A second writer on the same store is refused, in one line.
    let second = asof.run_timeout(
        &["tail", &pg.conninfo(), "--until", "caught-up"],
        Duration::from_secs(30),
    );
    let e = second.runtime_error();
    assert!(e.contains("in use"), "{e}");
    let e = asof.run(&["compact", "--before", "now"]).runtime_error();
    assert!(e.contains("in use"), "compaction needs the write lock: {e}");

    let code = tail.terminate(Duration::from_secs(20));
    let stderr = tail.stderr();
    assert_eq!(code, Some(0), "asof tail after SIGTERM:\n{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("asof: ")),
        "an error at shutdown:\n{stderr}"
    );

    // Everything committed is there, exactly.
    let want = copy_csv(&pg, "SELECT * FROM events ORDER BY id");
    assert_bytes_eq(
        &asof.snapshot_csv("events", "now").stdout,
        &want,
        "events after the tail stopped",
    );

    // Once stopped, the store can be written again: a new tail resumes.
    sql(&pg, "UPDATE events SET payload = 'changed' WHERE id = 3");
    asof.catch_up(&pg.conninfo());
    let want = copy_csv(&pg, "SELECT * FROM events ORDER BY id");
    assert_bytes_eq(
        &asof.snapshot_csv("events", "now").stdout,
        &want,
        "events after resuming",
    );
}
