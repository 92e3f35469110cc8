//! The stream: the replication connection's messages, assembled into
//! transactions, handed to the sink, and acknowledged once durable.
//!
//! One [`Stream`] holds a session's state and names its steps:
//! [`Stream::receive`] waits for whichever comes first (a durability
//! report, a shutdown, a status tick, a server message);
//! [`Stream::assemble`] decodes a message and feeds the assembler;
//! [`Stream::hand_over`] and [`Stream::spill`] give transactions to the
//! sink; [`Stream::on_durable`] learns what is durable and
//! [`Stream::acknowledge`], the only place a position reaches the server,
//! reports it; [`Stream::keepalive`] answers the server's keepalives and
//! advances an idle slot. A transaction the server streams before it ends
//! is held by [`Streamed`] and, at its commit, replayed through
//! [`Stream::process`] ([`Stream::replay_some`]) before the next server
//! message is read.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use changelog::{Lsn, Transaction};
use tokio::time::{Interval, MissedTickBehavior};

use super::backlog::{Backlog, Wal, WalEvent};
use super::streamed::{Replay, Streamed};
use super::{CaptureEvent, Run, StreamProgress, Until};
use crate::assemble::{Assembler, Fed};
use crate::catalog;
use crate::ddl;
use crate::error::{CaptureError, Result};
use crate::pgoutput::{BeginBody, CommitBody, Message, StreamCommitBody};
use crate::replication::{ReplicationClient, ReplicationError, ReplicationEvent};
use crate::sink::{Durable, Sink};

/// A transaction with more records than this is written to the store in
/// chunks as it arrives instead of being held in memory.
pub const SPILL_RECORDS: usize = 100_000;
/// Once a transaction is being spilled, its later chunks are this small:
/// up to the writer's queue of them are in memory at once, so the chunk
/// size bounds the memory a transaction of any size takes.
const SPILL_CHUNK_RECORDS: usize = 20_000;
/// A batch handed to the sink while it is busy grows up to this many
/// records before the stream waits for the sink.
const MAX_BATCH_RECORDS: usize = 50_000;
/// How often a status update is sent when nothing else prompts one.
const STATUS_INTERVAL: Duration = Duration::from_secs(5);
/// How often progress is reported to the caller.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);
/// Messages of a streamed transaction replayed between two looks at the
/// sink's reports.
const REPLAY_TURN: usize = 20_000;

/// What [`Stream::receive`] got.
enum Received {
    /// The sink made something durable.
    Durable(Durable),
    /// Shutdown was asked for.
    Shutdown,
    /// Nothing to act on (the shutdown flag changed but is still off).
    Nothing,
    /// Time for a status update.
    StatusDue,
    /// A message from the server.
    Wal(ReplicationEvent),
    /// The backlog read through SQL is drained.
    Drained,
    /// A committed streamed transaction has messages left to replay.
    Replay,
}

/// How a stream ended without an error.
pub(super) enum Ended {
    /// Shut down, or the stop position is durable and acknowledged.
    Stopped,
    /// The backlog is drained and durable; the replication stream takes
    /// over from here with the session's connection and assembler.
    Drained(Box<Drained>),
}

/// What the replication stream takes over after a drained backlog.
pub(super) struct Drained {
    pub client: tokio_postgres::Client,
    pub assembler: Assembler,
    pub start: Durable,
}

/// Committed transactions collected while the sink is busy (group commit).
#[derive(Default)]
struct Batch {
    txns: Vec<Transaction>,
    records: usize,
}

impl Batch {
    fn push(&mut self, txn: Transaction) {
        self.records += txn.records.len();
        self.txns.push(txn);
    }

    fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    fn is_full(&self) -> bool {
        self.records >= MAX_BATCH_RECORDS
    }

    fn take(&mut self) -> Vec<Transaction> {
        self.records = 0;
        std::mem::take(&mut self.txns)
    }
}

/// One session's stream state.
pub(super) struct Stream<'a, 'r, S, F> {
    sink: &'a mut S,
    /// Catalog look-ups while streaming.
    client: tokio_postgres::Client,
    wal: Wal,
    assembler: Assembler,
    run: &'a mut Run<'r, F>,
    batch: Batch,
    /// Items handed to the sink whose durability report is outstanding.
    awaiting: usize,
    /// The open transaction is being spilled to the sink.
    spilling: bool,
    /// The highest position the sink reported durable; nothing beyond it
    /// is ever acknowledged.
    durable: Lsn,
    /// `progress.confirmed` is the last acknowledged position.
    progress: StreamProgress,
    stopping: bool,
    /// A transaction committed past `--until`'s LSN: stop before it.
    past_stop: bool,
    status_tick: Interval,
    last_report: Instant,
    /// Transactions streamed before they end.
    streamed: Streamed,
    /// A committed streamed transaction being replayed.
    replay: Option<Replaying>,
}

