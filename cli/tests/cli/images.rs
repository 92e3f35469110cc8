//! `asof image`: reads at past moments through base images print what
//! Postgres showed then, byte for byte, and images go with retention.

use crate::support::*;

/// Every row updated in each of several passes, some deleted and inserted
/// again, a key changed; a moment after each pass.
fn passes(pg: &pg_fixture::PgCluster, n: usize) -> Vec<(Moment, Vec<u8>)> {
    let mut out = Vec::new();
    for pass in 1..=n {
        sql(
            pg,
            &format!(
                "BEGIN;
                 UPDATE t SET v = v + {pass}, note = 'pass {pass}' WHERE id % 3 <> {m};
                 DELETE FROM t WHERE id % 17 = {d};
                 INSERT INTO t SELECT g, {pass}, 'back {pass}' FROM generate_series(1, 300) g
                   WHERE g % 17 = {e} ON CONFLICT (id) DO NOTHING;
                 UPDATE t SET id = id + 1000 WHERE id = {pass};
                 COMMIT;",
                m = pass % 3,
                d = pass % 17,
                e = (pass + 16) % 17,
            ),
        );
        out.push((moment(pg), copy_csv(pg, "SELECT * FROM t ORDER BY id")));
    }
    out
}

#[test]
fn snapshots_through_images_are_what_postgres_showed() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, v int, note text);
         INSERT INTO t SELECT g, 0, 'copied' FROM generate_series(1, 300) g;
         CREATE TABLE idle (id int PRIMARY KEY, note text);
         INSERT INTO idle SELECT g, 'never changed' FROM generate_series(1, 50) g;",
    );
    let idle = copy_csv(&pg, "SELECT * FROM idle ORDER BY id");
    let dir = scratch();
    let a = Asof::new(store_in(dir.path()));
    a.catch_up(&pg.conninfo());
    let seen = passes(&pg, 12);
    a.catch_up(&pg.conninfo());
    let snapshot = |m: &Moment| {
        a.run(&["snapshot", "t", "--at", &m.at_lsn(), "--format", "csv"])
            .ok()
            .stdout
    };
    // An image about every other pass; each after the first carries the
    // versions since the one before; a table that did not change keeps its
    // first image.
    let out = a.run(&["image", "--every", "500"]).ok();
    assert!(out.stderr.contains("images written"), "{}", out.stderr);
    assert!(!out.stderr.starts_with("0 images"), "{}", out.stderr);
    assert!(out.stderr.contains("versions since the image at"), "{}", out.stderr);
    let idle_lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains("public.idle")).collect();
    assert!(idle_lines.len() > 1, "{}", out.stderr);
    assert!(idle_lines[0].ends_with(" rows"), "{}", out.stderr);
    assert!(
        idle_lines[1..]
            .iter()
            .all(|l| l.contains("unchanged since its image at")),
        "{}",
        out.stderr
    );
    for (m, want) in &seen {
        assert_bytes_eq(&snapshot(m), want, &m.at_lsn());
        let got = a
            .run(&["snapshot", "idle", "--at", &m.at_lsn(), "--format", "csv"])
            .ok()
            .stdout;
        assert_bytes_eq(&got, &idle, &m.at_lsn());
    }
    // Once more at the last moment, and for one table by name.
    a.run(&["image", "--tables", "public.t"]).ok();
    for (m, want) in &seen {
        assert_bytes_eq(&snapshot(m), want, &m.at_lsn());
    }
    // Retention drops the images before its horizon; answers after it stay.
    a.run(&["compact", "--before", &seen[5].0.at_lsn()]).ok();
    for (m, want) in &seen[5..] {
        assert_bytes_eq(&snapshot(m), want, &m.at_lsn());
    }
    let line = a.run(&["image", "--tables", "public.nowhere"]).usage_error();
    assert!(line.contains("nowhere"), "{line}");
}
