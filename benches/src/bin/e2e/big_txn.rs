//! Step 8: one huge transaction, while `asof tail` keeps up: how long after
//! its COMMIT returns the store holds it (the slot's confirmed position
//! passes it only once it is durable), and the peak memory of `tail`;
//! first with the transaction streamed while it runs (protocol 2, the
//! default), then with `--no-streaming` (protocol 1: the server spills it
//! and decodes it after the COMMIT).

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

/// The two ways of receiving the transaction: label, slot, `tail` flags.
const VARIANTS: [(&str, &str, &[&str]); 2] = [
    ("streamed while it runs (protocol 2, the default)", "asof_big", &[]),
    (
        "sent after its COMMIT (`--no-streaming`, protocol 1)",
        "asof_big_p1",
        &["--no-streaming"],
    ),
];

pub fn run(ctx: &Ctx) -> Result<()> {
    let rows = ctx.n(2_000_000, 10_000);
    let (cl, conn, dir) = ctx.step(&format!("8. One transaction of {rows} rows, captured live"), "big_txn")?;
    cl.execute(&orders_ddl("big"))?;
    println!(
        "logical_decoding_work_mem = {}",
        one(&cl, "SHOW logical_decoding_work_mem")?
    );
    let mut first_row = 1;
    for (i, (label, slot, flags)) in VARIANTS.into_iter().enumerate() {
        println!("\n#### {label}");
        variant(
            ctx,
            &cl,
            &conn,
            &dir.join(format!("v{i}")),
            slot,
            flags,
            rows,
            &mut first_row,
        )?;
        // Each slot holds WAL back; the next variant's must not decode this one's.
        cl.execute(&format!("SELECT pg_drop_replication_slot('{slot}')"))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn variant(
    ctx: &Ctx,
    cl: &PgCluster,
    conn: &str,
    dir: &Path,
    slot: &str,
    flags: &[&str],
    rows: u64,
    first_row: &mut u64,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let store = dir.join("store");
    let log = dir.join("tail.log");
    let mut tail = ctx
        .asof(&store)
        .args(["tail", conn, "--slot", slot, "--no-snapshot"])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log)?)
        .spawn()?;
    let measured = measure(ctx, cl, &store, slot, rows, first_row);
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

fn measure(ctx: &Ctx, cl: &PgCluster, store: &Path, slot: &str, rows: u64, first_row: &mut u64) -> Result<()> {
    // Caught up: the table's shape is in the store.
    let mut view = wait_for(store, Duration::from_secs(60), |s| s.watermark().is_some())?;
    println!("\n| rep | INSERT + COMMIT s | COMMIT -> durable in the store s | server spilled MiB | streamed MiB |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for rep in 0..ctx.reps.max(1) {
        let from = *first_row;
        let to = from + rows - 1;
        *first_row = to + 1;
        let (spilled0, streamed0) = decoding_stats(cl, slot)?;
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
        let (spilled, streamed) = decoding_stats(cl, slot)?;
        println!(
            "| {} | {insert:.2} | {delay:.2} | {:.0} | {:.0} |",
            rep + 1,
            mib(spilled - spilled0),
            mib(streamed - streamed0)
        );
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

/// Bytes the server spilled to disk, and streamed, while decoding for the
/// slot.
fn decoding_stats(cl: &PgCluster, slot: &str) -> Result<(u64, u64)> {
    let v = one(
        cl,
        &format!(
            "SELECT coalesce(sum(spill_bytes), 0) || ' ' || coalesce(sum(stream_bytes), 0) \
             FROM pg_stat_replication_slots WHERE slot_name = '{slot}'"
        ),
    )?;
    let (spilled, streamed) = v.split_once(' ').unwrap_or((&v, "0"));
    Ok((spilled.parse()?, streamed.parse()?))
}
