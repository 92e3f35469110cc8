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
//! advances an idle slot.

use std::time::{Duration, Instant};

use bytes::Bytes;
use changelog::{Lsn, Transaction};
use tokio::time::{Interval, MissedTickBehavior};

use super::backlog::{Backlog, Wal, WalEvent};
use super::{CaptureEvent, Run, StreamProgress, Until};
use crate::assemble::{Assembler, Fed};
use crate::catalog;
use crate::error::{CaptureError, Result};
use crate::pgoutput::Message;
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
}

impl<'a, 'r, S: Sink, F: FnMut(CaptureEvent) + Send> Stream<'a, 'r, S, F> {
    /// Starts streaming at `start`, what the store already holds durably.
    pub(super) async fn open(
        sink: &'a mut S,
        client: tokio_postgres::Client,
        repl: ReplicationClient,
        assembler: Assembler,
        start: Durable,
        run: &'a mut Run<'r, F>,
    ) -> Result<Self> {
        // pgoutput reads a list of identifiers: quoted, any name is one.
        let publication = catalog::quote_ident(&run.opts.publication);
        let options = [
            ("proto_version", "1"),
            ("publication_names", publication.as_str()),
            ("messages", "true"),
        ];
        let wal = repl.start_logical(&run.opts.slot, start.lsn, &options).await?;
        Ok(Self::with(sink, client, Wal::Stream(wal), assembler, start, run))
    }

    /// Reads the slot's backlog through the SQL interface, from `start`.
    pub(super) fn open_backlog(
        sink: &'a mut S,
        client: tokio_postgres::Client,
        backlog: Backlog,
        assembler: Assembler,
        start: Durable,
        run: &'a mut Run<'r, F>,
    ) -> Self {
        Self::with(sink, client, Wal::Backlog(backlog), assembler, start, run)
    }

    fn with(
        sink: &'a mut S,
        client: tokio_postgres::Client,
        wal: Wal,
        assembler: Assembler,
        start: Durable,
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
    /// tick, a server message.
    async fn receive(&mut self) -> Result<Received> {
        tokio::select! {
            biased;
            durable = self.sink.durable() => Ok(Received::Durable(durable?)),
            changed = self.run.shutdown.changed(), if !self.stopping => {
                Ok(if changed.is_err() || *self.run.shutdown.borrow() { Received::Shutdown } else { Received::Nothing })
            }
            _ = self.status_tick.tick() => Ok(Received::StatusDue),
            event = self.wal.next_event() => match event? {
                WalEvent::Event(event) => Ok(Received::Wal(event)),
                WalEvent::Drained => Ok(Received::Drained),
                WalEvent::Closed => Err(ReplicationError::Closed.into()),
            },
        }
    }

    /// Decodes one message and feeds it to the assembler; a committed
    /// transaction joins the batch, a growing one is spilled.
    async fn assemble(&mut self, wal_start: Lsn, wal_end: Lsn, data: Bytes) -> Result<()> {
        self.progress.server_wal_end = self.progress.server_wal_end.max(wal_end);
        let msg = Message::parse(&data).map_err(|source| CaptureError::Decode { lsn: wal_start, source })?;
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
        let past_stop = match self.run.opts.until {
            Until::Lsn(stop) => txn.commit.commit_lsn > stop,
            _ => false,
        };
        if past_stop {
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
