//! A capture running while a test changes the database, and the catch-up
//! that ends it.

use std::time::{Duration, Instant};

use cdc_source::{CaptureOptions, CaptureSummary, Until};
use changelog::Store;
use pg_fixture::PgCluster;

use crate::{collect, open_store, Notices};

/// How long a capture may take to start streaming and store its copy.
const START_LIMIT: Duration = Duration::from_secs(90);

/// A capture streaming into its own store.
pub struct Live {
    opts: CaptureOptions,
    dir: tempfile::TempDir,
    stop: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<cdc_source::Result<CaptureSummary>>,
}

impl Live {
    /// Starts capturing into a new store and returns once the slot streams
    /// and the initial copy is stored, so that whatever the test changes
    /// next comes after the copy.
    pub fn start(rt: &tokio::runtime::Runtime, pg: &PgCluster, opts: CaptureOptions, notices: &Notices) -> Live {
        let dir = tempfile::tempdir().expect("tempdir");
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut handle = rt.spawn(cdc_source::capture(
            open_store(dir.path()),
            opts.clone(),
            stop_rx,
            collect(notices),
        ));
        let active = format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{}' AND active",
            opts.slot
        );
        let start = Instant::now();
        let mut wait = |what: &str, done: &mut dyn FnMut() -> bool| {
            while !done() {
                if handle.is_finished() {
                    let _ = stop.send(true);
                    panic!("the capture stopped before {what}: {:?}", rt.block_on(&mut handle));
                }
                assert!(start.elapsed() < START_LIMIT, "gave up waiting for {what}");
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        wait("streaming", &mut || {
            pg.query_one_value(&active).ok().flatten().as_deref() == Some("1")
        });
        // The slot is active from its creation, while the copy still runs.
        wait("storing its initial copy", &mut || {
            Store::open_read_only(dir.path())
                .ok()
                .and_then(|s| s.watermark())
                .is_some()
        });
        Live {
            opts,
            dir,
            stop,
            handle,
        }
    }

    /// Stops the capture, catches up once more in a new session (a restart
    /// must accept everything the live capture recorded), and opens the
    /// store for reading; the directory lives as long as the store is used.
    pub fn finish(self, rt: &tokio::runtime::Runtime, notices: &Notices) -> (Store, tempfile::TempDir) {
        let _ = self.stop.send(true);
        rt.block_on(self.handle).expect("join").expect("live capture");
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let opts = CaptureOptions {
            until: Until::CaughtUp,
            ..self.opts
        };
        rt.block_on(cdc_source::capture(
            open_store(self.dir.path()),
            opts,
            rx,
            collect(notices),
        ))
        .expect("catch up");
        (Store::open_read_only(self.dir.path()).expect("open"), self.dir)
    }
}
