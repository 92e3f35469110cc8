//! The capture: [`capture`] runs sessions, reconnecting with backoff after
//! transient failures. Each session is set-up (`setup`: checks, slot and
//! publication, initial copy or a check of the resumed slot against the
//! store) and then the stream (`stream`: receive, assemble, hand to the
//! writer, acknowledge, keepalive).
//!
//! Exactly-once, step by step:
//! 1. Each committed transaction is appended to the store in one atomic,
//!    synced batch (several transactions may share a batch).
//! 2. Only then does the writer report its end LSN as durable, and only
//!    such reports move the flush position sent to the server. So the
//!    slot's confirmed position never passes what the store holds.
//! 3. On restart the stream resumes at the store's watermark; the server
//!    re-sends transactions after the slot's confirmed position, and the
//!    store skips any at or below its watermark by commit LSN.
//! 4. When idle, the server's keepalive position is first recorded durably
//!    in the store and then acknowledged, so WAL does not pile up and a
//!    restart never sees a slot confirmed beyond the store.
//! 5. A transaction too large for memory is spilled to the store in chunks
//!    as it arrives and becomes visible only at its commit; one cut off by
//!    a lost connection is removed and arrives again whole. One the server
//!    streams before it ends (`streaming`) is held in a scratch file until
//!    its commit, then stored like any other; a new session receives it
//!    again from its first block.
//! 6. With a stop position (`--until`), a transaction committing past it is
//!    not stored, and the capture stops once everything before it is
//!    durable and acknowledged.

mod backlog;
mod setup;
mod stream;
mod streamed;

use std::time::{Duration, Instant};

use changelog::{Lsn, Store, TableName};
use tokio::sync::watch;

use crate::conninfo::ConnInfo;
use crate::error::{CaptureError, Result};
use crate::relay::Relay;
use crate::sink::{Durable, Sink};
use crate::snapshot::CopyProgress;
use crate::writer::Writer;

pub use stream::SPILL_RECORDS;

/// When to stop capturing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Run until shut down.
    Forever,
    /// Stop once everything committed before the capture started is durable.
    CaughtUp,
    /// Stop once everything committed at or before this LSN is durable.
    Lsn(Lsn),
}

/// What to capture and how.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// The source.
    pub conninfo: ConnInfo,
    /// Replication slot name.
    pub slot: String,
    /// Publication name.
    pub publication: String,
    /// Tables for a new publication (empty: all tables).
    pub tables: Vec<TableName>,
    /// Copy existing rows when starting a new history.
    pub snapshot: bool,
    /// When to stop.
    pub until: Until,
    /// Read a backlog through the SQL decoding interface while the slot is
    /// more than this many bytes of WAL behind (`None`: always stream).
    pub sql_catch_up_above: Option<u64>,
    /// Have the server stream a transaction larger than its
    /// `logical_decoding_work_mem` while it runs (pgoutput protocol 2),
    /// rather than spill it to disk and send it after its commit.
    pub streaming: bool,
    /// Connections the initial copy reads on at once (a large table in
    /// ranges of its pages, several tables side by side).
    pub copy_connections: usize,
}

/// The default of [`CaptureOptions::copy_connections`]: one per two cores,
/// up to four. Each connection keeps a server process and about as much
/// of ours busy; on two cores a second one costs more CPU than the wall
/// time it saves (`BENCHMARKS.md`, step 2).
pub fn default_copy_connections() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4))
}

/// The default of [`CaptureOptions::sql_catch_up_above`]: a backlog worth
/// the switch (each chunk costs a round of decoding set-up).
pub const SQL_CATCH_UP_ABOVE: u64 = 64 << 20;

/// Something worth telling the user while capturing.
#[derive(Clone, Debug)]
pub enum CaptureEvent {
    /// A one-line notice (set-up decisions, limitations, reconnects).
    Notice(String),
    /// Progress of the initial copy.
    Copy(CopyProgress),
    /// Progress of the stream.
    Stream(StreamProgress),
    /// A session failed with a transient error; the capture connects
    /// again after `delay` (a [`CaptureEvent::Notice`] gives the cause).
    Reconnecting {
        /// Where the failed session was.
        stage: SessionStage,
        /// How long until the next attempt.
        delay: Duration,
    },
}

/// Where in its life a session failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionStage {
    /// Checks, slot and publication, initial copy.
    Setup,
    /// Streaming changes.
    Stream,
}

impl SessionStage {
    /// A short lowercase name (`setup`, `stream`).
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStage::Setup => "setup",
            SessionStage::Stream => "stream",
        }
    }
}

