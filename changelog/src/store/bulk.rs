//! A full read's rows loaded in bulk: sorted files built beside the engine
//! and ingested, instead of write batches through the write-ahead log, the
//! memtables and a flush.
//!
//! Each row is stored once: one `versions` and one `latest` entry per key at
//! the transaction's LSN, byte for byte what [`Store::spill`] writes for the
//! same [`crate::ChangeRecord::Read`] records. The log holds one marker per
//! table instead of a record per row ([`meta::BulkReads`]), which readers of
//! the log expand from `versions`. Only a table whose identity is a unique
//! key can be loaded this way (each key is written once, with no read of
//! what was there); the caller falls back to [`Store::spill`] for the others
//! ([`BulkRows::accepts`]).
//!
//! Building the files needs no access to the store ([`BulkRows`] is `Send`),
//! so it can run on other threads while the next rows arrive. Crash safety
//! is the spill's: the in-flight marker is synced before the first file of a
//! table lands, so opening the store after a crash removes what was loaded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{Cache, IngestExternalFileOptions, Options, SstFileWriter};

use crate::codec::{self, version_tag};
use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf};
use crate::lsn::Lsn;
use crate::schema::{ReplicaIdentity, SchemaVersionNo, TableSchema};
use crate::store::meta;
use crate::store::open::cf_options;
use crate::store::spill::SpillTxn;
use crate::store::Store;
use crate::value::DatumRef;

/// Where files are built before they are ingested (inside the store, so
/// ingestion moves them instead of copying; emptied at open).
pub(super) const BULK_DIR: &str = "bulk";

/// Rows of one table, each in the version format's row encoding, back to
/// back: what a parser fills without an allocation per value.
#[derive(Clone, Debug, Default)]
pub struct RowBlock {
    data: Vec<u8>,
    /// End offset of each row in `data`.
    ends: Vec<usize>,
    width: usize,
    /// Values pushed into the row being built.
    values: usize,
    row_start: usize,
}

impl RowBlock {
    /// An empty block of rows with `width` values each.
    pub fn new(width: usize) -> RowBlock {
        RowBlock {
            width,
            ..RowBlock::default()
        }
    }

    /// An empty block of rows with `width` values each, with room for
    /// `bytes` of encoded rows.
    pub fn with_capacity(width: usize, bytes: usize) -> RowBlock {
        RowBlock {
            width,
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(bytes / 32),
            ..RowBlock::default()
        }
    }

    /// Starts a row.
    pub fn begin_row(&mut self) {
        self.row_start = self.data.len();
        self.values = 0;
        codec::put_varint(&mut self.data, self.width as u64);
    }

    /// Adds a NULL to the row being built.
    pub fn push_null(&mut self) {
        self.values += 1;
        codec::put_varint(&mut self.data, 0);
    }

    /// Adds a value in Postgres's text form to the row being built.
    pub fn push_text(&mut self, text: &[u8]) {
        self.values += 1;
        codec::put_varint(&mut self.data, text.len() as u64 + 2);
        self.data.extend_from_slice(text);
    }

    /// Ends the row. When it does not have the block's width the row is
    /// dropped and the number of values it had comes back as the error.
    pub fn end_row(&mut self) -> std::result::Result<(), usize> {
        if self.values != self.width {
            self.data.truncate(self.row_start);
            return Err(self.values);
        }
        self.ends.push(self.data.len());
        Ok(())
    }

    /// Rows in the block.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the block holds no row.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes the encoded rows take.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Empties the block, keeping its buffers.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Empties the block for rows of `width` values, keeping its buffers.
    pub fn reset(&mut self, width: usize) {
        self.clear();
        self.width = width;
    }

    fn rows(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let row = self.data.get(start..end).unwrap_or_default();
            start = end;
            row
        })
    }
}

/// Builds the files of one table's rows in a spilled transaction. Made by
/// [`Store::bulk_rows`]; sendable to another thread.
pub struct BulkRows {
    table: TableId,
    schema: TableSchema,
    version: SchemaVersionNo,
    lsn: Lsn,
    dir: PathBuf,
    options: [Options; 2],
}

/// The families a bulk load writes, in the order of `BulkRows::options`.
const FAMILIES: [&str; 2] = [cf::VERSIONS, cf::LATEST];