/// A committed streamed transaction, replayed message by message.
struct Replaying {
    messages: Replay,
    commit: StreamCommitBody,
}

impl<'a, 'r, S: Sink, F: FnMut(CaptureEvent) + Send> Stream<'a, 'r, S, F> {
    /// Starts streaming at `start`, what the store already holds durably.
    pub(super) async fn open(
        sink: &'a mut S,
        client: tokio_postgres::Client,
        repl: ReplicationClient,
        assembler: Assembler,
        start: Durable,
        scratch: PathBuf,
        run: &'a mut Run<'r, F>,
    ) -> Result<Self> {
        // pgoutput reads a list of identifiers: quoted, any name is one.
        let publication = catalog::quote_ident(&run.opts.publication);
        // Version 2 streams a transaction larger than the server's
        // logical_decoding_work_mem while it runs (every supported server
        // has it), instead of spilling it to disk and sending it after.
        let (version, streaming) = match run.opts.streaming {
            true => ("2", "on"),
            false => ("1", "off"),
        };
        let options = [
            ("proto_version", version),
            ("streaming", streaming),
            ("publication_names", publication.as_str()),
            ("messages", "true"),
        ];
        let wal = repl.start_logical(&run.opts.slot, start.lsn, &options).await?;
        Ok(Self::with(
            sink,
            client,
            Wal::Stream(wal),
            assembler,
            start,
            scratch,
            run,
        ))
    }

    /// Reads the slot's backlog through the SQL interface, from `start`.
    pub(super) fn open_backlog(
        sink: &'a mut S,
        client: tokio_postgres::Client,
        backlog: Backlog,
        assembler: Assembler,
        start: Durable,
        scratch: PathBuf,
        run: &'a mut Run<'r, F>,
    ) -> Self {
        Self::with(sink, client, Wal::Backlog(backlog), assembler, start, scratch, run)
    }

    fn with(
        sink: &'a mut S,
        client: tokio_postgres::Client,
        wal: Wal,
        assembler: Assembler,
        start: Durable,
        scratch: PathBuf,
        run: &'a mut Run<'r, F>,
    ) -> Self {
        let Durable {
            lsn: start,
            last_commit,
            ..
        } = start;
        let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
        status_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let stopping = *run.shutdown.borrow();
        // Totals run on from earlier sessions of this capture.
        let (records, txns) = (run.summary.records, run.summary.txns);
        Stream {
            sink,
            client,
            wal,
            assembler,
            stopping,
            run,
            batch: Batch::default(),
            awaiting: 0,
            spilling: false,
            durable: start,
            progress: StreamProgress {
                records,
                txns,
                confirmed: start,
                watermark: last_commit,
                ..StreamProgress::default()
            },
            past_stop: false,
            status_tick,
            last_report: Instant::now(),
            streamed: Streamed::new(scratch),
            replay: None,
        }
    }

    /// Streams until asked to stop (between transactions) or until the
    /// target is durable and acknowledged.
    pub(super) async fn run(mut self) -> Result<Ended> {
        loop {
            if self.idle() {
                if self.stopping || self.reached_target() {
                    return self.finish().await.map(|()| Ended::Stopped);
                }
                // Everything read is durable: a backlog moves on.
                self.wal.on_idle().await?;
            }
            match self.receive().await? {
                Received::Drained => return self.drained().await,
                Received::Replay => self.replay_some().await?,
                Received::Durable(d) => self.on_durable(d).await?,
                Received::Shutdown => self.stopping = true,
                Received::Nothing => {}
                Received::StatusDue => self.acknowledge(self.progress.confirmed).await?,
                Received::Wal(ReplicationEvent::XLogData {
                    wal_start,
                    wal_end,
                    data,
                    ..
                }) => self.assemble(wal_start, wal_end, data).await?,
                Received::Wal(ReplicationEvent::Keepalive {
                    wal_end,
                    reply_requested,
                    ..
                }) => self.keepalive(wal_end, reply_requested).await?,
            }
            // Group commit: hand the batch over when the sink is idle, or
            // when it has grown large (then wait for room in its queue).
            if self.awaiting == 0 || self.batch.is_full() {
                self.hand_over().await?;
            }
            self.report_progress();
        }
    }

    /// Waits for the first of: a durability report (first, so
    /// acknowledgements are never starved), a shutdown request, a status
    /// tick, a server message, or, while a streamed transaction is being
    /// replayed, its next messages instead of the server's.
    async fn receive(&mut self) -> Result<Received> {
        let replaying = self.replay.is_some();
        tokio::select! {
            biased;
            durable = self.sink.durable() => Ok(Received::Durable(durable?)),
            changed = self.run.shutdown.changed(), if !self.stopping => {
                Ok(if changed.is_err() || *self.run.shutdown.borrow() { Received::Shutdown } else { Received::Nothing })
            }
            _ = self.status_tick.tick() => Ok(Received::StatusDue),
            () = std::future::ready(()), if replaying => Ok(Received::Replay),
            event = self.wal.next_event(), if !replaying => match event? {
                WalEvent::Event(event) => Ok(Received::Wal(event)),
                WalEvent::Drained => Ok(Received::Drained),
                WalEvent::Closed => Err(ReplicationError::Closed.into()),
            },
        }
    }

