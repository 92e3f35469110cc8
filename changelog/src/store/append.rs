//! Appending transactions: one atomic, durable write batch per call.
//!
//! Invariants kept here (see `docs/design.md`):
//! - a call writes all of its transactions or none (one `WriteBatch`);
//! - the watermark in the same batch names the last transaction written, so
//!   after a crash the watermark and the data agree;
//! - a transaction at or below the watermark is skipped, which makes
//!   re-delivery after a restart harmless;
//! - every stored version is a full row: unchanged-TOAST markers are
//!   replaced by the value from the key's previous version.

use std::collections::HashMap;

use rocksdb::{WriteBatch, WriteOptions};

use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf, version_tag};
use crate::lsn::Lsn;
use crate::record::{ChangeRecord, Transaction};
use crate::schema::{SchemaChange, SchemaHistory, SchemaVersion, SchemaVersionNo, TableSchema};
use crate::store::catalog::TableEntry;
use crate::store::meta::{self, CommitEntry, ResetKind, Watermark};
use crate::store::{Durability, Store};
use crate::value::{Datum, DatumRef, RowImage};

/// What happened to one transaction passed to [`Store::append`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AppendOutcome {
    /// Written.
    Appended,
    /// Its commit LSN was at or below the watermark: already stored, skipped.
    AlreadyStored,
}

/// Changes to the catalog made by a batch, applied only after the batch is
/// durable so a failed write leaves memory and disk in agreement.
#[derive(Default)]
pub(super) struct Pending {
    schemas: HashMap<TableId, Vec<SchemaVersion>>,
    resets: Vec<(TableId, Lsn, ResetKind)>,
    max_table: Option<u32>,
}

/// State across the transactions of one write batch: the keys written so
/// far, to resolve unchanged TOAST against an earlier change that is not in
/// the engine yet, and to undo a transaction's own writes on a truncate.
#[derive(Default)]
pub(super) struct TxnState<'a> {
    /// Part of a spilled transaction: earlier chunks are already in the
    /// engine at this LSN.
    spilled: bool,
    written: HashMap<Vec<u8>, (TableId, Lsn, Written<'a>)>,
    /// Rows whose unchanged-TOAST values were resolved, by [`Written::Resolved`].
    resolved: Vec<RowImage>,
}

