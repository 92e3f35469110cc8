//! End-to-end comparisons of `asof` with PostgreSQL's own tools, each on a
//! private cluster started by `pg-fixture` (TCP on 127.0.0.1).
//!
//! Every step runs the reference and `asof` interleaved (reference, ours,
//! reference, ours, ...) on the same data in the same run, and prints the
//! raw seconds of every repetition, the medians and their ratio, plus the
//! CPU seconds of the client process (getrusage) and of the server
//! processes serving it (sampled from /proc). The machine is small and
//! shared, so only ratios are meaningful.
//!
//! ```text
//! export CARGO_TARGET_DIR=/root/.cache/asof-target
//! cargo build --release -p asof-cli --bin asof
//! cargo run --release -p asof-benches --bin e2e -- all              # steps 1-4, ~12 min
//! cargo run --release -p asof-benches --bin e2e -- capture --reps 5
//! cargo run --release -p asof-benches --bin e2e -- asof-snapshot --scale 0.1
//! cargo run --release -p asof-benches --bin e2e -- capture-runtime  # diagnostic
//! ```
//!
//! `asof` is run as a process (the binary next to this one, or `--asof`),
//! so every figure includes start-up, opening the store and closing it, as
//! a user would see it. The diagnostics (`capture-runtime`,
//! `initial-runtime`, `make-store`, `probe`) call the libraries in process
//! to show where the time goes. See BENCHMARKS.md for results.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use asof_benches::{dir_size, median, percentile};
use changelog::{CommitTime, Store, StoreOptions, TableName};
use clap::{Parser, Subcommand};
use materializer::When;
use pg_fixture::PgCluster;

