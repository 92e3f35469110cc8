//! Values of every kind of type, in the text Postgres prints for them.

use asof_tests::scenario::Scenario;

#[test]
fn arrays() {
    Scenario::new("arrays")
        .setup(
            "CREATE TABLE a (id int PRIMARY KEY, ints int[], texts text[], grid int[][], bounded int[]);
             INSERT INTO a VALUES
               (1, '{1,NULL,3}', '{\"a,b\",\"c\\\"d\",NULL,\"NULL\",\"\",\"back\\\\slash\"}', '{{1,2},{3,4}}', '[0:1]={7,8}'),
               (2, '{}', '{}', '{}', NULL)",
        )
        .step("INSERT INTO a VALUES (3, ARRAY[NULL, NULL]::int[], ARRAY['{x}', ' sp ', 'é'], '{{{1},{2}},{{3},{4}}}', '[-2:-1]={1,2}')")
        .step("UPDATE a SET texts[2] = 'x,y', ints = ints || 9 WHERE id = 1")
        .step("UPDATE a SET grid = NULL, texts = ARRAY[NULL]::text[] WHERE id = 2; DELETE FROM a WHERE id = 3")
        .check();
}

#[test]
fn composites_and_domains() {
    Scenario::new("composites_and_domains")
        .setup(
            "CREATE TYPE pair AS (x int, label text);
             CREATE DOMAIN positive AS int CHECK (VALUE > 0);
             CREATE DOMAIN tags AS text[] NOT NULL DEFAULT '{}';
             CREATE TABLE c (id positive PRIMARY KEY, p pair, ps pair[], t tags);
             INSERT INTO c VALUES (1, ROW(1, 'a,b'), ARRAY[ROW(2, 'q\"uote')::pair, NULL], '{x}'),
                                  (2, ROW(NULL, NULL), '{}', DEFAULT)",
        )
        .step("INSERT INTO c VALUES (3, ROW(3, ''), ARRAY[ROW(NULL, '(paren)')::pair], '{\"a b\",NULL}')")
        .step("UPDATE c SET p.label = 'back\\slash' WHERE id = 1")
        .step("UPDATE c SET id = 4 WHERE id = 2")
        .check();
}

#[test]
fn ranges() {
    Scenario::new("ranges")
        .setup(
            "CREATE TABLE r (id int PRIMARY KEY, i int4range, tz tstzrange, d daterange, n numrange, mr int4multirange);
             INSERT INTO r VALUES
               (1, '[1,5)', '[2026-01-01 00:00+02, infinity)', '[2026-01-01,2026-02-01]', '(1.5,2.25]', '{[1,3), [5,7)}'),
               (2, 'empty', '(,)', 'empty', '(,0]', '{}')",
        )
        .step("INSERT INTO r VALUES (3, '(,10]', '[-infinity, 2026-06-01 12:00:00.5+00)', '(2026-01-01,)', 'empty', '{(,2], [4,)}')")
        .step("UPDATE r SET i = i * '[3,8)', mr = mr + '{[10,11)}' WHERE id = 1")
        .step("UPDATE r SET tz = NULL WHERE id = 2")
        .check();
}

#[test]
fn enums_with_values_added_while_capturing() {
    Scenario::new("enums_with_values_added_while_capturing")
        .setup(
            "CREATE TYPE mood AS ENUM ('sad', 'ok');
             CREATE TABLE e (id int PRIMARY KEY, m mood, ms mood[]);
             INSERT INTO e VALUES (1, 'sad', '{ok,sad}'), (2, NULL, '{}')",
        )
        .step("ALTER TYPE mood ADD VALUE 'happy'")
        .step("ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok'")
        .step("INSERT INTO e VALUES (3, 'happy', '{meh,happy}'); UPDATE e SET m = 'meh' WHERE id = 1")
        .step("CREATE TYPE size AS ENUM ('s', 'm'); ALTER TABLE e ADD COLUMN sz size DEFAULT 'm'")
        .check();
}

