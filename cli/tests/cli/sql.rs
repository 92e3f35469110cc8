//! `asof sql` and `asof export` against what Postgres itself showed: a
//! query at a past cut answers what the same query answered then, exported
//! Parquet files read back with pyarrow and duckdb (independent readers,
//! installed by scripts/setup.sh) hold Postgres's values, typed, and an SCD
//! type-2 history export reconstructs every past state.

use std::path::Path;

use crate::support::*;

/// Runs parquet_check.py; it must find no difference.
#[track_caller]
fn parquet_check(args: &[&str]) -> String {
    python_check("parquet_check.py", args)
}

/// The rows of `query` as Postgres shows them now, as JSON (a list of
/// objects in the query's order), saved to `path` for parquet_check.py.
fn pg_json(pg: &pg_fixture::PgCluster, query: &str, path: &Path) {
    let json = pg
        .query_one_value(&format!("SELECT coalesce(json_agg(q), '[]') FROM ({query}) q"))
        .expect("query Postgres")
        .expect("json");
    std::fs::write(path, json).expect("write expected rows");
}

const SHOP: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text, region text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, status text, amount numeric(12,2));
CREATE SCHEMA shop;
CREATE TABLE shop.notes (id int PRIMARY KEY, body text);
INSERT INTO customers SELECT g, 'c' || g, (ARRAY['north','south','east'])[1 + g % 3] FROM generate_series(1, 30) g;
INSERT INTO orders SELECT g, 1 + g % 30, (ARRAY['new','paid','shipped'])[1 + g % 3], (g * 7 % 1000) / 4.0
  FROM generate_series(1, 500) g;
INSERT INTO shop.notes VALUES (1, 'héllo ✓');
";

const BY_REGION: &str = "SELECT c.region, count(*) AS n, sum(o.amount) AS total FROM orders o \
     JOIN customers c ON c.id = o.customer_id GROUP BY c.region ORDER BY c.region";
const BY_STATUS: &str =
    "SELECT status, count(*) AS n, sum(amount) AS total FROM orders GROUP BY status ORDER BY status";

#[test]
fn sql_at_a_past_cut_answers_what_postgres_answered_then() {
    let pg = cluster();
    sql(&pg, SHOP);
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    sql(&pg, "UPDATE orders SET amount = amount + 0.01 WHERE id <= 10");
    let then = moment(&pg);
    let region_then = copy_csv(&pg, BY_REGION);
    let status_then = copy_csv(&pg, BY_STATUS);
    let changed_status: String = pg
        .query_one_value("SELECT count(*) FROM orders WHERE id % 5 = 0 AND id % 7 <> 0 AND status <> 'paid'")
        .expect("count")
        .expect("non-null");
    sql(
        &pg,
        "UPDATE orders SET status = 'paid', amount = amount + 1 WHERE id % 5 = 0;
         DELETE FROM orders WHERE id % 7 = 0;
         INSERT INTO orders SELECT g, 1 + g % 30, 'new', 1.25 FROM generate_series(501, 600) g;
         UPDATE customers SET region = 'west' WHERE id < 5;",
    );
    asof.catch_up(&pg.conninfo());
    let region_now = copy_csv(&pg, BY_REGION);
    assert_ne!(region_now, region_then, "the workload changes the answer");

    let at = then.at_lsn();
    let out = asof.run(&["sql", BY_REGION, "--at", &at, "--format", "csv"]).ok();
    assert_bytes_eq(&out.stdout, &region_then, "join and aggregate at a past cut");
    assert!(out.stderr.contains("as of "), "states the cut: {}", out.stderr);
    let out = asof.run(&["sql", BY_STATUS, "--at", &at, "--format", "csv"]).ok();
    assert_bytes_eq(&out.stdout, &status_then, "aggregate at a past cut");
    let out = asof.run(&["sql", BY_REGION, "--format", "csv"]).ok();
    assert_bytes_eq(&out.stdout, &region_now, "the same query now");

    // A second moment inside one query: rows whose status changed since.
    let query = format!(
        "SELECT count(*) AS n FROM orders o JOIN asof_at('orders', '{at}') p USING (id) WHERE o.status <> p.status"
    );
    let out = asof.run(&["sql", &query, "--format", "csv"]).ok();
    assert_eq!(out.text(), format!("n\n{changed_status}\n"), "{}", out.stderr);
    assert!(
        out.stderr.contains("public.orders at lsn:"),
        "names the other moment: {}",
        out.stderr
    );

    // Schema-qualified names, unicode text, and JSON lines.
    let out = asof
        .run(&["sql", "SELECT body FROM shop.notes", "--at", &at, "--format", "jsonl"])
        .ok();
    assert_eq!(out.text(), "{\"body\":\"héllo ✓\"}\n");

    // A Parquet result file, read back by pyarrow.
    let file = dir.path().join("by_status.parquet");
    let file_s = file.to_str().expect("utf-8 path");
    asof.run(&["sql", BY_STATUS, "--at", &at, "--format", "parquet", "--output", file_s])
        .ok();
    let expected = dir.path().join("by_status.json");
    pg_json_at_past(&status_then, &expected);
    parquet_check(&["rows", file_s, expected.to_str().expect("utf-8")]);
}

