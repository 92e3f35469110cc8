//! Building one write batch from change records.
//!
//! A [`BatchBuilder`] turns the records of one or more transactions (or one
//! chunk of a spilled transaction) into `log`, `versions` and `latest`
//! entries of a single `WriteBatch`, and collects the catalog changes they
//! make in a [`Pending`] that is published only once the batch is durable.
//!
//! Every stored version is a full row: unchanged-TOAST markers are replaced
//! by the value from the key's previous version before anything is written.
//!
//! A table that counts copies ([`TableSchema::counts_copies`]) keeps one
//! version per distinct row with its number of copies: an insert or read
//! adds one copy, a delete removes one, an update removes one copy of the
//! old row and adds one of the new. Each is a read-modify-write of the
//! key's newest count: this batch's own last write, else the `latest`
//! entry, unless a reset hides it.

use std::collections::HashMap;

use rocksdb::WriteBatch;

use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf};
use crate::lsn::Lsn;
use crate::record::{ChangeRecord, CommitInfo};
use crate::schema::{SchemaChange, SchemaHistory, SchemaVersion, SchemaVersionNo, TableSchema};
use crate::store::catalog::Catalog;
use crate::store::meta::{self, CommitEntry, ResetKind, Watermark};
use crate::store::Store;
use crate::time::CommitTime;
use crate::value::{Datum, DatumRef, RowImage};

/// Changes to the catalog made by a batch, applied only after the batch is
/// durable so a failed write leaves memory and disk in agreement.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) schemas: HashMap<TableId, Vec<SchemaVersion>>,
    pub(super) resets: Vec<(TableId, Lsn, ResetKind)>,
    pub(super) max_table: Option<u32>,
}

impl Pending {
    /// The latest schema version of a table as seen inside the batch.
    pub(super) fn current_version<'c>(&'c self, catalog: &'c Catalog, t: TableId) -> Option<&'c SchemaVersion> {
        self.schemas
            .get(&t)
            .and_then(|v| v.last())
            .or_else(|| catalog.table(t).and_then(|e| e.history.latest()))
    }

    /// The shape rows of `t` are written in, checked against `row`.
    fn shape_for<'c>(&'c self, catalog: &'c Catalog, t: TableId, row: &RowImage) -> Result<Shape<'c>> {
        let v = self.current_version(catalog, t).ok_or(StoreError::NoSchema(t))?;
        let schema = v.schema().ok_or(StoreError::NoSchema(t))?;
        if row.0.len() != schema.columns.len() {
            return Err(StoreError::RowShape {
                table: t,
                expected: schema.columns.len(),
                got: row.0.len(),
            });
        }
        Ok(Shape {
            table: t,
            version: v.version,
            schema,
        })
    }
}

/// The table and schema version a row is written under.
#[derive(Clone, Copy)]
struct Shape<'c> {
    table: TableId,
    version: SchemaVersionNo,
    schema: &'c TableSchema,
}

/// Builds one write batch; see the module docs.
pub(super) struct BatchBuilder<'s, 'a> {
    store: &'s Store,
    pending: &'s mut Pending,
    writes: Writes<'a>,
}

/// The engine writes of a batch, and what it last wrote for each key: to
/// resolve unchanged TOAST against an earlier change that is not in the
/// engine yet, and to undo a transaction's own writes on a reset.
struct Writes<'a> {
    batch: WriteBatch,
    /// Part of a spilled transaction: earlier chunks are already in the
    /// engine at this LSN.
    spilled: bool,
    /// Commit LSN of the transaction being written.
    lsn: Lsn,
    written: HashMap<Vec<u8>, (TableId, Lsn, Written<'a>)>,
    /// Rows whose unchanged-TOAST values were resolved, by [`Written::Resolved`].
    resolved: Vec<RowImage>,
    key_buf: Vec<u8>,
    val_buf: Vec<u8>,
}

/// What this batch last wrote for a key; rows with their copies.
#[derive(Clone, Copy)]
enum Written<'a> {
    Tombstone,
    /// A record's row, stored as it came.
    Record(&'a RowImage, SchemaVersionNo, u64),
    /// `Writes::resolved[i]`.
    Resolved(usize, SchemaVersionNo, u64),
}

impl Written<'_> {
    fn copies(self) -> u64 {
        match self {
            Written::Tombstone => 0,
            Written::Record(_, _, n) | Written::Resolved(_, _, n) => n,
        }
    }
}

