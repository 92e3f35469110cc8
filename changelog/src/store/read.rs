//! Reading the store: commits, the log, and single-key version look-ups.
//! Whole-table scans live in [`crate::mvcc`].

use std::ops::ControlFlow;

use rocksdb::{DBRawIterator, ReadOptions};

use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf, KeyRange, UserKey};
use crate::lsn::Lsn;
use crate::record::ChangeRecord;
use crate::schema::SchemaVersionNo;
use crate::store::meta::{self, CommitEntry};
use crate::store::Store;
use crate::time::CommitTime;
use crate::value::{Datum, RowImage};

/// Whether a stored version holds a row.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum VersionState {
    /// The row, in the column order of `schema`.
    Row {
        /// Schema version the values are aligned to.
        schema: SchemaVersionNo,
        /// How many identical copies of the row exist (1 unless the table
        /// counts copies, see [`crate::TableSchema::counts_copies`]).
        copies: u64,
        /// The values.
        values: Vec<Datum>,
    },
    /// Deleted at this version.
    Deleted,
}

/// One version of one key, owned.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoredVersion {
    /// Commit LSN of the transaction that wrote it.
    pub lsn: Lsn,
    /// The row or a deletion.
    pub state: VersionState,
}

/// One record of the log with its position.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LogEntry {
    /// Commit LSN of its transaction.
    pub commit_lsn: Lsn,
    /// Position within the transaction.
    pub ordinal: u32,
    /// The record (unchanged TOAST already resolved).
    pub record: ChangeRecord,
}

fn to_stored(lsn: Lsn, v: &[u8]) -> Result<StoredVersion> {
    let state = match codec::decode_version_owned(v).map_err(StoreError::corrupt(cf::VERSIONS))? {
        Some(row) => VersionState::Row {
            schema: row.schema,
            copies: row.copies,
            values: row.values,
        },
        None => VersionState::Deleted,
    };
    Ok(StoredVersion { lsn, state })
}

