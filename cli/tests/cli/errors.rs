//! Error cases: exit code 2 for usage, 1 for runtime, one `asof: ` line,
//! never a panic, never a password.

use std::time::Duration;

use pg_fixture::PgCluster;

use crate::support::*;

const WHEN_FORMS: &[&str] = &["RFC 3339", "lsn:", "now", "-10m"];

#[test]
fn malformed_when_is_a_usage_error_naming_the_expected_forms() {
    // WHEN is checked before the store is opened: the store need not exist.
    let dir = scratch();
    let a = Asof::new(dir.path().join("no-store"));
    let cases: &[&[&str]] = &[
        &["snapshot", "orders", "--at", "yesterday"],
        &["snapshot", "orders", "--at", "20/11/2026 9am"],
        &["snapshot", "orders", "--at", "-1y"],
        &["snapshot", "orders", "--at", "lsn:zz"],
        &["get", "orders", "--at", "yesterday", "1"],
        &["diff", "orders", "--from", "yesterday"],
        &["diff", "orders", "--from", "now", "--to", "tomorrow"],
        &["changes", "--from", "yesterday"],
        &["tables", "--at", "yesterday"],
        &["compact", "--before", "yesterday"],
    ];
    for args in cases {
        let e = a.run(args).usage_error();
        for form in WHEN_FORMS {
            assert!(e.contains(form), "{args:?}: the message should mention {form:?}: {e}");
        }
        let bad = args
            .iter()
            .find(|s| ["yesterday", "20/11/2026 9am", "-1y", "lsn:zz", "tomorrow"].contains(s));
        assert!(
            e.contains(bad.expect("a bad value")),
            "{args:?}: quotes the bad value: {e}"
        );
    }
    assert!(!dir.path().join("no-store").exists(), "nothing was created");

    // clap's own usage errors also exit 2.
    for args in [
        &["snapshot"][..],
        &["get", "orders"],
        &["snapshot", "orders", "--format", "xml"],
        &["frobnicate"],
    ] {
        a.run(args).clap_error();
    }
    let e = asof_raw(["--store", "x", "tail", "host=127.0.0.1", "--until", "bogus"]).usage_error();
    assert!(e.contains("--until") && e.contains("caught-up"), "{e}");
    for size in ["64MB", "MiB", "1.5GiB", "99999999999999999999GiB"] {
        let e = asof_raw(["--store", "x", "tail", "host=127.0.0.1", "--sql-catch-up-above", size]).usage_error();
        assert!(e.contains("--sql-catch-up-above") && e.contains("64MiB"), "{e}");
    }
}

#[test]
fn missing_store_and_a_directory_that_is_not_a_store() {
    let dir = scratch();
    let missing = dir.path().join("missing");
    let a = Asof::new(&missing);
    for args in [
        &["snapshot", "orders"][..],
        &["status"],
        &["tables"],
        &["history", "orders", "1"],
        &["compact", "--before", "now"],
    ] {
        let e = a.run(args).runtime_error();
        assert!(
            e.contains("no asof store") && e.contains(missing.to_str().expect("utf-8")),
            "{args:?}: {e}"
        );
    }
    assert!(!missing.exists(), "reading must not create a store");

    let other = dir.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), "precious").expect("write");
    let a = Asof::new(&other);
    for args in [
        &["snapshot", "orders"][..],
        &["status"],
        &["compact", "--before", "now"],
    ] {
        let e = a.run(args).runtime_error();
        assert!(e.contains("is not an asof store"), "{args:?}: {e}");
    }
    // tail refuses it too (before connecting anywhere) and leaves it alone.
    let e = a
        .run_timeout(&["tail", "host=127.0.0.1 port=1"], Duration::from_secs(30))
        .runtime_error();
    assert!(e.contains("is not an asof store"), "{e}");
    let names: Vec<_> = std::fs::read_dir(&other)
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["notes.txt"], "tail wrote into a foreign directory");

    // A regular file is not a store either.
    let e = Asof::new(other.join("notes.txt")).run(&["status"]).runtime_error();
    assert!(e.contains("notes.txt"), "{e}");
}

#[test]
fn unreachable_postgres_is_one_line_exit_1() {
    let dir = scratch();
    let a = Asof::new(store_in(dir.path()));
    // The first connection never succeeded: retrying forever would hide a typo.
    let out = a.run_timeout(&["tail", "host=127.0.0.1 port=1"], Duration::from_secs(20));
    let e = out.runtime_error();
    assert!(e.contains("127.0.0.1") || e.contains("connect"), "{e}");
    let out = a.run_timeout(
        &["tail", "host=127.0.0.1 port=1 user=postgres", "--until", "caught-up"],
        Duration::from_secs(20),
    );
    out.runtime_error();
}