impl<'s, 'a> BatchBuilder<'s, 'a> {
    /// A builder for whole transactions.
    pub(super) fn new(store: &'s Store, pending: &'s mut Pending) -> Self {
        BatchBuilder {
            store,
            pending,
            writes: Writes {
                batch: WriteBatch::default(),
                spilled: false,
                lsn: Lsn::ZERO,
                written: HashMap::new(),
                resolved: Vec::new(),
                key_buf: Vec::new(),
                val_buf: Vec::new(),
            },
        }
    }

    /// A builder for one chunk of a spilled transaction.
    pub(super) fn spilled(store: &'s Store, pending: &'s mut Pending) -> Self {
        let mut b = Self::new(store, pending);
        b.writes.spilled = true;
        b
    }

    /// The finished batch.
    pub(super) fn into_batch(self) -> WriteBatch {
        self.writes.batch
    }

    /// Adds `records` (a whole transaction committed at `lsn`, or one chunk
    /// of a spilled one starting at ordinal `first_ordinal`).
    pub(super) fn write_records(&mut self, lsn: Lsn, records: &'a [ChangeRecord], first_ordinal: u32) -> Result<()> {
        self.writes.lsn = lsn;
        let log_cf = self.store.cf(cf::LOG)?;
        for (idx, rec) in records.iter().enumerate() {
            let ord = first_ordinal.saturating_add(u32::try_from(idx).unwrap_or(u32::MAX));
            let resolved = match rec {
                ChangeRecord::Schema { table, change } => {
                    self.schema(*table, change)?;
                    None
                }
                ChangeRecord::Truncate { tables } => {
                    for t in tables {
                        self.reset(*t, ResetKind::Truncate)?;
                    }
                    None
                }
                ChangeRecord::ReadStart { table } => {
                    self.reset(*table, ResetKind::Read)?;
                    None
                }
                ChangeRecord::Insert { table, new } | ChangeRecord::Read { table, row: new } => {
                    self.put_row(rec, *table, None, new)?
                }
                // Without a before-image the update replaced the row of its
                // own key.
                ChangeRecord::Update { table, old, new } => {
                    self.put_row(rec, *table, Some(old.as_ref().unwrap_or(new)), new)?
                }
                ChangeRecord::Delete { table, old } => {
                    self.delete_row(*table, old)?;
                    None
                }
            };
            let logged = resolved.as_ref().unwrap_or(rec);
            self.writes
                .batch
                .put_cf(log_cf, keys::encode_log_key(lsn, ord), meta::encode(logged));
        }
        Ok(())
    }

    /// Adds a transaction's commit entry and time-index entry and returns
    /// the watermark it would set. Commit times are made monotonic here.
    pub(super) fn commit(&mut self, commit: &CommitInfo, records: u32, last: Option<Watermark>) -> Result<Watermark> {
        let lsn = commit.commit_lsn;
        let commit_time = commit.commit_time.max(last.map_or(CommitTime::MIN, |w| w.commit_time));
        let entry = CommitEntry {
            commit_lsn: lsn,
            end_lsn: commit.end_lsn,
            commit_time,
            reported_time: commit.commit_time,
            xid: commit.xid,
            records,
        };
        let batch = &mut self.writes.batch;
        batch.put_cf(
            self.store.cf(cf::COMMITS)?,
            keys::encode_commit_key(lsn),
            meta::encode(&entry),
        );
        batch.put_cf(self.store.cf(cf::TIMES)?, keys::encode_time_key(commit_time, lsn), []);
        Ok(Watermark {
            commit_lsn: lsn,
            end_lsn: commit.end_lsn,
            commit_time,
            xid: commit.xid,
        })
    }