    /// Decodes one message: inside a stream block it is held for its
    /// transaction; outside, stream control messages go to [`Streamed`]
    /// and the others to [`Stream::process`].
    async fn assemble(&mut self, wal_start: Lsn, wal_end: Lsn, data: Bytes) -> Result<()> {
        self.progress.server_wal_end = self.progress.server_wal_end.max(wal_end);
        let decode = |source| CaptureError::Decode { lsn: wal_start, source };
        if self.streamed.in_block() {
            let held = Message::parse_in_stream(&data).map_err(decode)?;
            return match held.message {
                Message::StreamStop => {
                    self.streamed.stop();
                    Ok(())
                }
                Message::LogicalMessage(m) if m.transactional && m.prefix == ddl::XACTS_PREFIX => {
                    let xids = ddl::parse_xacts(&m.content)
                        .map_err(|source| CaptureError::LogicalMessage { lsn: wal_start, source })?;
                    self.streamed.claim(&xids);
                    Ok(())
                }
                _ => self.streamed.append(held.xid, wal_start, &data),
            };
        }
        match Message::parse(&data).map_err(decode)? {
            Message::StreamStart(start) => {
                if self.assembler.in_transaction() {
                    return Err(CaptureError::Stream {
                        lsn: wal_start,
                        problem: crate::error::StreamProblem::StreamStartInTransaction,
                    });
                }
                self.streamed.start(start, wal_start)
            }
            Message::StreamAbort(abort) => self.streamed.abort(abort),
            Message::StreamCommit(commit) => self.stream_commit(commit, wal_start).await,
            msg => self.process(msg, wal_start).await,
        }
    }

    /// A streamed transaction committed: past the stop position it is left
    /// out; otherwise it begins here, in commit order, and its messages are
    /// replayed before the server's next.
    async fn stream_commit(&mut self, commit: StreamCommitBody, at: Lsn) -> Result<()> {
        let messages = self.streamed.commit(commit.xid, at)?;
        if self.commits_past_stop(commit.commit_lsn) {
            self.past_stop = true;
            return Ok(());
        }
        let begin = BeginBody {
            final_lsn: commit.commit_lsn,
            commit_time_us: commit.commit_time_us,
            xid: commit.xid,
        };
        self.process(Message::Begin(begin), at).await?;
        self.replay = Some(Replaying { messages, commit });
        Ok(())
    }

    /// Replays up to [`REPLAY_TURN`] messages of the committed streamed
    /// transaction, and its commit after the last.
    async fn replay_some(&mut self) -> Result<()> {
        for _ in 0..REPLAY_TURN {
            let Some(replaying) = self.replay.as_mut() else {
                return Ok(());
            };
            match replaying.messages.next_message()? {
                Some((at, data)) => {
                    let held =
                        Message::parse_in_stream(&data).map_err(|source| CaptureError::Decode { lsn: at, source })?;
                    self.process(held.message, at).await?;
                }
                None => {
                    let c = replaying.commit;
                    self.replay = None;
                    let commit = CommitBody {
                        flags: c.flags,
                        commit_lsn: c.commit_lsn,
                        end_lsn: c.end_lsn,
                        commit_time_us: c.commit_time_us,
                    };
                    return self.process(Message::Commit(commit), c.commit_lsn).await;
                }
            }
        }
        Ok(())
    }

    /// Feeds one message of a transaction to the assembler; a committed
    /// transaction joins the batch, a growing one is spilled.
    async fn process(&mut self, msg: Message, wal_start: Lsn) -> Result<()> {
        if let Message::Relation(r) = &msg {
            for (oid, typmod) in self.assembler.unknown_types(r) {
                let name = catalog::type_name(&self.client, oid, typmod).await?;
                self.assembler.type_names.insert((oid, typmod), name);
            }
        }
        let fed = self.assembler.feed(msg, wal_start)?;
        for notice in self.assembler.take_notices() {
            self.run.notice(notice);
        }
        match fed {
            Fed::Committed(txn) => self.committed(txn).await,
            Fed::Nothing => self.spill().await,
        }
    }

    /// A transaction committed: batch it, finish its spill, or, past the
    /// stop position, leave it out.
    async fn committed(&mut self, txn: Transaction) -> Result<()> {
        if self.commits_past_stop(txn.commit.commit_lsn) {
            // Not stored; an open spill of it is removed when the sink stops.
            self.spilling = false;
            self.past_stop = true;
        } else if self.spilling {
            self.spilling = false;
            self.sink.finish_spill(txn.commit, txn.records).await?;
            self.awaiting += 1;
        } else {
            self.batch.push(txn);
        }
        Ok(())
    }

