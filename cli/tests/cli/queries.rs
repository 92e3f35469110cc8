//! `get`, `history`, `diff`, `changes`, `tables`, `status`, `compact` and the
//! table format, on the small shop (see `support::Shop`).

use serde_json::{json, Value};

use crate::support::*;

#[test]
fn get_single_and_composite_keys() {
    let shop = Shop::build();
    let a = &shop.asof;
    let m = &shop.m;

    // Single key, csv (the default when piped) and jsonl.
    let out = a.run(&["get", "orders", "1", "--at", &m[0].at_lsn()]).ok();
    assert_eq!(out.text(), "id,status,amount,note\n1,new,10.00,\n");
    assert!(out.stderr.starts_with("as of "), "the cut is stated: {}", out.stderr);
    for (i, status, note) in [
        (1, "paid", Value::Null),
        (2, "shipped", json!("fast")),
        (5, "shipped", json!("fast")),
    ] {
        assert_eq!(
            get_jsonl(a, &["orders", "1"], &m[i].at_lsn()),
            [json!({"id": "1", "status": status, "amount": "10.00", "note": note})],
            "orders 1 at m{i}"
        );
    }
    // NULL is null, the empty string is "".
    assert_eq!(
        get_jsonl(a, &["orders", "3"], &m[1].rfc3339),
        [json!({"id": "3", "status": "new", "amount": "5.25", "note": ""})]
    );
    assert_eq!(
        get_jsonl(a, &["orders", "2"], &m[3].at_lsn()),
        [json!({"id": "2", "status": "reborn", "amount": "1.00", "note": null})]
    );

    // A key with no row at that moment: no data, a note on stderr.
    let out = a
        .run(&["get", "orders", "2", "--at", &m[2].at_lsn(), "--format", "jsonl"])
        .ok();
    assert!(out.stdout.is_empty(), "{}", out.text());
    assert!(out.stderr.contains("no row"), "{}", out.stderr);
    let out = a
        .run(&["get", "orders", "2", "--at", &m[2].at_lsn(), "--format", "csv"])
        .ok();
    assert_eq!(out.text(), "id,status,amount,note\n");

    // Options may come before the key values.
    let out = a
        .run(&[
            "get",
            "--format",
            "jsonl",
            "--at",
            &m[1].at_lsn(),
            "order_lines",
            "1",
            "1",
        ])
        .ok();
    assert_eq!(
        json_lines(&out),
        [json!({"order_id": "1", "line_no": "1", "sku": "apple", "qty": "4"})]
    );
    // Composite key, values in key-column order, options after the key
    // values as in the help's own examples (`asof get orders 42 --at ...`).
    assert_eq!(
        get_jsonl(a, &["order_lines", "1", "1"], &m[0].at_lsn()),
        [json!({"order_id": "1", "line_no": "1", "sku": "apple", "qty": "3"})]
    );
    let out = a.run(&["get", "order_lines", "1", "2", "--at", &m[3].at_lsn()]).ok();
    assert_eq!(out.text(), "order_id,line_no,sku,qty\n1,2,pear,1\n");
    // Gone after the TRUNCATE.
    let out = a.run(&["get", "order_lines", "1", "2", "--at", &m[4].at_lsn()]).ok();
    assert_eq!(out.text(), "order_id,line_no,sku,qty\n");

    // Wrong number of key values: a usage error naming the key columns.
    for args in [
        &["get", "order_lines", "1"][..],
        &["get", "order_lines", "1", "2", "3"],
        &["get", "orders", "1", "2"],
    ] {
        let e = a.run(args).usage_error();
        assert!(e.contains("key"), "{args:?}: {e}");
    }
    let e = a.run(&["get", "order_lines", "1"]).usage_error();
    assert!(
        e.contains("order_id") && e.contains("line_no"),
        "the key columns are named: {e}"
    );
    let e = a.run(&["history", "order_lines", "1"]).usage_error();
    assert!(e.contains("order_id") && e.contains("line_no"), "{e}");
}