/// Files built from one [`RowBlock`], ready for [`Store::ingest_rows`].
#[derive(Debug)]
pub struct BuiltRows {
    table: TableId,
    lsn: Lsn,
    rows: u32,
    files: Vec<(&'static str, PathBuf)>,
}

impl Drop for BuiltRows {
    fn drop(&mut self) {
        // Files not ingested (an error on the way) are not left behind.
        for (_, path) in &self.files {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl BulkRows {
    /// Whether a table can be loaded in bulk: its identity is a unique key.
    pub fn accepts(schema: &TableSchema) -> bool {
        matches!(
            schema.replica_identity,
            ReplicaIdentity::Default | ReplicaIdentity::Index
        ) && !schema.counts_copies()
            && schema.columns.iter().any(|c| c.is_key)
    }

    /// The table's width.
    pub fn width(&self) -> usize {
        self.schema.columns.len()
    }

    /// Writes the `versions` and `latest` files of `block`. Blocks of one
    /// table may be built in any order and on any thread.
    pub fn build(&self, block: &RowBlock) -> Result<BuiltRows> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut built = BuiltRows {
            table: self.table,
            lsn: self.lsn,
            rows: u32::try_from(block.len()).map_err(|_| StoreError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other("more than 2^32 rows in one block"),
            })?,
            files: Vec::with_capacity(FAMILIES.len()),
        };
        if block.is_empty() {
            return Ok(built);
        }
        let rows: Vec<&[u8]> = block.rows().collect();
        let paths = FAMILIES.map(|name| self.dir.join(format!("{n}-{name}.sst")));
        // Listed first, so whatever was written is removed on an error.
        built.files.extend(FAMILIES.into_iter().zip(paths.iter().cloned()));
        let [versions_path, latest_path] = &paths;
        let sorted = self.sorted_keys(&rows)?;
        // The small `latest` file is written beside the `versions` file.
        let (latest, versions) = std::thread::scope(|s| {
            let latest = s.spawn(|| self.write_latest(latest_path, &sorted));
            let versions = self.write_versions(versions_path, &rows, &sorted);
            (latest.join(), versions)
        });
        latest.map_err(|_| StoreError::Io {
            path: latest_path.clone(),
            source: std::io::Error::other("the thread writing the latest file panicked"),
        })??;
        versions?;
        Ok(built)
    }

    /// Each row's key, and the rows' order by key.
    fn sorted_keys(&self, rows: &[&[u8]]) -> Result<SortedKeys> {
        // Keys of all rows back to back, and each row's key span.
        let mut keys_buf = Vec::with_capacity(rows.len() * 16);
        let mut spans = Vec::with_capacity(rows.len());
        let mut refs: Vec<DatumRef<'_>> = Vec::with_capacity(self.width());
        let mut key = Vec::new();
        for row in rows {
            let mut pos = 0;
            codec::decode_row_into(row, &mut pos, &mut refs).map_err(StoreError::corrupt(cf::VERSIONS))?;
            keys::row_key_of_refs_into(&mut key, self.table, &self.schema, &refs);
            spans.push((keys_buf.len(), key.len()));
            keys_buf.extend_from_slice(&key);
        }
        let sorted = SortedKeys {
            order: Vec::new(),
            keys_buf,
            spans,
        };
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_unstable_by(|a, b| sorted.key(*a).cmp(sorted.key(*b)));
        if order
            .windows(2)
            .any(|w| matches!(w, [a, b] if sorted.key(*a) == sorted.key(*b)))
        {
            return Err(StoreError::DuplicateKey { table: self.table });
        }
        Ok(SortedKeys { order, ..sorted })
    }

    /// The version value of `row`: `PUT | schema version | row`.
    fn version_into(&self, out: &mut Vec<u8>, row: &[u8]) {
        out.clear();
        out.push(version_tag::PUT);
        codec::put_varint(out, u64::from(self.version.0));
        out.extend_from_slice(row);
    }

    /// The rows' `versions` entries, in key order.
    fn write_versions(&self, path: &Path, rows: &[&[u8]], sorted: &SortedKeys) -> Result<()> {
        let mut w = SstFileWriter::create(&self.options[0]);
        w.open(path)?;
        let (mut vkey, mut value) = (Vec::new(), Vec::new());
        for &i in &sorted.order {
            self.version_into(&mut value, rows.get(i).copied().unwrap_or_default());
            keys::encode_version_key_into(&mut vkey, sorted.key(i), self.lsn);
            w.put(&vkey, &value)?;
        }
        w.finish()?;
        Ok(())
    }

    /// The rows' `latest` entries, in key order: each refers to the row's
    /// `versions` entry, so the row is stored once.
    fn write_latest(&self, path: &Path, sorted: &SortedKeys) -> Result<()> {
        let mut w = SstFileWriter::create(&self.options[1]);
        w.open(path)?;
        let mut latest = Vec::new();
        codec::encode_latest_ref_into(&mut latest, self.lsn);
        for &i in &sorted.order {
            w.put(sorted.key(i), &latest)?;
        }
        w.finish()?;
        Ok(())
    }
}

/// The keys of a block's rows and their order.
struct SortedKeys {
    /// Row indexes in key order.
    order: Vec<usize>,
    keys_buf: Vec<u8>,
    /// Each row's key as a span of `keys_buf`.
    spans: Vec<(usize, usize)>,
}

impl SortedKeys {
    fn key(&self, i: usize) -> &[u8] {
        let (at, len) = self.spans.get(i).copied().unwrap_or_default();
        self.keys_buf.get(at..at + len).unwrap_or_default()
    }
}

/// A table being loaded in bulk inside a spilled transaction.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BulkLoad {
    /// Rows ingested so far.
    pub(super) rows: u32,
    /// Whether its log marker is written (no more rows can follow).
    pub(super) marked: bool,
}

impl Store {
    /// A builder for the rows of `table` read in full inside the spilled
    /// transaction `sp` (after its `ReadStart` was spilled). Check
    /// [`BulkRows::accepts`] on the table's schema first.
    pub fn bulk_rows(&self, sp: &SpillTxn, table: TableId) -> Result<BulkRows> {
        self.check_writable()?;
        let v = sp
            .pending
            .current_version(&self.catalog, table)
            .ok_or(StoreError::NoSchema(table))?;
        let schema = v.schema().ok_or(StoreError::NoSchema(table))?.clone();
        if !BulkRows::accepts(&schema) {
            return Err(StoreError::NoUniqueKey { table });
        }
        let dir = self.path.join(BULK_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        // Small private cache: the options only shape the files.
        let cache = Cache::new_lru_cache(1 << 20);
        let options = FAMILIES.map(|name| cf_options(name, &cache));
        Ok(BulkRows {
            table,
            schema,
            version: v.version,
            lsn: sp.lsn(),
            dir,
            options,
        })
    }

    /// Moves the files of `built` into the store as part of `sp`. Nothing
    /// becomes visible before the transaction is finished. Blocks of one
    /// table may arrive in any order, interleaved with other tables' blocks
    /// and spilled chunks, until [`Store::finish_bulk`] ends the table.
    pub fn ingest_rows(&mut self, sp: &mut SpillTxn, mut built: BuiltRows) -> Result<()> {
        self.check_writable()?;
        if sp.skip || built.files.is_empty() {
            return Ok(());
        }
        if built.lsn != sp.lsn() {
            return Err(StoreError::OutOfOrder { lsn: built.lsn });
        }
        let load = sp.bulk.get(&built.table).copied().unwrap_or_default();
        if load.marked {
            return Err(StoreError::BulkLoadedTableChanged { table: built.table });
        }
        if sp.inflight.tables.insert(built.table) {
            // Durable before any file lands: a crash must find the marker.
            let mut batch = rocksdb::WriteBatch::default();
            batch.put_cf(self.cf(cf::META)?, keys::meta::INFLIGHT, meta::encode(&sp.inflight));
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            if let Err(e) = self.db.write_opt(batch, &wo) {
                self.poisoned = true;
                return Err(e.into());
            }
        }
        let mut io = IngestExternalFileOptions::default();
        io.set_move_files(true);
        // Each file leaves `built` as it lands; on an error, dropping
        // `built` removes the ones that did not.
        while !built.files.is_empty() {
            let (name, path) = built.files.remove(0);
            let cf = self.cf(name)?;
            if let Err(e) = self.db.ingest_external_file_cf_opts(cf, &io, vec![path.clone()]) {
                let _ = std::fs::remove_file(&path);
                self.poisoned = true;
                return Err(e.into());
            }
        }
        sp.bulk.insert(
            built.table,
            BulkLoad {
                rows: load.rows.saturating_add(built.rows),
                marked: false,
            },
        );
        Ok(())
    }

    /// Ends the bulk load of `table` in `sp`: its rows take the next log
    /// ordinals, under one marker. Nothing happens when none was ingested.
    /// [`Store::finish_spill`] ends the loads still open.
    pub fn finish_bulk(&mut self, sp: &mut SpillTxn, table: TableId) -> Result<()> {
        self.check_writable()?;
        let lsn = sp.lsn();
        let Some(load) = sp.bulk.get_mut(&table) else {
            return Ok(());
        };
        if sp.skip || load.marked {
            return Ok(());
        }
        let first = sp.next_ordinal;
        let marker = meta::BulkReads { table, rows: load.rows };
        // Not synced: the in-flight marker, synced before the first file
        // landed, has the whole transaction removed after a crash.
        if let Err(e) = self
            .db
            .put_cf(self.cf(cf::LOG)?, keys::encode_log_key(lsn, first), marker.encode())
        {
            self.poisoned = true;
            return Err(e.into());
        }
        load.marked = true;
        sp.next_ordinal = first.saturating_add(load.rows);
        Ok(())
    }
}
