//! Appending transactions: one atomic, durable write batch per call.
//!
//! Invariants kept here (see `docs/design.md` at the repository root):
//! - a call writes all of its transactions or none (one `WriteBatch`);
//! - the watermark in the same batch names the last transaction written, so
//!   after a crash the watermark and the data agree;
//! - a transaction at or below the watermark is skipped, which makes
//!   re-delivery after a restart harmless;
//! - every stored version is a full row: unchanged-TOAST markers are
//!   replaced by the value from the key's previous version (in
//!   `batch.rs`, which builds the batch).

use rocksdb::{WriteBatch, WriteOptions};

use crate::error::{Result, StoreError};
use crate::keys::{self, cf};
use crate::lsn::Lsn;
use crate::record::Transaction;
use crate::schema::{SchemaChange, SchemaHistory};
use crate::store::batch::{BatchBuilder, Pending};
use crate::store::meta::{self, FollowPosition, Watermark};
use crate::store::{Durability, Store};

/// What happened to one transaction passed to [`Store::append`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AppendOutcome {
    /// Written.
    Appended,
    /// Its commit LSN was at or below the watermark: already stored, skipped.
    AlreadyStored,
}

impl Store {
    /// Appends transactions atomically and durably (per the store's
    /// [`Durability`]). Transactions must be in commit-LSN order; those at or
    /// below the watermark are skipped and reported as
    /// [`AppendOutcome::AlreadyStored`].
    ///
    /// Several transactions in one call share one write and one fsync (group
    /// commit); each is still all-or-nothing.
    pub fn append(&mut self, txns: &[Transaction]) -> Result<Vec<AppendOutcome>> {
        self.append_with(txns, None)
    }

    /// Appends as [`Store::append`] and records, in the same atomic batch,
    /// how far the upstream log these transactions came from was read.
    pub fn append_following(&mut self, txns: &[Transaction], position: &FollowPosition) -> Result<Vec<AppendOutcome>> {
        self.append_with(txns, Some(position))
    }

    fn append_with(&mut self, txns: &[Transaction], position: Option<&FollowPosition>) -> Result<Vec<AppendOutcome>> {
        self.check_writable()?;
        let mut pending = Pending::default();
        let mut builder = BatchBuilder::new(self, &mut pending);
        let mut outcomes = Vec::with_capacity(txns.len());
        let mut last: Option<Watermark> = self.watermark;
        let mut first_new: Option<Lsn> = None;
        for txn in txns {
            let lsn = txn.commit.commit_lsn;
            if last.is_some_and(|w| lsn <= w.commit_lsn) {
                if self.watermark.is_some_and(|w| lsn <= w.commit_lsn) {
                    outcomes.push(AppendOutcome::AlreadyStored);
                    continue;
                }
                return Err(StoreError::OutOfOrder { lsn });
            }
            builder.write_records(lsn, &txn.records, 0)?;
            let n = u32::try_from(txn.records.len()).unwrap_or(u32::MAX);
            last = Some(builder.commit(&txn.commit, n, last)?);
            first_new.get_or_insert(lsn);
            outcomes.push(AppendOutcome::Appended);
        }
        let mut batch = builder.into_batch();
        if let Some(p) = position {
            batch.put_cf(self.cf(cf::META)?, keys::meta::FOLLOW, meta::encode(p));
        }
        let Some(new_mark) = last.filter(|_| first_new.is_some()) else {
            if position.is_some() {
                self.write_synced(batch)?;
            }
            return Ok(outcomes);
        };
        self.commit_batch(batch, new_mark, pending)?;
        self.first_commit = self.first_commit.or(first_new);
        Ok(outcomes)
    }

    /// Writes the final batch of one or more transactions durably, then
    /// publishes the new watermark and catalog changes in memory.
    pub(super) fn commit_batch(&mut self, mut batch: WriteBatch, mark: Watermark, pending: Pending) -> Result<()> {
        // Catalog changes go into the same batch as the commit entry and
        // watermark: they exist on disk exactly when the transaction does.
        for versions in pending.schemas.values() {
            for sv in versions {
                batch.put_cf(
                    self.cf(cf::SCHEMAS)?,
                    keys::encode_schema_key(sv.table, sv.version.0),
                    meta::encode(sv),
                );
                if let SchemaChange::Define { schema, .. } | SchemaChange::Uncaptured { schema, .. } = &sv.change {
                    batch.put_cf(
                        self.cf(cf::TABLES)?,
                        keys::encode_table_key(sv.table),
                        meta::encode(&schema.name),
                    );
                }
            }
        }
        for (t, lsn, kind) in &pending.resets {
            batch.put_cf(
                self.cf(cf::RESETS)?,
                keys::encode_reset_key(*t, *lsn),
                meta::encode(kind),
            );
        }
        batch.put_cf(self.cf(cf::META)?, keys::meta::WATERMARK, meta::encode(&mark));
        if let Some(max) = pending.max_table {
            let next = max.saturating_add(1).max(self.catalog.next_table);
            batch.put_cf(self.cf(cf::META)?, keys::meta::NEXT_TABLE, next.to_be_bytes());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.durability == Durability::Sync);
        let bytes = batch.size_in_bytes() as u64;
        if let Err(e) = self.db.write_opt(batch, &wo) {
            // What reached disk is unknown; refuse to guess (fsyncgate).
            self.poisoned = true;
            return Err(e.into());
        }
        self.written += bytes;
        // Durable from here: the watermark may now be acknowledged.
        debug_assert!(self.watermark.is_none_or(|w| w.commit_lsn < mark.commit_lsn));
        self.watermark = Some(mark);
        self.apply_pending(pending);
        Ok(())
    }

    pub(super) fn apply_pending(&mut self, pending: Pending) {
        for (t, versions) in pending.schemas {
            let entry = self.catalog.tables.entry(t).or_default();
            let mut all = entry.history.versions().to_vec();
            all.extend(versions);
            entry.history = SchemaHistory::new(all);
        }
        for (t, lsn, kind) in pending.resets {
            self.catalog.tables.entry(t).or_default().resets.push((lsn, kind));
        }
        if let Some(max) = pending.max_table {
            self.catalog.next_table = self.catalog.next_table.max(max.saturating_add(1));
        }
        self.catalog.rebuild_names();
    }
}