#[test]
fn history_lists_every_version() {
    let shop = Shop::build();
    let a = &shop.asof;
    let m = &shop.m;

    let entries = history_jsonl(a, &["orders", "1"]);
    // The row was there when the capture began: found by the initial copy.
    assert_eq!(ops(&entries), ["read", "update", "update"]);
    let statuses: Vec<&Value> = entries.iter().map(|e| &e["row"]["status"]).collect();
    assert_eq!(statuses, [&json!("new"), &json!("paid"), &json!("shipped")]);
    assert_eq!(
        entries[0]["row"],
        json!({"id": "1", "status": "new", "amount": "10.00", "note": null})
    );
    for e in &entries {
        for field in ["lsn", "commit_time", "xid", "op", "row"] {
            assert!(e.get(field).is_some(), "history entry lacks {field}: {e}");
        }
        assert!(e["commit_time"].as_str().expect("commit_time").ends_with('Z'), "{e}");
        assert!(e["xid"].is_u64(), "{e}");
    }
    // Each version's LSN is the commit that made it, within the recorded moments.
    let lsns: Vec<String> = entries
        .iter()
        .map(|e| e["lsn"].as_str().expect("lsn").to_string())
        .collect();
    for (i, l) in lsns.iter().enumerate() {
        let at = a
            .run(&["get", "orders", "1", "--at", &format!("lsn:{l}"), "--format", "jsonl"])
            .ok();
        assert_eq!(
            json_lines(&at)[0],
            entries[i]["row"],
            "history entry {i} is the state as of its own lsn"
        );
        assert!(
            at.stderr.contains(&format!("(lsn {l},")),
            "resolves to exactly that commit: {}",
            at.stderr
        );
    }

    // Copied, deleted, inserted again.
    let entries = history_jsonl(a, &["orders", "2"]);
    assert_eq!(ops(&entries), ["read", "delete", "insert"]);
    assert_eq!(entries[1]["row"], Value::Null, "a deleted row has no image");
    assert_eq!(entries[2]["row"]["status"], "reborn");

    // Composite key; the TRUNCATE removes the row.
    let entries = history_jsonl(a, &["order_lines", "1", "1"]);
    assert_eq!(ops(&entries), ["read", "update", "delete"]);
    assert_eq!(entries[1]["row"]["qty"], "4");

    // csv: one line per version with commit_time, lsn, xid, op first.
    let out = a.run(&["history", "orders", "2", "--format", "csv"]).ok();
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "commit_time,lsn,xid,op,id,status,amount,note");
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].ends_with(",read,2,new,20.50,gift"), "{text}");
    assert!(lines[2].ends_with(",delete,,,,"), "{text}");
    assert!(lines[3].ends_with(",insert,2,reborn,1.00,"), "{text}");

    // A key that never existed: nothing, and a note.
    let out = a.run(&["history", "orders", "424242", "--format", "jsonl"]).ok();
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("no history"), "{}", out.stderr);

    // A timestamp resolves to the last commit at or before it: exactly at a
    // version's commit time gives that version, a microsecond earlier the one before.
    let entries = history_jsonl(a, &["orders", "1"]);
    for i in 1..entries.len() {
        let t = entries[i]["commit_time"].as_str().expect("commit_time");
        assert_eq!(get_jsonl(a, &["orders", "1"], t)[0], entries[i]["row"], "--at {t}");
        let just_before = micros_before(t);
        assert_eq!(
            get_jsonl(a, &["orders", "1"], &just_before)[0],
            entries[i - 1]["row"],
            "--at {just_before}"
        );
    }

    // After the last commit: the latest state, with a note saying how far the log reaches.
    let latest = a.snapshot_csv("orders", &m[5].at_lsn()).stdout;
    for when in ["2999-01-01T00:00:00Z", "lsn:FF/0", "now", "-0s"] {
        let out = a.snapshot_csv("orders", when);
        assert_bytes_eq(&out.stdout, &latest, &format!("--at {when}"));
        assert!(
            out.stderr.contains("latest captured state"),
            "--at {when}: {}",
            out.stderr
        );
    }
}

