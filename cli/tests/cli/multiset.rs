//! A table without a primary key under `REPLICA IDENTITY FULL` holds
//! identical rows: `tables` says they are counted, `snapshot` and `get`
//! print every copy (the row count
//! counts them), `history` says how many copies each commit left, and
//! `diff` prints one line per copy inserted or deleted.

use serde_json::{json, Value};

use crate::support::*;

const BAG: &str = "
CREATE TABLE bag (a int, b text);
ALTER TABLE bag REPLICA IDENTITY FULL;
INSERT INTO bag VALUES (1, 'x'), (1, 'x'), (2, NULL);
";

/// One transaction each, after the initial copy.
const CHANGES: [&str; 3] = [
    "INSERT INTO bag VALUES (1, 'x'), (2, NULL), (2, NULL)",
    "DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE a = 1 LIMIT 1)",
    "UPDATE bag SET a = 1, b = 'x' WHERE a = 2",
];

#[test]
fn identical_rows_print_once_per_copy() {
    let pg = cluster();
    sql(&pg, BAG);
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let mut m = vec![moment(&pg)];
    for c in CHANGES {
        sql(&pg, c);
        m.push(moment(&pg));
    }
    asof.catch_up(&pg.conninfo());

    // Every copy, exactly as Postgres's own COPY prints the table (in the
    // store's key order: NULL first, then by the bytes of the text).
    let pg_csv = copy_csv(
        &pg,
        "SELECT * FROM bag ORDER BY a NULLS FIRST, b COLLATE \"C\" NULLS FIRST",
    );
    assert_bytes_eq(&asof.snapshot_csv("bag", "now").stdout, &pg_csv, "bag now");
    let out = asof
        .run(&["snapshot", "bag", "--at", &m[1].at_lsn(), "--format", "table"])
        .ok();
    assert_aligned(&out.text());
    assert!(out.text().ends_with("(6 rows)\n"), "{}", out.text());

    // `tables` says how such a table's rows are told apart.
    let listed = asof.run(&["tables"]).ok().text();
    let line = listed.lines().find(|l| l.contains("public.bag")).unwrap_or_default();
    assert!(line.contains("a, b (identical rows counted)"), "{listed}");

    // `get` prints each copy of the row.
    let out = asof
        .run(&["get", "bag", "1", "x", "--at", &m[1].at_lsn(), "--format", "csv"])
        .ok();
    assert_eq!(out.text(), "a,b\n1,x\n1,x\n1,x\n");

    // `history` counts the copies after each commit.
    let out = asof.run(&["history", "bag", "1", "x", "--format", "jsonl"]).ok();
    let got: Vec<(String, Value)> = json_lines(&out)
        .iter()
        .map(|e| (e["op"].as_str().unwrap_or_default().to_owned(), e["copies"].clone()))
        .collect();
    let want: Vec<(String, Value)> = [("read", 2), ("insert", 3), ("delete", 2), ("insert", 5)]
        .iter()
        .map(|(op, n)| ((*op).to_owned(), json!(n)))
        .collect();
    assert_eq!(got, want, "{}", out.text());
    let out = asof.run(&["history", "bag", "1", "x", "--format", "csv"]).ok();
    let header = out.text().lines().next().unwrap_or_default().to_owned();
    assert_eq!(header, "commit_time,lsn,xid,op,copies,a,b");

    // `diff` prints one line per copy and counts copies.
    let out = asof
        .run(&[
            "diff",
            "bag",
            "--from",
            &m[1].at_lsn(),
            "--to",
            &m[3].at_lsn(),
            "--format",
            "csv",
        ])
        .ok();
    assert_eq!(
        out.text(),
        "change,a,b\ninserted,1,x\ninserted,1,x\ndeleted,2,\ndeleted,2,\ndeleted,2,\n"
    );
    assert!(
        out.stderr.contains("2 inserted, 3 deleted, 0 changed"),
        "{}",
        out.stderr
    );
}
