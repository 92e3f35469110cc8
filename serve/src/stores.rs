//! Read-only views of the store that follow its writer.
//!
//! Catching up with the writer (a RocksDB secondary's catch-up) takes
//! milliseconds, too long to pay before every query, and needs the only
//! handle to a view while running queries hold theirs. So a few views are
//! kept: one that nobody uses is caught up and then becomes current. A
//! view refreshed within [`FRESH`] is used as it is; one up to [`STALE`]
//! old is used while another catches up in the background; an older one
//! is caught up before the query runs. A view is never changed under a
//! running query. When the writer's append-only files (write-ahead logs,
//! manifest) are as they were at the last catch-up, there is nothing to
//! catch up with and the view counts as refreshed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use changelog::{Store, StoreError};

/// A view refreshed this recently is used without catching up.
pub const FRESH: Duration = Duration::from_millis(20);

/// A view older than this is caught up before a query at `now` runs.
pub const STALE: Duration = Duration::from_millis(200);

/// Idle views kept beyond the current one; more are closed.
const IDLE_KEPT: usize = 2;

/// The store's views.
#[derive(Debug)]
pub struct Stores {
    path: PathBuf,
    pool: Mutex<Pool>,
    /// Held while a view catches up, so catch-ups do not pile up.
    catching_up: Mutex<()>,
    /// A background catch-up is under way.
    in_background: AtomicBool,
}

#[derive(Debug)]
struct Pool {
    current: Arc<Store>,
    /// When the current view started catching up.
    refreshed_at: Instant,
    /// The writer's files as the current view's catch-up began.
    files: Option<Files>,
    idle: Vec<Arc<Store>>,
}

/// The names and sizes of the files a catch-up reads (write-ahead logs,
/// manifests, `CURRENT`). They are only ever appended to or added, so the
/// same list means the writer wrote nothing since.
type Files = Vec<(std::ffi::OsString, u64)>;

fn writer_files(path: &Path) -> Option<Files> {
    let mut files: Files = std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name();
            let s = name.to_str()?;
            let read = s.ends_with(".log") || s.starts_with("MANIFEST-") || s == "CURRENT";
            read.then(|| Some((name.clone(), e.metadata().ok()?.len())))?
        })
        .collect();
    files.sort();
    Some(files)
}

impl Stores {
    /// Opens the store at `path` read-only, beside any writer.
    pub fn open(path: &Path) -> Result<Stores, StoreError> {
        let current = Arc::new(Store::open_read_only(path)?);
        Ok(Stores {
            path: path.to_path_buf(),
            pool: Mutex::new(Pool {
                current,
                refreshed_at: Instant::now(),
                files: None,
                idle: Vec::new(),
            }),
            catching_up: Mutex::new(()),
            in_background: AtomicBool::new(false),
        })
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A view caught up with the writer at most [`STALE`] ago (usually
    /// within [`FRESH`] plus one catch-up under steady queries).
    pub fn fresh(self: &Arc<Self>) -> Result<Arc<Store>, StoreError> {
        let (current, age) = {
            let pool = self.pool();
            (pool.current.clone(), pool.refreshed_at.elapsed())
        };
        if age < FRESH {
            return Ok(current);
        }
        if self.unchanged() {
            return Ok(current);
        }
        if age < STALE {
            if !self.in_background.swap(true, Ordering::AcqRel) {
                let stores = Arc::clone(self);
                std::thread::spawn(move || {
                    if let Err(e) = stores.catch_up(FRESH) {
                        tracing::warn!("catching up with the store's writer failed: {e}");
                    }
                    stores.in_background.store(false, Ordering::Release);
                });
            }
            return Ok(current);
        }
        self.catch_up(STALE)?;
        Ok(self.pool().current.clone())
    }

    /// True, and the current view counts as refreshed, when the writer's
    /// files are as they were at its catch-up.
    fn unchanged(&self) -> bool {
        let now = Instant::now();
        let files = writer_files(&self.path);
        let mut pool = self.pool();
        if files.is_some() && files == pool.files {
            pool.refreshed_at = now;
            return true;
        }
        false
    }

    /// Makes a view caught up now the current one, unless one caught up
    /// within `unless_within` already is (another caller got there first).
    fn catch_up(&self, unless_within: Duration) -> Result<(), StoreError> {
        let _one_at_a_time = self.catching_up.lock().unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        // Listed before the catch-up: anything written after the listing is
        // caught up next time.
        let files = writer_files(&self.path);
        let spare = {
            let mut pool = self.pool();
            if pool.refreshed_at.elapsed() < unless_within {
                return Ok(());
            }
            let free = pool.idle.iter_mut().position(|s| Arc::get_mut(s).is_some());
            free.map(|i| pool.idle.swap_remove(i))
        };
        let next = match spare {
            Some(mut store) => {
                if let Some(s) = Arc::get_mut(&mut store) {
                    s.refresh()?;
                }
                store
            }
            None => Arc::new(Store::open_read_only(&self.path)?),
        };
        let mut pool = self.pool();
        let previous = std::mem::replace(&mut pool.current, next);
        pool.refreshed_at = started;
        pool.files = files;
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
        Ok(())
    }
}
