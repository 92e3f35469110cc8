//! Retention: folding history older than a horizon into base versions.

use std::ops::ControlFlow;

use rocksdb::{ReadOptions, WriteBatch, WriteOptions};

use crate::codec;
use crate::error::{Result, StoreError};
use crate::keys::{self, cf};
use crate::lsn::Lsn;
use crate::store::{meta, Store};
use crate::time::CommitTime;

/// What a compaction removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Version entries deleted.
    pub versions_removed: u64,
    /// Version entries kept as the base at the horizon.
    pub base_versions: u64,
    /// Log records deleted.
    pub log_records_removed: u64,
    /// Commits deleted.
    pub commits_removed: u64,
}

/// Deletes are flushed in batches of this many, so compaction of a large
/// table needs bounded memory.
const BATCH_LIMIT: usize = 100_000;

impl Store {
    /// Makes `horizon` (the commit LSN of a stored transaction) the earliest
    /// answerable cut: for every key, versions older than the one visible at
    /// the horizon are deleted, as are dead keys, resets, log records and
    /// commits before it. Every answer at a cut `>= horizon` is unchanged;
    /// cuts before it are refused from then on.
    ///
    /// The horizon is recorded (durably) before anything is deleted, so a
    /// crash midway leaves a store that answers exactly as a finished
    /// compaction would.
    pub fn compact(&mut self, horizon: Lsn) -> Result<CompactStats> {
        self.check_writable()?;
        let commit = self.commit(horizon)?.ok_or_else(|| StoreError::CorruptMeta {
            cf: cf::COMMITS,
            message: format!("compaction horizon {horizon} is not a stored commit"),
        })?;
        // A finished compaction at this horizon (or a later one) has
        // nothing left to do; an interrupted one is simply run again.
        if self.horizon.is_some_and(|h| horizon < h) || self.compacted.is_some_and(|c| horizon <= c) {
            return Ok(CompactStats::default());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .put_cf_opt(self.cf(cf::META)?, keys::meta::HORIZON, keys::encode_lsn(horizon), &wo)?;
        self.horizon = Some(horizon);
        // Images before the horizon would be read with log it deletes.
        self.drop_images_before(horizon)?;

        let mut stats = CompactStats::default();
        let tables: Vec<_> = self
            .catalog
            .tables()
            .map(|(t, e)| (t, e.last_reset_at(horizon)))
            .collect();
        for (table, dead_before) in tables {
            self.compact_table(table, horizon, dead_before, &mut stats)?;
        }
        self.compact_meta(horizon, commit.commit_time, &mut stats)?;
        self.first_commit = Some(horizon);
        Ok(stats)
    }

    fn compact_table(
        &self,
        table: crate::ids::TableId,
        horizon: Lsn,
        dead_before: Option<Lsn>,
        stats: &mut CompactStats,
    ) -> Result<()> {
        let vcf = self.cf(cf::VERSIONS)?;
        let lcf = self.cf(cf::LATEST)?;
        let mut it = self.table_iter(cf::VERSIONS, table, ReadOptions::default())?;
        let mut batch = WriteBatch::default();
        let mut cur: Vec<u8> = Vec::new();
        // Whether the current key's base (newest version <= horizon) was seen,
        // and whether the key has versions above the horizon.
        let mut base_seen = false;
        let mut has_newer = false;
        while let Some((k, v)) = it.item() {
            let (uk, lsn) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
            if uk != cur.as_slice() {
                // Flush only between keys: each key's versions are compacted
                // atomically, so a crash midway never leaves a key with its
                // tombstone gone but an older row still there.
                if batch.len() >= BATCH_LIMIT {
                    self.db.write(std::mem::take(&mut batch))?;
                }
                cur.clear();
                cur.extend_from_slice(uk);
                base_seen = false;
                has_newer = false;
            }
            if lsn <= horizon {
                let live = codec::is_row_version(v) && dead_before.is_none_or(|r| lsn >= r);
                if !base_seen && live {
                    stats.base_versions += 1;
                } else {
                    batch.delete_cf(vcf, k);
                    stats.versions_removed += 1;
                    // Nothing of the key is left: its latest entry goes too.
                    if !base_seen && !has_newer {
                        batch.delete_cf(lcf, uk);
                    }
                }
                base_seen = true;
            } else {
                has_newer = true;
            }
            it.next();
        }
        it.status()?;
        self.db.write(batch)?;
        Ok(())
    }

    fn compact_meta(&mut self, horizon: Lsn, horizon_time: CommitTime, stats: &mut CompactStats) -> Result<()> {
        let mut batch = WriteBatch::default();
        // Resets at or before the horizon hid only versions that are gone now.
        let tables: Vec<_> = self.catalog.tables().map(|(t, _)| t).collect();
        for t in &tables {
            batch.delete_range_cf(
                self.cf(cf::RESETS)?,
                keys::encode_reset_key(*t, Lsn::ZERO),
                keys::encode_reset_key(*t, horizon.next()),
            );
        }
        stats.commits_removed = self.commits(Lsn::ZERO, horizon.prev())?.len() as u64;
        let mut log_count = 0u64;
        // Counted as stored: a bulk load's marker stands for its rows,
        // whose versions may already be gone.
        self.for_each_raw_log_value::<StoreError>(Lsn::ZERO, horizon.prev(), |_, v| {
            log_count += match meta::BulkReads::decode(v).map_err(StoreError::corrupt(cf::LOG))? {
                Some(bulk) => u64::from(bulk.rows),
                None => 1,
            };
            Ok(ControlFlow::Continue(()))
        })?;
        stats.log_records_removed = log_count;
        batch.delete_range_cf(
            self.cf(cf::LOG)?,
            keys::encode_log_key(Lsn::ZERO, 0),
            keys::encode_log_key(horizon, 0),
        );
        batch.delete_range_cf(
            self.cf(cf::COMMITS)?,
            keys::encode_commit_key(Lsn::ZERO),
            keys::encode_commit_key(horizon),
        );
        batch.delete_range_cf(
            self.cf(cf::TIMES)?,
            keys::encode_time_key(CommitTime::MIN, Lsn::ZERO),
            keys::encode_time_key(horizon_time, horizon),
        );
        batch.put_cf(self.cf(cf::META)?, keys::meta::COMPACTED, keys::encode_lsn(horizon));
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        self.compacted = Some(horizon);
        for t in tables {
            if let Some(e) = self.catalog.tables.get_mut(&t) {
                e.resets.retain(|(l, _)| *l > horizon);
            }
        }
        Ok(())
    }
}
