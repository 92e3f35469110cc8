//! Opening a store: engine options, the format check, loading metadata.

use std::path::Path;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Options, DB};

use crate::error::{Result, StoreError};
use crate::keys::{self, cf};
use crate::lsn::Lsn;
use crate::schema::{SchemaHistory, SchemaVersion};
use crate::store::catalog::{Catalog, TableEntry};
use crate::store::integrity;
use crate::store::meta::{self, ResetKind, Watermark, FORMAT_VERSION, OLDEST_FORMAT};
use crate::store::reader_dir::ReaderDir;
use crate::store::{Access, HistoryWalk, Store, StoreOptions};

fn db_options(opts: &StoreOptions) -> Options {
    let mut o = Options::default();
    o.create_if_missing(opts.create_if_missing);
    o.create_missing_column_families(opts.create_if_missing);
    // One flush and two compactions at a time: with one, `latest` waited
    // behind the large compactions of `versions` and `log`, and a long
    // catch-up left it in four or five overlapping runs that every read at
    // `now` merges. The capture's time did not change.
    o.set_max_background_jobs(3);
    o.set_bytes_per_sync(1 << 20);
    // Many small sync writes: let RocksDB batch concurrent writers.
    o.set_enable_pipelined_write(true);
    o.set_keep_log_file_num(4);
    o.set_max_total_wal_size(opts.wal_limit_bytes);
    o.set_max_file_opening_threads(FILE_OPENING_THREADS);
    o
}

/// Threads the engine opens table files with at start-up. It starts this
/// many less one for every family, whether or not the family has files: at
/// the default of 16, opening a store for one query made and joined some
/// 330 threads, several tens of milliseconds. One table file opens in
/// microseconds, so the calling thread opens them all.
pub(super) const FILE_OPENING_THREADS: i32 = 1;

/// A family's engine options; files loaded in bulk are built with them too.
pub(super) fn cf_options(name: &str, cache: &Cache) -> Options {
    let mut o = Options::default();
    let mut t = BlockBasedOptions::default();
    t.set_block_cache(cache);
    t.set_block_size(16 << 10);
    t.set_cache_index_and_filter_blocks(true);
    t.set_format_version(5);
    if name == cf::VERSIONS || name == cf::LOG {
        o.set_write_buffer_size(64 << 20);
        o.set_target_file_size_base(64 << 20);
        o.set_max_bytes_for_level_base(256 << 20);
    }
    if name == cf::LATEST {
        // Small beside the other two, and read whole at `now`: merged into
        // the base as soon as two flushed runs sit on it.
        o.set_level_zero_file_num_compaction_trigger(2);
    }
    if name == cf::VERSIONS || name == cf::LATEST || name == cf::IMAGES {
        // Point look-ups seek by key prefix; a whole-key bloom filter would
        // never match (the suffix varies), so none is configured. LZ4 at
        // every level, the bottom included: whole-table reads decompress
        // these blocks, and a read at a past cut touches nearly every block
        // of a deep history. zstd there made such a read ~1.5x slower
        // for ~1.5x less disk; the log (zstd) is the compact copy. A base
        // image exists only to be read whole; zstd made it half the bytes
        // and a fifth more instructions for the whole query reading it.
        o.set_compression_type(DBCompressionType::Lz4);
        o.set_bottommost_compression_type(DBCompressionType::Lz4);
    } else {
        o.set_compression_type(DBCompressionType::Zstd);
    }
    o.set_block_based_table_factory(&t);
    o
}

fn descriptors(opts: &StoreOptions) -> Vec<ColumnFamilyDescriptor> {
    descriptors_of(opts, &cf::ALL)
}

fn descriptors_of(opts: &StoreOptions, names: &[&str]) -> Vec<ColumnFamilyDescriptor> {
    let cache = Cache::new_lru_cache(opts.cache_bytes);
    names
        .iter()
        .map(|n| ColumnFamilyDescriptor::new(*n, cf_options(n, &cache)))
        .collect()
}

