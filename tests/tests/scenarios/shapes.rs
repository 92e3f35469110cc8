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
