//! `tail` options (--tables, --no-snapshot, --until LSN, --slot,
//! --publication, ASOF_STORE) and the refusals that protect history: a
//! store of another source, a dropped slot.

use std::time::Duration;

use crate::support::*;

#[test]
fn tail_options_and_protected_history() {
    let pg = cluster();
    sql(&pg, SHOP_SCHEMA);
    let conn = pg.conninfo();
    let dir = scratch();
    let secs = Duration::from_secs(60);

    // --tables: only those are captured.
    let only = Asof::new(dir.path().join("only"));
    only.run_timeout(
        &["tail", &conn, "--tables", "public.orders", "--until", "caught-up"],
        secs,
    )
    .ok();
    let tables = only.run(&["tables"]).ok().text();
    assert!(
        tables.contains("public.orders") && !tables.contains("order_lines"),
        "{tables}"
    );
    let e = only.run(&["snapshot", "order_lines"]).runtime_error();
    assert!(e.contains("order_lines"), "{e}");

    // --tables naming a table that does not exist: one line naming it.
    let nope = Asof::new(dir.path().join("nope"));
    let out = nope.run_timeout(
        &[
            "tail",
            &conn,
            "--tables",
            "public.nope",
            "--slot",
            "s_nope",
            "--publication",
            "p_nope",
            "--until",
            "caught-up",
        ],
        secs,
    );
    let e = out.runtime_error();
    assert!(e.contains("nope"), "{e}");

    // ASOF_STORE names the store when --store is not given.
    let env_store = dir.path().join("env");
    let out = asof_with(
        [
            "tail",
            &conn,
            "--slot",
            "s_env",
            "--publication",
            "p_env",
            "--until",
            "caught-up",
        ],
        &[("ASOF_STORE", env_store.to_str().expect("utf-8"))],
        secs,
    );
    out.ok();
    let want = copy_csv(&pg, "SELECT * FROM orders ORDER BY id");
    assert_bytes_eq(
        &Asof::new(&env_store).snapshot_csv("orders", "now").stdout,
        &want,
        "orders via ASOF_STORE",
    );

    // --until LSN stops there: later commits are not stored.
    sql(&pg, SHOP_TXNS[0]);
    let m1 = moment(&pg);
    let want_m1 = copy_csv(&pg, "SELECT * FROM orders ORDER BY id");
    sql(&pg, SHOP_TXNS[1]);
    let env = Asof::new(&env_store);
    env.run_timeout(
        &[
            "tail",
            &conn,
            "--slot",
            "s_env",
            "--publication",
            "p_env",
            "--until",
            &m1.at_lsn(),
        ],
        secs,
    )
    .ok();
    // (Checked at the end, so that the rest runs whatever happens here.)
    let after_until = env.snapshot_csv("orders", "now").stdout;
    let after_until_tip = env.cut_lsn("now");
    env.run_timeout(
        &[
            "tail",
            &conn,
            "--slot",
            "s_env",
            "--publication",
            "p_env",
            "--until",
            "caught-up",
        ],
        secs,
    )
    .ok();
    let want = copy_csv(&pg, "SELECT * FROM orders ORDER BY id");
    assert_bytes_eq(
        &env.snapshot_csv("orders", "now").stdout,
        &want,
        "orders after catching up",
    );
    assert_bytes_eq(
        &env.snapshot_csv("orders", &m1.at_lsn()).stdout,
        &want_m1,
        "orders at m1",
    );

    // --no-snapshot: history starts empty at the slot's creation.
    let fresh = Asof::new(dir.path().join("fresh"));
    fresh
        .run_timeout(
            &[
                "tail",
                &conn,
                "--no-snapshot",
                "--slot",
                "s_fresh",
                "--publication",
                "p_fresh",
                "--until",
                "caught-up",
            ],
            secs,
        )
        .ok();
    sql(&pg, "INSERT INTO orders VALUES (77, 'late', 7.00, 'x')");
    fresh
        .run_timeout(
            &[
                "tail",
                &conn,
                "--slot",
                "s_fresh",
                "--publication",
                "p_fresh",
                "--until",
                "caught-up",
            ],
            secs,
        )
        .ok();
    assert_eq!(
        fresh.snapshot_csv("orders", "now").text(),
        "id,status,amount,note\n77,late,7.00,x\n"
    );

    let mut problems = Vec::new();
    // A store belongs to one source: another cluster is refused, whether or
    // not it happens to have a slot of the same name.
    let other = cluster();
    sql(&other, SHOP_SCHEMA);
    check(&mut problems, "another source without the slot", || {
        let e = only
            .run_timeout(&["tail", &other.conninfo(), "--until", "caught-up"], secs)
            .runtime_error();
        assert!(e.contains("this store holds the history of"), "{e}");
    });
    check(&mut problems, "another source with a slot of that name", || {
        sql(&other, "SELECT pg_create_logical_replication_slot('asof', 'pgoutput')");
        let e = only
            .run_timeout(&["tail", &other.conninfo(), "--until", "caught-up"], secs)
            .runtime_error();
        assert!(e.contains("this store holds the history of"), "{e}");
        let e2 = only.run_timeout(&["tail", &other.conninfo()], secs).runtime_error();
        assert_eq!(e, e2);
    });

    // The slot was dropped: continuing would leave a hole; refuse.
    check(&mut problems, "dropped slot", || {
        sql(&pg, "INSERT INTO orders VALUES (78, 'lost?', 1.00, NULL)");
        sql(&pg, "SELECT pg_drop_replication_slot('asof')");
        let e = only
            .run_timeout(
                &["tail", &conn, "--tables", "public.orders", "--until", "caught-up"],
                secs,
            )
            .runtime_error();
        assert!(e.contains("slot asof") && e.contains("no longer exists"), "{e}");
    });

    check(&mut problems, "--until LSN", || {
        // --until LSN: nothing committed after that LSN was stored.
        assert!(
            lsn_value(&after_until_tip) <= lsn_value(&m1.lsn),
            "`tail --until lsn:{}` stored a later commit (lsn {after_until_tip})",
            m1.lsn
        );
        assert_bytes_eq(&after_until, &want_m1, "orders after `tail --until lsn:<m1>`");
    });
    assert_no_problems(&problems);
}