/// Stream progress and lag.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamProgress {
    /// Row changes stored by this capture (across reconnects).
    pub records: u64,
    /// Transactions stored by this capture (across reconnects).
    pub txns: u64,
    /// Last durable commit.
    pub watermark: Option<changelog::Watermark>,
    /// Acknowledged position.
    pub confirmed: Lsn,
    /// The server's WAL end as last reported.
    pub server_wal_end: Lsn,
}

impl std::fmt::Display for CaptureSummary {
    /// `N transactions (M changes)`, plus the rows of an initial copy.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} transactions ({} changes)", self.txns, self.records)?;
        if self.copied_rows > 0 {
            write!(f, ", {} rows copied", self.copied_rows)?;
        }
        Ok(())
    }
}

impl StreamProgress {
    /// Bytes of WAL between the server's end and what is acknowledged.
    pub fn lag_bytes(&self) -> u64 {
        self.server_wal_end.0.saturating_sub(self.confirmed.0)
    }
}

/// How a capture ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct CaptureSummary {
    /// Transactions stored.
    pub txns: u64,
    /// Records stored.
    pub records: u64,
    /// Rows copied by the initial copy.
    pub copied_rows: u64,
    /// The last acknowledged position.
    pub confirmed: Lsn,
}

/// Captures until `until` is reached or `shutdown` turns true, reconnecting
/// after transient failures.
pub async fn capture(
    store: Store,
    opts: CaptureOptions,
    shutdown: watch::Receiver<bool>,
    on_event: impl FnMut(CaptureEvent) + Send,
) -> Result<CaptureSummary> {
    capture_relayed(store, None, opts, shutdown, on_event).await
}

/// Captures as [`capture`] does, and passes every stored transaction on
/// through `relay` before the source is acknowledged (see [`Relay`]).
/// What the store holds and the relay's system lacks is passed on before
/// streaming starts.
pub async fn capture_relayed(
    store: Store,
    relay: Option<Box<dyn Relay>>,
    opts: CaptureOptions,
    shutdown: watch::Receiver<bool>,
    on_event: impl FnMut(CaptureEvent) + Send,
) -> Result<CaptureSummary> {
    if let Some(p) = store.follow_position()? {
        return Err(CaptureError::Follower { topic: p.topic });
    }
    let mut run = Run {
        relay,
        target: match opts.until {
            Until::Lsn(l) => Some(l),
            _ => None,
        },
        opts: &opts,
        shutdown,
        on_event,
        summary: CaptureSummary::default(),
    };
    let mut store = store;
    let mut backoff = Backoff::default();
    // Reconnecting makes sense once the source was reached; a source that
    // is unreachable from the start is a configuration error to report.
    let mut streamed_once = false;
    loop {
        let mut streaming_since = None;
        let (returned, result) = run.session(store, &mut streamed_once, &mut streaming_since).await;
        match result {
            Ok(()) => return Ok(run.summary),
            Err(e) if streamed_once && e.is_transient() && !*run.shutdown.borrow() => {
                let delay = backoff.after_session(streaming_since.map(|t: Instant| t.elapsed()));
                run.notice(format!("connection lost ({}); reconnecting in {delay:?}", chain(&e)));
                let stage = match streaming_since {
                    Some(_) => SessionStage::Stream,
                    None => SessionStage::Setup,
                };
                (run.on_event)(CaptureEvent::Reconnecting { stage, delay });
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = run.shutdown.changed() => return Ok(run.summary),
                }
            }
            Err(e) => return Err(e),
        }
        // A transient error came from a session that returned the store.
        store = returned.ok_or(CaptureError::WriterStopped)?;
    }
}

/// What lasts across sessions: the options, the caller's channels and the
/// running totals.
struct Run<'a, F> {
    /// Moves into each session's writer and back.
    relay: Option<Box<dyn Relay>>,
    opts: &'a CaptureOptions,
    shutdown: watch::Receiver<bool>,
    on_event: F,
    summary: CaptureSummary,
    /// Where to stop: `--until`'s LSN, or for `caught-up` the server's WAL
    /// position when the first session started.
    target: Option<Lsn>,
}

