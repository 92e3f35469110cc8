//! Step 7: prepared point look-ups by primary key through `asof serve`
//! (the PostgreSQL wire protocol, key pushdown into the store) against the
//! same prepared look-up on Postgres itself.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use asof_benches::median;

use crate::ctx::Ctx;
use crate::workloads::orders_with_history;

const LOOKUP: &str = "SELECT * FROM t WHERE id = $1";

pub fn run(ctx: &Ctx) -> Result<()> {
    let (cl, conn, dir) = ctx.step("7. Point look-ups through asof serve", "serve_lookup")?;
    let rows = ctx.n(800_000, 10_000);
    let lookups = ctx.n(5_000, 500) as usize;
    let store = dir.join("store");
    orders_with_history(ctx, &cl, &conn, &store, &dir, rows)?;

    let mut server = Server::start(ctx, &store)?;
    let serve_conninfo = format!("host=127.0.0.1 port={} user=bench dbname=asof", server.port);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = rt.block_on(async {
        let ids = ids(rows, lookups);
        let mut table = Vec::new();
        for (name, conninfo, setting) in [
            ("Postgres", conn.as_str(), None),
            ("asof serve, session at now", serve_conninfo.as_str(), None),
            (
                "asof serve, SET asof.at to a fixed moment",
                serve_conninfo.as_str(),
                Some("SET asof.at = '-1s'"),
            ),
        ] {
            let latencies = lookups_on(conninfo, setting, &ids)
                .await
                .with_context(|| format!("look-ups on {name}"))?;
            table.push((name, latencies));
        }
        Ok::<_, anyhow::Error>(table)
    });
    server.stop();
    let table = result?;
    println!("\n### {lookups} prepared look-ups `{LOOKUP}` over {rows} rows, one client\n");
    println!("| server | median µs | p99 µs | mean µs |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, mut l) in table {
        l.sort_by(f64::total_cmp);
        let p99 = l[((l.len() as f64 * 0.99) as usize).min(l.len() - 1)];
        let mean = l.iter().sum::<f64>() / l.len() as f64;
        println!("| {name} | {:.0} | {:.0} | {:.0} |", median(&l), p99, mean);
    }
    Ok(())
}

/// Random existing ids.
fn ids(rows: u64, n: usize) -> Vec<i64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (1 + x % rows) as i64
        })
        .collect()
}

/// Microseconds of each look-up of `ids` on one connection, after a warm-up.
async fn lookups_on(conninfo: &str, setting: Option<&str>, ids: &[i64]) -> Result<Vec<f64>> {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    if let Some(s) = setting {
        client.batch_execute(s).await?;
    }
    let stmt = client.prepare(LOOKUP).await?;
    for id in ids.iter().take(200) {
        client.query_one(&stmt, &[id]).await?;
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let t = Instant::now();
        let row = client.query_one(&stmt, &[id]).await?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
        let got: i64 = row.try_get(0)?;
        if got != *id {
            bail!("looked up {id}, got {got}");
        }
    }
    Ok(out)
}

/// `asof serve` on a free port, stopped at the end.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(ctx: &Ctx, store: &std::path::Path) -> Result<Server> {
        let mut child = ctx
            .asof(store)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting asof serve")?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = lines.next().ok_or_else(|| anyhow!("asof serve exited"))??;
            if let Some(addr) = line.strip_prefix("listening on ") {
                let port = addr.rsplit(':').next().unwrap_or_default().parse()?;
                // Keep draining stderr so the server never blocks on it.
                std::thread::spawn(move || lines.for_each(drop));
                return Ok(Server { child, port });
            }
            if Instant::now() > deadline {
                bail!("asof serve did not start");
            }
        }
    }

    fn stop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
