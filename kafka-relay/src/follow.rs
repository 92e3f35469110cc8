//! Following: a topic read back into a store that answers exactly as one
//! captured from Postgres.
//!
//! Records are read `read_committed`, put back together by
//! [`kafka_log::Reassembler`], and appended a group of whole transactions
//! at a time with the offset after the last one's end marker, in the same
//! atomic batch ([`Store::append_following`]). A follower killed at any
//! instant therefore resumes at exactly the first record it had not
//! applied: nothing lost, nothing applied twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use changelog::{ChangeRecord, FollowPosition, Lsn, SpillTxn, Store, Transaction, Watermark};
use kafka_log::{Reassembler, Tables};
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::Message;

use crate::context::Quiet;
use crate::error::{RelayError, Result};
use crate::topic::{topic_record, Target};

/// Transactions held before they are appended, when more keep coming.
const GROUP_TXNS: usize = 2048;
/// Records held before they are appended, when more keep coming.
const GROUP_RECORDS: usize = 50_000;

/// When to stop following.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowUntil {
    /// Until asked to stop.
    Forever,
    /// Once everything committed to the topic when it was first reached
    /// is applied.
    CaughtUp,
}

/// How to follow.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// The topic.
    pub target: Target,
    /// When to stop.
    pub until: FollowUntil,
    /// How long the brokers may be unreachable before following gives up.
    pub give_up_after: Duration,
}

/// Where a follower is.
#[derive(Clone, Copy, Debug, Default)]
pub struct FollowProgress {
    /// The first offset not yet applied.
    pub next_offset: i64,
    /// Transactions applied by this run.
    pub txns: u64,
    /// Records applied by this run.
    pub records: u64,
    /// The last applied transaction.
    pub watermark: Option<Watermark>,
}

/// Follows the topic into `store` until `until` or until `stop` is set.
pub fn follow(
    store: &mut Store,
    opts: &FollowOptions,
    stop: &AtomicBool,
    mut on_progress: impl FnMut(&FollowProgress),
) -> Result<FollowProgress> {
    let start = check_follower(store, &opts.target)?;
    let tables = Tables::from_latest(
        store
            .catalog()
            .tables()
            .filter_map(|(id, e)| e.history.latest().map(|v| (id, &v.change))),
        store.catalog().next_table_id(),
    );
    let mut reader = Reassembler::new(tables);
    if let Some(w) = store.watermark() {
        reader = reader.after(w.commit_lsn);
    }
    let mut progress = FollowProgress {
        next_offset: start,
        watermark: store.watermark(),
        ..FollowProgress::default()
    };
    let consumer = opts.target.reader(start)?;
    // Reading and decoding on this thread, appending on another: the two
    // halves of the work overlap.
    std::thread::scope(|scope| {
        let (work, to_apply) = mpsc::sync_channel::<Work>(WORK_IN_FLIGHT);
        let (applied_tx, applied) = mpsc::channel::<FollowProgress>();
        let mut applier = Applier {
            store,
            target: &opts.target,
            progress,
            spill: None,
        };
        let writer = std::thread::Builder::new()
            .name("asof-follow-writer".into())
            .spawn_scoped(scope, move || -> Result<()> {
                let result = to_apply.iter().try_for_each(|w| {
                    if applier.apply(w)? {
                        let _ = applied_tx.send(applier.progress);
                    }
                    Ok(())
                });
                applier.abandon_spill();
                result
            })
            .map_err(RelayError::Runtime)?;
        let read = read_topic(&consumer, &mut reader, opts, stop, &work, || {
            while let Ok(p) = applied.try_recv() {
                progress = p;
                on_progress(&progress);
            }
        });
        drop(work);
        let written = writer.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        while let Ok(p) = applied.try_recv() {
            progress = p;
            on_progress(&progress);
        }
        // A failed append stops the reader first; its error is the cause.
        written.and(read)
    })?;
    Ok(progress)
}

/// Work handed to the writer and not yet applied.
const WORK_IN_FLIGHT: usize = 2;

/// Records of one transaction held in memory before they go to the store
/// ahead of its end marker, as the capture spills a large transaction.
pub const SPILL_RECORDS: usize = 100_000;

/// What the reader hands the writer.
enum Work {
    /// Whole transactions.
    Group(Group),
    /// Records of a transaction too large to hold, ahead of its end;
    /// `again`: it started over, so what was spilled of it is void.
    Spill {
        commit_lsn: Lsn,
        again: bool,
        records: Vec<ChangeRecord>,
    },
    /// The spilled transaction started over and then fit in memory.
    Abandon,
    /// The spilled transaction's end: its last records and commit, and the
    /// offset after its end marker.
    Finish { tx: Transaction, next_offset: i64 },
}