impl Store {
    /// An iterator over `family` with `ro`, on a thread that does not count
    /// its steps. The engine's default per-thread counters (perf level
    /// `EnableCount`) add a thread-local update to every step of every
    /// iterator, and nothing reads them: 1.3% of the instructions and 2 to
    /// 4% of the time of a GROUP BY over a whole table.
    pub(crate) fn iter_opt(&self, family: &rocksdb::ColumnFamily, ro: ReadOptions) -> DBRawIterator<'_> {
        rocksdb::perf::set_perf_stats(rocksdb::perf::PerfStatsLevel::Disable);
        self.db.raw_iterator_cf_opt(family, ro)
    }

    /// An iterator over `table`'s range of a table-prefixed family,
    /// positioned at its first key and bounded above by the table's end.
    pub(crate) fn table_iter(
        &self,
        family: &'static str,
        table: TableId,
        mut ro: ReadOptions,
    ) -> Result<DBRawIterator<'_>> {
        let (lo, hi) = keys::table_range(table);
        ro.set_iterate_upper_bound(hi);
        let mut it = self.iter_opt(self.cf(family)?, ro);
        it.seek(lo);
        Ok(it)
    }

    /// An iterator over the keys of `table` in `range` of a table-prefixed
    /// family, bounded on both sides, positioned at the range's first key.
    pub(crate) fn range_iter(
        &self,
        family: &'static str,
        table: TableId,
        range: &KeyRange,
        mut ro: ReadOptions,
    ) -> Result<DBRawIterator<'_>> {
        let (lo, hi) = keys::table_range(table);
        let lo = range
            .start
            .clone()
            .filter(|s| s.as_slice() > lo.as_slice())
            .unwrap_or(lo.to_vec());
        let hi = range.end.clone().filter(|e| *e < hi).unwrap_or(hi);
        ro.set_iterate_lower_bound(lo.clone());
        ro.set_iterate_upper_bound(hi);
        let mut it = self.iter_opt(self.cf(family)?, ro);
        it.seek(lo);
        Ok(it)
    }

    /// RocksDB's estimate of the keys in a family, memtables included.
    pub(crate) fn estimated_keys(&self, family: &'static str) -> Result<u64> {
        Ok(self
            .db
            .property_int_value_cf(self.cf(family)?, "rocksdb.estimate-num-keys")?
            .unwrap_or(0))
    }

    /// The commit at exactly `lsn`.
    pub fn commit(&self, lsn: Lsn) -> Result<Option<CommitEntry>> {
        match self.db.get_cf(self.cf(cf::COMMITS)?, keys::encode_commit_key(lsn))? {
            Some(v) => Ok(Some(meta::decode(cf::COMMITS, &v)?)),
            None => Ok(None),
        }
    }

    /// The last commit with commit LSN `<= lsn` (and at or below the
    /// watermark).
    pub fn commit_at_or_before(&self, lsn: Lsn) -> Result<Option<CommitEntry>> {
        let bound = self.watermark.map_or(Lsn::ZERO, |w| w.commit_lsn).min(lsn);
        let mut it = self.db.raw_iterator_cf(self.cf(cf::COMMITS)?);
        it.seek_for_prev(keys::encode_commit_key(bound));
        match it.value() {
            Some(v) => Ok(Some(meta::decode(cf::COMMITS, v)?)),
            None => {
                it.status()?;
                Ok(None)
            }
        }
    }

    /// The first commit with commit LSN `>= lsn`.
    pub fn commit_at_or_after(&self, lsn: Lsn) -> Result<Option<CommitEntry>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf::COMMITS)?);
        it.seek(keys::encode_commit_key(lsn));
        match it.value() {
            Some(v) => {
                let e: CommitEntry = meta::decode(cf::COMMITS, v)?;
                Ok(self.watermark.filter(|w| e.commit_lsn <= w.commit_lsn).map(|_| e))
            }
            None => {
                it.status()?;
                Ok(None)
            }
        }
    }

    /// The last commit whose (monotonic) commit time is `<= t`.
    pub fn commit_at_or_before_time(&self, t: CommitTime) -> Result<Option<CommitEntry>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf::TIMES)?);
        it.seek_for_prev(keys::encode_time_key(t, Lsn::MAX));
        let Some(k) = it.key() else {
            it.status()?;
            return Ok(None);
        };
        let (_, lsn) = keys::decode_time_key(k).map_err(StoreError::corrupt(cf::TIMES))?;
        if self.watermark.is_none_or(|w| lsn > w.commit_lsn) {
            // Only possible for an in-flight write seen by a reader; fall back
            // to the watermark.
            return self.commit_at_or_before(lsn);
        }
        self.commit(lsn)
    }

    /// Commits with `from <= commit_lsn <= to`, in order.
    pub fn commits(&self, from: Lsn, to: Lsn) -> Result<Vec<CommitEntry>> {
        self.commits_from(from, to, usize::MAX)
    }

    /// At most `limit` commits with `from <= commit_lsn <= to`, in order.
    pub fn commits_from(&self, from: Lsn, to: Lsn, limit: usize) -> Result<Vec<CommitEntry>> {
        let to = to.min(self.watermark.map_or(Lsn::ZERO, |w| w.commit_lsn));
        let mut out = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(cf::COMMITS)?);
        it.seek(keys::encode_commit_key(from));
        while let Some(v) = it.value().filter(|_| out.len() < limit) {
            let e: CommitEntry = meta::decode(cf::COMMITS, v)?;
            if e.commit_lsn > to {
                break;
            }
            out.push(e);
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Log records of transactions with `from <= commit_lsn <= to`, in log
    /// order, streamed through `f` (return [`ControlFlow::Break`] to stop;
    /// its errors come back unchanged).
    pub fn for_each_log_entry<E: From<StoreError>>(
        &self,
        from: Lsn,
        to: Lsn,
        mut f: impl FnMut(LogEntry) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        let to = to.min(self.watermark.map_or(Lsn::ZERO, |w| w.commit_lsn));
        if from > to {
            return Ok(());
        }
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::encode_log_key(to.next(), 0).to_vec());
        let mut it = self.iter_opt(self.cf(cf::LOG)?, ro);
        it.seek(keys::encode_log_key(from, 0));
        while let Some((k, v)) = it.item() {
            let (commit_lsn, ordinal) = keys::decode_log_key(k).map_err(StoreError::corrupt(cf::LOG))?;
            let flow = match meta::BulkReads::decode(v).map_err(StoreError::corrupt(cf::LOG))? {
                Some(bulk) => self.for_each_bulk_read(commit_lsn, ordinal, bulk, &mut f)?,
                None => f(LogEntry {
                    commit_lsn,
                    ordinal,
                    record: meta::decode(cf::LOG, v)?,
                })?,
            };
            if flow.is_break() {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(StoreError::from)?;
        Ok(())
    }

    /// The `Read` records a bulk-read marker at (`lsn`, `first`) stands for:
    /// the table's versions at `lsn`, in key order, numbered from `first`.
    fn for_each_bulk_read<E: From<StoreError>>(
        &self,
        lsn: Lsn,
        first: u32,
        bulk: meta::BulkReads,
        f: &mut impl FnMut(LogEntry) -> Result<ControlFlow<()>, E>,
    ) -> Result<ControlFlow<()>, E> {
        let mut it = self.table_iter(cf::VERSIONS, bulk.table, crate::mvcc::scan_options())?;
        let mut n = 0u32;
        while let Some((k, v)) = it.item() {
            let (_, at) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
            if at == lsn {
                let row = codec::decode_version_owned(v)
                    .map_err(StoreError::corrupt(cf::VERSIONS))?
                    .ok_or_else(|| bulk_mismatch(lsn, bulk, "a deletion among its rows"))?;
                let entry = LogEntry {
                    commit_lsn: lsn,
                    ordinal: first.saturating_add(n),
                    record: ChangeRecord::Read {
                        table: bulk.table,
                        row: RowImage(row.values),
                    },
                };
                n = n.saturating_add(1);
                if f(entry)?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            it.next();
        }
        it.status().map_err(StoreError::from)?;
        // Compaction may have dropped versions of a transaction before the
        // horizon before its log entries; a read after it never gets here.
        if n != bulk.rows && self.horizon.is_none_or(|h| lsn >= h) {
            return Err(bulk_mismatch(lsn, bulk, &format!("{n} rows in versions")).into());
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The raw `log` values of transactions with `from <= commit_lsn <=
    /// to`, in log order, with their commit LSNs (see
    /// [`Store::for_each_log_entry`]).
    pub(crate) fn for_each_raw_log_value<E: From<StoreError>>(
        &self,
        from: Lsn,
        to: Lsn,
        mut f: impl FnMut(Lsn, &[u8]) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        let to = to.min(self.watermark.map_or(Lsn::ZERO, |w| w.commit_lsn));
        if from > to {
            return Ok(());
        }
        let mut ro = crate::mvcc::walk_options();
        ro.set_iterate_upper_bound(keys::encode_log_key(to.next(), 0).to_vec());
        let mut it = self.iter_opt(self.cf(cf::LOG)?, ro);
        it.seek(keys::encode_log_key(from, 0));
        while let Some((k, v)) = it.item() {
            let (commit_lsn, _) = keys::decode_log_key(k).map_err(StoreError::corrupt(cf::LOG))?;
            if f(commit_lsn, v)?.is_break() {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(StoreError::from)?;
        Ok(())
    }

    /// The version of `key` visible at `cut`: the newest with LSN `<= cut`,
    /// whether a row or a deletion. Resets are not applied here.
    pub fn version_at(&self, key: &UserKey, cut: Lsn) -> Result<Option<StoredVersion>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf::VERSIONS)?);
        it.seek(key.at(cut).0);
        let Some((k, v)) = it.item() else {
            it.status()?;
            return Ok(None);
        };
        let (uk, lsn) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
        if uk != key.0.as_slice() {
            return Ok(None);
        }
        Ok(Some(to_stored(lsn, v)?))
    }

    /// Every version of `key` up to the watermark, newest first.
    pub fn versions_of(&self, key: &UserKey) -> Result<Vec<StoredVersion>> {
        let top = self.watermark.map_or(Lsn::ZERO, |w| w.commit_lsn);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(key.after_all_versions());
        let mut it = self.iter_opt(self.cf(cf::VERSIONS)?, ro);
        it.seek(key.at(top).0);
        let mut out = Vec::new();
        while let Some((k, v)) = it.item() {
            let (uk, lsn) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
            if uk != key.0.as_slice() {
                break;
            }
            out.push(to_stored(lsn, v)?);
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Every key of table `t` that has a stored version (live or deleted),
    /// in key order. `f` returns [`ControlFlow::Break`] to stop early; its
    /// errors come back unchanged.
    pub fn for_each_key<E: From<StoreError>>(
        &self,
        t: TableId,
        mut f: impl FnMut(UserKey) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<(), E> {
        let mut it = self.table_iter(cf::LATEST, t, ReadOptions::default())?;
        while let Some(k) = it.key() {
            if f(UserKey(k.to_vec()))?.is_break() {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(StoreError::from)?;
        Ok(())
    }

    /// Number of version entries of a table (for tests and statistics).
    pub fn count_versions(&self, t: TableId) -> Result<u64> {
        let mut it = self.table_iter(cf::VERSIONS, t, ReadOptions::default())?;
        let mut n = 0;
        while it.valid() {
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }
}

/// A bulk-read marker that does not match the versions it stands for.
fn bulk_mismatch(lsn: Lsn, bulk: meta::BulkReads, found: &str) -> StoreError {
    StoreError::CorruptMeta {
        cf: cf::LOG,
        message: format!(
            "the bulk read of table {} at {lsn} stands for {} rows, found {found}",
            bulk.table, bulk.rows
        ),
    }
}
