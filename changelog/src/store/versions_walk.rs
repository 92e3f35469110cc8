//! A read at a past cut through `versions` alone.
//!
//! The usual walk ([`crate::mvcc`]) goes through `latest`, one entry per
//! key, and into a key's history only when the key changed after the cut
//! (or its `latest` entry refers to its version, as a copied row's does).
//! When many keys changed and histories are shallow, the history iterator
//! steps through nearly all of `versions` as well, so both families are
//! read whole. `versions` alone holds every key's versions together, newest
//! first: taking each key's first version at or before the cut and
//! stepping over the rest reads one family instead of two.
//!
//! It is taken when sampled keys say it costs less (see
//! [`crate::store::sample`] for both costs).
//!
//! This needs a key's versions to sit together and in key order. Keys of
//! one shape never extend each other, but a key written before key columns
//! were added can be a prefix of one written after, and then their
//! versions interleave: such a table is always read through `latest`.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf, KeyRange};
use crate::lsn::Lsn;
use crate::mvcc::{walk_options, ScanStats, SEEK_AFTER_NEXTS};
use crate::store::Store;

/// How a read at a past cut reaches each key's visible version. Only
/// [`HistoryWalk::Estimate`] and [`HistoryWalk::Image`] read base images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoryWalk {
    /// Whichever the sampled keys say costs less.
    #[default]
    Estimate,
    /// Through `latest`, into a key's history when it changed after the cut.
    Latest,
    /// Through `versions` alone, wherever the table's keys allow it.
    Versions,
    /// Through the newest usable base image wherever there is one, its log
    /// window read in as many pieces as the machine has cores however
    /// short it is; as [`HistoryWalk::Estimate`] elsewhere.
    Image,
}

impl Store {
    /// Sets how reads at past cuts walk (for measuring each way).
    pub fn set_history_walk(&mut self, walk: HistoryWalk) {
        self.history_walk = walk;
    }

    /// Whether a read of `table` at `cut` goes through `versions` alone.
    pub(crate) fn walks_versions(&self, table: TableId, cut: Lsn) -> Result<bool> {
        // Sampled even at the newest commit: there a copied table's keys
        // still need their histories, as `latest` refers to their rows.
        if self.history_walk == HistoryWalk::Latest
            || self.watermark.is_none()
            || !self.keys_never_extend_each_other(table)
        {
            return Ok(false);
        }
        if self.history_walk == HistoryWalk::Versions {
            return Ok(true);
        }
        let s = self.sample_keys(table, cut)?;
        Ok(s.seen > 0 && s.through_versions() < s.through_latest())
    }

    /// True when every shape of `table` has the same number of key columns,
    /// so no stored key is a prefix of another.
    pub(crate) fn keys_never_extend_each_other(&self, table: TableId) -> bool {
        let Some(entry) = self.catalog.table(table) else {
            return false;
        };
        let widths: BTreeSet<usize> = entry
            .history
            .versions()
            .iter()
            .filter_map(|v| v.schema())
            .map(|s| s.columns.iter().filter(|c| c.is_key).count())
            .collect();
        widths.len() <= 1
    }

    /// [`Store::visit_visible`] through `versions` alone.
    pub(crate) fn visit_through_versions<E: From<StoreError>>(
        &self,
        table: TableId,
        range: &KeyRange,
        cut: Lsn,
        dead_before: Option<Lsn>,
        mut f: impl FnMut(&[u8], Lsn, &[u8]) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<ScanStats, E> {
        let mut stats = ScanStats {
            seeks: 1,
            through_versions: true,
            ..ScanStats::default()
        };
        // Not bounded by the range in the engine: a version key extends its
        // user key, so bounds on version keys would not be bounds on keys.
        let mut it = self.table_iter(cf::VERSIONS, table, walk_options())?;
        if let Some(start) = &range.start {
            it.seek(start);
            stats.seeks += 1;
        }
        let mut key: Vec<u8> = Vec::new();
        let mut target: Vec<u8> = Vec::new();
        let mut started = false;
        // Whether the current key's visible version is behind us.
        let mut done = false;
        let mut steps = 0;
        while let Some((k, v)) = it.item() {
            let (uk, lsn) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
            if !started || uk != key.as_slice() {
                if range.start.as_deref().is_some_and(|s| uk < s) {
                    // A key before the range whose versions sort after its start.
                    it.next();
                    stats.nexts += 1;
                    continue;
                }
                if range.end.as_deref().is_some_and(|e| uk >= e) {
                    break;
                }
                key.clear();
                key.extend_from_slice(uk);
                (started, done, steps) = (true, false, 0);
            }
            if !done && lsn <= cut {
                done = true;
                steps = 0;
                if dead_before.is_none_or(|r| lsn >= r) && f(uk, lsn, v)?.is_break() {
                    return Ok(stats);
                }
            }
            if steps == SEEK_AFTER_NEXTS {
                // A deep history: seek past what is left of it.
                if done {
                    target.clear();
                    target.extend_from_slice(&keys::after_all_versions(&key));
                } else {
                    keys::encode_version_key_into(&mut target, &key, cut);
                }
                it.seek(&target);
                stats.seeks += 1;
                steps = 0;
                continue;
            }
            it.next();
            stats.nexts += 1;
            steps += 1;
        }
        it.status().map_err(StoreError::from)?;
        Ok(stats)
    }
}
