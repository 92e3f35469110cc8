//! TRUNCATE of one table, of several at once, before inserts in the same
//! transaction, and through foreign keys.

use asof_tests::scenario::Scenario;

#[test]
fn truncates() {
    Scenario::new("truncates")
        .setup(
            "CREATE TABLE one (id int PRIMARY KEY, v text);
             CREATE TABLE two (id int PRIMARY KEY, v text);
             CREATE TABLE seq (id serial PRIMARY KEY, v text);
             INSERT INTO one VALUES (1, 'a'), (2, 'b');
             INSERT INTO two VALUES (1, 'x');
             INSERT INTO seq (v) VALUES ('s1'), ('s2')",
        )
        .step("TRUNCATE one")
        .step("INSERT INTO one VALUES (3, 'c'); INSERT INTO two VALUES (2, 'y')")
        .step("TRUNCATE one, two, seq RESTART IDENTITY")
        .step("INSERT INTO two VALUES (5, 'before'); TRUNCATE two; INSERT INTO two VALUES (5, 'after'), (6, 'z')")
        .step("INSERT INTO seq (v) VALUES ('again'); TRUNCATE seq; INSERT INTO seq (v) VALUES ('last')")
        .step("UPDATE two SET v = 'updated' WHERE id = 6")
        .check();
}

#[test]
fn truncate_cascades_through_foreign_keys() {
    Scenario::new("truncate_cascades_through_foreign_keys")
        .setup(
            "CREATE TABLE parent (id int PRIMARY KEY, v text);
             CREATE TABLE child (id int PRIMARY KEY, parent int REFERENCES parent, v text);
             CREATE TABLE grandchild (id int PRIMARY KEY, child int REFERENCES child);
             CREATE TABLE bystander (id int PRIMARY KEY);
             INSERT INTO parent VALUES (1, 'p1'), (2, 'p2');
             INSERT INTO child VALUES (10, 1, 'c1'), (20, 2, 'c2');
             INSERT INTO grandchild VALUES (100, 10);
             INSERT INTO bystander VALUES (1)",
        )
        .step("TRUNCATE parent CASCADE")
        .step("INSERT INTO parent VALUES (3, 'p3'); INSERT INTO child VALUES (30, 3, 'c3'); INSERT INTO grandchild VALUES (300, 30)")
        .step("TRUNCATE child CASCADE; INSERT INTO child VALUES (31, 3, 'c31')")
        .check();
}