#[test]
fn malformed_connection_strings_are_usage_errors() {
    let dir = scratch();
    let a = Asof::new(store_in(dir.path()));
    for conninfo in [
        "hostx=1",
        "host=127.0.0.1 port=notaport",
        "host=127.0.0.1 port",
        "postgres://u:pw@[::1",
        "host='unterminated",
        "postgresql://h:99999999/db",
    ] {
        let e = a
            .run_timeout(&["tail", conninfo], Duration::from_secs(30))
            .usage_error();
        assert!(e.contains("connection string"), "{conninfo}: {e}");
    }
    assert!(
        !store_in(dir.path()).exists(),
        "a bad connection string must not create a store"
    );
}

/// Makes the store claim format version `new`, as one written by a newer
/// asof would, writing the engine's own record directly.
fn set_format_version(store: &std::path::Path, new: u32) {
    let mut opts = rocksdb::Options::default();
    opts.set_compression_type(rocksdb::DBCompressionType::None);
    let families = rocksdb::DB::list_cf(&opts, store).expect("list the store's column families");
    let db = rocksdb::DB::open_cf(&opts, store, &families).expect("open the store's engine");
    let meta = db.cf_handle("meta").expect("the meta column family");
    db.put_cf(meta, b"format", new.to_be_bytes()).expect("write the format");
}

#[test]
fn wal_level_replica_is_refused_and_a_newer_store_format_too() {
    let pg = PgCluster::builder()
        .setting("wal_level", "replica")
        .start()
        .expect("start a replica-level cluster");
    sql(&pg, "CREATE TABLE t (id int PRIMARY KEY)");
    let dir = scratch();
    let store = store_in(dir.path());
    let a = Asof::new(&store);
    let e = a
        .run_timeout(
            &["tail", &pg.conninfo(), "--until", "caught-up"],
            Duration::from_secs(60),
        )
        .runtime_error();
    assert!(e.contains("wal_level") && e.contains("logical"), "{e}");

    // That attempt left a freshly created store behind; make it claim a
    // newer format than this build knows.
    assert!(store.join("CURRENT").exists(), "the store was created");
    // An empty store: status says so, queries say what to do.
    let status = a.run(&["status"]).ok().text();
    assert!(status.contains("watermark:    none"), "{status}");
    let e = a.run(&["snapshot", "t"]).runtime_error();
    assert!(e.contains("no history yet") && e.contains("asof tail"), "{e}");
    let newer = changelog::FORMAT_VERSION + 1;
    let claim = format!("format version {newer}");
    set_format_version(&store, newer);
    for args in [&["status"][..], &["snapshot", "t"], &["tables"]] {
        let e = a.run(args).runtime_error();
        assert!(e.contains(&claim) && e.contains("upgrade asof"), "{args:?}: {e}");
    }
    let e = a
        .run_timeout(
            &["tail", &pg.conninfo(), "--until", "caught-up"],
            Duration::from_secs(60),
        )
        .runtime_error();
    assert!(e.contains(&claim), "{e}");
}

#[test]
fn table_without_identity_and_role_without_replication() {
    let pg = cluster();
    sql(
        &pg,
        "CREATE TABLE nopk (a int, b text); INSERT INTO nopk VALUES (1, 'x'), (2, NULL);
         CREATE ROLE plain LOGIN;
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO plain;",
    );
    let dir = scratch();

    let plain = Asof::new(dir.path().join("plain"));
    let conn = format!("host=127.0.0.1 port={} user=plain dbname=postgres", pg.port());
    let e = plain
        .run_timeout(&["tail", &conn, "--until", "caught-up"], Duration::from_secs(60))
        .runtime_error();
    assert!(e.contains("REPLICATION"), "{e}");

    let a = Asof::new(store_in(dir.path()));
    let e = a
        .run_timeout(
            &["tail", &pg.conninfo(), "--until", "caught-up"],
            Duration::from_secs(60),
        )
        .runtime_error();
    assert!(
        e.contains("nopk") && e.contains("ALTER TABLE") && e.contains("REPLICA IDENTITY FULL"),
        "{e}"
    );

    // Following the advice works.
    sql(
        &pg,
        "ALTER TABLE nopk REPLICA IDENTITY FULL; INSERT INTO nopk VALUES (3, 'y');",
    );
    a.catch_up(&pg.conninfo());
    sql(
        &pg,
        "UPDATE nopk SET b = 'z' WHERE a = 1; DELETE FROM nopk WHERE a = 2;",
    );
    a.catch_up(&pg.conninfo());
    let got = a.snapshot_csv("nopk", "now").text();
    let mut lines: Vec<&str> = got.lines().collect();
    lines[1..].sort_unstable();
    assert_eq!(lines, ["a,b", "1,z", "3,y"], "{got}");
}