    /// Writes the new version of a row (for an update, `old` is the row it
    /// replaced), and a tombstone under the old key when an update changed
    /// the key; in a table that counts copies, the update takes one copy
    /// from the old row and adds one to the new. Returns the record as it
    /// is logged when unchanged TOAST was resolved.
    fn put_row(
        &mut self,
        rec: &ChangeRecord,
        t: TableId,
        old: Option<&'a RowImage>,
        new: &'a RowImage,
    ) -> Result<Option<ChangeRecord>> {
        let store = self.store;
        let shape = self.pending.shape_for(&store.catalog, t, new)?;
        // The previous version lives under the old key when the key changed.
        // What `logged_as_given` accepts is logged as it came.
        let resolved = match rec.logged_as_given() {
            true => None,
            false => Some(self.resolve_toast(shape, new, old.unwrap_or(new))?),
        };
        let image = resolved.as_ref().unwrap_or(new);
        let counted = shape.schema.counts_copies();
        if let Some(old) = old {
            let old_key = keys::row_key(t, shape.schema, &old.0);
            if counted {
                let copies = self.copies_of(t, &old_key.0)?;
                self.writes.remove_copy(store, shape, &old_key.0, old, copies)?;
            } else if old_key != keys::row_key(t, shape.schema, &image.0) {
                self.writes.put_tombstone(store, t, &old_key.0)?;
            }
        }
        let copies = if counted {
            let key = keys::row_key(t, shape.schema, &image.0);
            self.copies_of(t, &key.0)?.saturating_add(1)
        } else {
            1
        };
        // A copied row is stored once: its `latest` entry refers to it.
        let once = matches!(rec, ChangeRecord::Read { .. }) && !counted;
        self.writes.put_version(store, shape, image, new, copies, once)?;
        Ok(resolved.map(|row| {
            let logged = with_row(rec, row.clone());
            self.writes.keep_resolved(row);
            logged
        }))
    }

    fn delete_row(&mut self, t: TableId, old: &'a RowImage) -> Result<()> {
        let shape = self.pending.shape_for(&self.store.catalog, t, old)?;
        let key = keys::row_key(t, shape.schema, &old.0);
        if shape.schema.counts_copies() {
            let copies = self.copies_of(t, &key.0)?;
            return self.writes.remove_copy(self.store, shape, &key.0, old, copies);
        }
        self.writes.put_tombstone(self.store, t, &key.0)
    }

    /// How many copies of the row under `user_key` exist at this point of
    /// the batch: this batch's last write of the key, else the newest
    /// stored version, unless a reset (committed, or earlier in this batch
    /// or spilled transaction) hides it.
    fn copies_of(&self, t: TableId, user_key: &[u8]) -> Result<u64> {
        if let Some((_, _, w)) = self.writes.written.get(user_key) {
            return Ok(w.copies());
        }
        self.store.stored_copies(user_key, self.dead_before(t))
    }

    /// The last reset of `t` at or before the current LSN, committed or
    /// pending: engine versions older than it are gone.
    fn dead_before(&self, t: TableId) -> Option<Lsn> {
        let lsn = self.writes.lsn;
        let committed = self.store.catalog.table(t).and_then(|e| e.last_reset_at(lsn));
        let pending = self
            .pending
            .resets
            .iter()
            .filter(|(pt, pl, _)| *pt == t && *pl <= lsn)
            .map(|(_, pl, _)| *pl)
            .max();
        committed.max(pending)
    }

    fn schema(&mut self, t: TableId, change: &SchemaChange) -> Result<()> {
        let lsn = self.writes.lsn;
        let next_no = self
            .pending
            .current_version(&self.store.catalog, t)
            .map_or(0, |v| v.version.0 + 1);
        let sv = SchemaVersion {
            table: t,
            version: SchemaVersionNo(next_no),
            valid_from: lsn,
            change: change.clone(),
        };
        // Written to disk with the commit (see `Store::commit_batch`), so a
        // spilled transaction cut short leaves no schema behind.
        self.pending.schemas.entry(t).or_default().push(sv);
        self.pending.max_table = Some(self.pending.max_table.unwrap_or(0).max(t.0));
        // An uncaptured table's earlier rows are no longer known to be current.
        if matches!(change, SchemaChange::Drop | SchemaChange::Uncaptured { .. }) {
            self.reset(t, ResetKind::Drop)?;
        }
        Ok(())
    }

    /// Records that `t` was emptied at the current LSN, and undoes this
    /// transaction's earlier writes to it (versions at the reset's own LSN
    /// are not covered by the reset, which only hides older versions).
    fn reset(&mut self, t: TableId, kind: ResetKind) -> Result<()> {
        let lsn = self.writes.lsn;
        self.writes.undo_own_writes(self.store, t)?;
        if self.writes.spilled {
            let undone = self
                .store
                .undo_spilled_versions(&mut self.writes.batch, t, lsn, false)?;
            // The engine still holds them until this batch is written: later
            // records of this chunk must see them gone.
            for uk in undone {
                self.writes.written.insert(uk, (t, lsn, Written::Tombstone));
            }
        }
        let resets = &mut self.pending.resets;
        resets.retain(|(pt, pl, _)| !(*pt == t && *pl == lsn));
        resets.push((t, lsn, kind));
        Ok(())
    }

