//! `asof status`: what the store holds and, with `--source`, how far the
//! source database has moved on since.

use std::path::Path;

use anyhow::{Context, Result};
use cdc_source::conninfo::ConnInfo;
use changelog::Store;

use crate::args::StatusArgs;
use crate::commands::{open_reader, outln, seconds_since};

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn run(store_path: &Path, a: StatusArgs) -> Result<()> {
    let store = open_reader(store_path)?;
    outln!("store:        {}", store.path().display())?;
    match store.watermark() {
        Some(w) => {
            outln!(
                "watermark:    {} (lsn {}, xid {})",
                w.commit_time,
                w.commit_lsn,
                w.xid.0
            )?;
            outln!("complete to:  lsn {}", store.scanned_through())?;
        }
        None => outln!("watermark:    none (empty store)")?,
    }
    if let Some(first) = store.first_commit_lsn().and_then(|l| store.commit(l).ok().flatten()) {
        outln!("first commit: {} (lsn {})", first.commit_time, first.commit_lsn)?;
    }
    match store.horizon() {
        Some(h) => outln!("horizon:      lsn {h} (earlier moments are compacted away)")?,
        None => outln!("horizon:      none (full history kept)")?,
    }
    if let Some(p) = store.follow_position()? {
        outln!("follows:      topic {} at {}", p.topic, p.brokers)?;
        let target = kafka_relay::Target {
            brokers: p.brokers.clone(),
            topic: p.topic.clone(),
        };
        let timeout = std::time::Duration::from_secs(10);
        let lag = match target.last_transaction(timeout) {
            Ok(last) if last == store.watermark().map(|w| w.commit_lsn) => "caught up with the topic".to_string(),
            Ok(Some(last)) => format!("behind: the topic's last transaction is at lsn {last}"),
            Ok(None) => "the topic holds no complete transaction".to_string(),
            Err(e) => format!("the topic's end is unknown ({e})"),
        };
        outln!("offset:       {} next; {lag}", p.next_offset)?;
    }
    if let Some(src) = store.source_info()? {
        outln!("source:       {} (system {})", src.conninfo_redacted, src.system_id)?;
        outln!("slot:         {} (publication {})", src.slot, src.publication)?;
    }
    let live = store
        .catalog()
        .tables()
        .filter(|(_, e)| e.current_schema().is_some())
        .count();
    outln!("tables:       {live}")?;
    let sizes = store.family_sizes()?;
    let total: u64 = sizes.iter().map(|(_, s)| s).sum();
    let parts: Vec<String> = sizes
        .iter()
        .filter(|(_, s)| *s > 0)
        .map(|(n, s)| format!("{n} {}", human(*s)))
        .collect();
    outln!(
        "size:         {} on disk ({} live: {})",
        human(store.disk_bytes()?),
        human(total),
        parts.join(", ")
    )?;
    if let Some(conninfo) = a.source {
        outln!("{}", source_lag(&conninfo, &store)?)?;
    }
    Ok(())
}

/// `--source`: lag and slot health as the server sees them.
fn source_lag(info: &ConnInfo, store: &Store) -> Result<String> {
    let slot_name = store.source_info()?.map(|s| s.slot).unwrap_or_else(|| "asof".into());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let client = cdc_source::sql::connect(info)
            .await
            .context("cannot connect to the source")?;
        let current = cdc_source::catalog::current_wal_lsn(&client).await?;
        let slot = cdc_source::catalog::slot(&client, &slot_name).await?;
        let reach = store.scanned_through();
        let lag = current.0.saturating_sub(reach.0);
        let secs = match store.watermark() {
            Some(w) if lag > 0 => seconds_since(w.commit_time),
            _ => 0.0,
        };
        let slot_line = match slot {
            Some(s) => format!(
                "slot {slot_name}: confirmed {}, wal {}, {}",
                s.confirmed_flush.map_or("-".into(), |l| l.to_string()),
                s.wal_status.unwrap_or_default(),
                if s.active { "active" } else { "inactive" }
            ),
            None => format!("slot {slot_name}: MISSING"),
        };
        Ok(format!(
            "server wal:   {current}\nlag:          {lag} bytes, {secs:.1} s\n{slot_line}"
        ))
    })
}
