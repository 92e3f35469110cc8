//! Stored generated columns: PostgreSQL 15 does not send them, so asof
//! answers the other columns and says so.

use asof_tests::scenario::{Replay, Scenario};

#[test]
fn generated_columns_are_left_out_and_named() {
    let replay = Scenario::new("generated_columns")
        .setup(
            "CREATE TABLE g (id int PRIMARY KEY, v int, twice int GENERATED ALWAYS AS (v * 2) STORED, w text);
             INSERT INTO g (id, v, w) VALUES (1, 1, 'a'), (2, NULL, 'b')",
        )
        .step("INSERT INTO g (id, v, w) VALUES (3, 3, 'c'); UPDATE g SET v = 10 WHERE id = 1")
        .step("UPDATE g SET w = 'bb' WHERE id = 2; DELETE FROM g WHERE id = 3")
        .step("ALTER TABLE g DROP COLUMN twice")
        .step("CREATE TABLE g2 (g text GENERATED ALWAYS AS (id::text) STORED, id int PRIMARY KEY); INSERT INTO g2 (id) VALUES (7)")
        .check();
    for (table, column) in [("public.g", "twice"), ("public.g2", "g")] {
        assert_named(&replay, table, column);
    }
}

/// Asserts a notice names `table`'s generated `column` as not captured.
fn assert_named(replay: &Replay, table: &str, column: &str) {
    let said = format!("column {column} (generated) not captured");
    assert!(
        replay.notices.iter().any(|n| n.contains(table) && n.contains(&said)),
        "no notice names {table}.{column}: {:#?}",
        replay.notices
    );
}

/// A generated column added to a captured table is left out like the
/// others, and named like them.
#[test]
fn generated_columns_added_while_capturing_are_named() {
    let replay = Scenario::new("generated_columns_added")
        .setup("CREATE TABLE ga (id int PRIMARY KEY, w text); INSERT INTO ga VALUES (1, 'a')")
        .step("ALTER TABLE ga ADD COLUMN label text GENERATED ALWAYS AS (w || '!') STORED")
        .step("UPDATE ga SET w = 'b' WHERE id = 1; INSERT INTO ga VALUES (2, 'c')")
        .check();
    assert_named(&replay, "public.ga", "label");
}

/// A generated column made an ordinary one keeps its values, which are
/// then captured.
#[test]
fn generated_columns_made_ordinary() {
    Scenario::new("generated_columns_made_ordinary")
        .setup(
            "CREATE TABLE gd (id int PRIMARY KEY, v int, twice int GENERATED ALWAYS AS (v * 2) STORED);
             INSERT INTO gd (id, v) VALUES (1, 1), (2, 2)",
        )
        .step("ALTER TABLE gd ALTER COLUMN twice DROP EXPRESSION")
        .step("UPDATE gd SET v = 5 WHERE id = 1; INSERT INTO gd VALUES (3, 3, 33)")
        .check();
}
