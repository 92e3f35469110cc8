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

use changelog::{FollowPosition, Lsn, Store, Transaction, Watermark};
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
        let (groups, to_apply) = mpsc::sync_channel::<Group>(GROUPS_IN_FLIGHT);
        let (applied_tx, applied) = mpsc::channel::<FollowProgress>();
        let target = &opts.target;
        let mut writer_progress = progress;
        let writer = std::thread::Builder::new()
            .name("asof-follow-writer".into())
            .spawn_scoped(scope, move || -> Result<()> {
                for mut group in to_apply {
                    group.apply(store, target, &mut writer_progress)?;
                    let _ = applied_tx.send(writer_progress);
                }
                Ok(())
            })
            .map_err(RelayError::Runtime)?;
        let read = read_topic(&consumer, &mut reader, opts, stop, &groups, || {
            while let Ok(p) = applied.try_recv() {
                progress = p;
                on_progress(&progress);
            }
        });
        drop(groups);
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

/// Groups handed to the writer and not yet applied.
const GROUPS_IN_FLIGHT: usize = 2;

/// Reads the topic and hands whole transactions, grouped, to the writer
/// until told to stop, caught up, or the writer is gone.
fn read_topic(
    consumer: &BaseConsumer<Quiet>,
    reader: &mut Reassembler,
    opts: &FollowOptions,
    stop: &AtomicBool,
    groups: &mpsc::SyncSender<Group>,
    mut tick: impl FnMut(),
) -> Result<()> {
    let mut group = Group::default();
    let mut quiet_since = Instant::now();
    // `false` when the writer stopped: its own error says why.
    let hand_over = |group: &mut Group| group.txns.is_empty() || groups.send(std::mem::take(group)).is_ok();
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
                if let Some(tx) = done {
                    group.add(tx, offset + 1);
                    if group.is_full() && !hand_over(&mut group) {
                        return Ok(());
                    }
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

    /// Appends the group with its offset; `false` when it was empty.
    fn apply(&mut self, store: &mut Store, target: &Target, progress: &mut FollowProgress) -> Result<bool> {
        if self.txns.is_empty() {
            return Ok(false);
        }
        let position = FollowPosition {
            brokers: target.brokers.clone(),
            topic: target.topic.clone(),
            next_offset: self.next_offset,
        };
        store.append_following(&self.txns, &position)?;
        progress.txns += self.txns.len() as u64;
        progress.records += self.records as u64;
        progress.next_offset = self.next_offset;
        progress.watermark = store.watermark();
        self.txns.clear();
        self.records = 0;
        Ok(true)
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

/// The first offset a follower has not applied and the last transaction
/// it applied, for `status`.
pub fn position(store: &Store) -> Result<Option<(FollowPosition, Option<Lsn>)>> {
    Ok(store
        .follow_position()?
        .map(|p| (p, store.watermark().map(|w| w.commit_lsn))))
}