    /// Whether a transaction committing at `commit_lsn` lies past
    /// `--until`'s LSN, and so is not stored.
    fn commits_past_stop(&self, commit_lsn: Lsn) -> bool {
        matches!(self.run.opts.until, Until::Lsn(stop) if commit_lsn > stop)
    }

    /// Moves the open transaction's records to the sink once there are
    /// many, so memory stays bounded.
    async fn spill(&mut self) -> Result<()> {
        let Some(final_lsn) = self
            .assembler
            .open_mut()
            .filter(|open| {
                open.records.len()
                    >= if self.spilling {
                        SPILL_CHUNK_RECORDS
                    } else {
                        SPILL_RECORDS
                    }
            })
            .map(|open| open.final_lsn)
        else {
            return Ok(());
        };
        if !self.spilling {
            // Keep the sink's order: earlier transactions first.
            self.hand_over().await?;
            self.sink.begin_spill(final_lsn).await?;
            self.spilling = true;
        }
        let Some(open) = self.assembler.open_mut() else {
            return Ok(());
        };
        open.spilled += open.records.len() as u64;
        let chunk = std::mem::take(&mut open.records);
        self.sink.spill_chunk(chunk).await
    }

    /// Hands the collected transactions to the sink as one item.
    async fn hand_over(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.sink.append(self.batch.take()).await?;
        self.awaiting += 1;
        Ok(())
    }

    /// The sink made an item durable: count it and acknowledge.
    async fn on_durable(&mut self, d: Durable) -> Result<()> {
        self.awaiting = self.awaiting.saturating_sub(1);
        self.durable = self.durable.max(d.lsn);
        self.run.summary.records += d.records;
        self.run.summary.txns += d.txns;
        self.progress.records += d.records;
        self.progress.txns += d.txns;
        if d.last_commit.is_some() {
            self.progress.watermark = d.last_commit;
        }
        if d.lsn > self.progress.confirmed {
            self.acknowledge(d.lsn).await?;
        }
        Ok(())
    }

    /// Reports `lsn` to the server as written, flushed and applied: the
    /// slot may then discard the WAL before it. The only place a position
    /// is sent, and it never exceeds what the sink reported durable.
    async fn acknowledge(&mut self, lsn: Lsn) -> Result<()> {
        debug_assert!(
            lsn <= self.durable,
            "acknowledging {lsn} beyond the durable {}",
            self.durable
        );
        self.wal.send_status(lsn).await?;
        self.progress.confirmed = lsn;
        Ok(())
    }

    /// A keepalive: when nothing is pending, the server's position is
    /// recorded durably first (its report then acknowledges it), so an idle
    /// slot advances; otherwise answer with what is already acknowledged.
    async fn keepalive(&mut self, wal_end: Lsn, reply_requested: bool) -> Result<()> {
        self.progress.server_wal_end = self.progress.server_wal_end.max(wal_end);
        if self.idle() && wal_end > self.progress.confirmed {
            self.sink.note_scanned(wal_end).await?;
            self.awaiting += 1;
        } else if reply_requested {
            self.acknowledge(self.progress.confirmed).await?;
        }
        Ok(())
    }

    /// No transaction open, collected or awaiting the sink.
    fn idle(&self) -> bool {
        !self.assembler.in_transaction() && self.batch.is_empty() && self.awaiting == 0
    }

    fn reached_target(&self) -> bool {
        self.past_stop || self.run.target.is_some_and(|t| self.progress.confirmed >= t)
    }

    /// Acknowledges once more and ends the stream cleanly.
    async fn finish(mut self) -> Result<()> {
        self.acknowledge(self.progress.confirmed).await?;
        self.run.summary.confirmed = self.progress.confirmed;
        self.wal.finish().await;
        Ok(())
    }

    /// The backlog is drained (and, as it moves on only when idle, all of
    /// it durable): hands over to the replication stream.
    async fn drained(mut self) -> Result<Ended> {
        self.acknowledge(self.progress.confirmed).await?;
        self.run.summary.confirmed = self.progress.confirmed;
        Ok(Ended::Drained(Box::new(Drained {
            start: Durable {
                lsn: self.progress.confirmed,
                records: 0,
                txns: 0,
                last_commit: self.progress.watermark,
            },
            client: self.client,
            assembler: self.assembler,
        })))
    }

    fn report_progress(&mut self) {
        if self.last_report.elapsed() >= PROGRESS_INTERVAL {
            self.last_report = Instant::now();
            (self.run.on_event)(CaptureEvent::Stream(self.progress));
        }
    }
}
