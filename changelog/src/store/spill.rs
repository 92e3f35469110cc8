//! Transactions too large for memory: written in chunks, committed once.
//!
//! Chunks go into the engine at the transaction's commit LSN without a
//! watermark move, so no reader can see them (every read is bounded by the
//! watermark). The final batch adds the commit entry and the watermark and
//! is synced; only then is the transaction visible or acknowledgeable. A
//! marker in `meta` (written in the same batch as the first chunk) names the
//! in-flight LSN and the tables it touched, so opening the store after a
//! crash removes the partial transaction.

use std::collections::{BTreeMap, BTreeSet};

use rocksdb::{ReadOptions, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf};
use crate::lsn::Lsn;
use crate::record::{ChangeRecord, CommitInfo};
use crate::store::append::AppendOutcome;
use crate::store::batch::{BatchBuilder, Pending};
use crate::store::bulk::BulkLoad;
use crate::store::meta::{self, FollowPosition};
use crate::store::Store;

/// The `meta` marker of a spilled transaction in flight.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct InFlight {
    lsn: Lsn,
    pub(super) tables: BTreeSet<TableId>,
}

/// A transaction being written in chunks. Created by
/// [`Store::begin_spill`], fed by [`Store::spill`], ended by
/// [`Store::finish_spill`] or [`Store::abort_spill`].
pub struct SpillTxn {
    lsn: Lsn,
    pub(super) next_ordinal: u32,
    pub(super) pending: Pending,
    pub(super) inflight: InFlight,
    pub(super) skip: bool,
    /// Tables loaded in bulk so far, each ended by one
    /// [`meta::BulkReads`] marker.
    pub(super) bulk: BTreeMap<TableId, BulkLoad>,
}

impl SpillTxn {
    /// The commit LSN the chunks are written at.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// Records written so far.
    pub fn records(&self) -> u32 {
        self.next_ordinal
    }
}

impl Store {
    /// Starts a spilled transaction that will commit at `commit_lsn`. When
    /// that is at or below the watermark the transaction is already stored,
    /// and chunks are accepted and ignored.
    pub fn begin_spill(&mut self, commit_lsn: Lsn) -> Result<SpillTxn> {
        self.check_writable()?;
        let skip = self.watermark.is_some_and(|w| commit_lsn <= w.commit_lsn);
        Ok(SpillTxn {
            lsn: commit_lsn,
            next_ordinal: 0,
            pending: Pending::default(),
            inflight: InFlight {
                lsn: commit_lsn,
                tables: BTreeSet::new(),
            },
            skip,
            bulk: BTreeMap::new(),
        })
    }

    /// Writes one chunk of records (not synced: nothing is acknowledged
    /// before [`Store::finish_spill`]).
    pub fn spill(&mut self, sp: &mut SpillTxn, records: &[ChangeRecord]) -> Result<()> {
        self.check_writable()?;
        if sp.skip || records.is_empty() {
            return Ok(());
        }
        check_bulk_untouched(sp, records)?;
        let mut batch = self.chunk_batch(sp, records)?;
        sp.next_ordinal = sp
            .next_ordinal
            .saturating_add(u32::try_from(records.len()).unwrap_or(u32::MAX));
        let before = sp.inflight.tables.len();
        sp.inflight
            .tables
            .extend(records.iter().flat_map(|r| r.tables().iter().copied()));
        if before != sp.inflight.tables.len() || sp.next_ordinal as usize == records.len() {
            batch.put_cf(self.cf(cf::META)?, keys::meta::INFLIGHT, meta::encode(&sp.inflight));
        }
        let bytes = batch.size_in_bytes() as u64;
        if let Err(e) = self.db.write(batch) {
            self.poisoned = true;
            return Err(e.into());
        }
        self.written += bytes;
        Ok(())
    }

    /// Writes the last records and the commit, durably and atomically.
    pub fn finish_spill(
        &mut self,
        sp: SpillTxn,
        commit: &CommitInfo,
        records: &[ChangeRecord],
    ) -> Result<AppendOutcome> {
        self.finish_spill_with(sp, commit, records, None)
    }

    /// Finishes as [`Store::finish_spill`] and records, in the same batch,
    /// how far the upstream log the transaction came from was read.
    pub fn finish_spill_following(
        &mut self,
        sp: SpillTxn,
        commit: &CommitInfo,
        records: &[ChangeRecord],
        position: &FollowPosition,
    ) -> Result<AppendOutcome> {
        self.finish_spill_with(sp, commit, records, Some(position))
    }