#[derive(Parser)]
#[command(name = "e2e", about = "End-to-end comparisons of asof with PostgreSQL's own tools")]
struct Cli {
    #[command(subcommand)]
    step: Step,
    /// Timed repetitions of each command (interleaved with the reference).
    #[arg(long, global = true, default_value_t = 3)]
    reps: usize,
    /// Scales every row count (e.g. 0.05 for a quick smoke run).
    #[arg(long, global = true, default_value_t = 1.0)]
    scale: f64,
    /// The asof binary (default: `asof` next to this binary).
    #[arg(long, global = true)]
    asof: Option<PathBuf>,
    /// Keep stores and logs here instead of in a temporary directory.
    #[arg(long, global = true)]
    work_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Step {
    /// 1. Catch up a backlog of ~1.7M row changes vs pg_recvlogical -f /dev/null; storage per change.
    Capture,
    /// 2. Initial snapshot of a 1M-row table vs COPY (FORMAT binary) to /dev/null.
    InitialSnapshot,
    /// 3. As-of snapshot of an 800k-row table (1 and 20 versions per key) vs COPY (FORMAT csv).
    AsofSnapshot {
        /// Versions per key of the deep table.
        #[arg(long, default_value_t = 20)]
        versions: u32,
    },
    /// 4. Commit-to-queryable latency under steady load.
    Freshness {
        /// Single-row transactions per second.
        #[arg(long, default_value_t = 500)]
        rate: u32,
        /// Seconds of load.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// All four steps, one after the other.
    All,
    /// Diagnostic: the capture of step 1 in process, under different tokio
    /// runtimes (as `asof tail` runs it, on a current-thread runtime, and
    /// spawned onto the multi-thread runtime), interleaved with pg_recvlogical.
    CaptureRuntime,
    /// Diagnostic: the initial snapshot of step 2 in process, under the same
    /// tokio runtimes, interleaved with COPY (FORMAT binary).
    InitialRuntime,
    /// Builds a synthetic store (the criterion benches' `orders`), flushed and compacted, for `probe`.
    MakeStore {
        /// The store directory (created).
        store: PathBuf,
        /// Keys.
        rows: u64,
        /// Versions per key.
        versions: u32,
    },
    /// Where a read spends its time: open, resolve, scan, per table (in process).
    Probe {
        /// The store directory.
        store: PathBuf,
        /// Tables to scan.
        #[arg(required = true)]
        tables: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let asof = match cli.asof {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("no parent dir"))?
            .join("asof"),
    };
    if !asof.is_file() {
        bail!(
            "{} not found: build it first (cargo build --release -p asof-cli --bin asof) or pass --asof",
            asof.display()
        );
    }
    let tmp;
    let work = match cli.work_dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            d
        }
        None => {
            tmp = tempfile::Builder::new().prefix("asof-e2e").tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let ctx = Ctx {
        asof,
        work,
        reps: cli.reps.max(1),
        scale: cli.scale,
    };
    println!(
        "# asof e2e benchmarks: {} repetitions, scale {}, asof = {}, {} cores",
        ctx.reps,
        ctx.scale,
        ctx.asof.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    describe_build(&ctx.asof);
    match cli.step {
        Step::Capture => capture(&ctx),
        Step::InitialSnapshot => initial_snapshot(&ctx),
        Step::AsofSnapshot { versions } => asof_snapshot(&ctx, versions),
        Step::Freshness { rate, seconds } => freshness(&ctx, rate, seconds),
        Step::Probe { store, tables } => probe(&store, &tables),
        Step::MakeStore { store, rows, versions } => {
            let t = Instant::now();
            let mut s = asof_benches::fresh_store(&store);
            asof_benches::load_orders(&mut s, rows, versions);
            s.flush()?;
            s.compact_files()?;
            println!(
                "{rows} keys x {versions} versions loaded, flushed and compacted in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Step::CaptureRuntime => capture_runtime(&ctx),
        Step::InitialRuntime => initial_runtime(&ctx),
        Step::All => {
            capture(&ctx)?;
            initial_snapshot(&ctx)?;
            asof_snapshot(&ctx, 20)?;
            freshness(&ctx, 500, 20)
        }
    }
}

struct Ctx {
    asof: PathBuf,
    work: PathBuf,
    reps: usize,
    scale: f64,
}

impl Ctx {
    /// `base` scaled, at least `min`.
    fn n(&self, base: u64, min: u64) -> u64 {
        ((base as f64 * self.scale).round() as u64).max(min)
    }

    /// A fresh sub-directory of the work directory.
    fn dir(&self, name: &str) -> Result<PathBuf> {
        let d = self.work.join(name);
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
        std::fs::create_dir_all(&d)?;
        Ok(d)
    }

    fn asof(&self, store: &Path) -> Command {
        let mut c = Command::new(&self.asof);
        c.arg("--store").arg(store);
        c
    }
}

// ---------------------------------------------------------------- helpers

/// A cluster configured so a large backlog causes no checkpoint.
fn cluster() -> Result<PgCluster> {
    let c = PgCluster::builder()
        .setting("max_wal_size", "4GB")
        .setting("checkpoint_timeout", "1h")
        .start()
        .context("starting a private PostgreSQL cluster")?;
    let v = c.query_one_value("SHOW server_version")?.unwrap_or_default();
    println!("PostgreSQL {v} at {}", c.conninfo());
    Ok(c)
}

fn one(c: &PgCluster, sql: &str) -> Result<String> {
    c.query_one_value(sql)?.ok_or_else(|| anyhow!("NULL from {sql}"))
}

fn current_lsn(c: &PgCluster) -> Result<String> {
    one(c, "SELECT pg_current_wal_lsn()::text")
}

/// One timed process: wall seconds, its own CPU seconds (user + sys), and
/// the CPU seconds of the server processes serving TCP clients meanwhile
/// (backends and walsenders; sampled from /proc every 50 ms).
#[derive(Clone, Debug, Default)]
struct Run {
    wall: f64,
    cpu: f64,
    server: f64,
    /// CPU seconds per thread name of the client process (sampled).
    threads: Vec<(String, f64)>,
}

fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU ticks (user + sys) of every PostgreSQL process serving a TCP client.
fn server_ticks() -> std::collections::HashMap<u32, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !cmd.starts_with(b"postgres: ") || !cmd.windows(10).any(|w| w == b"127.0.0.1(") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state is field 3; utime and stime are 14 and 15.
        if let (Some(u), Some(s)) = (
            f.get(11).and_then(|v| v.parse::<u64>().ok()),
            f.get(12).and_then(|v| v.parse::<u64>().ok()),
        ) {
            out.insert(pid, u + s);
        }
    }
    out
}

/// CPU ticks per thread (tid -> (name, ticks)) of process `pid`.
fn thread_ticks(pid: u32, out: &mut std::collections::HashMap<u32, (String, u64)>) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for e in dir.flatten() {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat.get(open + 1..close).unwrap_or("?").to_string();
        let f: Vec<&str> = stat.get(close + 1..).unwrap_or("").split_whitespace().collect();
        if let (Some(u), Some(s)) = (
            f.get(11).and_then(|v| v.parse::<u64>().ok()),
            f.get(12).and_then(|v| v.parse::<u64>().ok()),
        ) {
            out.insert(tid, (name, u + s));
        }
    }
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// Samples, every 50 ms until stopped, the CPU of the server processes
/// serving TCP clients and of each thread of the client process.
struct Sampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    client: Arc<std::sync::atomic::AtomicU32>,
    handle: std::thread::JoinHandle<(f64, Vec<(String, f64)>)>,
}

impl Sampler {
    fn start() -> Sampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let before = server_ticks();
        let (flag, pid) = (Arc::clone(&stop), Arc::clone(&client));
        let handle = std::thread::spawn(move || {
            let mut last = before.clone();
            let mut threads = std::collections::HashMap::new();
            loop {
                let done = flag.load(std::sync::atomic::Ordering::Relaxed);
                for (pid, t) in server_ticks() {
                    last.insert(pid, t);
                }
                let p = pid.load(std::sync::atomic::Ordering::Relaxed);
                if p != 0 {
                    thread_ticks(p, &mut threads);
                }
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let hz = clk_tck();
            let server = last
                .iter()
                .map(|(pid, t)| t - before.get(pid).copied().unwrap_or(0))
                .sum::<u64>() as f64
                / hz;
            let mut by_name: Vec<(String, f64)> = Vec::new();
            for (name, t) in threads.into_values() {
                match by_name.iter_mut().find(|(n, _)| *n == name) {
                    Some(e) => e.1 += t as f64 / hz,
                    None => by_name.push((name, t as f64 / hz)),
                }
            }
            by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
            (server, by_name)
        });
        Sampler { stop, client, handle }
    }

    fn finish(self) -> (f64, Vec<(String, f64)>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap_or((f64::NAN, Vec::new()))
    }
}

/// Runs `cmd` with stdout discarded and stderr into `log`.
fn timed(cmd: &mut Command, log: &Path) -> Result<Run> {
    let err = File::create(log)?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
    let sampler = Sampler::start();
    let cpu0 = children_cpu();
    let t = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("running {cmd:?}"))?;
    sampler.client.store(child.id(), std::sync::atomic::Ordering::Relaxed);
    let status = child.wait()?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = children_cpu() - cpu0;
    let (server, threads) = sampler.finish();
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        bail!("{cmd:?} failed ({status}); stderr:\n{text}");
    }
    Ok(Run {
        wall,
        cpu,
        server,
        threads,
    })
}

