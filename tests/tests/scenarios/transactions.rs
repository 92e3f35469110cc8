//! Transactions of every size and shape: savepoints rolled back, changes to
//! many tables, many changes to one row, and one large enough to spill.

use asof_tests::scenario::Scenario;

#[test]
fn savepoints_and_rollbacks() {
    Scenario::new("savepoints_and_rollbacks")
        .setup("CREATE TABLE sp (id int PRIMARY KEY, v text); INSERT INTO sp VALUES (1, 'a')")
        .step(
            "BEGIN; INSERT INTO sp VALUES (2, 'kept'); SAVEPOINT s1; INSERT INTO sp VALUES (3, 'undone'); \
             UPDATE sp SET v = 'undone' WHERE id = 1; ROLLBACK TO s1; UPDATE sp SET v = 'kept' WHERE id = 1; \
             SAVEPOINT s2; DELETE FROM sp WHERE id = 2; RELEASE s2; COMMIT",
        )
        .step("BEGIN; INSERT INTO sp VALUES (9, 'never'); ROLLBACK")
        .step(
            "BEGIN; SAVEPOINT a; CREATE TABLE sp2 (id int PRIMARY KEY); INSERT INTO sp2 VALUES (1); ROLLBACK TO a; \
             CREATE TABLE sp3 (id int PRIMARY KEY); SAVEPOINT b; INSERT INTO sp3 VALUES (1); RELEASE b; COMMIT",
        )
        .check();
}

#[test]
fn large_and_busy_transactions() {
    Scenario::new("large_and_busy_transactions")
        .setup(
            "CREATE TABLE many (id int PRIMARY KEY, v text, n int);
             CREATE TABLE other (id int PRIMARY KEY, v text);
             INSERT INTO many SELECT i, 'v' || i, i FROM generate_series(1, 1000) i",
        )
        .step(
            "INSERT INTO many SELECT i, repeat('w', 200) || i, i FROM generate_series(1001, 60000) i; \
             UPDATE many SET n = -n WHERE id % 7 = 0; DELETE FROM many WHERE id % 11 = 0",
        )
        .step(
            "UPDATE many SET n = n + 1 WHERE id = 5; UPDATE many SET n = n + 1 WHERE id = 5; \
             UPDATE many SET id = 0 WHERE id = 5; INSERT INTO other SELECT id, v FROM many WHERE id < 50; \
             UPDATE other SET v = NULL WHERE id % 2 = 0",
        )
        .step("DELETE FROM many WHERE id > 100; UPDATE other SET id = id + 1000")
        .check();
}

/// Transactions that overlap: asof orders them by commit, not by start.
#[test]
fn overlapping_transactions() {
    Scenario::new("overlapping_transactions")
        .setup(
            "CREATE TABLE ov (id int PRIMARY KEY, v text);
             CREATE TABLE side (id int PRIMARY KEY, n int);
             INSERT INTO ov VALUES (1, 'a'), (2, 'b'); INSERT INTO side VALUES (1, 0)",
        )
        .step_aside("BEGIN; UPDATE ov SET v = 'first begun' WHERE id = 1; INSERT INTO side VALUES (2, 2)")
        .step("UPDATE ov SET v = 'first committed' WHERE id = 2; INSERT INTO ov VALUES (3, 'c')")
        .step("CREATE TABLE third (id int PRIMARY KEY); ALTER TABLE third ADD COLUMN note text DEFAULT 'n'")
        .step_aside("UPDATE ov SET v = v || '!' WHERE id = 3")
        .step("CREATE TABLE made_meanwhile (id int PRIMARY KEY); INSERT INTO made_meanwhile VALUES (1)")
        .step_aside("INSERT INTO side VALUES (3, 3); COMMIT")
        .step_aside("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM ov")
        .step("DELETE FROM ov WHERE id = 1")
        .step_aside("INSERT INTO side (id, n) SELECT 10 + id, id FROM ov; COMMIT")
        .check();
}

/// A transaction left open while another commits, then committed with
/// nothing else written: its commit record starts exactly where the other
/// one's ended, at the position Postgres reported right after that commit.
/// The moment right after the first commit is just before that position.
/// (Alone: WAL written by another scenario in between would move the
/// second commit.)
#[test]
fn a_commit_starting_where_the_last_one_ended() {
    Scenario::new("commit_starting_where_the_last_ended")
        .alone()
        .setup("CREATE TABLE ce (id int PRIMARY KEY, v text); INSERT INTO ce VALUES (1, 'a')")
        .step_aside("BEGIN; INSERT INTO ce VALUES (2, 'open')")
        .step("INSERT INTO ce VALUES (3, 'committed first')")
        .step_aside("COMMIT")
        .check();
}