    fn finish_spill_with(
        &mut self,
        mut sp: SpillTxn,
        commit: &CommitInfo,
        records: &[ChangeRecord],
        position: Option<&FollowPosition>,
    ) -> Result<AppendOutcome> {
        self.check_writable()?;
        if sp.skip {
            return Ok(AppendOutcome::AlreadyStored);
        }
        if commit.commit_lsn != sp.lsn {
            return Err(StoreError::OutOfOrder { lsn: commit.commit_lsn });
        }
        check_bulk_untouched(&sp, records)?;
        let open: Vec<TableId> = sp.bulk.iter().filter(|(_, l)| !l.marked).map(|(t, _)| *t).collect();
        for table in open {
            self.finish_bulk(&mut sp, table)?;
        }
        // Something at or after this LSN was appended while the spill was
        // open: committing now would move the watermark back.
        if self.watermark.is_some_and(|w| w.commit_lsn >= sp.lsn) {
            self.purge_inflight(&sp.inflight)?;
            return Err(StoreError::OutOfOrder { lsn: sp.lsn });
        }
        let mut builder = BatchBuilder::spilled(self, &mut sp.pending);
        builder.write_records(sp.lsn, records, sp.next_ordinal)?;
        let n = sp
            .next_ordinal
            .saturating_add(u32::try_from(records.len()).unwrap_or(u32::MAX));
        let mark = builder.commit(commit, n, self.watermark)?;
        let mut batch = builder.into_batch();
        batch.delete_cf(self.cf(cf::META)?, keys::meta::INFLIGHT);
        if let Some(p) = position {
            batch.put_cf(self.cf(cf::META)?, keys::meta::FOLLOW, meta::encode(p));
        }
        self.commit_batch(batch, mark, sp.pending)?;
        self.first_commit = self.first_commit.or(Some(sp.lsn));
        Ok(AppendOutcome::Appended)
    }

    /// A batch with `records` as the spilled transaction's next chunk.
    fn chunk_batch(&self, sp: &mut SpillTxn, records: &[ChangeRecord]) -> Result<WriteBatch> {
        let mut builder = BatchBuilder::spilled(self, &mut sp.pending);
        builder.write_records(sp.lsn, records, sp.next_ordinal)?;
        Ok(builder.into_batch())
    }

    /// Removes what a spilled transaction wrote (after a lost connection,
    /// the source sends it again from the start).
    pub fn abort_spill(&mut self, sp: SpillTxn) -> Result<()> {
        self.check_writable()?;
        if sp.skip {
            return Ok(());
        }
        self.purge_inflight(&sp.inflight)
    }

    /// Called at open: removes a spilled transaction a crash interrupted.
    pub(super) fn recover_inflight(&mut self) -> Result<()> {
        let Some(raw) = self.db.get_cf(self.cf(cf::META)?, keys::meta::INFLIGHT)? else {
            return Ok(());
        };
        let inflight: InFlight = meta::decode(cf::META, &raw)?;
        if self.watermark.is_some_and(|w| w.commit_lsn >= inflight.lsn) {
            // Committed; the marker delete was part of the same batch, so
            // this cannot happen, but never purge committed data.
            return Ok(());
        }
        self.purge_inflight(&inflight)
    }

    fn purge_inflight(&mut self, inflight: &InFlight) -> Result<()> {
        let mut batch = WriteBatch::default();
        for t in &inflight.tables {
            self.undo_spilled_versions(&mut batch, *t, inflight.lsn, true)?;
        }
        batch.delete_range_cf(
            self.cf(cf::LOG)?,
            keys::encode_log_key(inflight.lsn, 0),
            keys::encode_log_key(inflight.lsn.next(), 0),
        );
        batch.delete_cf(self.cf(cf::META)?, keys::meta::INFLIGHT);
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// Deletes every version of table `t` written at exactly `lsn`, and
    /// fixes the key's `latest` entry: back to its previous version when the
    /// transaction is being removed (`restore`), or "gone at `lsn`" when a
    /// reset inside the transaction undoes its own earlier writes. Returns
    /// the user keys undone.
    pub(super) fn undo_spilled_versions(
        &self,
        batch: &mut WriteBatch,
        t: TableId,
        lsn: Lsn,
        restore: bool,
    ) -> Result<Vec<Vec<u8>>> {
        let vcf = self.cf(cf::VERSIONS)?;
        let lcf = self.cf(cf::LATEST)?;
        let mut it = self.table_iter(cf::VERSIONS, t, ReadOptions::default())?;
        let mut undone: Vec<Vec<u8>> = Vec::new();
        while let Some(k) = it.key() {
            let (uk, vlsn) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
            if vlsn == lsn {
                batch.delete_cf(vcf, k);
                undone.push(uk.to_vec());
            }
            it.next();
        }
        it.status()?;
        for uk in &undone {
            if !restore {
                batch.put_cf(lcf, uk, codec::encode_latest(lsn, &codec::TOMBSTONE_VERSION));
                continue;
            }
            // Back to the newest version older than `lsn`, if any.
            let mut prev = self.db.raw_iterator_cf(vcf);
            prev.seek(keys::encode_version_key(uk, lsn.prev()).0);
            let found = match (prev.key(), prev.value()) {
                (Some(k), Some(v)) => {
                    let (puk, plsn) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
                    (puk == uk.as_slice()).then(|| codec::encode_latest(plsn, v))
                }
                _ => None,
            };
            prev.status()?;
            match found {
                Some(latest) => batch.put_cf(lcf, uk, latest),
                None => batch.delete_cf(lcf, uk),
            }
        }
        Ok(undone)
    }
}

/// A table's rows loaded in bulk are its versions at the transaction's LSN
/// (what its log marker stands for), so nothing else in the transaction may
/// write or undo versions of it.
fn check_bulk_untouched(sp: &SpillTxn, records: &[ChangeRecord]) -> Result<()> {
    match records
        .iter()
        .flat_map(|r| r.tables().iter())
        .find(|t| sp.bulk.contains_key(t))
    {
        Some(t) => Err(StoreError::BulkLoadedTableChanged { table: *t }),
        None => Ok(()),
    }
}