/// Families added after stores were first made: a store made before has
/// none, gets it when opened for writing, and is read without it.
const ADDED: [&str; 1] = [cf::IMAGES];

/// The families of the store at `path` that this version knows: all of
/// them, less those added since the store was made.
pub(super) fn present_families(path: &Path) -> Vec<&'static str> {
    let present = DB::list_cf(&Options::default(), path).unwrap_or_default();
    cf::ALL
        .iter()
        .copied()
        .filter(|n| !ADDED.contains(n) || present.iter().any(|p| p == n))
        .collect()
}

fn existing_descriptors(path: &Path, opts: &StoreOptions) -> Vec<ColumnFamilyDescriptor> {
    descriptors_of(opts, &present_families(path))
}

fn looks_like_rocksdb(path: &Path) -> Result<bool> {
    if path.join("CURRENT").is_file() {
        return Ok(true);
    }
    if integrity::has_engine_files(path) {
        return Err(integrity::damaged(path, "its CURRENT file is missing".into()));
    }
    Ok(false)
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map(|mut d| d.next().is_none()).unwrap_or(false)
}

/// Why there is no store at `path` (which holds no RocksDB database): it
/// holds something else, or nothing.
fn no_store(path: &Path) -> StoreError {
    let path = path.to_path_buf();
    if path.exists() && !is_empty_dir(&path) {
        StoreError::NotAStore { path }
    } else {
        StoreError::NotFound { path }
    }
}

