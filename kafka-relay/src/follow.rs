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
use std::time::{Duration, Instant};

use changelog::{FollowPosition, Lsn, Store, Transaction, Watermark};
use kafka_log::{Reassembler, Tables};
use rdkafka::error::KafkaError;
use rdkafka::Message;

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
    let mut group = Group::default();
    let consumer = opts.target.reader(start)?;
    let mut quiet_since = Instant::now();
    while !stop.load(Ordering::Relaxed) {
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
                    if group.is_full() {
                        group.apply(store, &opts.target, &mut progress)?;
                        on_progress(&progress);
                    }
                }
            }
            None => {
                if group.apply(store, &opts.target, &mut progress)? {
                    on_progress(&progress);
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
                if group.apply(store, &opts.target, &mut progress)? {
                    on_progress(&progress);
                }
                if opts.until == FollowUntil::CaughtUp {
                    break;
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
    group.apply(store, &opts.target, &mut progress)?;
    Ok(progress)
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