/// The CSV of `BY_STATUS` (status, n, total) as the JSON parquet_check reads.
fn pg_json_at_past(csv: &[u8], path: &Path) {
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(csv)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            serde_json::json!({"status": f[0], "n": f[1], "total": f[2]})
        })
        .collect();
    std::fs::write(path, serde_json::to_string(&rows).expect("json")).expect("write");
}

#[test]
fn sql_errors_are_one_line() {
    let pg = cluster();
    sql(&pg, SHOP);
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let e = asof.run(&["sql", "SELEC 1"]).runtime_error();
    assert!(e.contains("SELEC"), "{e}");
    let e = asof.run(&["sql", "SELECT * FROM nope"]).runtime_error();
    assert!(e.contains("nope"), "{e}");
    let e = asof
        .run(&["sql", "SELECT 1", "--at", "2000-01-01T00:00:00Z"])
        .runtime_error();
    assert!(e.contains("earliest answerable moment"), "{e}");
    let e = asof
        .run(&["sql", "SELECT count(*) FROM asof_at('orders', '2000-01-01T00:00:00Z')"])
        .runtime_error();
    assert!(e.contains("earliest answerable moment"), "{e}");
    let e = asof
        .run(&["sql", "SELECT count(*) FROM asof_at('ordres', 'now')"])
        .runtime_error();
    assert!(e.contains("no table public.ordres") && e.contains("orders"), "{e}");
    let e = asof.run(&["sql", "SELECT * FROM asof_at('orders')"]).runtime_error();
    assert!(e.contains("asof_at('schema.table', 'WHEN')"), "{e}");
    let e = asof.run(&["sql", "SELECT 1", "--format", "parquet"]).usage_error();
    assert!(e.contains("--output"), "{e}");
    let e = asof.run(&["sql", "SELECT 1", "--at", "yesterday"]).usage_error();
    assert!(e.contains("invalid time"), "{e}");
}

/// Every typed column and its edge values; each column also in the form
/// parquet_check.py compares (see its `same`).
const EDGE: &str = r#"
CREATE TABLE edge (
  id int PRIMARY KEY, i2 int2, i8 int8, f4 float4, f8 float8, num numeric(10,3), big numeric,
  flag bool, txt text, vc varchar(20), ch char(4), b bytea, d date, ts timestamp, tstz timestamptz,
  ia int4[], ta text[], u uuid, j jsonb, iv interval);
