//! Read-only views of the store that follow its writer.
//!
//! Catching up with the writer needs the only handle to a view, while
//! queries still running hold theirs; so a few views are kept, and the one
//! nobody uses is caught up and becomes current. A view is never changed
//! under a running query.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use changelog::{Store, StoreError};

/// Idle views kept beyond the current one; more are closed.
const IDLE_KEPT: usize = 2;

/// The store's views.
#[derive(Debug)]
pub struct Stores {
    path: PathBuf,
    pool: Mutex<Pool>,
}

#[derive(Debug)]
struct Pool {
    current: Arc<Store>,
    idle: Vec<Arc<Store>>,
}

impl Stores {
    /// Opens the store at `path` read-only, beside any writer.
    pub fn open(path: &Path) -> Result<Stores, StoreError> {
        let current = Arc::new(Store::open_read_only(path)?);
        Ok(Stores {
            path: path.to_path_buf(),
            pool: Mutex::new(Pool {
                current,
                idle: Vec::new(),
            }),
        })
    }

    /// A view caught up with everything the writer has made durable.
    pub fn fresh(&self) -> Result<Arc<Store>, StoreError> {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = Arc::get_mut(&mut pool.current) {
            store.refresh()?;
            return Ok(pool.current.clone());
        }
        let free = pool.idle.iter_mut().position(|s| Arc::get_mut(s).is_some());
        let mut next = match free {
            Some(i) => pool.idle.swap_remove(i),
            None => Arc::new(Store::open_read_only(&self.path)?),
        };
        if let Some(store) = Arc::get_mut(&mut next) {
            store.refresh()?;
        }
        let previous = std::mem::replace(&mut pool.current, next);
        pool.idle.push(previous);
        // Close views beyond the few kept that nobody uses any more.
        let mut free_seen = 0;
        pool.idle.retain(|s| {
            if Arc::strong_count(s) > 1 {
                return true;
            }
            free_seen += 1;
            free_seen <= IDLE_KEPT
        });
        Ok(pool.current.clone())
    }
}
