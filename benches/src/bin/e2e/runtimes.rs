//! Diagnostics: the capture and the initial copy in process, under the
//! tokio runtimes they could run on, beside the reference tool.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Result};
use changelog::{Store, StoreOptions};

use crate::ctx::Ctx;
use crate::measure::{count_stdout, seconds_by_name, self_cpu, thread_line, thread_ticks, timed, Run, Sampler};
use crate::pg::{backlog, current_lsn, orders_ddl, psql, recvlogical, snap_table, SNAP_COPY};
use crate::report::report_variants;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Rt {
    /// `asof tail`: multi-thread runtime (2 workers), capture polled by block_on on the main thread.
    CliBlockOn,
    /// A current-thread runtime: the capture and the I/O driver on one thread.
    CurrentThread,
    /// Multi-thread runtime (2 workers), capture spawned onto a worker.
    Spawned,
}

fn capture_in_process(store: &Path, conn: &str, slot: &str, rt: Rt, snapshot: bool) -> Result<(Run, u64)> {
    let opts = cdc_source::CaptureOptions {
        conninfo: cdc_source::conninfo::parse_conninfo(conn).map_err(|e| anyhow!("{e}"))?,
        slot: slot.to_string(),
        publication: "asof".into(),
        tables: Vec::new(),
        snapshot,
        until: cdc_source::Until::CaughtUp,
        sql_catch_up_above: Some(cdc_source::SQL_CATCH_UP_ABOVE),
        streaming: true,
        copy_connections: cdc_source::default_copy_connections(),
    };
    let sampler = Sampler::start();
    let mut before = HashMap::new();
    thread_ticks(std::process::id(), &mut before);
    let cpu0 = self_cpu();
    let t = Instant::now();
    let options = StoreOptions {
        create_if_missing: true,
        ..StoreOptions::default()
    };
    let st = Store::open(store, &options)?;
    let fut = async move {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        cdc_source::capture(st, opts, rx, |_| {}).await
    };
    let summary = match rt {
        Rt::CliBlockOn => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(fut),
        Rt::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(fut),
        Rt::Spawned => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async { tokio::spawn(fut).await })?
        }
    }?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = self_cpu() - cpu0;
    let mut after = HashMap::new();
    thread_ticks(std::process::id(), &mut after);
    let (server, _) = sampler.finish();
    let threads = seconds_by_name(
        after
            .into_iter()
            .map(|(tid, (name, t))| (name, t - before.get(&tid).map_or(0, |b| b.1))),
    );
    Ok((
        Run {
            wall,
            cpu,
            server,
            threads,
            // In process: this process's own peak includes the harness.
            peak_rss: 0,
        },
        summary.records + summary.copied_rows,
    ))
}

pub fn capture_runtime(ctx: &Ctx) -> Result<()> {
    let (cl, conn, dir) = ctx.step(
        "Capture in process under different tokio runtimes (TCP)",
        "capture_runtime",
    )?;
    cl.execute(&orders_ddl("orders"))?;
    let (ins, upd, del) = ctx.backlog_size();
    let expected = (ins + upd + del) * 1000;
    let modes = [Rt::CliBlockOn, Rt::CurrentThread, Rt::Spawned];
    let mut slots = Vec::new();
    for i in 1..=ctx.reps {
        for (m, _) in modes.iter().enumerate() {
            let slot = format!("asof_{m}_{i}");
            let store = dir.join(&slot);
            timed(
                ctx.asof(&store)
                    .args(["tail", &conn, "--slot", &slot, "--no-snapshot", "--until", "caught-up"]),
                &dir.join(format!("setup_{slot}.log")),
            )?;
            slots.push((slot, store));
        }
        cl.execute(&format!(
            "SELECT pg_create_logical_replication_slot('pgrecv_{i}', 'pgoutput')"
        ))?;
    }
    let gen = backlog(&cl, ins, upd, del)?;
    let end = current_lsn(&cl)?;
    cl.execute("CHECKPOINT")?;
    println!("backlog: {expected} row changes, generated in {gen:.1} s");
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); modes.len() + 1];
    for i in 1..=ctx.reps {
        results[0].push(timed(
            &mut recvlogical(&cl, &format!("pgrecv_{i}"), &end, Path::new("/dev/null")),
            &dir.join(format!("pgrecv_{i}.log")),
        )?);
        for (m, mode) in modes.iter().enumerate() {
            let (slot, store) = &slots[(i - 1) * modes.len() + m];
            let (run, records) = capture_in_process(store, &conn, slot, *mode, false)?;
            if records != expected {
                println!("  WARNING: {mode:?} stored {records} changes, expected {expected}");
            }
            println!(
                "  rep {i} {mode:?}: {:.2} s wall, {:.2} s CPU; {}",
                run.wall,
                run.cpu,
                thread_line(&run)
            );
            results[m + 1].push(run);
        }
    }
    report_variants(
        "pg_recvlogical",
        &[
            "pg_recvlogical -f /dev/null",
            "capture, multi-thread runtime + block_on (as asof tail)",
            "capture, current-thread runtime",
            "capture, multi-thread runtime + spawn",
        ],
        &results,
    );
    for (_, store) in &slots {
        let _ = std::fs::remove_dir_all(store);
    }
    Ok(())
}

pub fn initial_runtime(ctx: &Ctx) -> Result<()> {
    let (cl, conn, dir) = ctx.step(
        "Initial snapshot in process under different tokio runtimes (TCP)",
        "initial_runtime",
    )?;
    let rows = ctx.n(1_000_000, 1000);
    snap_table(&cl, rows)?;
    count_stdout(&mut psql(&cl, SNAP_COPY))?;
    // Warm-up: publication and DDL triggers.
    let warm = dir.join("warm");
    capture_in_process(&warm, &conn, "warm", Rt::CurrentThread, true)?;
    cl.execute("SELECT pg_drop_replication_slot('warm')")?;
    std::fs::remove_dir_all(&warm)?;
    let modes = [Rt::CliBlockOn, Rt::CurrentThread, Rt::Spawned];
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); modes.len() + 1];
    for i in 1..=ctx.reps {
        results[0].push(timed(&mut psql(&cl, SNAP_COPY), &dir.join(format!("copy_{i}.log")))?);
        for (m, mode) in modes.iter().enumerate() {
            let slot = format!("snap_{m}_{i}");
            let store = dir.join(&slot);
            let (run, copied) = capture_in_process(&store, &conn, &slot, *mode, true)?;
            cl.execute(&format!("SELECT pg_drop_replication_slot('{slot}')"))?;
            std::fs::remove_dir_all(&store)?;
            if copied != rows {
                println!("  WARNING: {mode:?} copied {copied} rows, expected {rows}");
            }
            println!("  rep {i} {mode:?}: {:.2} s wall, {:.2} s CPU", run.wall, run.cpu);
            results[m + 1].push(run);
        }
    }
    report_variants(
        "COPY binary",
        &[
            "psql COPY (FORMAT binary) > /dev/null",
            "copy, multi-thread runtime + block_on (as asof tail)",
            "copy, current-thread runtime",
            "copy, multi-thread runtime + spawn",
        ],
        &results,
    );
    Ok(())
}