/// "name 1.2 s, other 0.3 s" for the threads that used at least 0.05 s.
fn thread_line(r: &Run) -> String {
    r.threads
        .iter()
        .filter(|(_, s)| *s >= 0.05)
        .map(|(n, s)| format!("{n} {s:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `cmd` and returns (bytes on stdout, lines on stdout).
fn count_stdout(cmd: &mut Command) -> Result<(u64, u64)> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn()?;
    let mut out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = out.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok((bytes, lines))
}

fn psql(c: &PgCluster, sql: &str) -> Command {
    let mut cmd = Command::new(c.pg_bin("psql"));
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(c.conninfo())
        .arg("-c")
        .arg(sql);
    cmd
}

/// Prints interleaved pairs as a markdown table (wall seconds, and the CPU
/// seconds of the client process and of the server processes serving it);
/// returns the ratio of the median wall times.
fn report_pairs(title: &str, ref_name: &str, ours_name: &str, refs: &[Run], ours: &[Run]) -> f64 {
    println!("\n### {title}\n");
    println!("reference = `{ref_name}`, ours = `{ours_name}`\n");
    println!("| rep | reference wall s | ours wall s | ratio | ref client CPU s | ours client CPU s | ref server CPU s | ours server CPU s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, (r, o)) in refs.iter().zip(ours).enumerate() {
        println!(
            "| {} | {:.3} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            i + 1,
            r.wall,
            o.wall,
            o.wall / r.wall,
            r.cpu,
            o.cpu,
            r.server,
            o.server
        );
    }
    let m = |xs: &[Run], f: fn(&Run) -> f64| median(&xs.iter().map(f).collect::<Vec<_>>());
    let (mr, mo) = (m(refs, |r| r.wall), m(ours, |r| r.wall));
    let ratio = mo / mr;
    println!(
        "| **median** | **{mr:.3}** | **{mo:.3}** | **{ratio:.2}** | {:.2} | {:.2} | {:.2} | {:.2} |",
        m(refs, |r| r.cpu),
        m(ours, |r| r.cpu),
        m(refs, |r| r.server),
        m(ours, |r| r.server)
    );
    let total = |xs: &[Run]| median(&xs.iter().map(|r| r.cpu + r.server).collect::<Vec<_>>());
    println!(
        "\ntotal CPU (client + server), medians: reference {:.2} s, ours {:.2} s, ratio {:.2}",
        total(refs),
        total(ours),
        total(ours) / total(refs)
    );
    println!("\nCPU seconds by thread of ours (sampled every 50 ms from /proc):\n");
    for (i, o) in ours.iter().enumerate() {
        println!("- rep {}: {}", i + 1, thread_line(o));
    }
    ratio
}

fn walls(runs: &[Run]) -> Vec<f64> {
    runs.iter().map(|r| r.wall).collect()
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

/// `asof tail` prints "N transactions (M changes) stored[, K rows copied]".
fn tail_summary(log: &Path) -> Result<(u64, u64, u64)> {
    let text = std::fs::read_to_string(log)?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("transactions (") && l.contains("stored"))
        .ok_or_else(|| anyhow!("no summary in {}:\n{text}", log.display()))?;
    let num = |s: &str| s.trim().parse::<u64>().unwrap_or(0);
    let txns = num(line.split(" transactions").next().unwrap_or(""));
    let changes = num(line
        .split('(')
        .nth(1)
        .and_then(|s| s.split(" changes").next())
        .unwrap_or(""));
    let copied = line
        .split(", ")
        .nth(1)
        .and_then(|s| s.split(" rows copied").next())
        .map_or(0, num);
    Ok((txns, changes, copied))
}

/// The benchmark tables' shape: 6 columns, like `orders` in the criterion benches.
fn orders_ddl(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (id bigint PRIMARY KEY, customer int NOT NULL, status text NOT NULL, \
         amount numeric(12,2) NOT NULL, note text, created timestamptz NOT NULL)"
    )
}

/// Inserts ids `from..=to` into `name`.
fn insert_sql(name: &str, from: &str, to: &str) -> String {
    format!(
        "INSERT INTO {name} SELECT g, (g % 10007)::int, (ARRAY['new','paid','shipped','delivered'])[1 + (g % 4)::int], \
         round(((g * 7) % 100000) + (g % 100) / 100.0, 2), 'order ' || g || ' revision 0', \
         timestamptz '2026-11-01 00:00:00+00' + g * interval '1 second' FROM generate_series({from}, {to}) g"
    )
}

// ---------------------------------------------------------------- 1. capture

fn capture(ctx: &Ctx) -> Result<()> {
    println!("\n## 1. Capture of a backlog (TCP)");
    let cl = cluster()?;
    let conn = cl.conninfo();
    let dir = ctx.dir("capture")?;
    cl.execute(&orders_ddl("orders"))?;
    let (ins, upd, del) = (ctx.n(1000, 1), ctx.n(500, 1), ctx.n(200, 1));
    let expected = (ins + upd + del) * 1000;

    // One store and slot per repetition, plus one slot per reference run and
    // one for the byte count, all created before the backlog.
    let stores: Vec<PathBuf> = (1..=ctx.reps).map(|i| dir.join(format!("store_{i}"))).collect();
    for (i, s) in stores.iter().enumerate() {
        let log = dir.join(format!("setup_{}.log", i + 1));
        timed(
            ctx.asof(s).args([
                "tail",
                &conn,
                "--slot",
                &format!("asof_{}", i + 1),
                "--no-snapshot",
                "--until",
                "caught-up",
            ]),
            &log,
        )?;
    }
    for i in 1..=ctx.reps {
        cl.execute(&format!(
            "SELECT pg_create_logical_replication_slot('pgrecv_{i}', 'pgoutput')"
        ))?;
    }
    cl.execute("SELECT pg_create_logical_replication_slot('pgrecv_bytes', 'pgoutput')")?;
    let start = current_lsn(&cl)?;

    let gen = backlog(&cl, ins, upd, del)?;
    let end = current_lsn(&cl)?;
    cl.execute("CHECKPOINT")?;
    let wal = one(&cl, &format!("SELECT pg_wal_lsn_diff('{end}', '{start}')::bigint"))?;
    println!(
        "backlog: {} transactions, {expected} row changes ({} inserts, {} updates, {} deletes), \
         WAL {start} .. {end} ({:.1} MiB), generated in {gen:.1} s",
        ins + upd + del,
        ins * 1000,
        upd * 1000,
        del * 1000,
        mib(wal.parse()?)
    );

    let (mut refs, mut ours) = (Vec::new(), Vec::new());
    for i in 1..=ctx.reps {
        refs.push(timed(
            Command::new(cl.pg_bin("pg_recvlogical"))
                .args([
                    "-d",
                    &conn,
                    "--slot",
                    &format!("pgrecv_{i}"),
                    "--start",
                    "--endpos",
                    &end,
                    "-f",
                    "/dev/null",
                ])
                .args(["-o", "proto_version=1", "-o", "publication_names=asof", "--no-loop"]),
            &dir.join(format!("pgrecv_{i}.log")),
        )?);
        let log = dir.join(format!("tail_{i}.log"));
        ours.push(timed(
            ctx.asof(&stores[i - 1])
                .args(["tail", &conn, "--slot", &format!("asof_{i}"), "--until", "caught-up"]),
            &log,
        )?);
        let summary = tail_summary(&log)?;
        println!(
            "  rep {i}: pg_recvlogical {:.2} s, asof tail {:.2} s ({} txns, {} changes)",
            refs[i - 1].wall,
            ours[i - 1].wall,
            summary.0,
            summary.1
        );
        if summary.1 != expected {
            println!("  WARNING: asof stored {} changes, expected {expected}", summary.1);
        }
    }
    let ratio = report_pairs(
        &format!("capture of {expected} changes over TCP"),
        "pg_recvlogical -f /dev/null",
        "asof tail --until caught-up",
        &refs,
        &ours,
    );
    println!(
        "\nthroughput: pg_recvlogical {:.0} changes/s, asof {:.0} changes/s; ratio asof/pg_recvlogical = {ratio:.2} (bar: <= 1.00)",
        expected as f64 / median(&walls(&refs)),
        expected as f64 / median(&walls(&ours))
    );

    // Bytes: the pgoutput stream once into a file (pg_recvlogical writes each
    // message's payload followed by a newline), and the store on disk.
    let file = dir.join("pgoutput.bin");
    timed(
        Command::new(cl.pg_bin("pg_recvlogical"))
            .args(["-d", &conn, "--slot", "pgrecv_bytes", "--start", "--endpos", &end])
            .arg("-f")
            .arg(&file)
            .args(["-o", "proto_version=1", "-o", "publication_names=asof", "--no-loop"]),
        &dir.join("pgrecv_bytes.log"),
    )?;
    let file_bytes = std::fs::metadata(&file)?.len();
    let stats = pgoutput_file_stats(&std::fs::read(&file)?)?;
    println!("\npg_recvlogical file: {stats}");
    if stats.changes() != expected {
        println!(
            "WARNING: the pgoutput file holds {} row changes, expected {expected}",
            stats.changes()
        );
    }
    let messages = stats.messages;
    let payload = stats.payload;
    let as_left = dir_size(&stores[0])?;
    println!("store as left by tail: {}", store_files(&stores[0])?);
    {
        let store = Store::open(&stores[0], &StoreOptions::default())?;
        store.flush()?;
        store.compact_files()?;
    }
    let compacted = dir_size(&stores[0])?;
    println!("store after flush + compact_files: {}", store_files(&stores[0])?);
    let per = |b: u64| b as f64 / expected as f64;
    println!("\n### bytes per change ({expected} changes)\n");
    println!("| what | bytes | MiB | bytes/change |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| pg_recvlogical -f file (payloads + 1 newline per message) | {file_bytes} | {:.1} | {:.1} |",
        mib(file_bytes),
        per(file_bytes)
    );
    println!(
        "| pgoutput payload (XLogData payloads: file minus {messages} newlines) | {payload} | {:.1} | {:.1} |",
        mib(payload),
        per(payload)
    );
    println!(
        "| WAL of the backlog (pg_wal_lsn_diff) | {wal} | {:.1} | {:.1} |",
        mib(wal.parse()?),
        per(wal.parse()?)
    );
    println!(
        "| asof store as left by tail (du of dir) | {as_left} | {:.1} | {:.1} |",
        mib(as_left),
        per(as_left)
    );
    println!(
        "| asof store after flush + compact_files | {compacted} | {:.1} | {:.1} |",
        mib(compacted),
        per(compacted)
    );
    println!(
        "\nstorage ratio store/pgoutput payload: {:.2} as left, {:.2} compacted (bar: <= 1.00)",
        as_left as f64 / payload as f64,
        compacted as f64 / payload as f64
    );
    for s in &stores {
        std::fs::remove_dir_all(s)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- 2. initial snapshot

fn initial_snapshot(ctx: &Ctx) -> Result<()> {
    println!("\n## 2. Initial snapshot (TCP)");
    let cl = cluster()?;
    let conn = cl.conninfo();
    let dir = ctx.dir("initial")?;
    let rows = ctx.n(1_000_000, 1000);
    cl.execute(&orders_ddl("snap"))?;
    cl.execute(&insert_sql("snap", "1", &rows.to_string()))?;
    cl.execute("VACUUM ANALYZE snap")?;
    let size = one(&cl, "SELECT pg_total_relation_size('snap')")?;
    let copy = "COPY snap TO STDOUT (FORMAT binary)";
    let (bin_bytes, _) = count_stdout(&mut psql(&cl, copy))?; // also warms the cache
    println!(
        "table snap: {rows} rows, {:.1} MiB on disk, COPY binary {:.1} MiB",
        mib(size.parse()?),
        mib(bin_bytes)
    );

    let run_ours = |slot: &str, store: &Path, log: &Path| -> Result<Run> {
        let s = timed(
            ctx.asof(store)
                .args(["tail", &conn, "--slot", slot, "--until", "caught-up"]),
            log,
        )?;
        cl.execute(&format!("SELECT pg_drop_replication_slot('{slot}')"))?;
        Ok(s)
    };
    // Warm-up: creates the publication and the DDL triggers once.
    let warm = run_ours("snap_0", &dir.join("store_0"), &dir.join("tail_0.log"))?;
    println!("  warm-up asof tail: {:.2} s", warm.wall);
    std::fs::remove_dir_all(dir.join("store_0"))?;
    let (mut refs, mut ours) = (Vec::new(), Vec::new());
    for i in 1..=ctx.reps {
        refs.push(timed(&mut psql(&cl, copy), &dir.join(format!("copy_{i}.log")))?);
        let store = dir.join(format!("store_{i}"));
        let log = dir.join(format!("tail_{i}.log"));
        ours.push(run_ours(&format!("snap_{i}"), &store, &log)?);
        let (_, _, copied) = tail_summary(&log)?;
        if copied != rows {
            println!("  WARNING: asof copied {copied} rows, expected {rows}");
        }
        if i == 1 {
            println!("  store after the initial copy: {:.1} MiB", mib(dir_size(&store)?));
        }
        std::fs::remove_dir_all(&store)?;
    }
    let ratio = report_pairs(
        &format!("initial snapshot of {rows} rows"),
        "psql COPY (FORMAT binary) > /dev/null",
        "asof tail --until caught-up (fresh store + slot)",
        &refs,
        &ours,
    );
    println!("\nratio asof/COPY binary = {ratio:.2} (bar: <= 1.50)");

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

// ---------------------------------------------------------------- 3. as-of snapshot

fn asof_snapshot(ctx: &Ctx, versions: u32) -> Result<()> {
    println!("\n## 3. As-of snapshot, 1 and {versions} versions per key");
    let cl = cluster()?;
    let conn = cl.conninfo();
    let dir = ctx.dir("asof_snapshot")?;
    let rows = ctx.n(800_000, 10_000);
    let deep = format!("t{versions}");
    for t in ["t1", deep.as_str()] {
        cl.execute(&orders_ddl(t))?;
        cl.execute(&insert_sql(t, "1", &rows.to_string()))?;
    }
    let store = dir.join("store");
    let s = timed(
        ctx.asof(&store).args(["tail", &conn, "--until", "caught-up"]),
        &dir.join("tail_copy.log"),
    )?;
    println!(
        "initial copy of 2 x {rows} rows: {:.1} s (asof CPU {:.1} s, server CPU {:.1} s)",
        s.wall, s.cpu, s.server
    );

    // Updates in transactions of 10,000 rows, every row once per round; the
    // WAL position halfway is a cut where every key of the deep table has
    // changed since (the worst case for a walk of the newest versions).
    let t = Instant::now();
    let chunks = rows.div_ceil(10_000);
    let half = (versions - 1) / 2;
    let mut mid = String::new();
    for (from, to) in [(1, half), (half + 1, versions - 1)] {
        if from <= to {
            cl.execute(&format!(
                "DO $$ BEGIN FOR r IN {from}..{to} LOOP FOR i IN 0..{} LOOP \
                 UPDATE {deep} SET status = (ARRAY['new','paid','shipped','delivered'])[1 + ((id + r) % 4)::int], \
                 amount = amount + 1, note = 'order ' || id || ' revision ' || r \
                 WHERE id BETWEEN i::bigint * 10000 + 1 AND (i + 1)::bigint * 10000; COMMIT; END LOOP; END LOOP; END $$",
                chunks - 1
            ))?;
        }
        if mid.is_empty() {
            mid = current_lsn(&cl)?;
        }
    }
    let upd = u64::from(versions - 1) * rows;
    println!("{upd} updates on {deep} in {:.1} s", t.elapsed().as_secs_f64());
    let log = dir.join("tail_updates.log");
    let s = timed(ctx.asof(&store).args(["tail", &conn, "--until", "caught-up"]), &log)?;
    let (txns, changes, _) = tail_summary(&log)?;
    println!(
        "asof tail captured {changes} changes in {txns} transactions in {:.1} s ({:.0} changes/s; asof CPU {:.1} s, server CPU {:.1} s)",
        s.wall,
        changes as f64 / s.wall,
        s.cpu,
        s.server
    );
    println!("store: {:.1} MiB as left by tail", mib(dir_size(&store)?));
    for sql in [
        "VACUUM FULL t1".to_string(),
        format!("VACUUM FULL {deep}"),
        "ANALYZE".to_string(),
    ] {
        cl.execute(&sql)?;
    }

    // Sanity: row counts, and warm every cache once.
    for t in ["t1", deep.as_str()] {
        let (bytes, lines) = count_stdout(
            ctx.asof(&store)
                .args(["snapshot", t, "--at", "now", "--format", "csv"])
                .stderr(Stdio::null()),
        )?;
        let (pbytes, plines) = count_stdout(&mut psql(&cl, &format!("COPY {t} TO STDOUT (FORMAT csv)")))?;
        println!(
            "{t}: asof csv {lines} lines / {:.1} MiB; COPY csv {plines} lines / {:.1} MiB",
            mib(bytes),
            mib(pbytes)
        );
        if lines != rows + 1 {
            println!("  WARNING: expected {} lines (header + rows)", rows + 1);
        }
    }

    let run = |ctx: &Ctx, label: &str, at: &str| -> Result<[Vec<Run>; 4]> {
        let mut r: [Vec<Run>; 4] = Default::default();
        for i in 1..=ctx.reps {
            for (k, t) in ["t1", deep.as_str()].into_iter().enumerate() {
                r[2 * k].push(timed(
                    &mut psql(&cl, &format!("COPY {t} TO STDOUT (FORMAT csv)")),
                    &dir.join(format!("copy_{t}_{i}.log")),
                )?);
                r[2 * k + 1].push(timed(
                    ctx.asof(&store).args(["snapshot", t, "--at", at, "--format", "csv"]),
                    &dir.join(format!("snap_{label}_{t}_{i}.log")),
                )?);
            }
        }
        Ok(r)
    };
    let summarize = |r: &[Vec<Run>; 4], label: &str, at: &str| {
        let r1 = report_pairs(
            &format!("as-of snapshot at {at}, 1 version per key, {rows} rows, store {label}"),
            "psql COPY t1 (FORMAT csv) > /dev/null",
            &format!("asof snapshot t1 --at {at} --format csv > /dev/null"),
            &r[0],
            &r[1],
        );
        let r20 = report_pairs(
            &format!("as-of snapshot at {at}, {versions} versions per key, {rows} rows, store {label}"),
            &format!("psql COPY {deep} (FORMAT csv) > /dev/null"),
            &format!("asof snapshot {deep} --at {at} --format csv > /dev/null"),
            &r[2],
            &r[3],
        );
        let depth = median(&walls(&r[3])) / median(&walls(&r[1]));
        println!(
            "\nat {at}, store {label}: asof/COPY = {r1:.2} (1 version), {r20:.2} ({versions} versions) (bar: <= 1.50); \
             {versions} vs 1 versions per key = {depth:.2} (bar: <= 1.50)"
        );
    };
    probe(&store, &["t1".to_string(), deep.clone()])?;
    let r = run(ctx, "as-left", "now")?;
    summarize(&r, "as left by tail", "now");

    // The same after the engine has flushed and compacted its files.
    let t = Instant::now();
    {
        let s = Store::open(&store, &StoreOptions::default())?;
        s.flush()?;
        s.compact_files()?;
    }
    println!(
        "\nflush + compact_files took {:.1} s; store now {:.1} MiB",
        t.elapsed().as_secs_f64(),
        mib(dir_size(&store)?)
    );
    probe(&store, &["t1".to_string(), deep.clone()])?;
    let r = run(ctx, "compacted", "now")?;
    summarize(&r, "after flush + compact_files", "now");

    // A past cut: halfway through the deep table's history.
    let at = format!("lsn:{mid}");
    println!("\nthe same at {at}, halfway through the history of {deep} (every key of {deep} changed after it; {deep} has {} versions per key then)", half + 1);
    let r = run(ctx, "compacted-mid", &at)?;
    summarize(&r, "after flush + compact_files", &at);
    Ok(())
}

// ---------------------------------------------------------------- 4. freshness

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

fn freshness(ctx: &Ctx, rate: u32, seconds: u64) -> Result<()> {
    println!("\n## 4. Freshness: commit -> queryable under {rate} txn/s for {seconds} s");
    let cl = cluster()?;
    let conn = cl.conninfo();
    let dir = ctx.dir("freshness")?;
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

// ---------------------------------------------------------------- probe

/// Files of a RocksDB directory by kind: (count, bytes) of SSTs, WAL logs, other.
fn store_files(dir: &Path) -> Result<String> {
    let (mut sst, mut wal, mut other) = ((0u64, 0u64), (0u64, 0u64), (0u64, 0u64));
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let len = e.metadata()?.len();
        let name = e.file_name().to_string_lossy().to_string();
        let slot = if name.ends_with(".sst") {
            &mut sst
        } else if name.ends_with(".log") {
            &mut wal
        } else {
            &mut other
        };
        slot.0 += 1;
        slot.1 += len;
    }
    Ok(format!(
        "{} SST files {:.1} MiB, {} WAL files {:.1} MiB, {} other files {:.1} MiB",
        sst.0,
        mib(sst.1),
        wal.0,
        mib(wal.1),
        other.0,
        mib(other.1)
    ))
}

/// Times the phases of an as-of read in process, as `asof snapshot` does them.
fn probe(store_path: &Path, tables: &[String]) -> Result<()> {
    println!("\nprobe of {}: {}", store_path.display(), store_files(store_path)?);
    let t = Instant::now();
    let store = Store::open_read_only(store_path)?;
    let open = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = materializer::resolve(&store, When::Now, CommitTime::now())?;
    let resolve = t.elapsed().as_secs_f64();
    println!("open_read_only {open:.3} s, resolve(now) {resolve:.4} s");
    for name in tables {
        let t = Instant::now();
        let table = materializer::table_at(&store, &TableName::parse(name), r.cut)?;
        let (mut rows, mut bytes) = (0u64, 0usize);
        let stats = materializer::snapshot(&store, &table, r.cut, |row| {
            rows += 1;
            bytes += row
                .iter()
                .map(|d| match d {
                    changelog::DatumRef::Text(b) => b.len(),
                    _ => 0,
                })
                .sum::<usize>();
            Ok::<_, materializer::QueryError>(std::ops::ControlFlow::Continue(()))
        })?;
        let scan = t.elapsed().as_secs_f64();
        println!(
            "  {name}: scan {scan:.3} s, {rows} rows, {:.1} MiB of values, {stats:?}",
            mib(bytes as u64)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- pgoutput file

/// What a `pg_recvlogical -f FILE` run with pgoutput wrote: each message's
/// payload followed by a newline.
#[derive(Debug, Default)]
struct PgoutputStats {
    messages: u64,
    payload: u64,
    begin: u64,
    commit: u64,
    relation: u64,
    insert: u64,
    update: u64,
    delete: u64,
    other: u64,
}

impl PgoutputStats {
    fn changes(&self) -> u64 {
        self.insert + self.update + self.delete
    }
}

impl std::fmt::Display for PgoutputStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages, {} payload bytes (BEGIN {}, COMMIT {}, RELATION {}, INSERT {}, UPDATE {}, DELETE {}, other {})",
            self.messages, self.payload, self.begin, self.commit, self.relation, self.insert, self.update, self.delete, self.other
        )
    }
}

/// Walks the messages of a pgoutput (proto_version 1) file written by
/// pg_recvlogical, using each message's own structure to find its end.
fn pgoutput_file_stats(buf: &[u8]) -> Result<PgoutputStats> {
    struct Cur<'a> {
        b: &'a [u8],
        p: usize,
    }
    impl Cur<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8]> {
            let s = self
                .b
                .get(self.p..self.p + n)
                .ok_or_else(|| anyhow!("truncated pgoutput file at {}", self.p))?;
            self.p += n;
            Ok(s)
        }
        fn u8(&mut self) -> Result<u8> {
            Ok(self.take(1)?[0])
        }
        fn u16(&mut self) -> Result<u16> {
            let s = self.take(2)?;
            Ok(u16::from_be_bytes([s[0], s[1]]))
        }
        fn u32(&mut self) -> Result<u32> {
            let s = self.take(4)?;
            Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        }
        fn cstr(&mut self) -> Result<()> {
            let n = self
                .b
                .get(self.p..)
                .and_then(|r| r.iter().position(|&c| c == 0))
                .ok_or_else(|| anyhow!("unterminated string"))?;
            self.p += n + 1;
            Ok(())
        }
        fn tuple(&mut self) -> Result<()> {
            for _ in 0..self.u16()? {
                if self.u8()? == b't' {
                    let n = self.u32()? as usize;
                    self.take(n)?;
                }
            }
            Ok(())
        }
    }
    let mut c = Cur { b: buf, p: 0 };
    let mut st = PgoutputStats::default();
    while c.p < buf.len() {
        let start = c.p;
        match c.u8()? {
            b'B' => {
                c.take(20)?;
                st.begin += 1;
            }
            b'C' => {
                c.take(25)?;
                st.commit += 1;
            }
            b'R' => {
                c.take(4)?;
                c.cstr()?;
                c.cstr()?;
                c.take(1)?;
                for _ in 0..c.u16()? {
                    c.take(1)?;
                    c.cstr()?;
                    c.take(8)?;
                }
                st.relation += 1;
            }
            b'I' => {
                c.take(5)?;
                c.tuple()?;
                st.insert += 1;
            }
            b'U' => {
                c.take(4)?;
                let mut kind = c.u8()?;
                if kind == b'K' || kind == b'O' {
                    c.tuple()?;
                    kind = c.u8()?;
                }
                if kind != b'N' {
                    bail!("unexpected UPDATE tuple kind {kind} at {start}");
                }
                c.tuple()?;
                st.update += 1;
            }
            b'D' => {
                c.take(5)?;
                c.tuple()?;
                st.delete += 1;
            }
            b'Y' => {
                c.take(4)?;
                c.cstr()?;
                c.cstr()?;
                st.other += 1;
            }
            t => bail!("unknown pgoutput message {t:#04x} at {start}"),
        }
        st.payload += (c.p - start) as u64;
        st.messages += 1;
        if c.u8()? != b'\n' {
            bail!("no newline after the message at {start}");
        }
    }
    Ok(st)
}

// ---------------------------------------------------------------- backlog

/// The capture workload: `ins` transactions of 1,000 inserts, then `upd` of
/// 1,000 updates, then `del` of 1,000 deletes on `orders`. Returns seconds.
fn backlog(cl: &PgCluster, ins: u64, upd: u64, del: u64) -> Result<f64> {
    let t = Instant::now();
    for (n, body) in [
        (ins, insert_sql("orders", "i::bigint * 1000 + 1", "(i + 1)::bigint * 1000")),
        (upd, "UPDATE orders SET status = 'paid', amount = amount + 1, note = note || ' updated' \
               WHERE id BETWEEN i::bigint * 1000 + 1 AND (i + 1)::bigint * 1000"
            .to_string()),
        (del, format!("DELETE FROM orders WHERE id BETWEEN {upd}000 + i::bigint * 1000 + 1 AND {upd}000 + (i + 1)::bigint * 1000")),
    ] {
        cl.execute(&format!("DO $$ BEGIN FOR i IN 0..{} LOOP {body}; COMMIT; END LOOP; END $$", n - 1))?;
    }
    Ok(t.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------- capture runtime

fn self_cpu() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

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
    };
    let sampler = Sampler::start();
    let mut before = std::collections::HashMap::new();
    thread_ticks(std::process::id(), &mut before);
    let cpu0 = self_cpu();
    let t = Instant::now();
    let st = Store::open(
        store,
        &StoreOptions {
            create_if_missing: true,
            ..StoreOptions::default()
        },
    )?;
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
    let mut after = std::collections::HashMap::new();
    thread_ticks(std::process::id(), &mut after);
    let (server, _) = sampler.finish();
    let hz = clk_tck();
    let mut threads: Vec<(String, f64)> = Vec::new();
    for (tid, (name, t)) in after {
        let d = (t - before.get(&tid).map_or(0, |b| b.1)) as f64 / hz;
        match threads.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 += d,
            None => threads.push((name, d)),
        }
    }
    threads.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok((
        Run {
            wall,
            cpu,
            server,
            threads,
        },
        summary.records + summary.copied_rows,
    ))
}

