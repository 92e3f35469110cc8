//! Every replica identity a keyed table can have, and keys that change.

use asof_tests::scenario::Scenario;

#[test]
fn default_identity_with_a_primary_key() {
    Scenario::new("default_identity_with_a_primary_key")
        .setup(
            "CREATE TABLE d (id int PRIMARY KEY, v text, n int);
             INSERT INTO d VALUES (1, 'a', 1), (2, NULL, 2), (3, '', NULL)",
        )
        .step("INSERT INTO d VALUES (4, 'd', 4) ON CONFLICT (id) DO UPDATE SET v = 'never'")
        .step("INSERT INTO d VALUES (1, 'x', 0) ON CONFLICT (id) DO UPDATE SET v = excluded.v || d.v")
        .step("UPDATE d SET v = NULL, n = n + 1 WHERE id <= 2; DELETE FROM d WHERE id = 3")
        // Inserted and deleted in one transaction: never visible.
        .step("INSERT INTO d VALUES (5, 'gone', 5); DELETE FROM d WHERE id = 5")
        // Deleted and inserted again in one transaction.
        .step("DELETE FROM d WHERE id = 4; INSERT INTO d VALUES (4, 'back', 40)")
        .step("ALTER TABLE d REPLICA IDENTITY FULL; UPDATE d SET n = 7 WHERE id = 4")
        .step("ALTER TABLE d REPLICA IDENTITY DEFAULT; UPDATE d SET n = 8 WHERE id = 4; DELETE FROM d WHERE id = 2")
        .check();
}

/// The identity is a unique index, not the primary key: an UPDATE that
/// changes the index's columns sends the old values of those columns only.
#[test]
fn identity_using_an_index() {
    Scenario::new("identity_using_an_index")
        .setup(
            "CREATE TABLE u (a int NOT NULL, b text NOT NULL, v text);
             CREATE UNIQUE INDEX u_ab ON u (a, b);
             ALTER TABLE u REPLICA IDENTITY USING INDEX u_ab;
             INSERT INTO u VALUES (1, 'x', 'one'), (2, 'x', 'two'), (1, 'y', NULL)",
        )
        .step("UPDATE u SET v = 'uno' WHERE a = 1 AND b = 'x'")
        .step("UPDATE u SET b = 'z' WHERE a = 2")
        .step("UPDATE u SET a = a + 10, v = v || '!' WHERE b = 'x'")
        // Swaps two rows' identities through a free value.
        .step(
            "UPDATE u SET a = -1 WHERE a = 11 AND b = 'x'; UPDATE u SET a = 11, b = 'x' WHERE a = 1 AND b = 'y'; \
             UPDATE u SET a = 1, b = 'y' WHERE a = -1",
        )
        .step("DELETE FROM u WHERE b = 'z'; INSERT INTO u VALUES (2, 'z', 'again')")
        .check();
}

/// A primary key, but the identity is another unique index: the key may
/// change while the identity does not, and the other way round.
#[test]
fn identity_index_beside_a_primary_key() {
    Scenario::new("identity_index_beside_a_primary_key")
        .setup(
            "CREATE TABLE w (id int PRIMARY KEY, code text NOT NULL UNIQUE, v text);
             ALTER TABLE w REPLICA IDENTITY USING INDEX w_code_key;
             INSERT INTO w VALUES (1, 'a', 'x'), (2, 'b', 'y')",
        )
        .step("UPDATE w SET id = 10 WHERE id = 1")
        .step("UPDATE w SET code = 'bb' WHERE id = 2")
        .step("UPDATE w SET id = 20, code = 'c' WHERE id = 2")
        .step("DELETE FROM w WHERE code = 'a'; INSERT INTO w VALUES (1, 'a', 'back')")
        .check();
}

#[test]
fn full_identity_with_a_primary_key() {
    Scenario::new("full_identity_with_a_primary_key")
        .setup(
            "CREATE TABLE f (id int PRIMARY KEY, v text, n numeric, big text);
             ALTER TABLE f REPLICA IDENTITY FULL;
             INSERT INTO f VALUES (1, 'a', 1.0, NULL), (2, NULL, NULL, repeat(md5('2'), 300)), (3, 'c', 'NaN', '')",
        )
        .step("UPDATE f SET v = 'b' WHERE id = 2")
        .step("UPDATE f SET n = 1.00 WHERE id = 1")
        .step("UPDATE f SET id = id + 10 WHERE id IN (1, 2)")
        .step("UPDATE f SET big = big || 'tail' WHERE id = 12; DELETE FROM f WHERE n = 'NaN'")
        .step("INSERT INTO f VALUES (3, 'c', 3, NULL); UPDATE f SET v = NULL WHERE id = 3")
        .check();
}

/// Primary keys changed by UPDATE, swapped, reused, and keys whose text
/// differs though Postgres calls them equal.
#[test]
fn primary_keys_changed_by_update() {
    Scenario::new("primary_keys_changed_by_update")
        .setup(
            "CREATE TABLE k (id int PRIMARY KEY, v text);
             CREATE TABLE kk (region text, n numeric, v text, PRIMARY KEY (region, n));
             INSERT INTO k VALUES (1, 'one'), (2, 'two'), (3, 'three');
             INSERT INTO kk VALUES ('eu', 1.0, 'a'), ('us', 1, 'b'), ('', 0, 'empty')",
        )
        .step("UPDATE k SET id = id + 100 WHERE id = 1")
        // Swaps two keys through negative values.
        .step("UPDATE k SET id = -id WHERE id IN (2, 3); UPDATE k SET id = 5 + id WHERE id < 0")
        // A key freed and taken by another row in one transaction.
        .step("UPDATE k SET id = 7 WHERE id = 101; UPDATE k SET id = 101 WHERE id = 2")
        // Equal numerics, different text.
        .step("UPDATE kk SET n = 1.000 WHERE region = 'eu'")
        .step("UPDATE kk SET region = 'EU' WHERE region = 'eu'; UPDATE kk SET n = n + 1, v = 'moved' WHERE region = ''")
        .step("DELETE FROM kk WHERE n = 1; INSERT INTO kk VALUES ('us', 1.0, 'c')")
        .check();
}

/// The identity moves between the primary key, another unique index and
/// FULL while rows change under each.
#[test]
fn identity_switched_while_capturing() {
    Scenario::new("identity_switched_while_capturing")
        .setup(
            "CREATE TABLE sw (id int PRIMARY KEY, code text NOT NULL, v text);
             CREATE UNIQUE INDEX sw_code ON sw (code);
             INSERT INTO sw VALUES (1, 'a', 'x'), (2, 'b', 'y')",
        )
        .step("ALTER TABLE sw REPLICA IDENTITY USING INDEX sw_code; UPDATE sw SET code = 'aa' WHERE id = 1")
        .step("UPDATE sw SET id = 3 WHERE code = 'b'")
        .step("ALTER TABLE sw REPLICA IDENTITY FULL; UPDATE sw SET v = NULL WHERE id = 3")
        .step("ALTER TABLE sw REPLICA IDENTITY DEFAULT; UPDATE sw SET id = 4, code = 'c' WHERE id = 1")
        .check();
}