INSERT INTO edge VALUES
 (1, 1, 9223372036854775807, 'NaN', 'Infinity', 12.5, 'NaN', true, 'héllo ✓ 日本', 'x,y', 'ab', '\x00ff',
  '0044-03-15 BC', '0044-03-15 12:00:00 BC', '2026-11-20 09:00:00.123456+00', '{1,NULL,3}', '{"a b","NULL",""}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2]}', '1 day 02:00'),
 (2, -32768, -9223372036854775808, '-Infinity', 'NaN', -0.001, '123456789012345678901234567890.123456789', false,
  '', NULL, NULL, '\x', '5874897-12-31', '1999-12-31 23:59:59.999999', '1970-01-01 00:00:00+00', '{}', '{}',
  NULL, 'null', NULL),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 0, 0, 3.4028235e+38, 1e-310, 9999999.999, '-0', true, E'tab\there "q" \\ back', 'q"uote', 'z', '\x5c',
  '1999-12-31', '0001-01-01 00:00:00 BC', '4713-11-24 00:00:00+00 BC', '{-2147483648}', '{"x\"y"}',
  '00000000-0000-0000-0000-000000000000', '[]', '-1 mons');
CREATE TABLE events (id int PRIMARY KEY, at timestamptz, note text);
INSERT INTO events VALUES (1, '2026-01-01 00:00:00+00', 'finite'), (2, 'infinity', 'forever');
"#;

const EDGE_EXPECTED: &str = "SELECT id::text, i2::text, i8::text, f4::text, f8::text, num::text, big::text, \
     flag::text, txt, vc, ch, encode(b, 'hex') AS b, (d - date '1970-01-01')::text AS d, \
     (extract(epoch FROM ts) * 1000000)::bigint::text AS ts, (extract(epoch FROM tstz) * 1000000)::bigint::text AS tstz, \
     array_to_json(ia)::text AS ia, array_to_json(ta)::text AS ta, u::text, j::text, iv::text FROM edge ORDER BY id";