fn capture_runtime(ctx: &Ctx) -> Result<()> {
    println!("\n## Capture in process under different tokio runtimes (TCP)");
    let cl = cluster()?;
    let conn = cl.conninfo();
    let dir = ctx.dir("capture_runtime")?;
    cl.execute(&orders_ddl("orders"))?;
    let (ins, upd, del) = (ctx.n(1000, 1), ctx.n(500, 1), ctx.n(200, 1));
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
            Command::new(cl.pg_bin("pg_recvlogical"))
                .args([
                    "-d",
                    &conn,
                    "--slot",
                    &format!("pgrecv_{i}"),
                    "--start",
                    "--endpos",
                    &end,
                    "-f",
                    "/dev/null",
                ])
                .args(["-o", "proto_version=1", "-o", "publication_names=asof", "--no-loop"]),
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
    println!("\n| variant | median wall s | ratio to pg_recvlogical | median client CPU s | median server CPU s |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let med = |xs: &[Run], f: fn(&Run) -> f64| median(&xs.iter().map(f).collect::<Vec<_>>());
    let base = med(&results[0], |r| r.wall);
    let names = [
        "pg_recvlogical -f /dev/null",
        "capture, multi-thread runtime + block_on (as asof tail)",
        "capture, current-thread runtime",
        "capture, multi-thread runtime + spawn",
    ];
    for (name, runs) in names.iter().zip(&results) {
        println!(
            "| {name} | {:.3} | {:.2} | {:.2} | {:.2} |",
            med(runs, |r| r.wall),
            med(runs, |r| r.wall) / base,
            med(runs, |r| r.cpu),
            med(runs, |r| r.server)
        );
    }
    for (_, store) in &slots {
        let _ = std::fs::remove_dir_all(store);
    }
    Ok(())
}

fn initial_runtime(ctx: &Ctx) -> Result<()> {
    println!("\n## Initial snapshot in process under different tokio runtimes (TCP)");
    let cl = cluster()?;
    let conn = cl.conninfo();
    let dir = ctx.dir("initial_runtime")?;
    let rows = ctx.n(1_000_000, 1000);
    cl.execute(&orders_ddl("snap"))?;
    cl.execute(&insert_sql("snap", "1", &rows.to_string()))?;
    cl.execute("VACUUM ANALYZE snap")?;
    let copy = "COPY snap TO STDOUT (FORMAT binary)";
    count_stdout(&mut psql(&cl, copy))?;
    // Warm-up: publication and DDL triggers.
    let warm = dir.join("warm");
    capture_in_process(&warm, &conn, "warm", Rt::CurrentThread, true)?;
    cl.execute("SELECT pg_drop_replication_slot('warm')")?;
    std::fs::remove_dir_all(&warm)?;
    let modes = [Rt::CliBlockOn, Rt::CurrentThread, Rt::Spawned];
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); modes.len() + 1];
    for i in 1..=ctx.reps {
        results[0].push(timed(&mut psql(&cl, copy), &dir.join(format!("copy_{i}.log")))?);
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
    println!("\n| variant | median wall s | ratio to COPY binary | median client CPU s | median server CPU s |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let med = |xs: &[Run], f: fn(&Run) -> f64| median(&xs.iter().map(f).collect::<Vec<_>>());
    let base = med(&results[0], |r| r.wall);
    let names = [
        "psql COPY (FORMAT binary) > /dev/null",
        "copy, multi-thread runtime + block_on (as asof tail)",
        "copy, current-thread runtime",
        "copy, multi-thread runtime + spawn",
    ];
    for (name, runs) in names.iter().zip(&results) {
        println!(
            "| {name} | {:.3} | {:.2} | {:.2} | {:.2} |",
            med(runs, |r| r.wall),
            med(runs, |r| r.wall) / base,
            med(runs, |r| r.cpu),
            med(runs, |r| r.server)
        );
    }
    Ok(())
}

/// Prints what is being measured: the repository commit and whether the
/// tree differs from it, and when the asof and e2e binaries were built
/// (both must come from the same tree: they share the store format).
fn describe_build(asof: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let head = git(&["log", "-1", "--format=%h %cI %s"]);
    let dirty = git(&["status", "--porcelain", "--", ".", ":!BENCHMARKS.md"]);
    let mtime = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or("?".to_string(), |d| {
                CommitTime::from_unix_micros(d.as_micros() as i64).to_string()
            })
    };
    println!(
        "commit {head}; tree {}",
        if dirty.is_empty() {
            "unchanged".to_string()
        } else {
            format!("modified:\n{dirty}")
        }
    );
    println!(
        "asof binary built {}, e2e binary built {}",
        mtime(asof),
        std::env::current_exe().map(|p| mtime(&p)).unwrap_or_default()
    );
}
