//! Tables of unusual shape: only key columns, a single column, identical
//! rows without a key (each answered as often as Postgres holds it), no
//! columns at all.

use asof_tests::scenario::Scenario;

#[test]
fn tables_of_key_columns_only() {
    Scenario::new("tables_of_key_columns_only")
        .setup(
            "CREATE TABLE pairs (a int, b text, PRIMARY KEY (a, b));
             CREATE TABLE single (k text PRIMARY KEY);
             INSERT INTO pairs VALUES (1, 'x'), (1, 'y'), (2, '');
             INSERT INTO single VALUES (''), ('a'), ('\\N')",
        )
        .step("UPDATE pairs SET b = 'z' WHERE a = 1 AND b = 'x'; INSERT INTO single VALUES ('new')")
        .step("UPDATE pairs SET a = a + 1; UPDATE single SET k = k || '+' WHERE k = ''")
        .step("DELETE FROM pairs WHERE b = ''; DELETE FROM single WHERE k = 'a'")
        .step("INSERT INTO pairs VALUES (2, ''); ALTER TABLE single ADD COLUMN v int DEFAULT 3")
        .check();
}

/// `REPLICA IDENTITY FULL` without a primary key: identical rows are
/// distinct rows in Postgres.
#[test]
fn full_identity_without_a_key_holding_duplicate_rows() {
    Scenario::new("full_identity_duplicates")
        .setup(
            "CREATE TABLE dup (a int, b text);
             ALTER TABLE dup REPLICA IDENTITY FULL;
             INSERT INTO dup VALUES (1, 'x'), (1, 'x'), (2, 'y'), (2, 'y'), (3, NULL), (3, NULL)",
        )
        .step("UPDATE dup SET a = a * a")
        .step("INSERT INTO dup VALUES (4, 'x'); DELETE FROM dup WHERE a = 1")
        .step("UPDATE dup SET b = 'z' WHERE a = 4")
        .check();
}

/// A table with no columns under `REPLICA IDENTITY FULL`: every row is the
/// same empty row.
#[test]
fn tables_without_columns() {
    Scenario::new("tables_without_columns")
        .setup(
            "CREATE TABLE z (); ALTER TABLE z REPLICA IDENTITY FULL;
             INSERT INTO z DEFAULT VALUES; INSERT INTO z DEFAULT VALUES",
        )
        .step("INSERT INTO z DEFAULT VALUES")
        .step("CREATE TABLE z2 (); ALTER TABLE z2 REPLICA IDENTITY FULL; INSERT INTO z2 DEFAULT VALUES")
        .step("DELETE FROM z WHERE ctid = (SELECT min(ctid) FROM z)")
        .step("TRUNCATE z2")
        .check();
}

/// Tables large enough that the initial copy reads them in ranges of pages
/// on several connections: keyed (loaded in bulk) and keyless, a parent
/// whose inheritance child is a table of its own (the copy of the parent
/// reads only the parent's rows), a table without columns, and small
/// tables read beside them.
#[test]
fn large_tables_copied_in_ranges_of_pages() {
    let replay = Scenario::new("copied_in_ranges")
        .setup(
            "CREATE TABLE big (id bigint PRIMARY KEY, v text, n numeric);
             INSERT INTO big SELECT i, repeat('v', 60) || i, i * 1.5 FROM generate_series(1, 400000) i;
             CREATE TABLE big_kid (k int) INHERITS (big);
             ALTER TABLE big_kid ADD PRIMARY KEY (id);
             INSERT INTO big_kid SELECT i, 'kid', 0, i FROM generate_series(1, 50) i;
             CREATE TABLE heap (v text, n int);
             ALTER TABLE heap REPLICA IDENTITY FULL;
             INSERT INTO heap SELECT repeat('h', 80), i % 1000 FROM generate_series(1, 350000) i;
             CREATE TABLE bare ();
             ALTER TABLE bare REPLICA IDENTITY FULL;
             INSERT INTO bare SELECT FROM generate_series(1, 1300000);
             CREATE TABLE small (id int PRIMARY KEY, v text);
             INSERT INTO small VALUES (1, 'a'), (2, 'b');
             -- An estimate of rows: the blocks at the end of each range shrink.
             ANALYZE big",
        )
        .alone()
        .copy_connections(3)
        .step(
            "UPDATE big SET v = 'changed' WHERE id IN (1, 200000, 400000); INSERT INTO big_kid VALUES (51, 'k', 1, 1)",
        )
        .step("DELETE FROM heap WHERE n = 7; DELETE FROM small WHERE id = 1")
        .check();
    // Every connection read its share.
    let fewer = replay.notices.iter().find(|n| n.contains("the initial copy read on"));
    assert!(fewer.is_none(), "{fewer:?}");
}