    /// Replaces unchanged-TOAST markers with the value from the key's
    /// previous version: first an earlier change in this batch, else the
    /// newest stored version before this transaction. When neither exists
    /// (history began after the row was last written in full), the value is
    /// recorded as missing, never as NULL.
    fn resolve_toast(&self, shape: Shape<'_>, row: &RowImage, key_row: &RowImage) -> Result<RowImage> {
        let t = shape.table;
        let key = keys::row_key(t, shape.schema, &key_row.0);
        let prev: Option<(SchemaVersionNo, Vec<Datum>)> = match self.writes.written.get(&key.0) {
            Some((_, _, Written::Record(r, psv, _))) => Some((*psv, r.0.clone())),
            Some((_, _, Written::Resolved(i, psv, _))) => self.writes.resolved.get(*i).map(|r| (*psv, r.0.clone())),
            Some((_, _, Written::Tombstone)) => None,
            None => self
                .store
                .previous_version(&key.0, self.writes.lsn, self.dead_before(t))?
                .map(|v| (v.schema, v.values)),
        };
        let mut out = row.clone();
        let Some((psv, pvals)) = prev else {
            for d in &mut out.0 {
                if matches!(d, Datum::UnchangedToast) {
                    *d = Datum::Missing;
                }
            }
            return Ok(out);
        };
        let mut versions = self
            .store
            .catalog
            .table(t)
            .map(|e| e.history.versions().to_vec())
            .unwrap_or_default();
        versions.extend(self.pending.schemas.get(&t).into_iter().flatten().cloned());
        let projection = SchemaHistory::new(versions).projection(psv, shape.version);
        let refs: Vec<DatumRef<'_>> = pvals.iter().map(Datum::as_ref).collect();
        let mut projected = Vec::new();
        projection.apply(&refs, &mut projected);
        for (i, d) in out.0.iter_mut().enumerate() {
            if matches!(d, Datum::UnchangedToast) {
                *d = projected.get(i).map_or(Datum::Missing, |p| p.to_datum());
            }
        }
        Ok(out)
    }
}

impl<'a> Writes<'a> {
    /// Writes `row`, with `copies` identical copies, as the version of its
    /// key at the current LSN; `record_row` is the record's own row, kept
    /// for later TOAST look-ups.
    fn put_version(
        &mut self,
        store: &Store,
        shape: Shape<'_>,
        row: &RowImage,
        record_row: &'a RowImage,
        copies: u64,
        once: bool,
    ) -> Result<()> {
        keys::row_key_into(&mut self.key_buf, shape.table, shape.schema, &row.0);
        codec::encode_row_version(&mut self.val_buf, shape.version, copies, &row.0);
        let key = std::mem::take(&mut self.key_buf);
        let what = Written::Record(record_row, shape.version, copies);
        let put = self.put(store, &key, what, shape.table, once);
        self.key_buf = key;
        put
    }

    /// Takes one of the `copies` of `row` (stored under `user_key`) away:
    /// the last one leaves a tombstone. A row not known to exist is deleted
    /// all the same.
    fn remove_copy(
        &mut self,
        store: &Store,
        shape: Shape<'_>,
        user_key: &[u8],
        row: &'a RowImage,
        copies: u64,
    ) -> Result<()> {
        match copies {
            0 | 1 => self.put_tombstone(store, shape.table, user_key),
            n => self.put_version(store, shape, row, row, n - 1, false),
        }
    }

    fn put_tombstone(&mut self, store: &Store, t: TableId, user_key: &[u8]) -> Result<()> {
        self.val_buf.clear();
        self.val_buf.extend_from_slice(&codec::TOMBSTONE_VERSION);
        self.put(store, user_key, Written::Tombstone, t, false)
    }

