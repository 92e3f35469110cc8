//! The RocksDB-backed store: opening, options and durability.

mod append;
mod batch;
mod bulk;
pub use bulk::{BuiltRows, BulkRows, RowBlock};
pub mod catalog;
mod compact;
mod image;
pub use compact::CompactStats;
pub use image::{ImageInfo, RunInfo, WrittenImage};
mod integrity;
mod log_rows;
pub mod meta;
mod open;
mod read;
mod reader_dir;
mod sample;
mod scratch;
mod settle;
pub use settle::Settled;
mod spill;
mod table_read;
pub use table_read::TableRead;
mod versions_walk;
mod window;
pub use versions_walk::HistoryWalk;

use std::path::{Path, PathBuf};

use rocksdb::DB;

use crate::error::{Result, StoreError};
use crate::ids::{TableId, TableName};
use crate::lsn::Lsn;

pub use append::AppendOutcome;
pub use catalog::{Catalog, TableEntry};
pub use meta::{CommitEntry, FollowPosition, ResetKind, SourceInfo, Watermark, FORMAT_VERSION, OLDEST_FORMAT};
pub use read::{LogEntry, StoredVersion, VersionState};
pub use spill::SpillTxn;

/// What an acknowledged append survives.
///
/// The capture acknowledges a transaction to Postgres only after its append
/// returned, so this is exactly the guarantee the slot's confirmed position
/// carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Durability {
    /// The write-ahead log is fsynced before `append` returns: the
    /// transaction survives a process crash and a power loss.
    #[default]
    Sync,
    /// Written to the operating system before `append` returns: survives a
    /// process crash, not a power loss or kernel crash. For tests and bulk
    /// loads only.
    Buffered,
}

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Create the store when the directory does not hold one.
    pub create_if_missing: bool,
    /// Write durability.
    pub durability: Durability,
    /// Block cache size in bytes (shared by all families).
    pub cache_bytes: usize,
    /// Write-ahead log bytes past which the engine flushes the memtables
    /// that hold its oldest file. It bounds what recovery after a crash, and
    /// a reader opening beside the writer, replays.
    pub wal_limit_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            create_if_missing: false,
            durability: Durability::Sync,
            cache_bytes: 256 << 20,
            wal_limit_bytes: 128 << 20,
        }
    }
}

/// Whether this handle may write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// The single writer (holds RocksDB's lock).
    ReadWrite,
    /// A reader beside a possibly running writer (a RocksDB secondary
    /// instance); sees the state as of open or the last [`Store::refresh`].
    ReadOnly,
    /// A reader of the store as it stood when opened (a RocksDB read-only
    /// instance), beside a possibly running writer; cannot
    /// [`Store::refresh`].
    Fixed,
}

