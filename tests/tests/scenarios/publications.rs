//! User publications: some rows (a row filter), some columns (a column
//! list), some kinds of change, and tables added and dropped while
//! capturing. The expected answer is what the publication publishes.

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
/// no longer has stay in the answers, and the table says so wherever it is
/// read.
#[test]
fn a_publication_without_deletes() {
    let replay = Scenario::new("publication_without_deletes")
        .setup(
            "CREATE TABLE nd (id int PRIMARY KEY, v text);
             INSERT INTO nd VALUES (1, 'a'), (2, 'b');
             CREATE PUBLICATION no_deletes FOR TABLE nd WITH (publish = 'insert, update')",
        )
        .publication("no_deletes")
        .step("DELETE FROM nd WHERE id = 1")
        .step("TRUNCATE nd")
        .check();
    let said = "table public.nd: the publication does not publish delete, truncate";
    assert!(replay.notices.iter().any(|n| n.contains(said)), "{:#?}", replay.notices);
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
        // A rewrite reads the table afresh: through the filter too.
        .step("ALTER TABLE rf ALTER COLUMN id TYPE bigint")
        // Another filter: the table is read afresh through it.
        .step("ALTER PUBLICATION filtered SET TABLE rf WHERE (region = 'us')")
        .step("INSERT INTO rf VALUES (6, 'us', 'f'), (7, 'eu', 'g')")
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
        // Another column list: the table is read afresh with it.
        .step("ALTER PUBLICATION some_columns SET TABLE cl (id, hidden)")
        .step("UPDATE cl SET hidden = 'seen' WHERE id = 2")
        .check();
}

/// A row filter on a parent with an inheritance child: the child is a
/// table of its own, so the parent's copy holds only the parent's rows.
#[test]
fn a_row_filter_on_a_parent_with_an_inheritance_child() {
    Scenario::new("row_filter_inheritance")
        .setup(
            "CREATE TABLE par (id int PRIMARY KEY, region text);
             ALTER TABLE par REPLICA IDENTITY FULL;
             CREATE TABLE par_kid (extra int) INHERITS (par);
             ALTER TABLE par_kid ADD PRIMARY KEY (id);
             INSERT INTO par VALUES (1, 'eu'), (2, 'us');
             INSERT INTO par_kid VALUES (10, 'eu', 1), (11, 'us', 2);
             CREATE PUBLICATION inherited FOR TABLE ONLY par WHERE (region = 'eu'), ONLY par_kid",
        )
        .publication("inherited")
        .step("INSERT INTO par VALUES (3, 'eu'); INSERT INTO par_kid VALUES (12, 'eu', 3)")
        .step("UPDATE par SET region = 'eu' WHERE id = 2")
        .check();
}