#[test]
fn hstore_and_json() {
    Scenario::new("hstore_and_json")
        .setup(
            "CREATE EXTENSION hstore;
             CREATE TABLE h (id int PRIMARY KEY, kv hstore, js json, jb jsonb);
             INSERT INTO h VALUES
               (1, 'a=>1, \"b c\"=>NULL, \"q\\\"\"=>\"=>\"', '{\"k\":1,  \"k\":2, \"u\":\"\\u00e9\"}', '{\"k\":1, \"k\":2, \"n\":1.50}'),
               (2, '', 'null', 'null'),
               (3, NULL, '[ ]', '\"str\"')",
        )
        .step("UPDATE h SET kv = kv || 'z=>9', jb = jb || '{\"added\": [true, null]}' WHERE id = 1")
        .step("INSERT INTO h VALUES (4, hstore(ARRAY['x', 'y'], ARRAY['1', NULL]), '{\"deep\":{\"a\":[1,{\"b\":[]}]}}', '1e3')")
        .step(
            "CREATE TABLE h2 (k hstore, id int PRIMARY KEY); INSERT INTO h2 VALUES ('p=>q', 1); \
             UPDATE h SET js = NULL WHERE id = 3",
        )
        .check();
}

#[test]
fn numbers() {
    Scenario::new("numbers")
        .setup(
            "CREATE TABLE n (id int PRIMARY KEY, num numeric, fixed numeric(12, 4), f4 float4, f8 float8, i2 int2, i8 int8);
             INSERT INTO n VALUES
               (1, 'NaN', 1.5, 'NaN', 'NaN', -32768, -9223372036854775808),
               (2, 'Infinity', -0.00004, 'Infinity', '-Infinity', 32767, 9223372036854775807),
               (3, '-Infinity', 0, '-0', '-0', 0, 0),
               (4, 123456789012345678901234567890.123456789012345678901234567890, NULL, 1e-45, 5e-324, NULL, NULL)",
        )
        .step(
            "INSERT INTO n VALUES (5, 1e-1000, 12345678.12345, 3.4028235e38, 1.7976931348623157e308, 1, 1), \
                                  (6, -0.000, 12.3, 0.1, 0.1, -1, -1)",
        )
        .step("UPDATE n SET num = num * 2, f8 = f8 * 3 WHERE id IN (4, 6)")
        .step("UPDATE n SET num = power(10::numeric, 300) + 0.5 WHERE id = 1")
        .check();
}

#[test]
fn times() {
    Scenario::new("times")
        .setup(
            "CREATE TABLE t (id int PRIMARY KEY, tz timestamptz, ts timestamp, d date, iv interval, tm time, ttz timetz);
             INSERT INTO t VALUES
               (1, 'infinity', '-infinity', 'infinity', '-178000000 years', '24:00:00', '00:00:00+15:59'),
               (2, '4713-01-01 00:00:00+00 BC', '0044-03-15 12:00:00 BC', '4713-01-01 BC', '1 mon -1 day 00:00:00.000001', '00:00:00', '12:00:00-15:59'),
               (3, '2026-11-20 09:00:00.123456+05:45', '294276-12-31 23:59:59.999999', '5874897-12-31', '178000000 years', '12:34:56.789', NULL)",
        )
        .step("INSERT INTO t VALUES (4, '1999-12-31 23:59:59.5-08', 'epoch', 'epoch', 'P1Y2M3DT4H5M6S', 'allballs', 'allballs')")
        .step("UPDATE t SET iv = iv + interval '1 hour', tz = tz + interval '1 day' WHERE id IN (2, 3)")
        .step("UPDATE t SET d = '-infinity', ts = 'infinity' WHERE id = 4")
        .check();
}

