//! Step 4: how soon a committed row can be read from the store, under a
//! steady load of single-row transactions.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use asof_benches::percentile;
use changelog::{CommitTime, Store, TableName};
use materializer::When;
use pg_fixture::PgCluster;

use crate::ctx::Ctx;

/// Stops a child we started (SIGTERM, then wait).
fn terminate(child: &mut Child) -> Result<()> {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}

pub fn run(ctx: &Ctx, rate: u32, seconds: u64) -> Result<()> {
    let (cl, conn, dir) = ctx.step(
        &format!("4. Freshness: commit -> queryable under {rate} txn/s for {seconds} s"),
        "freshness",
    )?;
    cl.execute(
        "CREATE TABLE fresh (id bigint PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL DEFAULT now())",
    )?;
    let store_path = dir.join("store");
    let log = dir.join("tail.log");
    let mut tail = ctx
        .asof(&store_path)
        .args(["tail", &conn])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log)?)
        .spawn()?;
    let result = freshness_inner(ctx, &cl, &store_path, rate, seconds);
    terminate(&mut tail)?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if let Some(l) = text.lines().rev().find(|l| l.contains("transactions (")) {
        println!("asof tail: {l}");
    }
    result
}

fn freshness_inner(_ctx: &Ctx, cl: &PgCluster, store_path: &Path, rate: u32, seconds: u64) -> Result<()> {
    let name = TableName::new("public", "fresh");
    // Wait until the capture has defined the table.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut store = loop {
        if let Ok(s) = Store::open_read_only(store_path) {
            let ok = materializer::resolve(&s, When::Now, CommitTime::now())
                .map(|r| materializer::table_at(&s, &name, r.cut).is_ok())
                .unwrap_or(false);
            if ok {
                break s;
            }
        }
        if Instant::now() > deadline {
            bail!("the capture did not start within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    let total = (u64::from(rate) * seconds) as usize;
    let acked: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; total]));
    let config = cl.config();
    let acked_w = Arc::clone(&acked);
    let load = std::thread::spawn(move || -> Result<f64> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            let stmt = client
                .prepare("INSERT INTO fresh (id, payload) VALUES ($1, $2)")
                .await?;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let t = Instant::now();
            for id in 0..total {
                tick.tick().await;
                client
                    .execute(&stmt, &[&(id as i64), &format!("payload of row {id}")])
                    .await?;
                let now = Instant::now();
                acked_w.lock().map_err(|_| anyhow!("poisoned"))?[id] = Some(now);
            }
            Ok(t.elapsed().as_secs_f64())
        })
    });

    let mut visible: Vec<Option<Instant>> = vec![None; total];
    let mut refresh_ms = Vec::new();
    let mut next = 0usize;
    let deadline = Instant::now() + Duration::from_secs(seconds + 60);
    while next < total && Instant::now() < deadline {
        let t = Instant::now();
        store.refresh()?;
        refresh_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if let Ok(r) = materializer::resolve(&store, When::Now, CommitTime::now()) {
            let table = materializer::table_at(&store, &name, r.cut)?;
            while next < total {
                let id = next.to_string();
                let key = materializer::user_key(&table, &[id.as_str()])?;
                if materializer::get(&store, &table, &key, r.cut)?.is_none() {
                    break;
                }
                visible[next] = Some(Instant::now());
                next += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let load_s = load.join().map_err(|_| anyhow!("load thread panicked"))??;
    if next < total {
        println!(
            "WARNING: only {next} of {total} rows became visible within {} s after the load",
            60
        );
    }
    let acked = acked.lock().map_err(|_| anyhow!("poisoned"))?;
    let mut lat = Vec::new();
    let mut before_ack = 0;
    for (a, v) in acked.iter().zip(&visible) {
        if let (Some(a), Some(v)) = (a, v) {
            if v < a {
                before_ack += 1;
            }
            lat.push(v.saturating_duration_since(*a).as_secs_f64() * 1e3);
        }
    }
    println!(
        "load: {total} single-row transactions in {load_s:.1} s ({:.0} txn/s achieved)",
        total as f64 / load_s
    );
    println!("\n### commit acknowledged -> visible to a read-only store (refresh + get), ms\n");
    println!("| samples | p50 | p90 | p99 | max | mean |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        lat.len(),
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        percentile(&lat, 100.0),
        lat.iter().sum::<f64>() / lat.len().max(1) as f64
    );
    println!(
        "\nrefresh(): {} calls, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {before_ack} rows were visible before the client saw the ack",
        refresh_ms.len(),
        percentile(&refresh_ms, 50.0),
        percentile(&refresh_ms, 99.0),
        percentile(&refresh_ms, 100.0)
    );
    println!(
        "p99 commit->visible = {:.1} ms (bar: <= 100 ms)",
        percentile(&lat, 99.0)
    );
    Ok(())
}
