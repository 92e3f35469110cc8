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
use crate::mvcc::{walk_options, ScanStats, SEEKS_BEFORE_RETRY, SEEK_AFTER_NEXTS};
use crate::store::Store;
use rocksdb::DBRawIterator;

/// How a read at a past cut reaches each key's visible version. Only
/// [`HistoryWalk::Estimate`], [`HistoryWalk::Image`] and
/// [`HistoryWalk::ImageLog`] read base images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoryWalk {
    /// Whichever the sampled keys say costs less.
    #[default]
    Estimate,
    /// Through `latest`, into a key's history when it changed after the cut.
    Latest,
    /// Through `versions` alone, wherever the table's keys allow it.
    Versions,
    /// Through the newest usable base image wherever there is one, with
    /// its run of versions where one reaches the cut, else its log window
    /// read in as many pieces as the machine has cores however short it
    /// is; as [`HistoryWalk::Estimate`] elsewhere.
    Image,
    /// As [`HistoryWalk::Image`], but always with the log window, never a
    /// run.
    ImageLog,
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

    /// Whether anything of `table` changed after `after` and at or before
    /// `upto`: its shape, a reset (truncate, re-read), or a version (a row
    /// or a deletion; a walk of its keys that stops at the first).
    pub fn changed_between(&self, table: TableId, after: Lsn, upto: Lsn) -> Result<bool> {
        let Some(entry) = self.catalog.table(table) else {
            return Ok(false);
        };
        let shape = |at: Lsn| entry.history.at(at).map(|v| v.version);
        if shape(after) != shape(upto) || entry.last_reset_at(upto).is_some_and(|r| r > after) {
            return Ok(true);
        }
        if !self.keys_never_extend_each_other(table) {
            // Interleaved versions would not be walked in order: assume so.
            return Ok(true);
        }
        let mut it = self.table_iter(cf::VERSIONS, table, walk_options())?;
        let walk = VersionWalk {
            prefix: &[],
            range: &KeyRange::ALL,
            upto,
            take: Take::After(after),
        };
        let mut changed = false;
        walk.run::<StoreError>(&mut it, cf::VERSIONS, &mut ScanStats::default(), |_, _, _| {
            changed = true;
            Ok(ControlFlow::Break(()))
        })?;
        Ok(changed)
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
        let walk = VersionWalk {
            prefix: &[],
            range,
            upto: cut,
            take: Take::First,
        };
        walk.run(&mut it, cf::VERSIONS, &mut stats, |uk, lsn, v| {
            if dead_before.is_none_or(|r| lsn >= r) {
                f(uk, lsn, v)
            } else {
                Ok(ControlFlow::Continue(()))
            }
        })?;
        Ok(stats)
    }
}

/// Which versions of each key a [`VersionWalk`] hands on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Take {
    /// The newest at or before the walk's `upto`: the key's visible one.
    First,
    /// Every one after this LSN and at or before `upto`, newest first.
    After(Lsn),
}

/// A walk in key order over version keys (`prefix`, then a user key and
/// its inverted LSN, as in `versions`), of keys that never extend each
/// other: a key's versions sit together, newest first. Versions it does
/// not hand on are stepped over, or sought past after
/// [`SEEK_AFTER_NEXTS`] steps.
pub(crate) struct VersionWalk<'a> {
    /// What every key walked starts with before its user key.
    pub prefix: &'a [u8],
    /// The user keys walked; the iterator starts at or before the first.
    pub range: &'a KeyRange,
    pub upto: Lsn,
    pub take: Take,
}

impl VersionWalk<'_> {
    /// Walks `it` from where it stands, handing `f` each version taken
    /// (its user key, LSN and value), until `f` breaks or the range ends.
    pub(crate) fn run<E: From<StoreError>>(
        &self,
        it: &mut DBRawIterator<'_>,
        family: &'static str,
        stats: &mut ScanStats,
        mut f: impl FnMut(&[u8], Lsn, &[u8]) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<(), E> {
        let mut key: Vec<u8> = Vec::new();
        let mut target: Vec<u8> = Vec::new();
        let mut started = false;
        // Whether the current key has nothing more to hand on.
        let mut done = false;
        let mut steps = 0;
        // Copying a run walks every key's whole history: after stepping
        // failed to get past one key's newer (or older) versions, the next
        // keys seek past theirs at once, as a scan does.
        let direct = matches!(self.take, Take::After(_));
        let (mut seek_newer, mut seek_older) = (0, 0);
        // Whether to seek now rather than step.
        let mut at_once = false;
        while let Some((k, v)) = it.item() {
            let version = k.get(self.prefix.len()..).unwrap_or_default();
            let (uk, lsn) = keys::split_version_key(version).map_err(StoreError::corrupt(family))?;
            if !started || uk != key.as_slice() {
                if self.range.start.as_deref().is_some_and(|s| uk < s) {
                    // A key before the range whose versions sort after its start.
                    it.next();
                    stats.nexts += 1;
                    continue;
                }
                if self.range.end.as_deref().is_some_and(|e| uk >= e) {
                    break;
                }
                key.clear();
                key.extend_from_slice(uk);
                (started, done, steps) = (true, false, 0);
                if seek_newer > 0 && lsn > self.upto {
                    seek_newer -= 1;
                    at_once = true;
                }
            }
            if !done && lsn <= self.upto {
                steps = 0;
                let taken = match self.take {
                    Take::First => {
                        done = true;
                        true
                    }
                    Take::After(after) => {
                        done = lsn <= after;
                        if done && seek_older > 0 {
                            seek_older -= 1;
                            at_once = true;
                        }
                        !done
                    }
                };
                if taken && f(uk, lsn, v)?.is_break() {
                    return Ok(());
                }
            }
            if at_once || steps == SEEK_AFTER_NEXTS {
                if direct && !at_once {
                    // Stepping failed: seek at once for the next keys.
                    if done {
                        seek_older = SEEKS_BEFORE_RETRY;
                    } else {
                        seek_newer = SEEKS_BEFORE_RETRY;
                    }
                }
                at_once = false;
                // A deep history: seek past what is left of it.
                target.clear();
                target.extend_from_slice(self.prefix);
                if done {
                    target.extend_from_slice(&keys::after_all_versions(&key));
                } else {
                    keys::extend_version_key(&mut target, &key, self.upto);
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
        Ok(())
    }
}
