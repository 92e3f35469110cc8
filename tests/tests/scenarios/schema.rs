//! Schema changes in the middle of history: each answer has the columns
//! the table had then, with the values it had then.

use asof_tests::scenario::Scenario;

#[test]
fn columns_added_dropped_and_retyped() {
    Scenario::new("columns_added_dropped_and_retyped")
        .setup(
            "CREATE TABLE s (id int PRIMARY KEY, v text, n int);
             INSERT INTO s VALUES (1, 'a', 1), (2, NULL, 2), (3, 'c', NULL)",
        )
        .step("ALTER TABLE s ADD COLUMN plain text")
        .step("ALTER TABLE s ADD COLUMN d text DEFAULT 'dflt', ADD COLUMN e int NOT NULL DEFAULT 0")
        // A volatile default rewrites the table.
        .step("ALTER TABLE s ADD COLUMN r float8 DEFAULT random() * 0")
        .step("INSERT INTO s (id, v) VALUES (4, 'd'); UPDATE s SET plain = 'p' WHERE id = 1")
        .step("ALTER TABLE s DROP COLUMN v")
        .step("ALTER TABLE s ALTER COLUMN n TYPE text USING coalesce(n::text, 'none')")
        .step("ALTER TABLE s ALTER COLUMN n TYPE int USING length(n)")
        .step("ALTER TABLE s ADD COLUMN v text; UPDATE s SET v = 'back ' || id")
        .step("ALTER TABLE s ALTER COLUMN e SET DEFAULT 5; INSERT INTO s (id) VALUES (5)")
        .step("ALTER TABLE s DROP COLUMN d, DROP COLUMN plain, ADD COLUMN later date DEFAULT '2026-01-01'")
        .check();
}

#[test]
fn tables_renamed_created_and_dropped() {
    Scenario::new("tables_renamed_created_and_dropped")
        .setup(
            "CREATE TABLE old_name (id int PRIMARY KEY, v text);
             INSERT INTO old_name VALUES (1, 'a'), (2, 'b')",
        )
        .step("ALTER TABLE old_name RENAME TO new_name")
        .step("UPDATE new_name SET v = 'renamed' WHERE id = 1")
        .step("CREATE TABLE old_name (id int PRIMARY KEY, w int); INSERT INTO old_name VALUES (9, 9)")
        .step("ALTER TABLE new_name RENAME TO newer; ALTER TABLE old_name RENAME TO new_name; INSERT INTO newer VALUES (3, 'c')")
        .step("DROP TABLE new_name; CREATE TABLE made (id int PRIMARY KEY); INSERT INTO made VALUES (1)")
        .step("BEGIN; CREATE TABLE quick (id int PRIMARY KEY, v text); INSERT INTO quick VALUES (1, 'q'); \
               ALTER TABLE quick ADD COLUMN w int DEFAULT 1; COMMIT")
        .check();
}

#[test]
fn tables_moved_to_another_schema() {
    Scenario::new("tables_moved_to_another_schema")
        .setup(
            "CREATE SCHEMA archive;
             CREATE TABLE mv (id int PRIMARY KEY, v text);
             INSERT INTO mv VALUES (1, 'a')",
        )
        .step("ALTER TABLE mv SET SCHEMA archive")
        .step("INSERT INTO archive.mv VALUES (2, 'b')")
        .check();
}

/// Older rows take a default evaluated once, when the column is added.
#[test]
fn columns_added_with_a_default_of_the_moment() {
    Scenario::new("columns_added_with_a_default_of_the_moment")
        .setup("CREATE TABLE dm (id int PRIMARY KEY); INSERT INTO dm VALUES (1), (2)")
        .step("ALTER TABLE dm ADD COLUMN at timestamptz DEFAULT now(), ADD COLUMN who text DEFAULT current_user")
        .step("INSERT INTO dm (id) VALUES (3)")
        .check();
}

