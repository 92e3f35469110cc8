//! Tidying `latest` as a writer stops.
//!
//! A read at `now` walks `latest`, one entry per key once the engine has
//! merged its sorted runs. Right after a catch-up that changed every key
//! many times, the newest runs (level 0 and the levels above the bottom)
//! still hold several overwrites of each key: the read merges every run and
//! skips the stale entries, at up to twice the cost. A running writer's
//! background compactions merge them in time; a writer that stops leaves
//! them for every reader after it. So a stopping writer merges `latest`
//! into one run, but only when that costs little beside what it wrote:
//! rewriting `latest` must be at most a [`SETTLE_SHARE`]th of the bytes of
//! the changes it wrote. That holds when the keys were overwritten many
//! times (the case that needs it), and not after a backlog that changed
//! most keys once or twice, whose capture the rewrite would slow.

use std::time::{Duration, Instant};

use rocksdb::CompactOptions;

use crate::error::Result;
use crate::keys::cf;
use crate::store::Store;

/// `latest` is merged at stop when its bytes are at most this fraction of
/// the bytes of changes written: rewriting it then costs a few percent of
/// what writing them cost.
pub const SETTLE_SHARE: u64 = 20;

/// What a stopping writer did to `latest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settled {
    /// Sorted runs of `latest` before (level-0 files, and each deeper
    /// level that has files).
    pub runs: usize,
    /// Bytes of `latest`'s files before.
    pub bytes: u64,
    /// Bytes of change batches this handle wrote.
    pub written: u64,
    /// How long the merge took, when it ran.
    pub merged_in: Option<Duration>,
}

impl Store {
    /// Merges `latest` into one sorted run when it has several and doing so
    /// costs little beside what this handle wrote (see the module docs).
    /// Reports what it found, and whether it merged.
    pub fn settle_latest(&self) -> Result<Settled> {
        self.check_writable()?;
        let files: Vec<_> = self
            .db
            .live_files()?
            .into_iter()
            .filter(|f| f.column_family_name == cf::LATEST)
            .collect();
        let level0 = files.iter().filter(|f| f.level == 0).count();
        let mut deeper: Vec<i32> = files.iter().map(|f| f.level).filter(|&l| l > 0).collect();
        deeper.sort_unstable();
        deeper.dedup();
        let bytes = files.iter().map(|f| f.size as u64).sum::<u64>();
        let mut settled = Settled {
            runs: level0 + deeper.len(),
            bytes,
            written: self.written,
            merged_in: None,
        };
        if settled.runs <= 1 || bytes.saturating_mul(SETTLE_SHARE) > self.written {
            return Ok(settled);
        }
        let started = Instant::now();
        let mut o = CompactOptions::default();
        // Do not wait for the other families' compactions to finish first.
        o.set_exclusive_manual_compaction(false);
        self.db
            .compact_range_cf_opt(self.cf(cf::LATEST)?, None::<&[u8]>, None::<&[u8]>, &o);
        settled.merged_in = Some(started.elapsed());
        Ok(settled)
    }
}
