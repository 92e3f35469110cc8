//! Tables of unusual shape: only key columns, a single column.

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
