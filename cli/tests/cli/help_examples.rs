//! Every example in every subcommand's `--help` runs: each example line is
//! run by `sh` (so quoting, `VAR=... asof` and `> file` work as a reader
//! would type them) against a private PostgreSQL and a store captured
//! from it.
//!
//! Placeholders are replaced by the test's own: connection strings by the
//! fixture's (a URI by its URI), `/var/lib/asof` by the test's store.
//! Example moments are fixed dates and offsets like `-2h` that lie before
//! a store captured seconds ago (or, once an example has compacted it,
//! before its horizon); such an example may fail only by naming the
//! earliest answerable moment (so the moment parsed and resolved), and is
//! then run again with each moment replaced by one of the same kind inside
//! the test's history. `tail` and `follow` without `--until` run until
//! stopped, so they are run with `--until caught-up`; Kafka brokers are a
//! private one-node cluster's; `verify` waits for a running
//! tail, so one runs in the background during its examples. A `wrong:` example must be a
//! usage error; a `(then: ...)` note is an example of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;

const SCHEMA: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, status text);
CREATE TABLE order_lines (order_id bigint, line_no int, sku text, PRIMARY KEY (order_id, line_no));
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id bigint PRIMARY KEY, status text);
INSERT INTO customers VALUES (1, 'Ada');
INSERT INTO orders VALUES (42, 1, 'new'), (43, 1, 'new');
INSERT INTO order_lines VALUES (42, 3, 'apple');
INSERT INTO shop.orders VALUES (42, 'new');
";

/// The options whose value is a WHEN.
const WHEN_OPTIONS: &[&str] = &["--at", "--from", "--to", "--before"];

/// One example as the help shows it.
#[derive(Debug)]
struct Example {
    /// The shell line, without the `wrong: `/`right: ` label or a trailing note.
    line: String,
    /// Shown as the wrong way to write it: must be refused as a usage error.
    wrong: bool,
}

/// The examples of `asof <sub> --help`: the lines of its examples block
/// that run `asof`, and the commands in `(then: ...)` notes.
fn examples(sub: &str) -> Vec<Example> {
    let help = asof_raw([sub, "--help"]).ok().text();
    let block = help
        .split_once("Examples:\n")
        .unwrap_or_else(|| panic!("`asof {sub} --help` has no examples:\n{help}"))
        .1;
    let mut found = Vec::new();
    for raw in block.lines().filter(|l| l.starts_with("  ")) {
        let mut line = raw.trim();
        let wrong = line.starts_with("wrong: ");
        line = line
            .strip_prefix("wrong: ")
            .or_else(|| line.strip_prefix("right: "))
            .unwrap_or(line);
        // A note after a wide gap: `asof ...     (then: asof ...)`.
        let (command, note) = match line.split_once("  ") {
            Some((c, n)) => (c.trim(), Some(n.trim())),
            None => (line, None),
        };
        found.push(Example {
            line: command.to_owned(),
            wrong,
        });
        if let Some(then) = note.and_then(|n| n.strip_prefix("(then: ")) {
            found.push(Example {
                line: then.trim_end_matches(')').to_owned(),
                wrong: false,
            });
        }
    }
    for e in &found {
        assert!(
            e.line.starts_with("asof ") || e.line.contains(" asof "),
            "`asof {sub} --help`: not a command line: {:?}",
            e.line
        );
    }
    assert!(!found.is_empty(), "`asof {sub} --help` shows no example:\n{help}");
    found
}

/// Splits a shell line into words, keeping each word's single quotes
/// (the examples quote nothing else).
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            ' ' if !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    words.push(cur);
    words
}

/// The test's stand-ins for what an example leaves to the reader.
struct Stand {
    /// Kafka bootstrap servers.
    brokers: String,
    uri: String,
    conninfo: String,
    store: PathBuf,
    /// A moment inside the test's history, as RFC 3339 and as `lsn:X/Y`.
    rfc3339: String,
    lsn: String,
}