/// The change log store. See the crate docs for what it guarantees.
pub struct Store {
    db: DB,
    path: PathBuf,
    access: Access,
    durability: Durability,
    catalog: Catalog,
    watermark: Option<Watermark>,
    horizon: Option<Lsn>,
    compacted: Option<Lsn>,
    scanned: Lsn,
    first_commit: Option<Lsn>,
    poisoned: bool,
    history_walk: HistoryWalk,
    /// Bytes of change batches this handle has written: what a stopping
    /// writer weighs tidying `latest` against.
    written: u64,
    /// A secondary instance's own directory, kept while it lives.
    _reader_dir: Option<reader_dir::ReaderDir>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("access", &self.access)
            .field("watermark", &self.watermark)
            .field("horizon", &self.horizon)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or with `create_if_missing`, creates) the store for writing.
    /// Fails with [`StoreError::InUse`] when another process writes it.
    pub fn open(path: impl AsRef<Path>, opts: &StoreOptions) -> Result<Store> {
        open::open_writer(path.as_ref(), opts)
    }

    /// Opens an existing store for reading, alongside a writer that may be
    /// running. Never blocks or disturbs the writer.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        open::open_reader(path.as_ref(), &StoreOptions::default())
    }

    /// Opens an existing store for reading as it stands, alongside a writer
    /// that may be running: for a read that does not need to follow the
    /// writer, at half the start-up cost of [`Store::open_read_only`].
    /// [`Store::refresh`] refuses such a handle.
    pub fn open_fixed(path: impl AsRef<Path>) -> Result<Store> {
        open::open_fixed(path.as_ref(), &StoreOptions::default())
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read-write or read-only.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The last durable transaction, or `None` for an empty store.
    pub fn watermark(&self) -> Option<Watermark> {
        self.watermark
    }

    /// The LSN up to which the source confirmed the log complete; at least
    /// the watermark's end LSN, and further when the server was idle.
    pub fn scanned_through(&self) -> Lsn {
        self.scanned.max(self.watermark.map_or(Lsn::ZERO, |w| w.end_lsn))
    }

    /// The retention horizon: no answers before it.
    pub fn horizon(&self) -> Option<Lsn> {
        self.horizon
    }

    /// The first commit still in the store (at or after the horizon).
    pub fn first_commit_lsn(&self) -> Option<Lsn> {
        self.first_commit
    }

    /// The table catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The id of a live table by name, assigning a fresh one for a new name.
    /// A fresh id is only persisted once a schema record for it is appended.
    pub fn table_id_for(&mut self, name: &TableName) -> TableId {
        if let Some(id) = self.catalog.live_table(name) {
            return id;
        }
        let id = TableId(self.catalog.next_table_id());
        self.catalog.next_table = id.0 + 1;
        // Reserve the name so a second call before the append agrees.
        self.catalog.live_names.insert(name.clone(), id);
        id
    }

    /// Source metadata, if the capture recorded any.
    pub fn source_info(&self) -> Result<Option<SourceInfo>> {
        let cf = self.cf(crate::keys::cf::META)?;
        match self.db.get_cf(cf, crate::keys::meta::SOURCE)? {
            Some(b) => Ok(Some(meta::decode(crate::keys::cf::META, &b)?)),
            None => Ok(None),
        }
    }

    /// How far this store has read the upstream log it follows, if it is
    /// a follower.
    pub fn follow_position(&self) -> Result<Option<FollowPosition>> {
        let cf = self.cf(crate::keys::cf::META)?;
        match self.db.get_cf(cf, crate::keys::meta::FOLLOW)? {
            Some(b) => Ok(Some(meta::decode(crate::keys::cf::META, &b)?)),
            None => Ok(None),
        }
    }

    /// Writes a batch that holds no transaction, synced.
    pub(crate) fn write_synced(&mut self, batch: rocksdb::WriteBatch) -> Result<()> {
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.durability == Durability::Sync);
        if let Err(e) = self.db.write_opt(batch, &wo) {
            self.poisoned = true;
            return Err(e.into());
        }
        Ok(())
    }

    /// Records source metadata (durably).
    pub fn set_source_info(&mut self, info: &SourceInfo) -> Result<()> {
        self.check_writable()?;
        let cf = self.cf(crate::keys::cf::META)?;
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db
            .put_cf_opt(cf, crate::keys::meta::SOURCE, meta::encode(info), &wo)?;
        Ok(())
    }

    /// Records, durably, that the source confirmed the log complete up to
    /// `lsn` (no transaction between the watermark and `lsn` touched a
    /// captured table). Synced because the capture acknowledges `lsn` to
    /// the server right after, and on restart a slot confirmed beyond what
    /// the store knows would look like a gap.
    pub fn note_scanned(&mut self, lsn: Lsn) -> Result<()> {
        self.check_writable()?;
        if lsn <= self.scanned {
            return Ok(());
        }
        let cf = self.cf(crate::keys::cf::META)?;
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db
            .put_cf_opt(cf, crate::keys::meta::SCANNED, crate::keys::encode_lsn(lsn), &wo)?;
        self.scanned = lsn;
        Ok(())
    }

    /// For a read-only handle: catch up with the writer and reload metadata.
    /// A handle opened with [`Store::open_fixed`] cannot.
    pub fn refresh(&mut self) -> Result<()> {
        match self.access {
            Access::ReadOnly => self.db.try_catch_up_with_primary()?,
            Access::Fixed => return Err(StoreError::Fixed),
            Access::ReadWrite => {}
        }
        open::load_state(self)
    }

    /// Flushes memtables to disk (used before measuring size), and lets
    /// the write-ahead log files they came from go.
    pub fn flush(&self) -> Result<()> {
        self.flush_families()?;
        if self.wal_bytes()? == 0 || self.check_writable().is_err() {
            return Ok(());
        }
        // A family whose last flush the engine finished after it had begun
        // a newer log file, and which has had nothing written since, still
        // holds the older log alive, so a flush of everything can leave tens
        // of megabytes of log behind. Beginning a new log file moves every
        // empty family past the old ones: write one value back unchanged and
        // flush its family.
        let cf = self.cf(crate::keys::cf::META)?;
        if let Some(format) = self.db.get_cf(cf, crate::keys::meta::FORMAT)? {
            self.db.put_cf(cf, crate::keys::meta::FORMAT, format)?;
            self.db.flush_cf(cf)?;
        }
        Ok(())
    }

    fn flush_families(&self) -> Result<()> {
        for (_, cf) in self.families() {
            self.db.flush_cf(cf)?;
        }
        Ok(())
    }

    /// Flushes memtables when the write-ahead log has grown past what a
    /// reader replays in a moment, so readers opened later read table files
    /// instead; true when it flushed. A writer calls it as it stops.
    pub fn flush_for_readers(&self) -> Result<bool> {
        if self.wal_bytes()? < WAL_WORTH_FLUSHING {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Bytes of write-ahead log files, which a reader opening replays.
    fn wal_bytes(&self) -> Result<u64> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let mut total = 0;
        for e in std::fs::read_dir(&self.path).map_err(io)? {
            let e = e.map_err(io)?;
            if e.file_name().to_string_lossy().ends_with(".log") {
                total += e.metadata().map_err(io)?.len();
            }
        }
        Ok(total)
    }

    /// Bytes the store occupies on disk (live SST files plus WAL).
    pub fn disk_bytes(&self) -> Result<u64> {
        dir_size(&self.path)
    }

    /// The engine's own estimate of live data per family, for `status`.
    pub fn family_sizes(&self) -> Result<Vec<(&'static str, u64)>> {
        let mut out = Vec::new();
        for (name, cf) in self.families() {
            let sst = self
                .db
                .property_int_value_cf(cf, "rocksdb.total-sst-files-size")?
                .unwrap_or(0);
            let mem = self
                .db
                .property_int_value_cf(cf, "rocksdb.cur-size-all-mem-tables")?
                .unwrap_or(0);
            out.push((name, sst + mem));
        }
        Ok(out)
    }

    /// Compacts the engine's files (not the history; see [`Store::compact`]).
    pub fn compact_files(&self) -> Result<()> {
        for (_, cf) in self.families() {
            self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// The store's families (a store made before a family was added and
    /// opened only for reading lacks it).
    fn families(&self) -> impl Iterator<Item = (&'static str, &rocksdb::ColumnFamily)> {
        crate::keys::cf::ALL
            .into_iter()
            .filter_map(|name| self.db.cf_handle(name).map(|cf| (name, cf)))
    }

    fn cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| StoreError::CorruptMeta {
            cf: name,
            message: "column family missing".into(),
        })
    }

    fn check_writable(&self) -> Result<()> {
        if self.access != Access::ReadWrite {
            return Err(StoreError::ReadOnly);
        }
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        Ok(())
    }
}

/// Write-ahead log a reader replays in a few milliseconds: below it, a
/// stopping writer leaves the log as it is rather than write a table file
/// per family, each with its own syncs (about 2 ms apiece).
const WAL_WORTH_FLUSHING: u64 = 1 << 20;

fn dir_size(p: &Path) -> Result<u64> {
    let io = |source| StoreError::Io {
        path: p.to_path_buf(),
        source,
    };
    let mut total = 0;
    for e in std::fs::read_dir(p).map_err(io)? {
        let e = e.map_err(io)?;
        let md = e.metadata().map_err(io)?;
        if md.is_dir() {
            total += dir_size(&e.path())?;
        } else {
            total += md.len();
        }
    }
    Ok(total)
}
