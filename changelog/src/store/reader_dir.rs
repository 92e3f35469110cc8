//! The private directory of a read-only handle.
//!
//! A reader is a RocksDB secondary instance, which needs a directory of its
//! own for its log. It lives under the system's temporary directory and
//! goes when the handle drops; a reader that is killed cannot remove it, so
//! each directory holds a lock file its reader keeps locked, and opening a
//! reader removes the directories whose lock nobody holds any more. A lock
//! held by another host or namespace still counts, so no live reader loses
//! its directory.

use std::fs::File;
use std::path::Path;

use tempfile::TempDir;

use super::{Result, StoreError};

const PREFIX: &str = "asof-reader-";

/// Locked for as long as the reader lives; only ever present locked.
const LOCK: &str = "reader.lock";

/// A reader's directory, and the lock that shows it is in use.
#[derive(Debug)]
pub(crate) struct ReaderDir {
    // Dropped in this order: unlock, then remove.
    _lock: File,
    dir: TempDir,
}

impl ReaderDir {
    /// Removes the directories of readers that are gone, then makes one for
    /// this reader.
    pub(crate) fn create() -> Result<ReaderDir> {
        let parent = std::env::temp_dir();
        sweep(&parent);
        let io = |source| StoreError::Io {
            path: parent.clone(),
            source,
        };
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(&parent)
            .map_err(io)?;
        // Locked under another name first, so a sweep never sees the lock
        // file of a live reader unlocked.
        let staged = dir.path().join(format!("{LOCK}.new"));
        let lock = File::create(&staged).map_err(io)?;
        lock.lock().map_err(io)?;
        std::fs::rename(&staged, dir.path().join(LOCK)).map_err(io)?;
        Ok(ReaderDir { _lock: lock, dir })
    }

    /// Where the reader keeps its files.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes every reader directory under `parent` whose lock can be taken.
/// Best effort: anything it cannot read or remove is left as it is.
fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let dir = entry.path();
        let Ok(lock) = File::open(dir.join(LOCK)) else {
            // Being made, or not ours.
            continue;
        };
        if lock.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_or_abandoned_directory_goes_and_a_live_one_stays() {
        let live = ReaderDir::create().unwrap();
        let dropped = ReaderDir::create().unwrap();
        let dropped_path = dropped.path().to_path_buf();
        drop(dropped);
        assert!(!dropped_path.exists());

        // A reader that died: its directory and unlocked lock file remain.
        let dead = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(std::env::temp_dir())
            .unwrap()
            .keep();
        File::create(dead.join(LOCK)).unwrap();
        // One being made: no lock file yet.
        let making = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(std::env::temp_dir())
            .unwrap();

        let next = ReaderDir::create().unwrap();
        assert!(!dead.exists(), "an abandoned directory is removed");
        assert!(live.path().join(LOCK).exists(), "a live reader keeps its directory");
        assert!(making.path().exists(), "a directory without its lock is left alone");
        drop(next);
    }
}
