//! `asof snapshot` against Postgres's own COPY CSV, byte for byte, at every
//! commit of a workload over many types, a composite key and a text key.

use crate::support::*;

const SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE typed (
    id int8 PRIMARY KEY,
    i2 int2, i4 int4, i8 int8,
    n numeric, f8 float8, b bool,
    t text, vc varchar(10), by bytea,
    j json, jb jsonb, u uuid,
    d date, tm time, ts timestamp, tstz timestamptz, iv interval,
    ia int[], ta text[], m mood
);
CREATE TABLE lines (order_id int, line_no int, sku text NOT NULL, qty int, PRIMARY KEY (order_id, line_no));
CREATE TABLE tags (k text PRIMARY KEY, v text);

INSERT INTO typed VALUES
 (1, 1, 2, 3, 0.1, 0.1, true, 'plain', 'short', '\xdeadbeef',
  '{"a": 1,  "b" : [1, 2.50]}', '{"b": [1, 2.50], "a": 1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '2026-01-31', '23:59:59.999999', '2026-01-31 12:00:00', '2026-01-31 12:00:00+05', '1 year 2 mons 3 days 04:05:06.789',
  '{1,2,3}', '{a,b}', 'happy'),
 (-7, -32768, -2147483648, -9223372036854775808, 'NaN', 'Infinity', false, E'a,b\n"quoted"\\back\r\nend', '', '\x',
  '[]', '{}', '00000000-0000-0000-0000-000000000000',
  'infinity', '00:00', '-infinity', '1999-12-31 23:59:59.5+00', '-1 days +02:03:00',
  '{}', '{"a,b","q\"uote",NULL,"",x}', 'sad'),
 (20, 32767, 2147483647, 9223372036854775807, '1234567890123456789012345678901234567890.0123456789', '-Infinity', NULL,
  '', 'héllo wörl', '\x00ff', 'null', '[1, "two", null]', NULL,
  '0044-03-15 BC', '12:00:00', '2000-02-29 00:00:00.000001', NULL, '0',
  '{{1,2},{3,4}}', '{NULL}', 'ok'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (100, 0, 0, 0, '-0.000000000000000000000000000000000000001', '-0', true, ' padded ', '\.', '\x5c2e',
  '"\\."', '"\\."', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '2026-11-20', '09:00:00', '2026-11-20 09:00:00', '2026-11-20 09:00:00+09', '1 mon -1 days',
  '{-1,NULL,1}', '{"\\.",",",NULL}', NULL);

INSERT INTO lines VALUES (1, 1, 'apple', 3), (1, 2, 'pear', NULL), (2, 1, 'a,"b"', 7), (10, 1, 'ten', 1), (-1, 5, 'neg', 0);
INSERT INTO tags VALUES ('b', 'bee'), ('B', 'Bee'), ('a', NULL), ('é', 'accent'), ('10', ''), ('9', 'nine'), ('', 'empty key');

-- One column: a lone \. must be quoted (it would read as end-of-data).
CREATE TABLE solo (k text PRIMARY KEY);
INSERT INTO solo VALUES ('\.'), ('a'), (''), ('"'), (' ');
-- Another schema, column names that CSV must quote.
CREATE SCHEMA shop;
CREATE TABLE shop.weird ("Id" int PRIMARY KEY, "a,b" text, "say ""hi""" text, "two words" int);
INSERT INTO shop.weird VALUES (1, 'x', 'y', 2), (2, NULL, '', NULL);
"#;

/// Transactions after the initial copy; Postgres is observed after each.
const TXNS: &[&str] = &[
    // 1: inserts with odd values, an update on a composite key
    r#"BEGIN;
    INSERT INTO typed (id, n, f8, t, vc, ia, ta, m, jb, j) VALUES
      (5, 'NaN', 'NaN', E'tab\there', 'x', '{NULL}', '{}', 'happy', '{"k": "v,\"w\""}', '  {"sp": 1}  '),
      (-100, '1e-30', 1e300, 'null', 'NULL', '{0}', '{NULL,NULL}', 'sad', 'true', '1.50'),
      (6, 0.5, 1.7976931348623157e308, E'\\.', '', '{1}', '{"\\\\"}', 'ok', '"x"', '"x"');
    UPDATE lines SET qty = qty + 1 WHERE order_id = 1 AND line_no = 1;
    INSERT INTO tags VALUES ('Z', 'zed');
    COMMIT;"#,
    // 2: text to empty string and to NULL, delete, primary key change
    r#"BEGIN;
    UPDATE typed SET t = '' WHERE id = 1;
    UPDATE typed SET t = NULL, vc = NULL, by = '\x00', u = NULL WHERE id = -7;
    UPDATE typed SET n = n * 2, f8 = -f8, b = NOT b, iv = iv * 2, ia = ia || 4, ta = array_append(ta, 'c') WHERE id = 1;
    DELETE FROM typed WHERE id = 3;
    UPDATE lines SET line_no = 9 WHERE order_id = 1 AND line_no = 2;
    COMMIT;"#,
    // 3: across tables: re-insert of a deleted key, a text key renamed, deletes
    r#"BEGIN;
    INSERT INTO typed (id, t, m) VALUES (3, 'back again', 'ok');
    DELETE FROM tags WHERE k = 'b';
    INSERT INTO tags VALUES ('b', 'bee again');
    UPDATE tags SET k = 'zz' WHERE k = 'a';
    DELETE FROM lines WHERE order_id = 2;
    COMMIT;"#,
    // 4: a rolled-back transaction changes nothing
    "BEGIN; INSERT INTO tags VALUES ('never', 'seen'); DELETE FROM typed; ROLLBACK;",
    // 5: truncate and an update in one transaction
    r#"BEGIN;
    TRUNCATE tags;
    UPDATE typed SET jb = jb || '{"new": true}' WHERE id = 1;
    COMMIT;"#,
    // 6: a large, barely compressible value (stored out of line, TOASTed)
    "INSERT INTO tags SELECT 'big', string_agg(md5(i::text), '') FROM generate_series(1, 3000) AS i;
     UPDATE typed SET t = (SELECT string_agg(md5((-i)::text), ',') FROM generate_series(1, 3000) AS i) WHERE id = 20;",
    // 7: updates that leave the TOASTed values untouched (pgoutput sends 'unchanged')
    "UPDATE tags SET v = v WHERE false;
     UPDATE typed SET i2 = 5 WHERE id = 20;
     INSERT INTO tags VALUES ('small', 'x');
     UPDATE lines SET qty = 99 WHERE order_id = 10;",
    // 8: an update of another column of the TOASTed row in tags
    "ALTER TABLE tags ADD COLUMN extra int; UPDATE tags SET extra = 1 WHERE k = 'big';",
    // 9: a table created mid-history, single-column and quoted-name changes
    r#"BEGIN;
    CREATE TABLE temp_t (id int PRIMARY KEY, v text);
    INSERT INTO temp_t VALUES (1, 'a'), (2, 'b');
    INSERT INTO solo VALUES ('\.\.'), ('\');
    UPDATE shop.weird SET "a,b" = 'p,q', "two words" = 3 WHERE "Id" = 1;
    COMMIT;"#,
    // 10: ADD COLUMN with a default: existing rows gain it without any row event
    "ALTER TABLE lines ADD COLUMN note text NOT NULL DEFAULT 'n/a';",
    // 11: DROP COLUMN, then an update
    "ALTER TABLE typed DROP COLUMN vc; UPDATE typed SET i4 = 7 WHERE id = 1;",
    // 12: a DDL-only transaction dropping a table
    "DROP TABLE temp_t;",
    // 13: a rewriting ALTER that changes every row's value without row events
    "ALTER TABLE lines ALTER COLUMN qty TYPE text USING coalesce(qty::text || 'x', 'none');",
    // 14: and life goes on
    "INSERT INTO lines (order_id, line_no, sku, qty) VALUES (7, 7, 'after rewrite', 'q');
     DELETE FROM solo WHERE k = '';",
];

/// Tables and the ORDER BY that gives asof's key order.
const TABLES: &[(&str, &str)] = &[
    ("typed", "id"),
    ("lines", "order_id, line_no"),
    ("tags", "k COLLATE \"C\""),
    ("solo", "k COLLATE \"C\""),
    ("shop.weird", "\"Id\""),
    ("temp_t", "id"),
];

struct Observation {
    moment: Moment,
    /// Each table's COPY CSV, or the tables that did not exist.
    csv: Vec<(&'static str, Vec<u8>)>,
    absent: Vec<&'static str>,
}

fn observe(pg: &pg_fixture::PgCluster) -> Observation {
    let moment = moment(pg);
    let mut csv = Vec::new();
    let mut absent = Vec::new();
    for (t, order) in TABLES {
        let exists = pg
            .query_one_value(&format!("SELECT to_regclass('{t}') IS NOT NULL"))
            .expect("to_regclass");
        if exists.as_deref() == Some("t") {
            csv.push((*t, copy_csv(pg, &format!("SELECT * FROM {t} ORDER BY {order}"))));
        } else {
            absent.push(*t);
        }
    }
    Observation { moment, csv, absent }
}

#[test]
fn snapshots_equal_postgres_copy_csv_at_every_commit() {
    let pg = cluster();
    sql(&pg, SCHEMA);
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));

    // The existing rows arrive by the initial copy.
    let first = asof.catch_up(&pg.conninfo());
    assert!(
        first.stdout.is_empty(),
        "tail printed data on stdout: {}",
        show(&first.stdout)
    );
    let mut seen = vec![observe(&pg)];
    for t in TXNS {
        sql(&pg, t);
        seen.push(observe(&pg));
    }
    // The rest by streaming.
    asof.catch_up(&pg.conninfo());

    for (i, obs) in seen.iter().enumerate() {
        for (table, want) in &obs.csv {
            let by_lsn = asof.snapshot_csv(table, &obs.moment.at_lsn());
            assert_bytes_eq(
                &by_lsn.stdout,
                want,
                &format!("{table} at step {i} ({})", obs.moment.at_lsn()),
            );
            assert!(
                by_lsn.stderr.starts_with("as of "),
                "the cut is stated on stderr: {}",
                by_lsn.stderr
            );
            assert!(
                by_lsn.stderr.contains("(lsn 0/") && by_lsn.stderr.contains(", xid "),
                "{}",
                by_lsn.stderr
            );

            // The same moment by the clock, in three spellings.
            let when = match i % 3 {
                0 => &obs.moment.rfc3339,
                1 => &obs.moment.offset_form,
                _ => &obs.moment.naive_utc,
            };
            let by_time = asof.snapshot_csv(table, when);
            assert_bytes_eq(&by_time.stdout, want, &format!("{table} at step {i} (--at {when})"));
        }
        for table in &obs.absent {
            let e = asof
                .run(&["snapshot", table, "--at", &obs.moment.at_lsn()])
                .runtime_error();
            assert!(e.contains("no table") && e.contains(table), "{table} at step {i}: {e}");
        }
    }

    let mut problems = Vec::new();
    check(&mut problems, "latest state", || {
        // The latest state: `now`, the default moment, and the default format
        // (csv when stdout is not a terminal).
        let last = seen.last().expect("observations");
        for (table, want) in &last.csv {
            let now = asof.run(&["snapshot", table]).ok();
            assert_bytes_eq(&now.stdout, want, &format!("{table} now, default format"));
            assert!(
                now.stderr.contains("latest captured state"),
                "a note says how far the log reaches: {}",
                now.stderr
            );
            let lsn_without_prefix = asof.snapshot_csv(table, &last.moment.lsn);
            assert_bytes_eq(
                &lsn_without_prefix.stdout,
                want,
                &format!("{table} at bare LSN {}", last.moment.lsn),
            );
        }
    });

    check(&mut problems, "jsonl values", || {
        // jsonl: NULL is null, the empty string is "", values are Postgres text.
        let rows = json_lines(
            &asof
                .run(&[
                    "snapshot",
                    "typed",
                    "--at",
                    &seen[0].moment.at_lsn(),
                    "--format",
                    "jsonl",
                ])
                .ok(),
        );
        let by_id = |id: &str| {
            rows.iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("row {id} in {rows:?}"))
                .clone()
        };
        let r20 = by_id("20");
        assert_eq!(r20["n"], "1234567890123456789012345678901234567890.0123456789");
        assert_eq!(r20["f8"], "-Infinity");
        assert_eq!(r20["b"], serde_json::Value::Null);
        assert_eq!(r20["t"], "");
        assert_eq!(r20["vc"], "héllo wörl");
        assert_eq!(r20["ia"], "{{1,2},{3,4}}");
        let r3 = by_id("3");
        assert!(
            r3.as_object()
                .expect("object")
                .iter()
                .filter(|(k, _)| *k != "id")
                .all(|(_, v)| v.is_null()),
            "{r3}"
        );
        assert_eq!(by_id("-7")["n"], "NaN");
        assert_eq!(by_id("-7")["ta"], r#"{"a,b","q\"uote",NULL,"",x}"#);
        assert_eq!(
            rows.iter()
                .map(|r| r["id"].as_str().expect("id").to_string())
                .collect::<Vec<_>>(),
            ["-7", "1", "3", "20", "100"]
        );
    });

    check(&mut problems, "snapshot table format", || {
        // The table format stays aligned whatever the values hold (newlines,
        // tabs, carriage returns, multi-byte characters).
        for (i, obs) in seen.iter().enumerate().take(3) {
            let out = asof
                .run(&["snapshot", "typed", "--at", &obs.moment.at_lsn(), "--format", "table"])
                .ok();
            let text = out.text();
            assert_aligned(&text);
            let rows = obs
                .csv
                .iter()
                .find(|(t, _)| *t == "typed")
                .map(|(_, c)| c.clone())
                .expect("typed");
            let n = json_lines(
                &asof
                    .run(&["snapshot", "typed", "--at", &obs.moment.at_lsn(), "--format", "jsonl"])
                    .ok(),
            )
            .len();
            assert!(
                text.trim_end().ends_with(&format!("({n} rows)")),
                "step {i}: {text}\n{}",
                show(&rows)
            );
        }
    });

    // The same in history and diff tables.
    check(&mut problems, "history table format", || {
        let hist = asof.run(&["history", "typed", "-7", "--format", "table"]).ok().text();
        assert_aligned(&hist);
    });
    check(&mut problems, "diff table format", || {
        let diff = asof
            .run(&[
                "diff",
                "typed",
                "--from",
                &seen[0].moment.at_lsn(),
                "--to",
                &seen[2].moment.at_lsn(),
                "--format",
                "table",
            ])
            .ok()
            .text();
        assert_aligned(&diff);
    });

    check(&mut problems, "negative and empty keys, history", || {
        // Negative and empty key values are key values, not options.
        let at0 = seen[0].moment.at_lsn();
        let got = json_lines(
            &asof
                .run(&["get", "typed", "-7", "--at", &at0, "--format", "jsonl"])
                .ok(),
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["i2"], "-32768");
        let got = json_lines(
            &asof
                .run(&["get", "lines", "-1", "5", "--at", &at0, "--format", "jsonl"])
                .ok(),
        );
        assert_eq!(
            got,
            [serde_json::json!({"order_id": "-1", "line_no": "5", "sku": "neg", "qty": "0"})]
        );
        let got = json_lines(&asof.run(&["get", "tags", "", "--at", &at0, "--format", "jsonl"]).ok());
        assert_eq!(got, [serde_json::json!({"k": "", "v": "empty key"})]);

        let ops = |args: &[&str]| -> Vec<String> {
            json_lines(&asof.run(args).ok())
                .iter()
                .map(|e| e["op"].as_str().expect("op").to_string())
                .collect()
        };
        assert_eq!(
            ops(&["history", "typed", "-7", "--format", "jsonl"]),
            ["read", "update"]
        );
        assert_eq!(
            ops(&["history", "typed", "3", "--format", "jsonl"]),
            ["read", "delete", "insert"]
        );
        // Deleted and inserted again in one transaction, then truncated.
        assert_eq!(
            ops(&["history", "tags", "b", "--format", "jsonl"]),
            ["read", "update", "delete"]
        );
        // The primary key change moves the row to a new key.
        assert_eq!(
            ops(&["history", "lines", "1", "2", "--format", "jsonl"]),
            ["read", "delete"]
        );
        // ... and the rewrite (step 13) that changed its value is an update. (By
        // design, like `diff`, a column added with a default (step 10) is not an
        // entry of its own; the later entry shows the column.)
        let hist = json_lines(&asof.run(&["history", "lines", "1", "9", "--format", "jsonl"]).ok());
        let rows: Vec<&serde_json::Value> = hist.iter().map(|e| &e["row"]).collect();
        assert_eq!(
            rows,
            [
                &serde_json::json!({"order_id": "1", "line_no": "9", "sku": "pear", "qty": null}),
                &serde_json::json!({"order_id": "1", "line_no": "9", "sku": "pear", "qty": "none", "note": "n/a"}),
            ],
            "history of lines (1, 9): {hist:?}"
        );
        assert_eq!(hist[0]["lsn"], asof.cut_lsn(&seen[2].moment.at_lsn()), "{hist:?}");
        assert_eq!(hist[1]["op"], "update", "{hist:?}");
        assert_eq!(hist[1]["lsn"], asof.cut_lsn(&seen[13].moment.at_lsn()), "{hist:?}");
        // The TOASTed value survives the update that did not touch it.
        let hist = json_lines(&asof.run(&["history", "typed", "20", "--format", "jsonl"]).ok());
        let last = &hist.last().expect("history")["row"];
        assert_eq!(last["i2"], "5");
        assert!(
            last["t"].as_str().expect("t").len() > 90_000,
            "the large value was carried forward"
        );
    });

    check(&mut problems, "dropped table", || {
        // A dropped table: its rows' history ends with the DROP; its changes
        // can be read while it existed.
        let ev = json_lines(
            &asof
                .run(&[
                    "changes",
                    "--table",
                    "temp_t",
                    "--from",
                    &seen[8].moment.at_lsn(),
                    "--to",
                    &seen[9].moment.at_lsn(),
                ])
                .ok(),
        );
        assert_eq!(
            ev.iter().map(|e| e["op"].as_str().expect("op")).collect::<Vec<_>>(),
            ["c", "c"],
            "{ev:?}"
        );
        let hist = json_lines(&asof.run(&["history", "temp_t", "1", "--format", "jsonl"]).ok());
        let ops_t: Vec<&str> = hist.iter().map(|e| e["op"].as_str().expect("op")).collect();
        assert_eq!(ops_t, ["insert", "delete"], "{hist:?}");
        assert_eq!(hist[1]["lsn"], asof.cut_lsn(&seen[12].moment.at_lsn()), "{hist:?}");
    });

    assert_no_problems(&problems);
}