/// An RFC 3339 time one microsecond earlier.
fn micros_before(t: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let parsed = time::OffsetDateTime::parse(t, &Rfc3339).unwrap_or_else(|e| panic!("{t}: {e}"));
    (parsed - time::Duration::microseconds(1))
        .format(&Rfc3339)
        .expect("format")
}

#[test]
fn diff_between_two_moments() {
    let shop = Shop::build();
    let a = &shop.asof;
    let m = &shop.m;

    let out = diff(
        a,
        "orders",
        &m[0].at_lsn(),
        &m[3].at_lsn(),
        "jsonl",
        "1 inserted, 0 deleted, 2 changed",
    );
    let d = json_lines(&out);
    assert_eq!(
        d,
        [
            json!({"change": "changed",
                   "before": {"id": "1", "status": "new", "amount": "10.00", "note": null},
                   "after": {"id": "1", "status": "shipped", "amount": "10.00", "note": "fast"}}),
            json!({"change": "changed",
                   "before": {"id": "2", "status": "new", "amount": "20.50", "note": "gift"},
                   "after": {"id": "2", "status": "reborn", "amount": "1.00", "note": null}}),
            json!({"change": "inserted", "before": null,
                   "after": {"id": "3", "status": "new", "amount": "99.99", "note": ""}}),
        ]
    );

    let out = diff(
        a,
        "orders",
        &m[1].rfc3339,
        &m[2].rfc3339,
        "jsonl",
        "0 inserted, 1 deleted, 1 changed",
    );
    let d = json_lines(&out);
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[1],
        json!({"change": "deleted", "before": {"id": "2", "status": "new", "amount": "20.50", "note": "gift"}, "after": null})
    );

    // The TRUNCATE deletes every row.
    let out = diff(
        a,
        "order_lines",
        &m[1].at_lsn(),
        &m[4].at_lsn(),
        "csv",
        "0 inserted, 3 deleted, 0 changed",
    );
    assert_eq!(
        out.text(),
        "change,order_id,line_no,sku,qty\ndeleted,1,1,apple,4\ndeleted,1,2,pear,1\ndeleted,2,1,fig,7\n"
    );

    // A table that did not exist yet at --from: all its rows are inserted.
    diff(
        a,
        "refunds",
        &m[0].at_lsn(),
        &m[3].at_lsn(),
        "jsonl",
        "1 inserted, 0 deleted, 0 changed",
    );

    // No difference between a moment and itself; --to defaults to now.
    let out = diff(
        a,
        "orders",
        &m[2].at_lsn(),
        &m[2].at_lsn(),
        "jsonl",
        "0 inserted, 0 deleted, 0 changed",
    );
    assert!(out.stdout.is_empty());
    let out = a
        .run(&["diff", "order_lines", "--from", &m[4].at_lsn(), "--format", "jsonl"])
        .ok();
    assert_eq!(
        json_lines(&out),
        [
            json!({"change": "inserted", "before": null, "after": {"order_id": "3", "line_no": "1", "sku": "kiwi", "qty": "2"}})
        ]
    );

    // A reversed range is refused in one line.
    let e = a
        .run(&["changes", "--from", &m[3].at_lsn(), "--to", &m[1].at_lsn()])
        .runtime_error();
    assert!(e.contains("after"), "{e}");
    // (diff must not print a CSV header before refusing)
    let e = a
        .run(&["diff", "orders", "--from", &m[3].at_lsn(), "--to", &m[1].at_lsn()])
        .runtime_error();
    assert!(e.contains("after"), "{e}");
}