/// The primary key's own type changes: every key is new text.
#[test]
fn key_columns_retyped() {
    Scenario::new("key_columns_retyped")
        .setup(
            "CREATE TABLE kr (id int PRIMARY KEY, v text);
             INSERT INTO kr VALUES (1, 'a'), (2, 'b')",
        )
        .step("ALTER TABLE kr ALTER COLUMN id TYPE text USING 'k' || id")
        .step("UPDATE kr SET v = 'x' WHERE id = 'k1'; INSERT INTO kr VALUES ('k3', 'c')")
        .step("ALTER TABLE kr ALTER COLUMN id TYPE numeric USING 1.5 * length(id) + substr(id, 2)::int")
        .check();
}

/// The same table name in two schemas; names resolve per schema.
#[test]
fn one_name_in_two_schemas() {
    Scenario::new("one_name_in_two_schemas")
        .setup(
            "CREATE SCHEMA other;
             CREATE TABLE public.t (id int PRIMARY KEY, v text);
             CREATE TABLE other.t (id int PRIMARY KEY, w int);
             INSERT INTO public.t VALUES (1, 'public'); INSERT INTO other.t VALUES (1, 1)",
        )
        .step("UPDATE other.t SET w = 2; INSERT INTO public.t VALUES (2, 'p2')")
        .step(
            "ALTER TABLE other.t RENAME TO u; CREATE TABLE other.t (id int PRIMARY KEY, z date); \
               INSERT INTO other.t VALUES (5, '2026-01-01')",
        )
        .check();
}

/// DDL among the rows of one transaction, and DDL rolled back.
#[test]
fn ddl_inside_transactions() {
    Scenario::new("ddl_inside_transactions")
        .setup("CREATE TABLE dt (id int PRIMARY KEY, v text); INSERT INTO dt VALUES (1, 'a')")
        // The row inserted before the column exists takes its default too.
        .step("INSERT INTO dt VALUES (2, 'b'); ALTER TABLE dt ADD COLUMN d int DEFAULT 5; UPDATE dt SET d = 6 WHERE id = 1")
        .step("TRUNCATE dt; ALTER TABLE dt ADD COLUMN e text DEFAULT 'e'; INSERT INTO dt (id, v) VALUES (3, 'c')")
        .step("BEGIN; SAVEPOINT s; ALTER TABLE dt ADD COLUMN gone int DEFAULT 1; ROLLBACK TO s; INSERT INTO dt VALUES (4, 'd'); COMMIT")
        .step("BEGIN; ALTER TABLE dt DROP COLUMN v; ALTER TABLE dt ALTER COLUMN d TYPE text; ROLLBACK")
        .step("UPDATE dt SET v = 'after rollbacks' WHERE id = 3")
        .step(
            "CREATE TABLE ctas AS SELECT id, v FROM dt; ALTER TABLE ctas ADD PRIMARY KEY (id); \
             UPDATE ctas SET v = 'keyed' WHERE id = 3",
        )
        .step("ALTER TABLE dt ADD COLUMN w int DEFAULT 1; ALTER TABLE dt DROP COLUMN w; INSERT INTO dt (id) VALUES (5)")
        .check();
}

/// A type change Postgres does without rewriting the table, though the
/// values print differently afterwards (with TimeZone UTC).
#[test]
fn columns_retyped_without_a_rewrite() {
    Scenario::new("columns_retyped_without_a_rewrite")
        .setup(
            "CREATE TABLE nr (id int PRIMARY KEY, ts timestamp, vc varchar(3), num numeric(6, 2));
             INSERT INTO nr VALUES (1, '2026-01-02 03:04:05', 'abc', 1.5)",
        )
        .step("SET TimeZone = 'UTC'; ALTER TABLE nr ALTER COLUMN ts TYPE timestamptz")
        .step("ALTER TABLE nr ALTER COLUMN vc TYPE text, ALTER COLUMN num TYPE numeric")
        .step("INSERT INTO nr VALUES (2, '2026-05-05 05:05:05+02', 'longer', 2.125)")
        .check();
}
