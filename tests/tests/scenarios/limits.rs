//! Scenarios asof does not answer exactly yet: duplicate rows in a table
//! keyed by all of its columns, and publications that publish part of a
//! table (a row filter, a column list). The expected answer is what the
//! publication publishes: its rows and columns, each row as often as
//! Postgres holds it.

use asof_tests::scenario::Scenario;

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

#[test]
fn a_publication_with_a_row_filter() {
    Scenario::new("row_filter")
        .setup(
            "CREATE TABLE rf (id int PRIMARY KEY, region text, v text);
             ALTER TABLE rf REPLICA IDENTITY FULL;
             INSERT INTO rf VALUES (1, 'eu', 'a'), (2, 'us', 'b'), (3, 'eu', 'c');
             CREATE PUBLICATION filtered FOR TABLE rf WHERE (region = 'eu')",
        )
        .publication("filtered")
        .step("INSERT INTO rf VALUES (4, 'eu', 'd'), (5, 'us', 'e')")
        .step("UPDATE rf SET region = 'us' WHERE id = 1")
        .step("UPDATE rf SET region = 'eu' WHERE id = 2")
        .step("UPDATE rf SET v = 'still out' WHERE id = 5; DELETE FROM rf WHERE id = 3")
        .check();
}

#[test]
fn a_publication_with_a_column_list() {
    Scenario::new("column_list")
        .setup(
            "CREATE TABLE cl (id int PRIMARY KEY, shown text, hidden text);
             INSERT INTO cl VALUES (1, 'a', 'secret'), (2, NULL, 'x');
             CREATE PUBLICATION some_columns FOR TABLE cl (id, shown)",
        )
        .publication("some_columns")
        .step("INSERT INTO cl VALUES (3, 'c', 'z')")
        .step("UPDATE cl SET hidden = 'changed' WHERE id = 1")
        .step("UPDATE cl SET shown = 'b' WHERE id = 2; DELETE FROM cl WHERE id = 3")
        .check();
}