impl Stand {
    /// The example with the test's database and store.
    fn placeholders(&self, line: &str) -> String {
        let mut ws = words(line);
        for w in &mut ws {
            if w.starts_with("'postgres://") {
                *w = format!("'{}'", self.uri);
            } else if w.starts_with("'host=") {
                *w = format!("'{}'", self.conninfo);
            } else if w == "/var/lib/asof" {
                *w = self.store.display().to_string();
            } else if w.contains(":9092") {
                w.clone_from(&self.brokers);
            }
        }
        // `tail` and `follow` run until stopped unless told when to stop.
        let endless = ws.iter().any(|w| w == "tail" || w == "follow");
        if endless && !ws.iter().any(|w| w == "--until") {
            ws.extend(["--until".to_owned(), "caught-up".to_owned()]);
        }
        ws.join(" ")
    }

    /// The example with every moment replaced by one of the same kind
    /// inside the test's history.
    fn moments(&self, line: &str) -> String {
        let mut ws = words(line);
        // `export --to` names a directory, not a moment.
        let export = ws.iter().any(|w| w == "export");
        for i in 1..ws.len() {
            let option = ws[i - 1].as_str();
            if !WHEN_OPTIONS.contains(&option) || (export && option == "--to") {
                continue;
            }
            let when = ws[i].trim_matches('\'');
            if when.starts_with('-') {
                // The history began more than a second ago.
                ws[i] = "-1s".to_owned();
            } else if when.contains('/') {
                ws[i] = self.lsn.clone();
            } else if when != "now" {
                ws[i] = self.rfc3339.clone();
            }
        }
        ws.join(" ")
    }
}

/// Runs one shell line with `asof` on the PATH, in `dir`, with the test's
/// store as the default one.
fn sh(line: &str, dir: &Path, store: &Path) -> Out {
    let bin_dir = Path::new(BIN).parent().expect("the binary's directory");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = assert_cmd::Command::new("sh");
    for v in SCRUBBED_ENV {
        cmd.env_remove(v);
    }
    let o = cmd
        .env("PATH", path)
        .env("ASOF_STORE", store)
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .args(["-c", line])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap_or_else(|e| panic!("cannot run sh: {e}"));
    Out {
        what: line.to_owned(),
        code: o.status.code(),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn every_help_example_runs() {
    let pg = cluster();
    sql(&pg, SCHEMA);
    let kafka = kafka_fixture::KafkaCluster::start().expect("kafka");
    let dir = scratch();
    let store = store_in(dir.path());
    let mut stand = Stand {
        brokers: kafka.bootstrap_servers(),
        uri: pg.uri(),
        conninfo: pg.conninfo(),
        store: store.clone(),
        rfc3339: String::new(),
        lsn: String::new(),
    };
    let mut problems = Vec::new();
    let mut ran = 0;
    for sub in SUBCOMMANDS {
        let mut tail = (*sub == "verify").then(|| Tail::spawn(&store, &pg.conninfo(), dir.path()));
        for example in examples(sub) {
            if *sub != "tail" && stand.lsn.is_empty() {
                // The tail examples have captured the schema; later
                // changes give the history a span to point into.
                sql(&pg, "UPDATE orders SET status = 'paid' WHERE id = 42");
                Asof::new(&store).catch_up(&pg.conninfo());
                std::thread::sleep(Duration::from_millis(1100));
                let m = moment(&pg);
                stand.lsn = m.at_lsn();
                stand.rfc3339 = m.rfc3339;
            }
            ran += 1;
            let line = stand.placeholders(&example.line);
            println!("example of `asof {sub}`: {line}");
            check(&mut problems, &line, || {
                let out = sh(&line, dir.path(), &store);
                if example.wrong {
                    let e = out.usage_error();
                    assert!(e.contains("invalid time"), "{line}: {e}");
                    return;
                }
                if out.code == Some(1) && out.stderr.contains("the earliest answerable moment is") {
                    let moved = stand.moments(&line);
                    assert_ne!(moved, line, "no moment to move in {line}");
                    println!("  again with moments of the test's history: {moved}");
                    sh(&moved, dir.path(), &store).ok();
                } else {
                    out.ok();
                }
            });
        }
        if let Some(tail) = &mut tail {
            assert_eq!(tail.terminate(Duration::from_secs(20)), Some(0), "{}", tail.stderr());
        }
    }
    assert_no_problems(&problems);
    assert!(ran >= 2 * SUBCOMMANDS.len(), "only {ran} examples found");
    assert!(dir.path().join("orders.csv").is_file(), "`> orders.csv` wrote the file");
}
