//! Copied rows loaded in bulk: threads sort blocks of encoded rows and
//! write their files ([`changelog::BulkRows`]) while the readers parse the
//! next ones; the copy ingests what is built. Blocks of any table, in any
//! order; at most one waits for a thread, so memory does not grow with the
//! table. There is one thread more than readers: when the readers are done,
//! the blocks still to build are built side by side instead of one after
//! the other on one core.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use changelog::{BuiltRows, BulkRows, RowBlock};
use tokio::sync::mpsc;

use crate::error::{CaptureError, Result};

/// A block's files, or why they could not be built; with the table's
/// index in the copy and the emptied block.
pub(crate) type Built = (usize, Result<BuiltRows>, RowBlock);

type Job = (Arc<BulkRows>, usize, RowBlock);

/// The threads building files; see the module docs.
pub(crate) struct Builder {
    jobs: Option<mpsc::Sender<Job>>,
    built: mpsc::UnboundedReceiver<Built>,
    /// Blocks sent and not yet received back.
    in_flight: usize,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Builder {
    /// Starts `threads` threads (at least one).
    pub(crate) fn start(threads: usize) -> Result<Builder> {
        let (jobs, rx) = mpsc::channel::<Job>(1);
        let rx = Arc::new(Mutex::new(rx));
        let (done, built) = mpsc::unbounded_channel::<Built>();
        let mut builder = Builder {
            jobs: Some(jobs),
            built,
            in_flight: 0,
            threads: Vec::with_capacity(threads.max(1)),
        };
        for _ in 0..threads.max(1) {
            let (rx, done) = (Arc::clone(&rx), done.clone());
            let thread = std::thread::Builder::new()
                .name("asof-copy-build".into())
                .spawn(move || build_blocks(&rx, &done))
                .map_err(CaptureError::CopyThread)?;
            builder.threads.push(thread);
        }
        Ok(builder)
    }

    /// Hands a block of the table at `table` (loaded by `rows`) to the
    /// threads, waiting while one is already waiting for a thread.
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

    /// Stops the threads once their work is done.
    pub(crate) fn finish(mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One thread's work: blocks until the copy stops sending or gives up.
fn build_blocks(jobs: &Mutex<mpsc::Receiver<Job>>, done: &mpsc::UnboundedSender<Built>) {
    loop {
        // One idle thread waits for the next block; the lock is released
        // before building.
        let job = match jobs.lock() {
            Ok(mut rx) => rx.blocking_recv(),
            Err(_) => return,
        };
        let Some((rows, table, mut block)) = job else { return };
        // A panic must reach the copy as an error: the other threads keep
        // the result channel open, so the copy would wait for it forever.
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| rows.build(&block))) {
            Ok(built) => built.map_err(CaptureError::from),
            Err(_) => Err(CaptureError::CopyThread(std::io::Error::other(
                "a thread building the copy's files panicked",
            ))),
        };
        block.clear();
        let failed = result.is_err();
        // A closed receiver means the copy gave up; files of an unsent
        // result are removed as it drops.
        if done.send((table, result, block)).is_err() || failed {
            return;
        }
    }
}

/// Every builder thread ended before the work was done (an error or a
/// panic each, reported in their results).
fn builder_gone() -> CaptureError {
    CaptureError::CopyThread(std::io::Error::other("it stopped before building every block"))
}