    /// Writes the version value in `val_buf` under `user_key`, in the
    /// version index, and in `latest` unless `once`: then `latest` refers
    /// to the version.
    fn put(&mut self, store: &Store, user_key: &[u8], what: Written<'a>, t: TableId, once: bool) -> Result<()> {
        let version_key = keys::encode_version_key(user_key, self.lsn);
        self.batch
            .put_cf(store.cf(cf::VERSIONS)?, &version_key.0, &self.val_buf);
        let mut latest = Vec::with_capacity(8 + self.val_buf.len());
        match once {
            true => codec::encode_latest_ref_into(&mut latest, self.lsn),
            false => codec::encode_latest_into(&mut latest, self.lsn, &self.val_buf),
        }
        self.batch.put_cf(store.cf(cf::LATEST)?, user_key, latest);
        self.written.insert(user_key.to_vec(), (t, self.lsn, what));
        Ok(())
    }

    /// Removes the versions this transaction wrote to `t` before a reset at
    /// its own LSN, leaving each key "gone at the reset" in `latest`; older
    /// versions are hidden by the reset itself.
    fn undo_own_writes(&mut self, store: &Store, t: TableId) -> Result<()> {
        let vcf = store.cf(cf::VERSIONS)?;
        let lcf = store.cf(cf::LATEST)?;
        let (batch, lsn) = (&mut self.batch, self.lsn);
        self.written.retain(|user_key, (table, wlsn, _)| {
            if *table != t {
                return true;
            }
            // Only this transaction's own versions share the reset's LSN.
            if *wlsn == lsn {
                batch.delete_cf(vcf, keys::encode_version_key(user_key, lsn).0);
                batch.put_cf(
                    lcf,
                    user_key.as_slice(),
                    codec::encode_latest(lsn, &codec::TOMBSTONE_VERSION),
                );
            }
            false
        });
        Ok(())
    }

    /// Points the key just written (in `key_buf`) at its resolved row.
    fn keep_resolved(&mut self, row: RowImage) {
        if let Some((_, _, w)) = self.written.get_mut(self.key_buf.as_slice()) {
            if let Written::Record(_, sv, copies) = *w {
                *w = Written::Resolved(self.resolved.len(), sv, copies);
                self.resolved.push(row);
            }
        }
    }
}

impl Store {
    /// The newest stored version of `user_key` at or before `lsn`, if it is
    /// a live row not older than `dead_before` (the table's last reset).
    fn previous_version(
        &self,
        user_key: &[u8],
        lsn: Lsn,
        dead_before: Option<Lsn>,
    ) -> Result<Option<codec::OwnedRowVersion>> {
        // Seeking at `lsn` itself also finds a version written by an earlier
        // chunk of a spilled transaction; a whole transaction never has one.
        let mut it = self.db.raw_iterator_cf(self.cf(cf::VERSIONS)?);
        it.seek(keys::encode_version_key(user_key, lsn).0);
        let Some((k, v)) = it.item() else {
            it.status()?;
            return Ok(None);
        };
        let (uk, vlsn) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
        if uk != user_key {
            return Ok(None);
        }
        // Versions at `lsn` survive resets at `lsn`.
        if dead_before.is_some_and(|r| vlsn < r) {
            return Ok(None);
        }
        codec::decode_version_owned(v).map_err(StoreError::corrupt(cf::VERSIONS))
    }

    /// The copies of the row under `user_key` in its newest stored version
    /// (the `latest` entry, which also holds what earlier chunks of a
    /// spilled transaction wrote); 0 when deleted, absent, or older than
    /// `dead_before`.
    fn stored_copies(&self, user_key: &[u8], dead_before: Option<Lsn>) -> Result<u64> {
        let Some(raw) = self.db.get_pinned_cf(self.cf(cf::LATEST)?, user_key)? else {
            return Ok(0);
        };
        let (lsn, version) = codec::decode_latest(&raw).map_err(StoreError::corrupt(cf::LATEST))?;
        if dead_before.is_some_and(|r| lsn < r) {
            return Ok(0);
        }
        if codec::latest_refers_to_versions(version) {
            let key = keys::encode_version_key(user_key, lsn);
            let Some(v) = self.db.get_pinned_cf(self.cf(cf::VERSIONS)?, &key.0)? else {
                return Err(StoreError::corrupt(cf::LATEST)(codec::CorruptEncoding {
                    offset: 0,
                    what: "latest entry whose version is missing",
                }));
            };
            return codec::version_copies(&v).map_err(StoreError::corrupt(cf::VERSIONS));
        }
        codec::version_copies(version).map_err(StoreError::corrupt(cf::LATEST))
    }
}

/// `rec` with its row replaced by `row` (the row with TOAST resolved).
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
