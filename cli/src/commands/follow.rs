//! `asof follow`: rebuild a store from the topic a publishing `asof tail`
//! writes, and keep it current.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kafka_relay::{FollowOptions, FollowProgress, FollowUntil, Target};

use crate::args::FollowArgs;
use crate::commands::open_writer;

pub fn run(store_path: &Path, a: FollowArgs) -> Result<()> {
    let mut store = open_writer(store_path)?;
    let opts = FollowOptions {
        target: Target {
            brokers: a.brokers,
            topic: a.topic,
        },
        until: a.until.unwrap_or(FollowUntil::Forever),
        give_up_after: a.timeout.kafka_timeout,
    };
    eprintln!(
        "following topic {} at {} into {}",
        opts.target.topic,
        opts.target.brokers,
        store_path.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let signals = Arc::clone(&stop);
    // SIGINT/SIGTERM: apply what is read, then stop.
    std::thread::Builder::new().name("asof-signals".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(super::tail::wait_for_signal());
        eprintln!("\nstopping after the transactions in hand...");
        signals.store(true, Ordering::Relaxed);
    })?;
    let tty = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    let progress = kafka_relay::follow(&mut store, &opts, &stop, |p| {
        let interval = if tty {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(10)
        };
        if last.elapsed() >= interval {
            last = Instant::now();
            report(p, tty);
        }
    })
    .context("follow stopped")?;
    if tty {
        eprint!("\r\x1b[K");
    }
    eprintln!(
        "applied {} transactions ({} changes); next offset {}",
        progress.txns, progress.records, progress.next_offset
    );
    Ok(())
}

fn report(p: &FollowProgress, tty: bool) {
    let mark = p.watermark.map_or("none".to_string(), |w| w.commit_time.to_string());
    let line = format!(
        "{} transactions ({} changes) applied, next offset {}, last commit {mark}",
        p.txns, p.records, p.next_offset
    );
    if tty {
        eprint!("\r\x1b[K{line}");
    } else {
        eprintln!("{line}");
    }
}
