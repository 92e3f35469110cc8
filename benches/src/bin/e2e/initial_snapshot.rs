//! Step 2: the initial copy of a table, against `COPY (FORMAT binary)`.

use std::path::Path;

use anyhow::Result;
use asof_benches::{dir_size, median};

use crate::ctx::Ctx;
use crate::debezium::Debezium;
use crate::measure::{count_stdout, timed, Run};
use crate::pg::{one, psql, snap_table, SNAP_COPY};
use crate::report::{mib, report_pairs, tail_summary, walls};

pub fn run(ctx: &Ctx) -> Result<()> {
    let (cl, conn, dir) = ctx.step("2. Initial snapshot (TCP)", "initial")?;
    let rows = ctx.n(1_000_000, 1000);
    snap_table(&cl, rows)?;
    let size = one(&cl, "SELECT pg_total_relation_size('snap')")?;
    let (bin_bytes, _) = count_stdout(&mut psql(&cl, SNAP_COPY))?; // also warms the cache
    println!(
        "table snap: {rows} rows, {:.1} MiB on disk, COPY binary {:.1} MiB",
        mib(size.parse()?),
        mib(bin_bytes)
    );

    // `connections`: the copy's own default when `None`.
    let run_ours = |slot: &str, store: &Path, log: &Path, connections: Option<&str>| -> Result<Run> {
        let mut cmd = ctx.asof(store);
        cmd.args(["tail", &conn, "--slot", slot, "--until", "caught-up"]);
        if let Some(n) = connections {
            cmd.args(["--copy-connections", n]);
        }
        let s = timed(&mut cmd, log)?;
        cl.execute(&format!("SELECT pg_drop_replication_slot('{slot}')"))?;
        Ok(s)
    };
    // Warm-up: creates the publication and the DDL triggers once.
    let warm = run_ours("snap_0", &dir.join("store_0"), &dir.join("tail_0.log"), None)?;
    println!("  warm-up asof tail: {:.2} s", warm.wall);
    std::fs::remove_dir_all(dir.join("store_0"))?;
    let debezium = Debezium::prepare()?;
    let (mut refs, mut ours, mut dbz, mut one_conn) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 1..=ctx.reps {
        refs.push(timed(&mut psql(&cl, SNAP_COPY), &dir.join(format!("copy_{i}.log")))?);
        let store = dir.join(format!("store_{i}"));
        let log = dir.join(format!("tail_{i}.log"));
        ours.push(run_ours(&format!("snap_{i}"), &store, &log, None)?);
        let (_, _, copied) = tail_summary(&log)?;
        if copied != rows {
            println!("  WARNING: asof copied {copied} rows, expected {rows}");
        }
        if i == 1 {
            println!("  store after the initial copy: {:.1} MiB", mib(dir_size(&store)?));
        }
        std::fs::remove_dir_all(&store)?;
        // The same copy read on one connection.
        let store_1 = dir.join(format!("store_{i}_1"));
        one_conn.push(run_ours(
            &format!("snap_{i}_1"),
            &store_1,
            &dir.join(format!("tail_{i}_1.log")),
            Some("1"),
        )?);
        std::fs::remove_dir_all(&store_1)?;
        let slot = format!("dbz_snap_{i}");
        dbz.push(timed(
            &mut debezium.command(&cl, &slot, "asof", "initial", rows),
            &dir.join(format!("debezium_{i}.log")),
        )?);
        cl.execute(&format!("SELECT pg_drop_replication_slot('{slot}')"))?;
        println!(
            "  rep {i}: COPY {:.2} s, asof {:.2} s, asof on one connection {:.2} s, Debezium {:.2} s",
            refs[i - 1].wall,
            ours[i - 1].wall,
            one_conn[i - 1].wall,
            dbz[i - 1].wall
        );
    }
    let ratio = report_pairs(
        &format!("initial snapshot of {rows} rows"),
        "psql COPY (FORMAT binary) > /dev/null",
        "asof tail --until caught-up (fresh store + slot)",
        &refs,
        &ours,
    );
    let one_ratio = report_pairs(
        &format!("initial snapshot of {rows} rows, read on one connection"),
        "psql COPY (FORMAT binary) > /dev/null",
        "asof tail --until caught-up --copy-connections 1 (fresh store + slot)",
        &refs,
        &one_conn,
    );
    let dbz_ratio = report_pairs(
        &format!("initial snapshot of {rows} rows: Debezium as the reference"),
        "Debezium 3.6.1 embedded engine (snapshot.mode=initial), JSON events, counting consumer",
        "asof tail --until caught-up (fresh store + slot)",
        &dbz,
        &ours,
    );
    println!(
        "\nratio asof/COPY binary = {ratio:.2} (bar: <= 1.50; on one connection {one_ratio:.2}); asof/Debezium = \
         {dbz_ratio:.2}"
    );

    // The fixed cost of a tail run: a store and slot with nothing to do.
    let idle = dir.join("store_idle");
    timed(
        ctx.asof(&idle)
            .args(["tail", &conn, "--slot", "idle", "--no-snapshot", "--until", "caught-up"]),
        &dir.join("idle_0.log"),
    )?;
    let fixed: Vec<Run> = (1..=3)
        .map(|i| {
            timed(
                ctx.asof(&idle)
                    .args(["tail", &conn, "--slot", "idle", "--until", "caught-up"]),
                &dir.join(format!("idle_{i}.log")),
            )
        })
        .collect::<Result<_>>()?;
    println!(
        "fixed cost of `asof tail --until caught-up` with nothing to capture: median {:.3} s wall, {:.3} s CPU",
        median(&walls(&fixed)),
        median(&fixed.iter().map(|r| r.cpu).collect::<Vec<_>>())
    );
    Ok(())
}