#[test]
fn export_reads_back_in_pyarrow_and_duckdb_as_postgres_showed_it() {
    let pg = cluster();
    sql(&pg, EDGE);
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let then = moment(&pg);
    let expected = dir.path().join("edge.json");
    pg_json(&pg, EDGE_EXPECTED, &expected);
    sql(
        &pg,
        "UPDATE edge SET txt = 'later', f8 = 1 WHERE id IN (1, 4); DELETE FROM edge WHERE id = 2;",
    );
    asof.catch_up(&pg.conninfo());

    let out_dir = dir.path().join("export");
    let to = out_dir.to_str().expect("utf-8");
    let out = asof
        .run(&["export", "--at", &then.at_lsn(), "--to", to, "--tables", "edge"])
        .ok();
    assert!(out.stderr.contains("public.edge: 4 rows"), "{}", out.stderr);
    let file = out_dir.join("public.edge.parquet");
    parquet_check(&["rows", file.to_str().expect("utf-8"), expected.to_str().expect("utf-8")]);

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).expect("manifest")).expect("json");
    let cut_lsn = asof.cut_lsn(&then.at_lsn());
    assert_eq!(manifest["cut"]["lsn"], cut_lsn.as_str());
    assert_eq!(manifest["kind"], "snapshot");
    let table = &manifest["tables"][0];
    assert_eq!(table["name"], "public.edge");
    assert_eq!(table["key"], serde_json::json!(["id"]));
    let types: Vec<(String, String)> = table["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["postgres_type"].as_str().unwrap_or_default().into(),
                c["arrow_type"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    for pair in [
        ("numeric(10,3)", "Decimal128(10, 3)"),
        ("numeric", "Utf8"),
        ("timestamp with time zone", "Timestamp(µs, \"UTC\")"),
        ("integer[]", "List(Int32)"),
        ("bytea", "Binary"),
    ] {
        assert!(types.contains(&(pair.0.into(), pair.1.into())), "{pair:?} in {types:?}");
    }

    // No files beside the complete ones, and a second export refuses the directory.
    let names: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let e = asof.run(&["export", "--at", "now", "--to", to]).runtime_error();
    assert!(e.contains("not empty") && e.contains("--force"), "{e}");
    asof.run(&["export", "--at", "now", "--to", to, "--force", "--tables", "edge"])
        .ok();

    // The same values through SQL: typed, so they compare as numbers.
    let out = asof
        .run(&[
            "sql",
            "SELECT id, num * 2 AS twice, ia[1] AS first, d < DATE '0001-01-01' AS bc FROM edge ORDER BY id",
            "--at",
            &then.at_lsn(),
            "--format",
            "csv",
        ])
        .ok();
    assert_eq!(
        out.text(),
        "id,twice,first,bc\n1,25.000,1,true\n2,-0.002,,false\n3,,,\n4,19999999.998,-2147483648,false\n"
    );

    // A value a typed column cannot hold: named, with the way out.
    let e = asof
        .run(&[
            "export",
            "--at",
            "now",
            "--to",
            &format!("{to}-events"),
            "--tables",
            "events",
        ])
        .runtime_error();
    assert!(
        e.contains("public.events.at") && e.contains("infinity") && e.contains("--text"),
        "{e}"
    );
    assert!(!Path::new(&format!("{to}-events"))
        .join("public.events.parquet")
        .exists());
    let e = asof.run(&["sql", "SELECT * FROM events"]).runtime_error();
    assert!(e.contains("public.events.at") && e.contains("infinity"), "{e}");
    // Only the columns a query reads are converted.
    let out = asof
        .run(&["sql", "SELECT note FROM events ORDER BY id", "--format", "csv"])
        .ok();
    assert_eq!(out.text(), "note\nfinite\nforever\n");
    let text_dir = format!("{to}-text");
    asof.run(&[
        "export", "--at", "now", "--to", &text_dir, "--tables", "events", "--text",
    ])
    .ok();
    let events = Path::new(&text_dir).join("public.events.parquet");
    let got = parquet_check(&[
        "sql",
        events.to_str().expect("utf-8"),
        "SELECT \"at\" FROM t ORDER BY id",
    ]);
    assert_eq!(got.trim(), r#"[["2026-01-01 00:00:00+00"], ["infinity"]]"#);
}

#[test]
fn history_export_reconstructs_every_past_state() {
    let pg = cluster();
    sql(&pg, "CREATE TABLE hist (id int PRIMARY KEY, v text, n numeric(6,2));");
    let dir = scratch();
    let asof = Asof::new(store_in(dir.path()));
    asof.catch_up(&pg.conninfo());
    let steps = [
        "INSERT INTO hist VALUES (1, 'a', 1.00), (2, 'b', 2.00)",
        "UPDATE hist SET v = 'a2' WHERE id = 1; DELETE FROM hist WHERE id = 2; INSERT INTO hist VALUES (3, 'c', NULL)",
        "INSERT INTO hist VALUES (2, 'b again', 5.5); UPDATE hist SET n = 9.99 WHERE id = 3",
        "TRUNCATE hist; INSERT INTO hist VALUES (4, 'd', 0)",
        "UPDATE hist SET v = 'd2' WHERE id = 4; UPDATE hist SET v = 'd3' WHERE id = 4",
    ];
    let mut states = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        sql(&pg, &format!("BEGIN; {step}; COMMIT;"));
        let m = moment(&pg);
        let expected = dir.path().join(format!("state{i}.json"));
        pg_json(&pg, "SELECT id::text, v, n::text FROM hist ORDER BY id", &expected);
        states.push((lsn_value(&m.lsn), expected));
    }
    asof.catch_up(&pg.conninfo());
    let out_dir = dir.path().join("history");
    let out = asof
        .run(&["export", "--history", "--to", out_dir.to_str().expect("utf-8")])
        .ok();
    assert!(out.stderr.contains("public.hist: "), "{}", out.stderr);
    let file = out_dir.join("public.hist.parquet");
    let file = file.to_str().expect("utf-8");
    for (lsn, expected) in &states {
        parquet_check(&["scd", file, &lsn.to_string(), expected.to_str().expect("utf-8"), "id"]);
    }
    // One row per version; the current ones have no end.
    let got = parquet_check(&[
        "sql",
        file,
        "SELECT id, v, asof_op, asof_valid_to_lsn IS NULL FROM t ORDER BY asof_valid_from_lsn, id",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&got).expect("json");
    assert_eq!(rows.len(), 8, "{got}");
    assert_eq!(rows.last(), Some(&serde_json::json!([4, "d3", "u", true])), "{got}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["kind"], "history");
}