#[test]
fn bytes_uuids_bits_and_money() {
    Scenario::new("bytes_uuids_bits_and_money")
        .setup(
            "CREATE TABLE b (id uuid PRIMARY KEY, by bytea, vb varbit, fb bit(8), m money, inet_ inet, c cidr, mac macaddr, \
                             ch char(5), q \"char\", ts tsvector, pt point, bx box);
             INSERT INTO b VALUES
               ('00000000-0000-0000-0000-000000000000', '\\x', B'', B'00000000', '-12.34', '::1', '10.0.0.0/8',
                '08:00:2b:01:02:03', 'ab', 'x', 'a fat:1A cat', '(1.5,-0)', '((0,0),(1,1))'),
               ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '\\x00ff5c27', B'1010101', B'11110000', '92233720368547758.07',
                '192.168.1.5/24', '2001:db8::/32', 'FF:FF:FF:FF:FF:FF', '', '\\', '', '(1e-300,1e300)', '((1,2),(-3,-4))')",
        )
        .step(
            "INSERT INTO b (id, by, vb, m) VALUES ('ffffffff-ffff-ffff-ffff-ffffffffffff', \
                decode(repeat('00ff', 3000), 'hex'), repeat('1', 300)::varbit, '-92233720368547758.08')",
        )
        .step("UPDATE b SET vb = vb || B'1', m = m * 2 WHERE id = '00000000-0000-0000-0000-000000000000'")
        .check();
}

/// Text that COPY must escape: tabs, newlines, backslashes, and text that
/// looks like its NULL marker.
#[test]
fn texts_needing_escapes() {
    Scenario::new("texts_needing_escapes")
        .setup(
            "CREATE TABLE tx (id text PRIMARY KEY, v text, c varchar(10), n name);
             INSERT INTO tx VALUES (E'tab\\there', E'line\\nbreak\\r', '\\N', 'Ünïcödé'), ('', '', '', ''),
                                   ('\\', 'NULL', E'\\x01', 'x')",
        )
        .step("INSERT INTO tx VALUES ('😀 emoji', repeat(E'\\\\', 3), 'é', 'n')")
        .step("UPDATE tx SET id = id || E'\\n' WHERE id = ''")
        .check();
}

/// Large values are stored out of line; an UPDATE that leaves one alone
/// sends it as "unchanged", also when it moves the row to another key.
#[test]
fn toasted_values_left_unchanged() {
    Scenario::new("toasted_values_left_unchanged")
        .setup(
            "CREATE TABLE big (id int PRIMARY KEY, v text, plain text, squeezed text);
             ALTER TABLE big ALTER COLUMN plain SET STORAGE EXTERNAL;
             INSERT INTO big SELECT i, 'v' || i, repeat(md5(i::text), 400),
                    (SELECT string_agg(md5(i::text || j::text), '') FROM generate_series(1, 300) j)
             FROM generate_series(1, 3) i",
        )
        .step("UPDATE big SET v = 'changed' WHERE id = 1")
        .step("UPDATE big SET id = 10 WHERE id = 2")
        .step("UPDATE big SET v = NULL WHERE id = 10; UPDATE big SET v = 'again' WHERE id = 10")
        .step("UPDATE big SET plain = 'short now' WHERE id = 3; UPDATE big SET v = 'after' WHERE id = 3")
        .step("INSERT INTO big SELECT 4, 'new', plain, squeezed FROM big WHERE id = 1; DELETE FROM big WHERE id = 1")
        .step("ALTER TABLE big ADD COLUMN extra int DEFAULT 1; UPDATE big SET extra = 2 WHERE id = 4")
        .check();
}

/// Adding an attribute to a composite type changes how every stored value
/// of it prints.
#[test]
fn composite_attributes_added() {
    Scenario::new("composite_attributes_added")
        .setup(
            "CREATE TYPE point3 AS (x int, y int);
             CREATE TABLE p3 (id int PRIMARY KEY, p point3);
             INSERT INTO p3 VALUES (1, ROW(1, 2))",
        )
        .step("ALTER TYPE point3 ADD ATTRIBUTE z int")
        .step("INSERT INTO p3 VALUES (2, ROW(3, 4, 5))")
        .step("ALTER TYPE point3 DROP ATTRIBUTE x")
        .check();
}

/// Renaming an enum's value changes how every stored value prints.
#[test]
fn enum_values_renamed() {
    Scenario::new("enum_values_renamed")
        .setup(
            "CREATE TYPE level AS ENUM ('low', 'high');
             CREATE TABLE lv (id int PRIMARY KEY, l level);
             INSERT INTO lv VALUES (1, 'low'), (2, 'high')",
        )
        .step("ALTER TYPE level RENAME VALUE 'low' TO 'bottom'")
        .step("INSERT INTO lv VALUES (3, 'bottom')")
        .check();
}
