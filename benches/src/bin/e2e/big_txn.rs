//! Step 8: one huge transaction, while `asof tail` keeps up: how long after
//! its COMMIT returns the store holds it (the slot's confirmed position
//! passes it only once it is durable), and the peak memory of `tail`.

use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use changelog::Store;
use pg_fixture::PgCluster;

use crate::ctx::Ctx;
use crate::measure::wait_with_peak;
use crate::pg::{insert_sql, one, orders_ddl};
use crate::report::mib;

/// The slot `tail` creates for this step.
const SLOT: &str = "asof_big";

pub fn run(ctx: &Ctx) -> Result<()> {
    let rows = ctx.n(2_000_000, 10_000);
    let (cl, conn, dir) = ctx.step(&format!("8. One transaction of {rows} rows, captured live"), "big_txn")?;
    cl.execute(&orders_ddl("big"))?;
    let store = dir.join("store");
    let log = dir.join("tail.log");
    let mut tail = ctx
        .asof(&store)
        .args(["tail", &conn, "--slot", SLOT, "--no-snapshot"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log)?)
        .spawn()?;
    let measured = measure(ctx, &cl, &store, rows);
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(tail.id().to_string())
        .status();
    let (status, peak) = wait_with_peak(&tail)?;
    let _ = tail.try_wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if let Some(l) = text.lines().rev().find(|l| l.contains("transactions (")) {
        println!("asof tail: {l}");
    }
    if !status.success() {
        bail!("asof tail failed ({status}); stderr:\n{text}");
    }
    measured?;
    println!("peak resident memory of asof tail: {:.0} MiB", mib(peak));
    Ok(())
}

fn measure(ctx: &Ctx, cl: &PgCluster, store: &Path, rows: u64) -> Result<()> {
    // Caught up: the table's shape is in the store.
    let mut view = wait_for(store, Duration::from_secs(60), |s| s.watermark().is_some())?;
    println!(
        "logical_decoding_work_mem = {}; pgoutput protocol 1 (the server sends a transaction after its COMMIT)",
        one(cl, "SHOW logical_decoding_work_mem")?
    );
    println!("\n| rep | INSERT + COMMIT s | COMMIT -> durable in the store s | server spilled MiB |");
    println!("| --- | ---: | ---: | ---: |");
    for rep in 0..ctx.reps.max(1) {
        let from = rep as u64 * rows + 1;
        let to = from + rows - 1;
        let spilled0 = spilled(cl)?;
        let t = Instant::now();
        let out = psql_lines(
            cl,
            &[
                "BEGIN",
                &insert_sql("big", &from.to_string(), &to.to_string()),
                "SELECT pg_current_xact_id()",
                "COMMIT",
            ],
        )?;
        let insert = t.elapsed().as_secs_f64();
        let xid: u64 = out.trim().parse()?;
        let t = Instant::now();
        view = wait_for_view(view, store, Duration::from_secs(600), |s| {
            s.watermark().is_some_and(|w| u64::from(w.xid.0) == xid % (1 << 32))
        })?;
        let delay = t.elapsed().as_secs_f64();
        let spilled = spilled(cl)? - spilled0;
        println!("| {} | {insert:.2} | {delay:.2} | {:.0} |", rep + 1, mib(spilled));
    }
    Ok(())
}

/// Runs `commands` in one psql session; its output, unaligned.
fn psql_lines(cl: &PgCluster, commands: &[&str]) -> Result<String> {
    let mut cmd = std::process::Command::new(cl.pg_bin("psql"));
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(cl.conninfo());
    for c in commands {
        cmd.arg("-c").arg(c);
    }
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Opens the store read-only once it exists and `ready` holds.
fn wait_for(store: &Path, within: Duration, ready: impl Fn(&Store) -> bool) -> Result<Store> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(s) = Store::open_read_only(store) {
            return wait_for_view(s, store, deadline.saturating_duration_since(Instant::now()), ready);
        }
        if Instant::now() > deadline {
            bail!("no store at {} within {within:?}", store.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Catches `view` up with the writer until `ready` holds.
fn wait_for_view(mut view: Store, store: &Path, within: Duration, ready: impl Fn(&Store) -> bool) -> Result<Store> {
    let deadline = Instant::now() + within;
    loop {
        view.refresh()?;
        if ready(&view) {
            return Ok(view);
        }
        if Instant::now() > deadline {
            bail!("the store at {} was not ready within {within:?}", store.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Bytes the server spilled to disk while decoding for the slot.
fn spilled(cl: &PgCluster) -> Result<u64> {
    let v = one(
        cl,
        &format!(
            "SELECT coalesce(sum(spill_bytes), 0)::text FROM pg_stat_replication_slots WHERE slot_name = '{SLOT}'"
        ),
    )?;
    Ok(v.parse()?)
}