/// Creates a new store at `path` (absent or an empty directory) all at
/// once: built beside it under a staging name and renamed into place, so
/// a process killed while creating leaves either no store or a whole one,
/// never a database without its format.
fn create(path: &Path, opts: &StoreOptions) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let name = path.file_name().ok_or_else(|| StoreError::NotFound {
        path: path.to_path_buf(),
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let mut staging_name = std::ffi::OsString::from(".");
    staging_name.push(name);
    staging_name.push(".creating");
    let staging = parent.join(staging_name);
    // What an interrupted creation left.
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    create_private_dir(&staging)?;
    {
        let db = DB::open_cf_descriptors(&db_options(opts), &staging, descriptors(opts))
            .map_err(|e| map_open_error(&staging, e))?;
        let fcf = db.cf_handle(cf::META).ok_or_else(|| StoreError::CorruptMeta {
            cf: cf::META,
            message: "column family missing".into(),
        })?;
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        db.put_cf_opt(fcf, keys::meta::FORMAT, FORMAT_VERSION.to_be_bytes(), &wo)?;
    }
    // Replaces an empty directory at `path`; then make the rename durable.
    std::fs::rename(&staging, path).map_err(io(path))?;
    std::fs::File::open(&parent)
        .and_then(|d| d.sync_all())
        .map_err(io(&parent))?;
    Ok(())
}

/// Creates the store's directory readable by its owner only: it holds a
/// copy of the source's data, which the source's grants no longer guard.
fn create_private_dir(path: &Path) -> Result<()> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

pub(super) fn open_writer(path: &Path, opts: &StoreOptions) -> Result<Store> {
    if !looks_like_rocksdb(path)? {
        let missing = no_store(path);
        if !opts.create_if_missing || matches!(missing, StoreError::NotAStore { .. }) {
            return Err(missing);
        }
        create(path, opts)?;
    }
    let db = DB::open_cf_descriptors(&db_options(opts), path, existing_descriptors(path, opts))
        .map_err(|e| map_open_error(path, e))?;
    integrity::check_writer(&db, path)?;
    let cache = Cache::new_lru_cache(opts.cache_bytes);
    let mut store = new_store(db, path, Access::ReadWrite, opts, None);
    if store.db.get_cf(store.cf(cf::META)?, keys::meta::FORMAT)?.is_none() {
        return Err(StoreError::NotAStore {
            path: path.to_path_buf(),
        });
    }
    check_format(&store)?;
    for name in ADDED {
        if store.db.cf_handle(name).is_none() {
            store.db.create_cf(name, &cf_options(name, &cache))?;
        }
    }
    load_state(&mut store)?;
    super::scratch::clear(path)?;
    store.recover_inflight()?;
    Ok(store)
}

/// Engine options of a reader: it opens every table file at start-up
/// (required for a secondary instance, and what keeps a read-only one
/// reading files the writer deletes later).
fn reader_options(opts: &StoreOptions) -> Options {
    let mut o = db_options(opts);
    o.create_if_missing(false);
    o.create_missing_column_families(false);
    o.set_max_open_files(-1);
    o
}

pub(super) fn open_reader(path: &Path, opts: &StoreOptions) -> Result<Store> {
    if !looks_like_rocksdb(path)? {
        return Err(no_store(path));
    }
    let scratch = ReaderDir::create()?;
    let o = reader_options(opts);
    let families = || existing_descriptors(path, opts);
    // The strict check and the reader's own open each read the manifest and
    // open every table file; they run side by side, and nothing is read
    // through the reader until the check has passed. A damaged store is
    // reported as damaged whatever the reader's open said.
    let (checked, opened) = std::thread::scope(|s| {
        let check = std::thread::Builder::new()
            .name("asof-check".into())
            .spawn_scoped(s, || integrity::open_strict(path, &o, families).map(drop));
        let opened = DB::open_cf_descriptors_as_secondary(&o, path, scratch.path(), families());
        let checked = match check {
            Ok(handle) => handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            // No thread to spare: check on this one.
            Err(_) => integrity::open_strict(path, &o, families).map(drop),
        };
        (checked, opened)
    });
    checked?;
    let db = opened.map_err(|e| map_open_error(path, e))?;
    finish_reader(db, path, Access::ReadOnly, opts, Some(scratch))
}

/// A reader of the store as it stands: the strict read-only handle itself,
/// with no secondary instance and no directory of its own. Half the work of
/// [`open_reader`] at start-up; it never sees what the writer adds later.
pub(super) fn open_fixed(path: &Path, opts: &StoreOptions) -> Result<Store> {
    if !looks_like_rocksdb(path)? {
        return Err(no_store(path));
    }
    let db = integrity::open_strict(path, &reader_options(opts), || existing_descriptors(path, opts))?;
    finish_reader(db, path, Access::Fixed, opts, None)
}

fn finish_reader(
    db: DB,
    path: &Path,
    access: Access,
    opts: &StoreOptions,
    scratch: Option<ReaderDir>,
) -> Result<Store> {
    let mut store = new_store(db, path, access, opts, scratch);
    if store.db.get_cf(store.cf(cf::META)?, keys::meta::FORMAT)?.is_none() {
        return Err(StoreError::NotAStore {
            path: path.to_path_buf(),
        });
    }
    check_format(&store)?;
    load_state(&mut store)?;
    Ok(store)
}

fn new_store(db: DB, path: &Path, access: Access, opts: &StoreOptions, scratch: Option<ReaderDir>) -> Store {
    Store {
        db,
        path: path.to_path_buf(),
        access,
        durability: opts.durability,
        catalog: Catalog::default(),
        watermark: None,
        horizon: None,
        compacted: None,
        scanned: Lsn::ZERO,
        written: 0,
        first_commit: None,
        poisoned: false,
        history_walk: HistoryWalk::default(),
        _reader_dir: scratch,
    }
}

pub(super) fn map_open_error(path: &Path, e: rocksdb::Error) -> StoreError {
    let msg = e.to_string();
    if msg.contains("lock") || msg.contains("LOCK") {
        StoreError::InUse {
            path: path.to_path_buf(),
        }
    } else if integrity::is_engine_damage(&e) {
        integrity::damaged(path, msg)
    } else if msg.contains("Invalid argument: Column famil") || msg.contains("does not exist") {
        StoreError::NotAStore {
            path: path.to_path_buf(),
        }
    } else {
        StoreError::Engine(e)
    }
}

fn check_format(store: &Store) -> Result<()> {
    // A missing format is as corrupt as a malformed one.
    let raw = store.db.get_cf(store.cf(cf::META)?, keys::meta::FORMAT)?;
    let found = decode_u32(raw.as_deref().unwrap_or_default(), "format version")?;
    if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&found) {
        return Err(StoreError::UnsupportedFormat {
            path: store.path.clone(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    if found < FORMAT_VERSION && store.access == Access::ReadWrite {
        // Before anything an older build could not read is written.
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        store.db.put_cf_opt(
            store.cf(cf::META)?,
            keys::meta::FORMAT,
            FORMAT_VERSION.to_be_bytes(),
            &wo,
        )?;
    }
    Ok(())
}

/// Reads and decodes one `meta` entry, if present.
fn meta_value<T>(store: &Store, key: &[u8], decode: impl FnOnce(&[u8]) -> Result<T>) -> Result<Option<T>> {
    match store.db.get_cf(store.cf(cf::META)?, key)? {
        Some(b) => decode(&b).map(Some),
        None => Ok(None),
    }
}

fn decode_u32(b: &[u8], what: &str) -> Result<u32> {
    <[u8; 4]>::try_from(b)
        .map(u32::from_be_bytes)
        .map_err(|_| StoreError::CorruptMeta {
            cf: cf::META,
            message: what.into(),
        })
}

fn decode_lsn(b: &[u8]) -> Result<Lsn> {
    keys::decode_lsn(b).map_err(StoreError::corrupt(cf::META))
}

/// (Re)loads watermark, horizon and catalog from disk.
pub(super) fn load_state(store: &mut Store) -> Result<()> {
    let watermark = meta_value(store, keys::meta::WATERMARK, |b| meta::decode::<Watermark>(cf::META, b))?;
    let horizon = meta_value(store, keys::meta::HORIZON, decode_lsn)?;
    let compacted = meta_value(store, keys::meta::COMPACTED, decode_lsn)?;
    let scanned = meta_value(store, keys::meta::SCANNED, decode_lsn)?.unwrap_or(Lsn::ZERO);
    let next_table = meta_value(store, keys::meta::NEXT_TABLE, |b| decode_u32(b, "next table id"))?.unwrap_or(0);

    let mut catalog = Catalog {
        next_table,
        ..Catalog::default()
    };
    let mut histories: std::collections::BTreeMap<_, Vec<SchemaVersion>> = Default::default();
    for item in store
        .db
        .iterator_cf(store.cf(cf::SCHEMAS)?, rocksdb::IteratorMode::Start)
    {
        let (_, v) = item?;
        let sv: SchemaVersion = meta::decode(cf::SCHEMAS, &v)?;
        histories.entry(sv.table).or_default().push(sv);
    }
    for (t, versions) in histories {
        catalog.tables.insert(
            t,
            TableEntry {
                history: SchemaHistory::new(versions),
                resets: Vec::new(),
            },
        );
    }
    for item in store
        .db
        .iterator_cf(store.cf(cf::RESETS)?, rocksdb::IteratorMode::Start)
    {
        let (k, v) = item?;
        let (t, lsn) = keys::decode_reset_key(&k).map_err(StoreError::corrupt(cf::RESETS))?;
        let kind: ResetKind = meta::decode(cf::RESETS, &v)?;
        catalog.tables.entry(t).or_default().resets.push((lsn, kind));
    }
    catalog.rebuild_names();
    store.catalog = catalog;
    store.watermark = watermark;
    store.horizon = horizon;
    store.compacted = compacted;
    store.scanned = scanned;

    let mut it = store.db.raw_iterator_cf(store.cf(cf::COMMITS)?);
    it.seek_to_first();
    store.first_commit = match it.key() {
        Some(k) => Some(keys::decode_lsn(k).map_err(StoreError::corrupt(cf::COMMITS))?),
        None => None,
    };
    it.status()?;
    Ok(())
}
