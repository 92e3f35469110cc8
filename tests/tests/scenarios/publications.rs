//! User publications that change while capturing, or publish only some
//! kinds of change.

use asof_tests::scenario::Scenario;

/// A table added to the publication is answered from then on, with the
/// rows it had when it was added.
#[test]
fn tables_added_to_and_dropped_from_a_publication() {
    Scenario::new("publication_tables_added")
        .setup(
            "CREATE TABLE pa (id int PRIMARY KEY, v text);
             CREATE TABLE pb (id int PRIMARY KEY, v text);
             INSERT INTO pa VALUES (1, 'a'); INSERT INTO pb VALUES (1, 'b'), (2, 'bb');
             CREATE PUBLICATION chosen FOR TABLE pa",
        )
        .publication("chosen")
        .step("UPDATE pb SET v = 'unpublished' WHERE id = 1; INSERT INTO pa VALUES (2, 'a2')")
        .step("ALTER PUBLICATION chosen ADD TABLE pb")
        .step("UPDATE pb SET v = 'published' WHERE id = 2")
        .step("ALTER PUBLICATION chosen DROP TABLE pa; UPDATE pa SET v = 'dropped' WHERE id = 1")
        .step("ALTER PUBLICATION chosen ADD TABLE pa")
        .check();
}

/// A publication that does not publish deletes (or truncates): rows Postgres
/// no longer has must not be answered as if it did.
#[test]
fn a_publication_without_deletes() {
    Scenario::new("publication_without_deletes")
        .setup(
            "CREATE TABLE nd (id int PRIMARY KEY, v text);
             INSERT INTO nd VALUES (1, 'a'), (2, 'b');
             CREATE PUBLICATION no_deletes FOR TABLE nd WITH (publish = 'insert, update')",
        )
        .publication("no_deletes")
        .step("DELETE FROM nd WHERE id = 1")
        .step("TRUNCATE nd")
        .check();
}