impl<F: FnMut(CaptureEvent) + Send> Run<'_, F> {
    /// One connection's worth: set-up, then the stream until it stops or
    /// fails. Gives the store back unless the writer thread could not start.
    async fn session(
        &mut self,
        mut store: Store,
        streamed_once: &mut bool,
        streaming_since: &mut Option<Instant>,
    ) -> (Option<Store>, Result<()>) {
        let connected = match setup::prepare(&mut store, self).await {
            Ok(c) => c,
            Err(e) => return (Some(store), Err(e)),
        };
        *streamed_once = true;
        let start = Durable {
            lsn: store.scanned_through(),
            records: 0,
            txns: 0,
            last_commit: store.watermark(),
        };
        // If the OS refuses a thread, the store was closed with the closure.
        let relaying = self.relay.is_some();
        let mut writer = match Writer::spawn(store, self.relay.take()) {
            Ok(w) => w,
            Err(e) => return (None, Err(e)),
        };
        // What the store holds is passed on before the stream can
        // acknowledge anything.
        let relayed = match relaying {
            true => Self::relay_held(&mut writer, start.lsn).await,
            false => Ok(()),
        };
        let result = match relayed {
            Ok(()) => self.stream(&mut writer, connected, start, streaming_since).await,
            Err(e) => Err(e),
        };
        let (store, relay) = writer.join();
        self.relay = relay;
        (Some(store), result)
    }

    /// Streams from `start`: first the backlog through SQL when the slot is
    /// far behind, then the replication stream.
    async fn stream(
        &mut self,
        writer: &mut Writer,
        connected: setup::Connected,
        mut start: Durable,
        streaming_since: &mut Option<Instant>,
    ) -> Result<()> {
        let setup::Connected {
            mut client,
            repl,
            mut assembler,
            scratch,
        } = connected;
        if let Some(close_enough) = self.opts.sql_catch_up_above {
            let behind = backlog::Backlog::lag(&client, &self.opts.slot).await?;
            if behind > close_enough {
                self.notice(format!(
                    "the slot is {:.1} MiB of WAL behind: reading the backlog through the SQL interface",
                    behind as f64 / 1_048_576.0
                ));
                let conn = crate::sql::connect(&self.opts.conninfo).await?;
                let (slot, publication) = (self.opts.slot.clone(), self.opts.publication.clone());
                let backlog = backlog::Backlog::new(conn, &slot, &publication, close_enough, start.lsn);
                *streaming_since = Some(Instant::now());
                let drain =
                    stream::Stream::open_backlog(writer, client, backlog, assembler, start, scratch.clone(), self);
                match drain.run().await? {
                    stream::Ended::Stopped => return Ok(()),
                    stream::Ended::Drained(d) => (client, assembler, start) = (d.client, d.assembler, d.start),
                }
            }
        }
        let stream = stream::Stream::open(writer, client, repl, assembler, start, scratch, self).await?;
        *streaming_since = Some(Instant::now());
        stream.run().await.map(|_| ())
    }

    /// Has the writer pass on everything the store holds.
    async fn relay_held(writer: &mut Writer, scanned: Lsn) -> Result<()> {
        writer.note_scanned(scanned).await?;
        writer.durable().await.map(|_| ())
    }

    fn notice(&mut self, text: String) {
        (self.on_event)(CaptureEvent::Notice(text));
    }
}

/// The delay before reconnecting: it doubles after each failed session up
/// to a cap, and starts over after a good connection (one that streamed
/// for a while), so an outage next week is not retried at the cap.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(30);
    /// A session that streamed this long was a good connection.
    const GOOD_SESSION: Duration = Duration::from_secs(30);

    /// The delay after a session that streamed for `streamed` (`None`:
    /// it never got to stream).
    fn after_session(&mut self, streamed: Option<Duration>) -> Duration {
        if streamed.is_some_and(|d| d >= Self::GOOD_SESSION) {
            self.next = Self::FIRST;
        }
        let delay = self.next;
        self.next = (delay * 2).min(Self::MAX);
        delay
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::FIRST }
    }
}

/// An error and its causes on one line, each cause once.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_to_the_cap_and_starts_over_after_a_good_connection() {
        let mut b = Backoff::default();
        let short = Some(Duration::from_secs(1));
        let delays: Vec<Duration> = (0..8).map(|_| b.after_session(short)).collect();
        assert_eq!(delays[0], Duration::from_millis(500));
        assert_eq!(delays[1], Duration::from_secs(1));
        assert_eq!(delays[7], Duration::from_secs(30));
        assert_eq!(b.after_session(None), Duration::from_secs(30));
        assert_eq!(
            b.after_session(Some(Duration::from_secs(45))),
            Duration::from_millis(500)
        );
        assert_eq!(b.after_session(short), Duration::from_secs(1));
    }
}
