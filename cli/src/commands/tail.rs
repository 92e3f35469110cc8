//! `asof tail`: capture into the store.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cdc_source::{CaptureEvent, CaptureOptions, Until};

use kafka_relay::{PublishOptions, Publisher, Target};

use crate::args::{PublishArgs, TailArgs};
use crate::commands::{copy_progress, open_writer};
use crate::metrics::{self, CaptureMetrics};

pub fn run(store_path: &Path, a: TailArgs) -> Result<()> {
    // `--tables a,,b` names two tables.
    let tables = a.tables.into_iter().filter(|t| !t.name.is_empty()).collect();
    // Listen before anything is opened: a taken address stops the command
    // before it changes the store or the source.
    let listener = a.metrics.map(listen).transpose()?;
    let store = open_writer(store_path)?;
    eprintln!("capturing {} into {}", a.source.conninfo, store_path.display());
    let dbname = a.source.conninfo.dbname().to_owned();
    let opts = CaptureOptions {
        conninfo: a.source.conninfo,
        slot: a.source.slot,
        publication: a.source.publication,
        tables,
        snapshot: !a.no_snapshot,
        until: a.until.unwrap_or(Until::Forever),
        sql_catch_up_above: a.sql_catch_up_above.0,
        streaming: !a.no_streaming,
        copy_connections: a
            .copy_connections
            .map_or_else(cdc_source::default_copy_connections, usize::from),
    };
    // One thread for the stream: decoding and the network stay on one core
    // (cross-thread wake-ups cost more than they save); the store writer
    // has its own thread.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let relay = publisher(a.kafka, dbname, &store)?;
    let store_dir = store_path.to_path_buf();
    // Whether a progress line is on the terminal, unfinished.
    let line_open = Arc::new(AtomicBool::new(false));
    let reporter_line = Arc::clone(&line_open);
    let summary = rt.block_on(async move {
        let line_open = reporter_line;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            eprintln!("\nstopping after the transaction in hand...");
            let _ = tx.send(true);
        });
        let metrics = match listener {
            Some(l) => Some(serve_metrics(l, store_dir)?),
            None => None,
        };
        let mut reporter = Reporter::new(Arc::clone(&line_open));
        cdc_source::capture_relayed(store, relay, opts, rx, move |ev| {
            if let Some(m) = &metrics {
                m.observe(&ev);
            }
            reporter.report(ev)
        })
        .await
        .context("capture stopped")
    });
    if line_open.load(Ordering::Relaxed) {
        eprintln!();
    }
    let summary = summary?;
    eprintln!("stored {summary}; acknowledged up to {}", summary.confirmed);
    Ok(())
}

/// With `--kafka`: the topic, created when missing, and a publisher that
/// continues what it holds.
fn publisher(a: PublishArgs, database: String, store: &changelog::Store) -> Result<Option<Box<dyn cdc_source::Relay>>> {
    let (Some(brokers), Some(topic)) = (a.kafka, a.topic) else {
        return Ok(None);
    };
    let target = Target { brokers, topic };
    let timeout = a.timeout.kafka_timeout;
    target.ensure(timeout)?;
    let publisher = Publisher::new(
        PublishOptions {
            server: target.topic.clone(),
            target,
            database,
            give_up_after: timeout,
            fan_out: a.fan_out,
        },
        store,
    )?;
    match publisher.published() {
        Some(lsn) => eprintln!(
            "publishing to topic {} after its last transaction, {lsn}",
            publisher.topic()
        ),
        None => eprintln!(
            "publishing to topic {} from the store's first transaction",
            publisher.topic()
        ),
    }
    Ok(Some(Box::new(publisher)))
}

fn listen(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen for metrics on {addr}"))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Starts answering scrapes on `listener` and watching the store's size.
fn serve_metrics(listener: std::net::TcpListener, store_dir: std::path::PathBuf) -> Result<Arc<CaptureMetrics>> {
    let addr = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let m = Arc::new(CaptureMetrics::new());
    tokio::spawn(metrics::http::serve(listener, Arc::clone(&m)));
    tokio::spawn(metrics::disk::watch_size(store_dir, Arc::clone(&m)));
    eprintln!("metrics at http://{addr}/metrics");
    Ok(m)
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Shows progress: a live status line on a terminal, a log line every ten
/// seconds otherwise.
struct Reporter {
    tty: bool,
    last_line: Instant,
    last_records: u64,
    last_at: Instant,
    /// The table being copied and when its copy began.
    copying: Option<(String, Instant)>,
    line_open: Arc<AtomicBool>,
}

impl Reporter {
    fn new(line_open: Arc<AtomicBool>) -> Self {
        Reporter {
            line_open,
            tty: std::io::stderr().is_terminal(),
            last_line: Instant::now(),
            last_records: 0,
            last_at: Instant::now(),
            copying: None,
        }
    }

    fn report(&mut self, ev: CaptureEvent) {
        match ev {
            CaptureEvent::Notice(n) => {
                if self.tty {
                    eprint!("\r\x1b[K");
                    self.line_open.store(false, Ordering::Relaxed);
                }
                eprintln!("{n}");
            }
            CaptureEvent::Copy(p) => {
                if self.copying.as_ref().is_none_or(|(t, _)| *t != p.table) {
                    self.copying = Some((p.table.clone(), Instant::now()));
                }
                if self.tty || self.last_line.elapsed() >= Duration::from_secs(10) {
                    self.last_line = Instant::now();
                    let started = self.copying.as_ref().map_or_else(Instant::now, |(_, at)| *at);
                    self.emit(&copy_progress::copy_line(&p, started.elapsed(), self.tty));
                }
            }
            CaptureEvent::Stream(p) => {
                let interval = if self.tty {
                    Duration::from_millis(500)
                } else {
                    Duration::from_secs(10)
                };
                if self.last_line.elapsed() < interval {
                    return;
                }
                let dt = self.last_at.elapsed().as_secs_f64().max(0.001);
                let rate = (p.records.saturating_sub(self.last_records)) as f64 / dt;
                self.last_records = p.records;
                self.last_at = Instant::now();
                self.last_line = Instant::now();
                let mark = p.watermark.map_or("none".to_string(), |w| w.commit_time.to_string());
                let lag_s = metrics::lag_seconds(&p);
                let line = format!(
                    "{:.0} changes/s, {} stored, acknowledged {}, last commit {mark}, lag {} bytes / {lag_s:.1}s",
                    rate,
                    p.records,
                    p.confirmed,
                    p.lag_bytes()
                );
                self.emit(&line);
            }
            // A notice tells the cause and the delay.
            CaptureEvent::Reconnecting { .. } => {}
        }
    }

    fn emit(&self, line: &str) {
        if self.tty {
            eprint!("\r\x1b[K{line}");
            let _ = std::io::stderr().flush();
            self.line_open.store(true, Ordering::Relaxed);
        } else {
            eprintln!("{line}");
        }
    }
}
