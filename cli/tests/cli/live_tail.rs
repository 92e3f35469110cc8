//! Reads beside a running `asof tail`, a second writer refused, and SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A background `asof tail`, killed hard if the test fails before it ends.
struct Tail {
    child: Option<Child>,
    stderr_path: std::path::PathBuf,
}

impl Tail {
    fn spawn(store: &std::path::Path, conninfo: &str, log_dir: &std::path::Path) -> Tail {
        let stderr_path = log_dir.join("tail.stderr");
        let stdout_path = log_dir.join("tail.stdout");
        let mut cmd = Command::new(BIN);
        cmd.env_remove("ASOF_STORE")
            .env_remove("RUST_BACKTRACE")
            .env_remove("PGPASSWORD");
        let child = cmd
            .arg("--store")
            .arg(store)
            .args(["tail", conninfo])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .expect("spawn asof tail");
        Tail {
            child: Some(child),
            stderr_path,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit code.
    fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let pid = child.id().to_string();
        let st = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(st.success(), "kill -TERM {pid} failed");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status.code();
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

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