/// Reads the topic and hands whole transactions, grouped, to the writer
/// until told to stop, caught up, or the writer is gone.
fn read_topic(
    consumer: &BaseConsumer<Quiet>,
    reader: &mut Reassembler,
    opts: &FollowOptions,
    stop: &AtomicBool,
    work: &mpsc::SyncSender<Work>,
    mut tick: impl FnMut(),
) -> Result<()> {
    let mut group = Group::default();
    // The restart count when the open transaction began to be spilled.
    let mut spilling: Option<u64> = None;
    let mut quiet_since = Instant::now();
    // `false` when the writer stopped: its own error says why.
    let send = |w: Work| work.send(w).is_ok();
    let hand_over = |group: &mut Group| group.txns.is_empty() || send(Work::Group(std::mem::take(group)));
    while !stop.load(Ordering::Relaxed) {
        tick();
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                quiet_since = Instant::now();
                let offset = m.offset();
                let record = topic_record(&m);
                let done = reader.push(offset, &record).map_err(|source| RelayError::Format {
                    topic: opts.target.topic.clone(),
                    source,
                })?;
                let sent = match done {
                    Some(tx) => match spilling.take() {
                        Some(at) if at == reader.restarts() => send(Work::Finish {
                            tx,
                            next_offset: offset + 1,
                        }),
                        Some(_) => {
                            group.add(tx, offset + 1);
                            send(Work::Abandon) && (!group.is_full() || hand_over(&mut group))
                        }
                        None => {
                            group.add(tx, offset + 1);
                            !group.is_full() || hand_over(&mut group)
                        }
                    },
                    None if reader.held() >= SPILL_RECORDS => {
                        let restarts = reader.restarts();
                        let again = spilling.is_some_and(|at| at != restarts);
                        spilling = Some(restarts);
                        match reader.take_open() {
                            Some((open, records)) => {
                                hand_over(&mut group)
                                    && send(Work::Spill {
                                        commit_lsn: open.commit_lsn,
                                        again,
                                        records,
                                    })
                            }
                            None => true,
                        }
                    }
                    None => true,
                };
                if !sent {
                    return Ok(());
                }
            }
            None => {
                if !hand_over(&mut group) {
                    return Ok(());
                }
                // Idle and quiet: check the cluster is still there.
                if quiet_since.elapsed() >= opts.give_up_after {
                    opts.target.end_offset(opts.give_up_after)?;
                    quiet_since = Instant::now();
                }
            }
            // The end of what is committed (`read_committed`): everything
            // committed before this run started has been read.
            Some(Err(KafkaError::PartitionEOF(_))) => {
                quiet_since = Instant::now();
                if !hand_over(&mut group) {
                    return Ok(());
                }
                if opts.until == FollowUntil::CaughtUp {
                    return Ok(());
                }
            }
            Some(Err(e)) => {
                tracing::warn!("reading {}: {e}", opts.target.topic);
                if quiet_since.elapsed() >= opts.give_up_after {
                    return Err(opts.target.unreachable(opts.give_up_after, e));
                }
            }
        }
    }
    hand_over(&mut group);
    Ok(())
}

/// Transactions read but not yet applied.
#[derive(Default)]
struct Group {
    txns: Vec<Transaction>,
    records: usize,
    next_offset: i64,
}

impl Group {
    fn add(&mut self, tx: Transaction, next_offset: i64) {
        self.records += tx.records.len();
        self.txns.push(tx);
        self.next_offset = next_offset;
    }

    fn is_full(&self) -> bool {
        self.txns.len() >= GROUP_TXNS || self.records >= GROUP_RECORDS
    }
}

/// The writer's side: applies work to the store, each step atomic with the
/// offset it reaches.
struct Applier<'a> {
    store: &'a mut Store,
    target: &'a Target,
    progress: FollowProgress,
    /// The transaction being spilled, and its records so far.
    spill: Option<(SpillTxn, u64)>,
}

impl Applier<'_> {
    fn position(&self, next_offset: i64) -> FollowPosition {
        FollowPosition {
            brokers: self.target.brokers.clone(),
            topic: self.target.topic.clone(),
            next_offset,
        }
    }

    /// Applies one piece of work; `true` when the store moved on.
    fn apply(&mut self, work: Work) -> Result<bool> {
        match work {
            Work::Group(group) if group.txns.is_empty() => Ok(false),
            Work::Group(group) => {
                let position = self.position(group.next_offset);
                self.store.append_following(&group.txns, &position)?;
                self.moved(group.txns.len() as u64, group.records as u64, group.next_offset);
                Ok(true)
            }
            Work::Spill {
                commit_lsn,
                again,
                records,
            } => {
                if again {
                    self.abandon_spill();
                }
                let (mut sp, n) = match self.spill.take() {
                    Some(open) => open,
                    None => (self.store.begin_spill(commit_lsn)?, 0),
                };
                self.store.spill(&mut sp, &records)?;
                self.spill = Some((sp, n + records.len() as u64));
                Ok(false)
            }
            Work::Abandon => {
                self.abandon_spill();
                Ok(false)
            }
            Work::Finish { tx, next_offset } => {
                let position = self.position(next_offset);
                let (sp, n) = self.spill.take().ok_or(RelayError::SpillOrder)?;
                self.store
                    .finish_spill_following(sp, &tx.commit, &tx.records, &position)?;
                self.moved(1, n + tx.records.len() as u64, next_offset);
                Ok(true)
            }
        }
    }

    fn moved(&mut self, txns: u64, records: u64, next_offset: i64) {
        self.progress.txns += txns;
        self.progress.records += records;
        self.progress.next_offset = next_offset;
        self.progress.watermark = self.store.watermark();
    }

    /// Removes what was written of a spilled transaction that will not end.
    fn abandon_spill(&mut self) {
        if let Some((sp, _)) = self.spill.take() {
            if let Err(e) = self.store.abort_spill(sp) {
                tracing::warn!("could not remove a partly applied transaction: {e}");
            }
        }
    }
}

/// The offset to resume at, refusing a store that is not this topic's
/// follower.
fn check_follower(store: &Store, target: &Target) -> Result<i64> {
    match store.follow_position()? {
        Some(p) if p.topic == target.topic => Ok(p.next_offset),
        Some(p) => Err(RelayError::NotAFollower(format!(
            "this store follows topic {}, not {}",
            p.topic, target.topic
        ))),
        None if store.watermark().is_some() || store.source_info()?.is_some() => Err(RelayError::NotAFollower(
            "this store holds a history captured from Postgres; follow a topic into a new directory".into(),
        )),
        None => Ok(0),
    }
}
