//! Copied rows loaded in bulk: a thread sorts each block of encoded rows
//! and writes its files ([`changelog::BulkRows`]) while the readers parse
//! the next ones; the copy ingests what is built. Blocks of any table, in
//! any order; at most one waits for the thread, so memory does not grow
//! with the table.

use std::sync::Arc;

use changelog::{BuiltRows, BulkRows, RowBlock, StoreError};
use tokio::sync::mpsc;

use crate::error::{CaptureError, Result};

/// A block's files, or why they could not be built; with the table's
/// index in the copy and the emptied block.
pub(crate) type Built = (usize, std::result::Result<BuiltRows, StoreError>, RowBlock);

type Job = (Arc<BulkRows>, usize, RowBlock);

/// The thread building files; see the module docs.
pub(crate) struct Builder {
    jobs: Option<mpsc::Sender<Job>>,
    built: mpsc::UnboundedReceiver<Built>,
    /// Blocks sent and not yet received back.
    in_flight: usize,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Builder {
    /// Starts the thread.
    pub(crate) fn start() -> Result<Builder> {
        let (jobs, mut rx) = mpsc::channel::<Job>(1);
        let (done, built) = mpsc::unbounded_channel::<Built>();
        let thread = std::thread::Builder::new()
            .name("asof-copy-build".into())
            .spawn(move || {
                while let Some((rows, table, mut block)) = rx.blocking_recv() {
                    let result = rows.build(&block);
                    block.clear();
                    let failed = result.is_err();
                    // A closed receiver means the copy gave up; files of an
                    // unsent result are removed as it drops.
                    if done.send((table, result, block)).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(CaptureError::CopyThread)?;
        Ok(Builder {
            jobs: Some(jobs),
            built,
            in_flight: 0,
            thread: Some(thread),
        })
    }

    /// Hands a block of the table at `table` (loaded by `rows`) to the
    /// thread, waiting while it is busy with another.
    pub(crate) async fn send(&mut self, rows: Arc<BulkRows>, table: usize, block: RowBlock) -> Result<()> {
        let jobs = self.jobs.as_ref().ok_or_else(builder_gone)?;
        jobs.send((rows, table, block)).await.map_err(|_| builder_gone())?;
        self.in_flight += 1;
        Ok(())
    }

    /// Blocks sent and not yet received back.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The next block built; waits forever when none is in flight (for use
    /// in `select!` beside other sources).
    pub(crate) async fn recv(&mut self) -> Result<Built> {
        if self.in_flight == 0 {
            std::future::pending::<()>().await;
        }
        let built = self.built.recv().await.ok_or_else(builder_gone)?;
        self.in_flight -= 1;
        Ok(built)
    }

    /// Stops the thread once its work is done.
    pub(crate) fn finish(mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The builder thread ended before its work was done (it panicked).
fn builder_gone() -> CaptureError {
    CaptureError::CopyThread(std::io::Error::other("it stopped before building every block"))
}
