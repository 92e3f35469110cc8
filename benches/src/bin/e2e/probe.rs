//! Diagnostics in process: building a synthetic store, and where a read
//! of one spends its time.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use changelog::{CommitTime, HistoryWalk, Store, TableName};
use materializer::When;

use crate::report::mib;

/// Files of a RocksDB directory by kind: (count, bytes) of SSTs, WAL logs, other.
pub fn store_files(dir: &Path) -> Result<String> {
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

/// How [`probe`] has reads at a past cut walk the history.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Walk {
    /// As the store estimates is cheaper.
    Estimate,
    /// Through `latest` and the histories of keys changed after the cut.
    Latest,
    /// Through `versions` alone, where the table allows it.
    Versions,
    /// Through the newest usable base image wherever there is one, and
    /// its run of versions where one reaches the cut.
    Image,
    /// Through the newest usable base image and the log since it.
    ImageLog,
    /// Each of the three in turn.
    Each,
}

/// Times the phases of an as-of read in process, as `asof snapshot` does them.
pub fn probe(store_path: &Path, at: When, walk: Walk, compact_files: bool, tables: &[String]) -> Result<()> {
    if compact_files {
        let t = Instant::now();
        let s = Store::open(store_path, &changelog::StoreOptions::default())?;
        s.flush()?;
        s.compact_files()?;
        println!("flush + compact_files took {:.1} s", t.elapsed().as_secs_f64());
    }
    println!("\nprobe of {}: {}", store_path.display(), store_files(store_path)?);
    let t = Instant::now();
    let mut store = Store::open_read_only(store_path)?;
    let open = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = materializer::resolve(&store, at, CommitTime::now())?;
    let resolve = t.elapsed().as_secs_f64();
    println!(
        "open_read_only {open:.3} s, resolve({at}) {resolve:.4} s: cut {}",
        r.cut.lsn
    );
    let walks = match walk {
        Walk::Estimate => vec![HistoryWalk::Estimate],
        Walk::Latest => vec![HistoryWalk::Latest],
        Walk::Versions => vec![HistoryWalk::Versions],
        Walk::Image => vec![HistoryWalk::Image],
        Walk::ImageLog => vec![HistoryWalk::ImageLog],
        Walk::Each => vec![HistoryWalk::Latest, HistoryWalk::Versions, HistoryWalk::Estimate],
    };
    for walk in walks {
        store.set_history_walk(walk);
        println!("walk: {walk:?}");
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
    }
    Ok(())
}

/// Builds a synthetic store (the criterion benches' `orders`), flushed and
/// compacted, for [`probe`].
pub fn make_store(store: &Path, rows: u64, versions: u32) -> Result<()> {
    let t = Instant::now();
    let mut s = asof_benches::fresh_store(store);
    asof_benches::load_orders(&mut s, rows, versions);
    s.flush()?;
    s.compact_files()?;
    println!(
        "{rows} keys x {versions} versions loaded, flushed and compacted in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
