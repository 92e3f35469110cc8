//! Directories inside the store for files a writing process needs only
//! while it runs: emptied whenever the store is opened for writing, so
//! nothing a killed process left there survives it.

use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};
use crate::store::Store;

/// Files the capture keeps for itself, such as the changes of a
/// transaction the source streams before it ends.
const SCRATCH_DIR: &str = "scratch";

impl Store {
    /// Where to put files this process needs only while it runs: emptied
    /// at the next open for writing, and created by whoever first needs it.
    /// Inside the store, so such files take space where the store does, not
    /// in a temporary file system that may live in memory.
    pub fn scratch_dir(&self) -> Result<PathBuf> {
        self.check_writable()?;
        Ok(self.path.join(SCRATCH_DIR))
    }
}

/// Empties the scratch directories of the store at `store`.
pub(super) fn clear(store: &Path) -> Result<()> {
    remove_dir(&store.join(SCRATCH_DIR))?;
    remove_dir(&store.join(super::bulk::BULK_DIR))
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}