#[test]
fn changes_are_debezium_style_envelopes() {
    let shop = Shop::build();
    let a = &shop.asof;
    let m = &shop.m;

    let out = a
        .run(&[
            "changes",
            "--from",
            &m[0].at_lsn(),
            "--to",
            &m[5].at_lsn(),
            "--table",
            "order_lines",
        ])
        .ok();
    let ev = json_lines(&out);
    assert_eq!(ops(&ev), ["u", "d", "t", "c"], "{ev:#?}");
    assert!(out.stderr.contains("4 changes"), "{}", out.stderr);
    assert_eq!(
        ev[0]["before"],
        json!({"order_id": "1", "line_no": "1", "sku": "apple", "qty": "3"})
    );
    assert_eq!(
        ev[0]["after"],
        json!({"order_id": "1", "line_no": "1", "sku": "apple", "qty": "4"})
    );
    assert_eq!(
        ev[1]["before"],
        json!({"order_id": "2", "line_no": "1", "sku": "fig", "qty": "7"})
    );
    assert_eq!(ev[1]["after"], Value::Null);
    assert_eq!(ev[3]["before"], Value::Null);
    assert_eq!(
        ev[3]["after"],
        json!({"order_id": "3", "line_no": "1", "sku": "kiwi", "qty": "2"})
    );
    let mut last_lsn = String::new();
    for e in &ev {
        let s = &e["source"];
        assert_eq!(s["schema"], "public", "{e}");
        assert_eq!(s["table"], "order_lines", "{e}");
        for f in ["lsn", "commit_time", "xid", "ordinal"] {
            assert!(s.get(f).is_some(), "source.{f} missing: {e}");
        }
        assert!(e["ts_us"].is_i64() || e["ts_us"].is_u64(), "{e}");
        let lsn = s["lsn"].as_str().expect("lsn").to_string();
        assert!(
            lsn_value(&lsn) >= lsn_value(&last_lsn),
            "changes come in log order: {ev:#?}"
        );
        assert!(
            lsn_value(&lsn) > lsn_value(&m[0].lsn) && lsn_value(&lsn) <= lsn_value(&m[5].lsn),
            "{e}"
        );
        last_lsn = lsn;
    }

    // --from is exclusive, --to inclusive; all tables by default, in commit order.
    let ev = json_lines(
        &a.run(&["changes", "--from", &m[1].at_lsn(), "--to", &m[3].at_lsn()])
            .ok(),
    );
    let got: Vec<(String, String)> = ev
        .iter()
        .map(|e| {
            (
                e["source"]["table"].as_str().expect("table").to_string(),
                e["op"].as_str().expect("op").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("orders", "u"),
        ("orders", "d"),
        ("order_lines", "d"),
        ("refunds", "c"),
        ("orders", "c"),
        ("orders", "u"),
    ]
    .iter()
    .map(|(t, o)| (t.to_string(), o.to_string()))
    .collect();
    assert_eq!(got, want, "{ev:#?}");
    // Ordinals order the changes within a transaction (records that are not
    // row changes, such as a schema change, may take a number too).
    for w in ev.windows(2) {
        if w[0]["source"]["lsn"] == w[1]["source"]["lsn"] {
            let (a, b) = (&w[0]["source"]["ordinal"], &w[1]["source"]["ordinal"]);
            assert!(
                a.as_u64() < b.as_u64(),
                "ordinals increase within a transaction: {ev:#?}"
            );
        }
    }
    assert_ne!(ev[2]["source"]["lsn"], ev[3]["source"]["lsn"], "two transactions");

    // From the beginning: the initial copy's rows are reads (r).
    let ev = json_lines(&a.run(&["changes", "--to", &m[0].at_lsn(), "--table", "orders"]).ok());
    assert_eq!(ev.len(), 2, "{ev:#?}");
    assert!(ev.iter().all(|e| e["op"] == "r" && e["before"].is_null()), "{ev:#?}");

    // An unknown table is refused with a suggestion.
    let e = a.run(&["changes", "--table", "ordrs"]).runtime_error();
    assert!(e.contains("orders"), "{e}");
}

#[test]
fn tables_status_compact_and_the_table_format() {
    let shop = Shop::build();
    let a = &shop.asof;
    let m = &shop.m;

    // tables: refunds appears at m3.
    let before = a.run(&["tables", "--at", &m[2].at_lsn()]).ok().text();
    assert!(
        before.contains("public.orders") && before.contains("public.order_lines"),
        "{before}"
    );
    assert!(!before.contains("refunds"), "{before}");
    assert_aligned(&before);
    let after = a.run(&["tables", "--at", &m[3].at_lsn()]).ok().text();
    assert!(after.contains("public.refunds"), "{after}");
    assert!(
        after.contains("id bigint, status text, amount numeric(10,2), note text"),
        "{after}"
    );
    assert!(
        after.contains("order_id, line_no"),
        "the composite key is listed: {after}"
    );
    assert!(after.trim_end().ends_with("(3 rows)"), "{after}");

    // status.
    let status = a.run(&["status"]).ok().text();
    for label in [
        "store:",
        "watermark:",
        "complete to:",
        "first commit:",
        "horizon:",
        "source:",
        "slot:",
        "tables:",
        "size:",
    ] {
        assert!(
            status.lines().any(|l| l.starts_with(label)),
            "status lacks {label}:\n{status}"
        );
    }
    assert!(status.contains("horizon:      none"), "{status}");
    assert!(status.contains(&format!("port={}", shop.pg.port())), "{status}");
    assert!(status.contains("tables:       3"), "{status}");
    let first_commit = field(&status, "first commit:");

    // The table format is aligned.
    let table = a
        .run(&["snapshot", "orders", "--at", &m[3].at_lsn(), "--format", "table"])
        .ok()
        .text();
    assert_aligned(&table);
    assert!(
        table
            .lines()
            .next()
            .expect("header")
            .split('|')
            .map(str::trim)
            .eq(["id", "status", "amount", "note"]),
        "{table}"
    );
    assert!(table.trim_end().ends_with("(3 rows)"), "{table}");
    let hist = a.run(&["history", "orders", "1", "--format", "table"]).ok().text();
    assert_aligned(&hist);
    let diff = a
        .run(&["diff", "orders", "--from", &m[0].at_lsn(), "--format", "table"])
        .ok()
        .text();
    assert_aligned(&diff);

    // Before the start of history: the earliest moment is named.
    let e = a
        .run(&["snapshot", "orders", "--at", "2000-01-01T00:00:00Z"])
        .runtime_error();
    assert!(e.contains("earliest answerable moment"), "{e}");
    assert!(
        e.contains(first_commit.split(' ').next().expect("time")),
        "names the first commit ({first_commit}): {e}"
    );

    // Compaction: answers from the horizon on do not change.
    let answers = |asof: &Asof| -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        for mm in &m[2..] {
            for t in ["orders", "order_lines"] {
                v.push(asof.snapshot_csv(t, &mm.at_lsn()).stdout);
            }
            v.push(asof.run(&["get", "orders", "1", "--at", &mm.at_lsn()]).ok().stdout);
        }
        v
    };
    let kept = answers(a);
    let horizon_lsn = {
        let r = a.run(&["get", "orders", "1", "--at", &m[2].at_lsn()]).ok();
        r.stderr
            .split("(lsn ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .expect("lsn in stderr")
            .to_string()
    };
    let out = a.run(&["compact", "--before", &m[2].at_lsn()]).ok();
    assert!(out.stdout.is_empty(), "compact prints notes on stderr only");
    assert!(out.stderr.contains("removed"), "{}", out.stderr);
    assert_eq!(answers(a), kept, "answers at or after the horizon changed");
    for t in ["orders", "order_lines", "refunds"] {
        assert_bytes_eq(
            &a.snapshot_csv(t, "now").stdout,
            &shop.pg_csv(t),
            &format!("{t} now, after compaction"),
        );
    }
    let e = a.run(&["snapshot", "orders", "--at", &m[1].at_lsn()]).runtime_error();
    assert!(e.contains("horizon") && e.contains("earliest answerable moment"), "{e}");
    assert!(
        e.contains(&format!("lsn {horizon_lsn}")),
        "names the horizon commit (lsn {horizon_lsn}): {e}"
    );
    let e = a.run(&["get", "orders", "1", "--at", &m[0].rfc3339]).runtime_error();
    assert!(e.contains("earliest answerable moment"), "{e}");
    let status = a.run(&["status"]).ok().text();
    assert!(status.contains(&format!("horizon:      lsn {horizon_lsn}")), "{status}");
    // History now starts at the horizon.
    let entries = history_jsonl(a, &["orders", "1"]);
    assert_eq!(entries.last().expect("entries")["row"]["status"], "shipped");
    assert!(entries.len() < 3, "history before the horizon is gone: {entries:?}");
    assert_eq!(entries[0]["op"], "base", "{entries:?}");

    // Ranges reaching before the horizon are refused the same way.
    let e = a.run(&["changes", "--from", &m[0].at_lsn()]).runtime_error();
    assert!(e.contains("earliest answerable moment"), "{e}");
    let e = a.run(&["diff", "orders", "--from", &m[1].at_lsn()]).runtime_error();
    assert!(e.contains("earliest answerable moment"), "{e}");

    // Capture goes on after compaction.
    sql(&shop.pg, "UPDATE orders SET status = 'after compaction' WHERE id = 3");
    a.catch_up(&shop.pg.conninfo());
    assert_bytes_eq(
        &a.snapshot_csv("orders", "now").stdout,
        &shop.pg_csv("orders"),
        "orders after compaction and more capture",
    );
    assert_eq!(
        answers(a),
        kept,
        "answers at or after the horizon changed after more capture"
    );
}

/// The value after a `label:` line of `status`.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in {text}"))
        .trim()
        .to_string()
}

/// `get <table> <key...> --at <at> --format jsonl`, which must succeed.
fn get_jsonl(a: &Asof, table_and_key: &[&str], at: &str) -> Vec<Value> {
    let mut args = vec!["get"];
    args.extend(table_and_key);
    args.extend(["--at", at, "--format", "jsonl"]);
    json_lines(&a.run(&args).ok())
}

/// `history <table> <key...> --format jsonl`, which must succeed.
fn history_jsonl(a: &Asof, table_and_key: &[&str]) -> Vec<Value> {
    let mut args = vec!["history"];
    args.extend(table_and_key);
    args.extend(["--format", "jsonl"]);
    json_lines(&a.run(&args).ok())
}

/// The `op` of each entry.
fn ops(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["op"].as_str().expect("op")).collect()
}