/// What this transaction last wrote for a key.
#[derive(Clone, Copy)]
enum Written<'a> {
    Tombstone,
    /// A record's row, stored as it came.
    Record(&'a RowImage, SchemaVersionNo),
    /// `TxnState::resolved[i]`.
    Resolved(usize, SchemaVersionNo),
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
        self.check_writable()?;
        let mut batch = WriteBatch::default();
        let mut pending = Pending::default();
        let mut state = TxnState::default();
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
            self.write_records(&mut batch, &mut pending, &mut state, lsn, &txn.records, 0)?;
            let n = u32::try_from(txn.records.len()).unwrap_or(u32::MAX);
            last = Some(self.stage_commit(&mut batch, &txn.commit, n, last)?);
            first_new.get_or_insert(lsn);
            outcomes.push(AppendOutcome::Appended);
        }
        let Some(new_mark) = last.filter(|_| first_new.is_some()) else {
            return Ok(outcomes);
        };
        self.commit_batch(batch, new_mark, pending)?;
        self.first_commit = self.first_commit.or(first_new);
        Ok(outcomes)
    }

    /// Adds a transaction's commit entry and time-index entry to `batch`
    /// and returns the watermark it would set. Commit times are made
    /// monotonic here.
    pub(super) fn stage_commit(
        &self,
        batch: &mut WriteBatch,
        commit: &crate::record::CommitInfo,
        records: u32,
        last: Option<Watermark>,
    ) -> Result<Watermark> {
        let lsn = commit.commit_lsn;
        let commit_time = commit
            .commit_time
            .max(last.map_or(crate::time::CommitTime::MIN, |w| w.commit_time));
        let entry = CommitEntry {
            commit_lsn: lsn,
            end_lsn: commit.end_lsn,
            commit_time,
            reported_time: commit.commit_time,
            xid: commit.xid,
            records,
        };
        batch.put_cf(
            self.cf(cf::COMMITS)?,
            keys::encode_commit_key(lsn),
            meta::encode(&entry),
        );
        batch.put_cf(self.cf(cf::TIMES)?, keys::encode_time_key(commit_time, lsn), []);
        Ok(Watermark {
            commit_lsn: lsn,
            end_lsn: commit.end_lsn,
            commit_time,
            xid: commit.xid,
        })
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
        if let Err(e) = self.db.write_opt(batch, &wo) {
            // What reached disk is unknown; refuse to guess (fsyncgate).
            self.poisoned = true;
            return Err(e.into());
        }
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

    /// The latest schema version of a table as seen inside the batch.
    fn current_version<'a>(&'a self, pending: &'a Pending, t: TableId) -> Option<&'a SchemaVersion> {
        pending
            .schemas
            .get(&t)
            .and_then(|v| v.last())
            .or_else(|| self.catalog.table(t).and_then(|e| e.history.latest()))
    }

    /// Adds `records` (a whole transaction, or one chunk of a spilled one
    /// starting at ordinal `first_ordinal`) to `batch`.
    pub(super) fn write_records<'a>(
        &self,
        batch: &mut WriteBatch,
        pending: &mut Pending,
        state: &mut TxnState<'a>,
        lsn: Lsn,
        records: &'a [ChangeRecord],
        first_ordinal: u32,
    ) -> Result<()> {
        let log_cf = self.cf(cf::LOG)?;
        let mut key_buf = Vec::new();
        let mut val_buf = Vec::new();
        for (idx, rec) in records.iter().enumerate() {
            let ord = first_ordinal.saturating_add(u32::try_from(idx).unwrap_or(u32::MAX));
            let resolved;
            let logged: &ChangeRecord = match rec {
                ChangeRecord::Schema { table, change } => {
                    self.write_schema(batch, pending, state, lsn, *table, change)?;
                    rec
                }
                ChangeRecord::Truncate { tables } => {
                    for t in tables {
                        self.write_reset(batch, pending, state, *t, lsn, ResetKind::Truncate)?;
                    }
                    rec
                }
                ChangeRecord::ReadStart { table } => {
                    self.write_reset(batch, pending, state, *table, lsn, ResetKind::Read)?;
                    rec
                }
                ChangeRecord::Insert { table, new }
                | ChangeRecord::Read { table, row: new }
                | ChangeRecord::Update { table, new, .. } => {
                    let old = match rec {
                        ChangeRecord::Update { old, .. } => old.as_ref(),
                        _ => None,
                    };
                    let (sv, schema) = self.schema_for(pending, *table, new)?;
                    // The previous version lives under the old key when the key changed.
                    let key_row = old.unwrap_or(new);
                    let row =
                        self.resolve_toast(pending, state, *table, sv, schema, new, key_row, lsn, &mut key_buf)?;
                    let image = row.as_ref().unwrap_or(new);
                    if let Some(old) = old {
                        let key_types = key_types(schema);
                        let new_key = keys::encode_user_key(*table, &key_types, key_values(schema, image));
                        let old_key = keys::encode_user_key(*table, &key_types, key_values(schema, old));
                        if old_key != new_key {
                            self.put_tombstone(batch, state, *table, &old_key.0, lsn, &mut val_buf)?;
                        }
                    }
                    self.put_version(
                        batch,
                        state,
                        *table,
                        schema,
                        sv,
                        image,
                        new,
                        lsn,
                        &mut key_buf,
                        &mut val_buf,
                    )?;
                    match row {
                        Some(row) => {
                            resolved = with_row(rec, row.clone());
                            state.keep_resolved(&key_buf, row);
                            &resolved
                        }
                        None => rec,
                    }
                }
                ChangeRecord::Delete { table, old } => {
                    let (_, schema) = self.schema_for(pending, *table, old)?;
                    keys::encode_user_key_into(&mut key_buf, *table, &key_types(schema), key_values(schema, old));
                    let k = key_buf.clone();
                    self.put_tombstone(batch, state, *table, &k, lsn, &mut val_buf)?;
                    rec
                }
            };
            batch.put_cf(log_cf, keys::encode_log_key(lsn, ord), meta::encode(logged));
        }
        Ok(())
    }

    fn schema_for<'a>(
        &'a self,
        pending: &'a Pending,
        t: TableId,
        row: &RowImage,
    ) -> Result<(SchemaVersionNo, &'a TableSchema)> {
        let v = self.current_version(pending, t).ok_or(StoreError::NoSchema(t))?;
        let schema = v.schema().ok_or(StoreError::NoSchema(t))?;
        if row.0.len() != schema.columns.len() {
            return Err(StoreError::RowShape {
                table: t,
                expected: schema.columns.len(),
                got: row.0.len(),
            });
        }
        Ok((v.version, schema))
    }

    fn write_schema(
        &self,
        batch: &mut WriteBatch,
        pending: &mut Pending,
        state: &mut TxnState<'_>,
        lsn: Lsn,
        t: TableId,
        change: &SchemaChange,
    ) -> Result<()> {
        let next_no = self.current_version(pending, t).map_or(0, |v| v.version.0 + 1);
        let sv = SchemaVersion {
            table: t,
            version: SchemaVersionNo(next_no),
            valid_from: lsn,
            change: change.clone(),
        };
        // Written to disk with the commit (see `commit_batch`), so a spilled
        // transaction cut short leaves no schema behind.
        pending.schemas.entry(t).or_default().push(sv);
        pending.max_table = Some(pending.max_table.unwrap_or(0).max(t.0));
        // An uncaptured table's earlier rows are no longer known to be current.
        if matches!(change, SchemaChange::Drop | SchemaChange::Uncaptured { .. }) {
            self.write_reset(batch, pending, state, t, lsn, ResetKind::Drop)?;
        }
        Ok(())
    }

    /// Records that `t` was emptied at `lsn`, and undoes this transaction's
    /// earlier writes to it (versions at `lsn` itself are not covered by the
    /// reset, which only hides older versions).
    fn write_reset(
        &self,
        batch: &mut WriteBatch,
        pending: &mut Pending,
        state: &mut TxnState<'_>,
        t: TableId,
        lsn: Lsn,
        kind: ResetKind,
    ) -> Result<()> {
        let vcf = self.cf(cf::VERSIONS)?;
        let lcf = self.cf(cf::LATEST)?;
        state.written.retain(|user_key, (table, wlsn, _)| {
            if *table == t {
                // Only this transaction's own versions share the reset's LSN.
                if *wlsn == lsn {
                    batch.delete_cf(vcf, keys::UserKey(user_key.clone()).at(lsn).0);
                    // The key's newest state is "gone at the reset"; older
                    // versions are hidden by the reset itself.
                    batch.put_cf(
                        lcf,
                        user_key.as_slice(),
                        keys::encode_latest(lsn, &[version_tag::TOMBSTONE]),
                    );
                }
                false
            } else {
                true
            }
        });
        if state.spilled {
            self.undo_spilled_versions(batch, t, lsn, false)?;
        }
        pending.resets.retain(|(pt, pl, _)| !(*pt == t && *pl == lsn));
        pending.resets.push((t, lsn, kind));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn put_version<'a>(
        &self,
        batch: &mut WriteBatch,
        state: &mut TxnState<'a>,
        t: TableId,
        schema: &TableSchema,
        sv: SchemaVersionNo,
        row: &RowImage,
        record_row: &'a RowImage,
        lsn: Lsn,
        key_buf: &mut Vec<u8>,
        val_buf: &mut Vec<u8>,
    ) -> Result<()> {
        keys::encode_user_key_into(key_buf, t, &key_types(schema), key_values(schema, row));
        val_buf.clear();
        val_buf.push(version_tag::PUT);
        codec::put_varint(val_buf, u64::from(sv.0));
        codec::encode_row(val_buf, &row.0);
        let mut vk = Vec::with_capacity(key_buf.len() + 8);
        vk.extend_from_slice(key_buf);
        vk.extend_from_slice(&(!lsn.0).to_be_bytes());
        batch.put_cf(self.cf(cf::VERSIONS)?, &vk, &*val_buf);
        batch.put_cf(self.cf(cf::LATEST)?, &*key_buf, keys::encode_latest(lsn, val_buf));
        state
            .written
            .insert(key_buf.clone(), (t, lsn, Written::Record(record_row, sv)));
        Ok(())
    }

    fn put_tombstone(
        &self,
        batch: &mut WriteBatch,
        state: &mut TxnState<'_>,
        t: TableId,
        user_key: &[u8],
        lsn: Lsn,
        val_buf: &mut Vec<u8>,
    ) -> Result<()> {
        val_buf.clear();
        val_buf.push(version_tag::TOMBSTONE);
        let mut vk = Vec::with_capacity(user_key.len() + 8);
        vk.extend_from_slice(user_key);
        vk.extend_from_slice(&(!lsn.0).to_be_bytes());
        batch.put_cf(self.cf(cf::VERSIONS)?, &vk, &*val_buf);
        batch.put_cf(self.cf(cf::LATEST)?, user_key, keys::encode_latest(lsn, val_buf));
        state.written.insert(user_key.to_vec(), (t, lsn, Written::Tombstone));
        Ok(())
    }

    /// Replaces unchanged-TOAST markers with the value from the key's
    /// previous version: first an earlier change in this transaction, else
    /// the newest stored version before this transaction. When neither
    /// exists (history began after the row was last written in full), the
    /// value is recorded as missing, never as NULL.
    #[allow(clippy::too_many_arguments)]
    fn resolve_toast(
        &self,
        pending: &Pending,
        state: &TxnState<'_>,
        t: TableId,
        sv: SchemaVersionNo,
        schema: &TableSchema,
        row: &RowImage,
        key_row: &RowImage,
        lsn: Lsn,
        key_buf: &mut Vec<u8>,
    ) -> Result<Option<RowImage>> {
        if !row.has_unchanged_toast() {
            return Ok(None);
        }
        // The previous version lives under the old key when the key changed.
        keys::encode_user_key_into(key_buf, t, &key_types(schema), key_values(schema, key_row));
        let prev: Option<(SchemaVersionNo, Vec<Datum>)> = match state.written.get(key_buf.as_slice()) {
            Some((_, _, Written::Record(r, psv))) => Some((*psv, r.0.clone())),
            Some((_, _, Written::Resolved(i, psv))) => state.resolved.get(*i).map(|r| (*psv, r.0.clone())),
            Some((_, _, Written::Tombstone)) => None,
            None => self.previous_version(t, key_buf, lsn)?,
        };
        let mut out = row.clone();
        let Some((psv, pvals)) = prev else {
            for d in &mut out.0 {
                if matches!(d, Datum::UnchangedToast) {
                    *d = Datum::Missing;
                }
            }
            return Ok(Some(out));
        };
        let mut versions = self
            .catalog
            .table(t)
            .map(|e: &TableEntry| e.history.versions().to_vec())
            .unwrap_or_default();
        versions.extend(pending.schemas.get(&t).into_iter().flatten().cloned());
        let projection = SchemaHistory::new(versions).projection(psv, sv);
        let refs: Vec<DatumRef<'_>> = pvals.iter().map(Datum::as_ref).collect();
        let mut projected = Vec::new();
        projection.apply(&refs, &mut projected);
        for (i, d) in out.0.iter_mut().enumerate() {
            if matches!(d, Datum::UnchangedToast) {
                *d = projected.get(i).map_or(Datum::Missing, |p| p.to_datum());
            }
        }
        Ok(Some(out))
    }

    /// The newest stored version of `user_key` committed before `lsn`, if it
    /// is a live row.
    fn previous_version(&self, t: TableId, user_key: &[u8], lsn: Lsn) -> Result<Option<(SchemaVersionNo, Vec<Datum>)>> {
        // Seeking at `lsn` itself also finds a version written by an earlier
        // chunk of a spilled transaction; a whole transaction never has one.
        let seek = keys::UserKey(user_key.to_vec()).at(lsn);
        let mut it = self.db.raw_iterator_cf(self.cf(cf::VERSIONS)?);
        it.seek(&seek.0);
        let (Some(k), Some(v)) = (it.key(), it.value()) else {
            it.status()?;
            return Ok(None);
        };
        let (uk, vlsn) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
        if uk != user_key {
            return Ok(None);
        }
        // A table created by this (uncommitted) transaction has no
        // committed resets; versions at `lsn` survive resets at `lsn`.
        if !self.catalog.table(t).is_none_or(|e| e.survives_resets(vlsn, lsn)) {
            return Ok(None);
        }
        let (tag, sv, row) = crate::store::read::decode_version_owned(v)?;
        Ok((tag == version_tag::PUT).then_some((sv, row)))
    }
}

