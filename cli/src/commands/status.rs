//! `asof status`.

use std::path::Path;

use anyhow::Result;

use crate::args::StatusArgs;
use crate::commands::open_reader;

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
    if let Some(c) = &a.source {
        crate::commands::tail::parse_source(c)?;
    }
    let store = open_reader(store_path)?;
    println!("store:        {}", store.path().display());
    match store.watermark() {
        Some(w) => {
            println!(
                "watermark:    {} (lsn {}, xid {})",
                w.commit_time, w.commit_lsn, w.xid.0
            );
            println!("complete to:  lsn {}", store.scanned_through());
        }
        None => println!("watermark:    none (empty store)"),
    }
    if let Some(first) = store.first_commit_lsn().and_then(|l| store.commit(l).ok().flatten()) {
        println!("first commit: {} (lsn {})", first.commit_time, first.commit_lsn);
    }
    match store.horizon() {
        Some(h) => println!("horizon:      lsn {h} (earlier moments are compacted away)"),
        None => println!("horizon:      none (full history kept)"),
    }
    if let Some(src) = store.source_info()? {
        println!("source:       {} (system {})", src.conninfo_redacted, src.system_id);
        println!("slot:         {} (publication {})", src.slot, src.publication);
    }
    let live = store
        .catalog()
        .tables()
        .filter(|(_, e)| e.current_schema().is_some())
        .count();
    println!("tables:       {live}");
    let sizes = store.family_sizes()?;
    let total: u64 = sizes.iter().map(|(_, s)| s).sum();
    let parts: Vec<String> = sizes
        .iter()
        .filter(|(_, s)| *s > 0)
        .map(|(n, s)| format!("{n} {}", human(*s)))
        .collect();
    println!(
        "size:         {} on disk ({} live: {})",
        human(store.disk_bytes()?),
        human(total),
        parts.join(", ")
    );
    if let Some(conninfo) = a.source {
        let lag = crate::commands::tail::source_lag(&conninfo, &store)?;
        println!("{lag}");
    }
    Ok(())
}