/// `diff <table> --from <from> --to <to> --format <format>`, which must
/// succeed and count the rows as `counts` says on stderr.
#[track_caller]
fn diff(a: &Asof, table: &str, from: &str, to: &str, format: &str, counts: &str) -> Out {
    let out = a
        .run(&["diff", table, "--from", from, "--to", to, "--format", format])
        .ok();
    assert!(out.stderr.contains(counts), "{}", out.stderr);
    out
}

#[test]
fn tables_lists_uncaptured_tables_and_queries_say_why() {
    let pg = cluster();
    sql(&pg, "CREATE TABLE keyed (id int PRIMARY KEY)");
    let dir = scratch();
    let a = Asof::new(store_in(dir.path()));
    a.catch_up(&pg.conninfo());
    sql(
        &pg,
        "CREATE TABLE nokey (a int, b text); INSERT INTO nokey VALUES (1, 'x')",
    );
    a.catch_up(&pg.conninfo());
    let listed = a.run(&["tables"]).ok().text();
    let line = listed.lines().find(|l| l.contains("public.nokey")).unwrap_or_default();
    assert!(
        line.contains("a integer, b text") && line.contains("| not captured: "),
        "{listed}"
    );
    assert!(listed.contains("public.keyed"), "{listed}");
    for args in [&["snapshot", "nokey"][..], &["get", "nokey", "1"]] {
        let e = a.run(args).runtime_error();
        assert!(
            e.contains("table public.nokey is not captured") && e.lines().count() == 1,
            "{e}"
        );
    }
}