#[test]
fn the_password_never_appears() {
    const PW: &str = "s3cret-pw";
    const WRONG: &str = "wr0ng-pw-77";
    let pg = PgCluster::builder()
        .password_auth(PW)
        .start()
        .expect("start a password cluster");
    sql(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one');",
    );
    let port = pg.port();
    let dir = scratch();
    let no_leak = |out: &Out| {
        let all = out.everything();
        assert!(
            !all.contains(PW) && !all.contains(WRONG),
            "a password was printed by `{}`:\n{all}",
            out.what
        );
    };

    // Wrong passwords, in each place a password can be given.
    let a = Asof::new(dir.path().join("wrong"));
    for conninfo in [
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres password={WRONG}"),
        format!("postgresql://postgres:{WRONG}@127.0.0.1:{port}/postgres"),
    ] {
        let out = a.run_timeout(&["tail", &conninfo, "--until", "caught-up"], Duration::from_secs(30));
        no_leak(&out);
        let e = out.runtime_error();
        assert!(e.contains("password") || e.contains("authentication"), "{e}");
    }
    let mut args: Vec<String> = vec!["--store".into(), a.store.display().to_string(), "tail".into()];
    args.push(format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"));
    let out = asof_with(&args, &[("PGPASSWORD", WRONG)], Duration::from_secs(30));
    no_leak(&out);
    out.runtime_error();

    // Malformed strings holding a password.
    for conninfo in [
        format!("host=127.0.0.1 password={PW} port=notaport"),
        format!("postgres://postgres:{PW}@[::1"),
        format!("password={PW} bogus_option=1"),
    ] {
        let out = a.run(&["tail", &conninfo]);
        no_leak(&out);
        out.usage_error();
    }

    // The right password: nothing printed or stored shows it.
    let good = Asof::new(dir.path().join("good"));
    let out = good.run(&["tail", &pg.conninfo(), "--until", "caught-up"]);
    no_leak(&out);
    out.ok();
    let out = good.run(&["tail", &pg.uri(), "--until", "caught-up"]);
    no_leak(&out);
    out.ok();
    let out = good.run(&["status", "--source", &pg.conninfo()]);
    no_leak(&out);
    let status = out.ok().text();
    assert!(status.contains(&format!("port={port}")), "{status}");
    assert!(status.contains("slot asof:") && status.contains("lag:"), "{status}");
    assert_eq!(good.snapshot_csv("t", "now").text(), "id,v\n1,one\n");
    // status --source with a wrong password or a malformed string.
    let wrong = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres password={WRONG}");
    // (The store's part of the report may come first; the error ends it.)
    let out = good.run(&["status", "--source", &wrong]);
    no_leak(&out);
    out.assert_no_panic();
    assert_eq!(out.code, Some(1), "{}", out.everything());
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("asof: ") && out.stderr.lines().filter(|l| l.starts_with("asof: ")).count() == 1,
        "{}",
        out.stderr
    );
    for entry in std::fs::read_dir(&good.store).expect("ls") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes.windows(PW.len()).any(|w| w == PW.as_bytes()),
            "the password is stored in {}",
            path.display()
        );
    }

    // A role without REPLICATION, with a password of its own.
    sql(
        &pg,
        "CREATE ROLE plain LOGIN PASSWORD 'plain-pw-9'; GRANT SELECT ON t TO plain;",
    );
    let conninfo = format!("host=127.0.0.1 port={port} user=plain password=plain-pw-9 dbname=postgres");
    let out = Asof::new(dir.path().join("plain"))
        .run_timeout(&["tail", &conninfo, "--until", "caught-up"], Duration::from_secs(30));
    assert!(!out.everything().contains("plain-pw-9"), "{}", out.everything());
    let e = out.runtime_error();
    assert!(e.contains("REPLICATION"), "{e}");

    // A malformed --source is a usage error, found before anything is done.
    let out = good.run(&["status", "--source", &format!("password={PW} port=x")]);
    no_leak(&out);
    out.usage_error();
}

#[test]
fn query_errors_on_a_real_store() {
    let shop = Shop::build();
    let a = &shop.asof;
    let status = a.run(&["status"]).ok().text();
    let first = status
        .lines()
        .find_map(|l| l.strip_prefix("first commit:"))
        .expect("first commit")
        .trim()
        .to_string();
    let first_time = first.split(' ').next().expect("time").to_string();

    // Before history: exit 1, naming the earliest answerable moment.
    for args in [
        &["snapshot", "orders", "--at", "2000-01-01T00:00:00Z"][..],
        &["get", "orders", "1", "--at", "2000-01-01 00:00:00+09"],
        &["tables", "--at", "lsn:0/10"],
        &["diff", "orders", "--from", "1999-12-31T23:59:59Z"],
        &["snapshot", "orders", "--at", "-3650d"],
    ] {
        let e = a.run(args).runtime_error();
        assert!(
            e.contains("earliest answerable moment") && e.contains(&first_time),
            "{args:?}: {e}"
        );
    }

    // Unknown tables: a close name is suggested.
    for args in [
        &["snapshot", "ordrs"][..],
        &["get", "ordrs", "1"],
        &["history", "ordrs", "1"],
        &["diff", "ordrs", "--from", &shop.m[0].at_lsn()],
        &["changes", "--table", "ordrs"],
    ] {
        let e = a.run(args).runtime_error();
        assert!(
            e.contains("ordrs") && e.contains("did you mean") && e.contains("orders"),
            "{args:?}: {e}"
        );
    }
    // A table that exists only later is unknown earlier.
    let e = a
        .run(&["snapshot", "refunds", "--at", &shop.m[2].at_lsn()])
        .runtime_error();
    assert!(e.contains("refunds"), "{e}");
}
