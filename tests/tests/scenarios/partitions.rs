//! Partitioned tables of several levels and kinds, published through their
//! roots (asof's own publication, a user's) and through their leaves.

use asof_tests::scenario::Scenario;

/// A list root with a range-partitioned level below it and a default
/// partition, and a hash root.
const TREE: &str = "
    CREATE TABLE o (id int, region text, day date, v text, PRIMARY KEY (id, region, day)) PARTITION BY LIST (region);
    CREATE TABLE o_eu PARTITION OF o FOR VALUES IN ('eu') PARTITION BY RANGE (day);
    CREATE TABLE o_eu_2025 PARTITION OF o_eu FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE o_eu_2026 PARTITION OF o_eu FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    CREATE TABLE o_us PARTITION OF o FOR VALUES IN ('us');
    CREATE TABLE o_rest PARTITION OF o DEFAULT;
    INSERT INTO o VALUES (1, 'eu', '2025-05-01', 'a'), (2, 'eu', '2026-05-01', 'b'), (3, 'us', '2026-01-01', 'c'),
                         (4, 'jp', '2026-02-02', 'd');
    CREATE TABLE hsh (id int PRIMARY KEY, v text) PARTITION BY HASH (id);
    CREATE TABLE hsh_0 PARTITION OF hsh FOR VALUES WITH (MODULUS 2, REMAINDER 0);
    CREATE TABLE hsh_1 PARTITION OF hsh FOR VALUES WITH (MODULUS 2, REMAINDER 1);
    INSERT INTO hsh SELECT i, 'h' || i FROM generate_series(1, 6) i";

/// Rows moving across levels and into the default partition, a table with
/// another column order and a dropped column attached, a level detached, a
/// partition created, and DDL on the root.
const CHANGES: [&str; 8] = [
    "UPDATE o SET day = '2026-03-03' WHERE id = 1; UPDATE o SET region = 'fr' WHERE id = 2; \
     UPDATE o SET region = 'eu', day = '2025-12-31' WHERE id = 4",
    "UPDATE hsh SET id = id + 100 WHERE id <= 3",
    "CREATE TABLE o_fr (v text, junk int, day date, region text, id int, PRIMARY KEY (id, region, day)); \
     ALTER TABLE o_fr DROP COLUMN junk; \
     ALTER TABLE o ADD COLUMN note text; \
     ALTER TABLE o_fr ADD COLUMN note text; \
     DELETE FROM o WHERE region = 'fr'; \
     INSERT INTO o_fr (id, region, day, v) VALUES (5, 'fr', '2026-07-07', 'e'), (2, 'fr', '2026-05-01', 'b')",
    "ALTER TABLE o ATTACH PARTITION o_fr FOR VALUES IN ('fr')",
    "UPDATE o SET region = 'us', note = 'moved' WHERE id = 5",
    "ALTER TABLE o DETACH PARTITION o_eu",
    "CREATE TABLE o_de PARTITION OF o FOR VALUES IN ('de'); INSERT INTO o VALUES (6, 'de', '2026-08-08', 'f', NULL); \
     UPDATE o SET region = 'de' WHERE id = 3",
    "ALTER TABLE o ALTER COLUMN v TYPE varchar(10); UPDATE o_eu SET v = 'detached' WHERE id = 1",
];

#[test]
fn partitions_through_asof_s_own_publication() {
    Scenario::new("partitions_own")
        .setup(TREE)
        .steps(CHANGES)
        .step("TRUNCATE o, hsh")
        .check();
}

#[test]
fn partitions_through_a_user_publication_via_the_root() {
    Scenario::new("partitions_via_root")
        .setup(TREE)
        .setup("CREATE PUBLICATION via_root FOR TABLE o, hsh WITH (publish_via_partition_root = true)")
        .publication("via_root")
        .steps(CHANGES)
        .step("TRUNCATE o, hsh")
        .check();
}

#[test]
fn partitions_through_their_leaves() {
    Scenario::new("partitions_leaves")
        .setup(TREE)
        .setup("CREATE PUBLICATION leaves FOR ALL TABLES")
        .publication("leaves")
        .steps(CHANGES)
        .step("TRUNCATE o_us; TRUNCATE hsh")
        .check();
}
