//! Telling a damaged store from an empty one.
//!
//! A read-only handle is a RocksDB secondary instance, and a secondary
//! tolerates table files that are missing or short: it must, because the
//! writer deletes files under it as it compacts, so it silently settles on
//! the newest state whose files it can all open, however old. Left alone, a
//! store that lost a file would answer as if the rows in it had never
//! existed. So a reader opens the store strictly (a plain read-only open,
//! which verifies the manifest against the files) and checks that each live
//! table file is on disk at its recorded size: a reader that follows the
//! writer does so before its secondary open, a reader of the store as it
//! stands reads through that strict handle itself. A writer checks its own
//! handle; and a directory that has the engine's files but no `CURRENT`
//! pointer is damage, not "not a store".

use std::path::Path;
use std::time::Duration;

use rocksdb::DB;

use crate::error::{Result, StoreError};

/// A reader racing the writer's compaction can see a file deleted after it
/// read the manifest; it looks again this many times before calling the
/// store damaged.
const RACE_RETRIES: usize = 5;
const RACE_PAUSE: Duration = Duration::from_millis(20);

/// The first live table file that is missing or not at its recorded size.
fn first_bad_file(db: &DB, path: &Path) -> Result<Option<String>> {
    for f in db.live_files()? {
        let file = path.join(f.name.trim_start_matches('/'));
        match std::fs::metadata(&file) {
            Ok(md) if md.len() == f.size as u64 => {}
            Ok(md) => {
                return Ok(Some(format!(
                    "{} is {} bytes, {} expected",
                    f.name.trim_start_matches('/'),
                    md.len(),
                    f.size
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Some(format!("{} is missing", f.name.trim_start_matches('/'))))
            }
            Err(source) => return Err(StoreError::Io { path: file, source }),
        }
    }
    Ok(None)
}

/// Checks a writer's live files. Its own background compaction, which may
/// start as soon as it opens, can delete a file between the listing and
/// the look at the disk; a file still listed on a fresh listing a moment
/// later is really gone.
pub(super) fn check_writer(db: &DB, path: &Path) -> Result<()> {
    let mut last = String::new();
    for attempt in 0..=RACE_RETRIES {
        if attempt > 0 {
            std::thread::sleep(RACE_PAUSE);
        }
        match first_bad_file(db, path)? {
            None => return Ok(()),
            Some(detail) => last = detail,
        }
    }
    Err(damaged(path, last))
}

/// Opens the store read-only and strictly: the engine checks the manifest
/// against the files as it opens, and every live table file must then be
/// on disk at its recorded size. A writer compacting at the same moment
/// can delete a file between the manifest read and the check, so a failure
/// is retried before it is called damage.
///
/// A read-only instance makes no info log and opens every table file as it
/// opens (`max_open_files` is -1 in `options`), so it reads the files it
/// listed even if the writer deletes them later.
pub(super) fn open_strict(
    path: &Path,
    options: &rocksdb::Options,
    families: impl Fn() -> Vec<rocksdb::ColumnFamilyDescriptor>,
) -> Result<DB> {
    let mut last = String::new();
    for attempt in 0..=RACE_RETRIES {
        if attempt > 0 {
            std::thread::sleep(RACE_PAUSE);
        }
        let db = match DB::open_cf_descriptors_read_only(options, path, families(), false) {
            Ok(db) => db,
            Err(e) if is_engine_damage(&e) => {
                last = e.to_string();
                continue;
            }
            Err(e) => return Err(super::open::map_open_error(path, e)),
        };
        match first_bad_file(&db, path)? {
            None => return Ok(db),
            Some(detail) => last = detail,
        }
    }
    Err(damaged(path, last))
}

/// True when the directory holds the engine's files (a manifest or table
/// files), so a missing `CURRENT` means damage rather than "not a store".
pub(super) fn has_engine_files(path: &Path) -> bool {
    let Ok(dir) = std::fs::read_dir(path) else {
        return false;
    };
    dir.filter_map(|e| e.ok()).any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.starts_with("MANIFEST-") || name.ends_with(".sst")
    })
}

/// The engine's own word, at open, that files are missing or corrupt.
pub(super) fn is_engine_damage(e: &rocksdb::Error) -> bool {
    match e.kind() {
        rocksdb::ErrorKind::Corruption => true,
        rocksdb::ErrorKind::IOError | rocksdb::ErrorKind::NotFound => e.to_string().contains("No such file"),
        _ => false,
    }
}

/// The error, with the engine's (sometimes multi-line) words on one line.
pub(super) fn damaged(path: &Path, detail: String) -> StoreError {
    let detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    StoreError::Damaged {
        path: path.to_path_buf(),
        detail: detail.trim_end_matches('.').to_string(),
    }
}