fn key_types(schema: &TableSchema) -> Vec<u32> {
    schema.columns.iter().filter(|c| c.is_key).map(|c| c.type_oid).collect()
}

fn key_values<'a>(schema: &'a TableSchema, row: &'a RowImage) -> impl Iterator<Item = DatumRef<'a>> + 'a {
    schema
        .columns
        .iter()
        .zip(row.0.iter())
        .filter(|(c, _)| c.is_key)
        .map(|(_, d)| d.as_ref())
}

impl TxnState<'_> {
    /// State for one chunk of a spilled transaction.
    pub(super) fn spilled() -> Self {
        TxnState {
            spilled: true,
            ..TxnState::default()
        }
    }

    /// Points the key just written at its resolved row.
    fn keep_resolved(&mut self, user_key: &[u8], row: RowImage) {
        if let Some((_, _, w)) = self.written.get_mut(user_key) {
            if let Written::Record(_, sv) = *w {
                *w = Written::Resolved(self.resolved.len(), sv);
                self.resolved.push(row);
            }
        }
    }
}

fn with_row(rec: &ChangeRecord, row: RowImage) -> ChangeRecord {
    match rec {
        ChangeRecord::Insert { table, .. } => ChangeRecord::Insert {
            table: *table,
            new: row,
        },
        ChangeRecord::Read { table, .. } => ChangeRecord::Read { table: *table, row },
        ChangeRecord::Update { table, old, .. } => ChangeRecord::Update {
            table: *table,
            old: old.clone(),
            new: row,
        },
        other => other.clone(),
    }
}
