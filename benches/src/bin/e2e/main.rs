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
//! cargo run --release -p asof-benches --bin e2e -- all              # steps 1-6
//! cargo run --release -p asof-benches --bin e2e -- capture --reps 5
//! cargo run --release -p asof-benches --bin e2e -- asof-snapshot --scale 0.1
//! cargo run --release -p asof-benches --bin e2e -- kafka --reps 3    # step 5
//! cargo run --release -p asof-benches --bin e2e -- sql-export       # step 6
//! cargo run --release -p asof-benches --bin e2e -- capture-runtime  # diagnostic
//! ```
//!
//! `asof` is run as a process (the binary next to this one, or `--asof`),
//! so every figure includes start-up, opening the store and closing it, as
//! a user would see it. The diagnostics (`capture-runtime`,
//! `initial-runtime`, `make-store`, `probe`) call the libraries in process
//! to show where the time goes. See BENCHMARKS.md for results.
//!
//! One module per step; `measure` times processes, `report` prints the
//! tables, `pg` starts the cluster and generates the workloads.

mod asof_snapshot;
mod big_txn;
mod build_info;
mod capture;
mod ctx;
mod debezium;
mod freshness;
mod initial_snapshot;
mod kafka;
mod measure;
mod pg;
mod pgoutput_file;
mod probe;
mod report;
mod runtimes;
mod serve_lookup;
mod sql_export;
mod versioned;
mod workloads;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use clap::{Parser, Subcommand};

use crate::ctx::Ctx;

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
        /// Changes between two base images (`asof image --every`); the
        /// default is half the table's rows, two images per round of
        /// updates, which bounds a read anywhere to one and a half
        /// tables' worth of rows and versions.
        #[arg(long)]
        image_every: Option<u64>,
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
    /// 5. The backlog of step 1 published to one local Kafka node, and a follower rebuilding it.
    Kafka,
    /// 6. A GROUP BY at a past cut vs the live table; Parquet export vs COPY (FORMAT binary).
    SqlExport,
    /// 7. Prepared point look-ups by primary key through `asof serve` vs Postgres.
    ServeLookup,
    /// 8. One transaction of 2M rows captured live: COMMIT to durable, and the peak memory of `tail`.
    BigTxn,
    /// All six steps, one after the other.
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
        /// The moment to read at (as `asof snapshot --at` takes it).
        #[arg(long, default_value = "now")]
        at: materializer::When,
        /// How reads at a past cut walk the history; `each` reads every
        /// table each way in turn.
        #[arg(long, value_enum, default_value = "estimate")]
        walk: probe::Walk,
        /// Flush and compact the engine's files first (opens the store for
        /// writing).
        #[arg(long)]
        compact_files: bool,
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
    build_info::describe_build(&ctx.asof);
    match cli.step {
        Step::Capture => capture::run(&ctx),
        Step::InitialSnapshot => initial_snapshot::run(&ctx),
        Step::AsofSnapshot { versions, image_every } => asof_snapshot::run(&ctx, versions, image_every),
        Step::Freshness { rate, seconds } => freshness::run(&ctx, rate, seconds),
        Step::Kafka => kafka::run(&ctx),
        Step::SqlExport => sql_export::run(&ctx),
        Step::ServeLookup => serve_lookup::run(&ctx),
        Step::BigTxn => big_txn::run(&ctx),
        Step::Probe {
            store,
            at,
            walk,
            compact_files,
            tables,
        } => probe::probe(&store, at, walk, compact_files, &tables),
        Step::MakeStore { store, rows, versions } => probe::make_store(&store, rows, versions),
        Step::CaptureRuntime => runtimes::capture_runtime(&ctx),
        Step::InitialRuntime => runtimes::initial_runtime(&ctx),
        Step::All => {
            capture::run(&ctx)?;
            initial_snapshot::run(&ctx)?;
            asof_snapshot::run(&ctx, 20, None)?;
            freshness::run(&ctx, 500, 20)?;
            kafka::run(&ctx)
        }
    }
}
