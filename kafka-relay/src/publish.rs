//! Publishing: the store's transactions onto the topic, exactly once.
//!
//! The argument, step by step:
//! 1. The capture stores each transaction first (the store resolves
//!    unchanged TOAST and keeps what is not yet published), then calls
//!    [`Publisher`] through [`cdc_source::Relay`] before it reports the
//!    transaction durable, so the slot is acknowledged only once Kafka has
//!    committed it.
//! 2. Records go through one transactional, idempotent producer whose
//!    transactional id is derived from the topic: a newer publisher of the
//!    topic fences this one, which then stops with
//!    [`RelayError::Fenced`] instead of writing beside it.
//! 3. Whole Postgres transactions are grouped into Kafka transactions; one
//!    too large for a Kafka transaction is split into chunks, and only the
//!    chunk with its end marker completes it. A publisher that stops
//!    mid-way leaves chunks without an end marker, which readers discard
//!    when the transaction starts again from its first record.
//! 4. What the topic holds is known only from the topic: the last end
//!    marker committed there (read after taking the transactional id, so
//!    an earlier publisher can no longer add to it). Everything the store
//!    holds after it is published next, in commit order.
//! 5. A failed Kafka transaction is aborted and published again from the
//!    topic's end, with backoff, until `give_up_after` passes without
//!    progress; then the capture ends, with nothing acknowledged past what
//!    Kafka holds.

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use changelog::{ChangeRecord, CommitEntry, CommitInfo, Lsn, Store, Transaction};
use kafka_log::{EncodeOptions, Encoder, Tables, TopicRecord};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::context::Quiet;
use crate::error::{is_fenced, RelayError, Result};
use crate::topic::{Target, MAX_RECORD_BYTES, PARTITION};

/// Records per Kafka transaction before it is committed at the next
/// Postgres transaction's end. Each commit costs the broker a round of
/// markers (about 100 ms on one node, whatever the size), so whole
/// transactions are grouped generously; the producer's queue, not the
/// Kafka transaction, bounds memory.
const GROUP_RECORDS: usize = 250_000;

/// Records of one Postgres transaction in a Kafka transaction before it
/// is committed mid-way: keeps a huge transaction well inside Kafka's
/// transaction timeout.
const SPLIT_RECORDS: usize = 100_000;

/// Stored records read at once from a large transaction.
const READ_RECORDS: usize = 10_000;

/// Commits looked up at once.
const COMMITS_AT_ONCE: usize = 4096;

/// How a publisher is set up.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// The topic.
    pub target: Target,
    /// Debezium's logical server name in each event's `source`.
    pub server: String,
    /// The source database's name in each event's `source`.
    pub database: String,
    /// How long Kafka may fail without progress before publishing gives up.
    pub give_up_after: Duration,
    /// Also write each row change to a per-table topic
    /// `prefix.schema.table` (Debezium's naming, keyed by primary key), in
    /// the same Kafka transaction as the log.
    pub fan_out: Option<String>,
}

/// Publishes the store's transactions to the topic; the capture's
/// [`cdc_source::Relay`].
pub struct Publisher {
    opts: PublishOptions,
    transactional_id: String,
    /// Created at the first publish: taking the transactional id fences
    /// any earlier publisher, which must not happen before the capture's
    /// own checks (the slot, the store) have passed.
    producer: Option<ThreadedProducer<Quiet>>,
    /// The last transaction the topic holds complete; `None` when it
    /// holds none.
    published: Option<Lsn>,
    /// The encoder as of `published`; rebuilt from the store after a
    /// failure.
    encoder: Option<Encoder>,
    /// Per-table topics known to exist.
    table_topics: RefCell<HashSet<String>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topic", &self.opts.target.topic)
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Checks that the store continues what the topic holds (or can
    /// begin it), without writing anything to Kafka.
    pub fn new(opts: PublishOptions, store: &Store) -> Result<Publisher> {
        tracing::debug!("reading where topic {} ends", opts.target.topic);
        let published = opts.target.last_transaction(opts.give_up_after)?;
        tracing::debug!("topic {} ends at {published:?}", opts.target.topic);
        check_store(&opts.target, store, published)?;
        let transactional_id = format!("asof-publish-{}", opts.target.topic);
        Ok(Publisher {
            opts,
            transactional_id,
            producer: None,
            published,
            encoder: None,
            table_topics: RefCell::default(),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.opts.target.topic
    }

    /// The last transaction the topic holds complete, as far as known.
    pub fn published(&self) -> Option<Lsn> {
        self.published
    }

    /// Publishes what the store holds after what the topic holds, through
    /// commit LSN `through` (everything when `None`), retrying failures
    /// with backoff. `appended`: transactions the store logged exactly as
    /// given, in commit order, whose records are taken from here rather
    /// than read back (see [`cdc_source::Relay::relay`]).
    pub fn publish(&mut self, store: &Store, through: Option<Lsn>, appended: &[Transaction]) -> Result<()> {
        let mut delay = Duration::from_millis(200);
        let mut failing_since: Option<Instant> = None;
        loop {
            let before = self.published;
            let err = match self.publish_once(store, through, appended) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !err.is_transient() {
                return Err(err);
            }
            if self.published != before {
                failing_since = None;
                delay = Duration::from_millis(200);
            }
            let since = *failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.opts.give_up_after {
                return Err(err);
            }
            tracing::warn!(
                "publishing to {} failed ({err}); trying again in {delay:?}",
                self.opts.target.topic
            );
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    fn publish_once(&mut self, store: &Store, through: Option<Lsn>, appended: &[Transaction]) -> Result<()> {
        let Some(mark) = store.watermark() else {
            return Ok(());
        };
        if self.producer.is_none() {
            self.producer = Some(self.init()?);
            tracing::debug!("took transactional id {}", self.transactional_id);
            // Only now can no earlier publisher add to the topic.
            self.published = self.opts.target.last_transaction(self.opts.give_up_after)?;
            tracing::debug!("topic {} ends at {:?}", self.opts.target.topic, self.published);
            check_store(&self.opts.target, store, self.published)?;
            self.encoder = None;
        }
        let to = through.map_or(mark.commit_lsn, |t| t.min(mark.commit_lsn));
        if self.published.is_some_and(|p| p >= to) {
            return Ok(());
        }
        let mut batch = Batch::default();
        let result = self.publish_through(store, appended, to, &mut batch);
        let result = result.and_then(|()| self.commit(&mut batch));
        if let Err(e) = result {
            // Start again from what the topic holds: a new producer
            // aborts what this one left open, and the topic's end is read
            // again, since chunks may have been committed before the error.
            self.encoder = None;
            self.producer = None;
            return Err(e);
        }
        Ok(())
    }

    /// Publishes the store's transactions after `published` through `to`.
    fn publish_through(&mut self, store: &Store, appended: &[Transaction], to: Lsn, batch: &mut Batch) -> Result<()> {
        let mut from = self.published.map_or(Lsn::ZERO, Lsn::next);
        loop {
            let commits = store.commits_from(from, to, COMMITS_AT_ONCE)?;
            let Some(last) = commits.last() else {
                return Ok(());
            };
            from = last.commit_lsn.next();
            for entry in &commits {
                let given = appended
                    .binary_search_by_key(&entry.commit_lsn, |t| t.commit.commit_lsn)
                    .ok()
                    .and_then(|i| appended.get(i))
                    .filter(|t| t.records.len() == entry.records as usize);
                self.publish_transaction(store, entry, given, batch)?;
            }
        }
    }

    /// Publishes one stored transaction, its records taken from `given`
    /// when the store logged them as given, else read from the store.
    fn publish_transaction(
        &mut self,
        store: &Store,
        entry: &CommitEntry,
        given: Option<&Transaction>,
        batch: &mut Batch,
    ) -> Result<()> {
        let commit = CommitInfo {
            commit_lsn: entry.commit_lsn,
            end_lsn: entry.end_lsn,
            // The time Postgres reported: a follower makes it monotonic
            // exactly as the store did.
            commit_time: entry.reported_time,
            xid: entry.xid,
        };
        if self.encoder.is_none() {
            self.encoder = Some(encoder_at(store, self.published, &self.opts));
        }
        let mut records: Vec<ChangeRecord> = Vec::new();
        let lsn = entry.commit_lsn;
        // Split borrows: the encoder writes while the producer sends.
        let Publisher {
            encoder,
            producer,
            opts,
            transactional_id,
            table_topics,
            ..
        } = self;
        let (Some(encoder), Some(producer)) = (encoder.as_mut(), producer.as_ref()) else {
            return Ok(());
        };
        let sender = Sender {
            producer,
            opts,
            transactional_id,
            table_topics,
        };
        let mut tx = encoder.begin(commit);
        // Where this transaction's records begin in the open Kafka
        // transaction.
        let mut first = batch.records;
        let mut flush =
            |records: &[ChangeRecord], tx: &mut kafka_log::TxEncoder<'_>, batch: &mut Batch| -> Result<()> {
                tx.add(records)?;
                for r in tx.take() {
                    sender.send(batch, &r)?;
                }
                // Mid-transaction only for a transaction too large for one
                // Kafka transaction; otherwise at the next boundary.
                if batch.records.saturating_sub(first) >= SPLIT_RECORDS {
                    sender.commit(batch)?;
                    first = 0;
                }
                Ok(())
            };
        match given {
            Some(t) => {
                for piece in t.records.chunks(READ_RECORDS) {
                    flush(piece, &mut tx, batch)?;
                }
            }
            None => {
                store.for_each_log_entry(lsn, lsn, |e| {
                    records.push(e.record);
                    if records.len() >= READ_RECORDS {
                        flush(&records, &mut tx, batch)?;
                        records.clear();
                    }
                    Ok::<_, RelayError>(std::ops::ControlFlow::Continue(()))
                })?;
                flush(&records, &mut tx, batch)?;
            }
        }
        for r in tx.finish()? {
            sender.send(batch, &r)?;
        }
        batch.last_end = Some(lsn);
        if batch.records >= GROUP_RECORDS {
            sender.commit(batch)?;
            self.published = Some(lsn);
        }
        Ok(())
    }

    /// Commits the open Kafka transaction; the topic then holds everything
    /// up to its last end marker.
    fn commit(&mut self, batch: &mut Batch) -> Result<()> {
        let Some(producer) = self.producer.as_ref() else {
            return Ok(());
        };
        let sender = Sender {
            producer,
            opts: &self.opts,
            transactional_id: &self.transactional_id,
            table_topics: &self.table_topics,
        };
        sender.commit(batch)?;
        if let Some(lsn) = batch.last_end {
            self.published = Some(lsn);
        }
        Ok(())
    }

    /// A transactional producer holding the topic's transactional id.
    fn init(&self) -> Result<ThreadedProducer<Quiet>> {
        let timeout_ms = self.opts.give_up_after.as_millis().clamp(10_000, 900_000).to_string();
        let producer: ThreadedProducer<Quiet> = self
            .opts
            .target
            .client_config()
            .set("transactional.id", &self.transactional_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("transaction.timeout.ms", &timeout_ms)
            .set("message.timeout.ms", &timeout_ms)
            .set("message.max.bytes", MAX_RECORD_BYTES.to_string())
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            // The next transaction's first send is refused while the
            // broker finishes the last commit, and retried after this
            // backoff; the default of 100 ms would bound us to ten Kafka
            // transactions a second.
            .set("retry.backoff.ms", "5")
            .set("retry.backoff.max.ms", "100")
            .set("batch.size", (1 << 20).to_string())
            .create_with_context(Quiet)
            .map_err(|source| RelayError::Kafka {
                action: "create a producer".into(),
                source,
            })?;
        producer
            .init_transactions(self.opts.give_up_after)
            .map_err(|source| match is_fenced(&source) {
                true => RelayError::kafka("", &self.opts.target.topic, &self.transactional_id, source),
                false => self.opts.target.unreachable(self.opts.give_up_after, source),
            })?;
        Ok(producer)
    }
}

impl cdc_source::Relay for Publisher {
    fn relay(
        &mut self,
        store: &Store,
        through: Lsn,
        appended: &[Transaction],
    ) -> std::result::Result<(), cdc_source::RelayError> {
        self.publish(store, Some(through), appended)
            .map_err(|e| Box::new(e) as cdc_source::RelayError)
    }
}

/// The open Kafka transaction.
#[derive(Default, Debug)]
struct Batch {
    /// A Kafka transaction is open.
    open: bool,
    /// Records sent in it.
    records: usize,
    /// The last Postgres transaction whose end marker it holds.
    last_end: Option<Lsn>,
}

/// Sends records in Kafka transactions.
struct Sender<'a> {
    producer: &'a ThreadedProducer<Quiet>,
    opts: &'a PublishOptions,
    transactional_id: &'a str,
    table_topics: &'a RefCell<HashSet<String>>,
}

impl Sender<'_> {
    fn fail(&self, action: &str, e: KafkaError) -> RelayError {
        RelayError::kafka(action, &self.opts.target.topic, self.transactional_id, e)
    }

    fn send(&self, batch: &mut Batch, r: &TopicRecord) -> Result<()> {
        if !batch.open {
            self.producer
                .begin_transaction()
                .map_err(|e| self.fail("begin a transaction", e))?;
            batch.open = true;
            batch.records = 0;
        }
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (key, value) in &r.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.opts.target.topic)
            .partition(PARTITION)
            .payload(r.value.as_slice())
            .headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k.as_slice());
        }
        self.produce(record)?;
        batch.records += 1;
        if let Some((topic, records)) = self.opts.fan_out.as_deref().and_then(|p| kafka_log::fan_out(p, r)) {
            if !self.table_topics.borrow().contains(&topic) {
                self.opts.target.ensure_table_topic(&topic, self.opts.give_up_after)?;
                self.table_topics.borrow_mut().insert(topic.clone());
            }
            for f in &records {
                let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&topic);
                if let Some(k) = &f.key {
                    record = record.key(k.as_slice());
                }
                if let Some(v) = &f.value {
                    record = record.payload(v.as_slice());
                }
                self.produce(record)?;
            }
        }
        Ok(())
    }

    /// Hands one record to the producer, waiting while its queue is full.
    fn produce(&self, mut record: BaseRecord<'_, [u8], [u8]>) -> Result<()> {
        let started = Instant::now();
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if started.elapsed() < self.opts.give_up_after =>
                {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(self.fail("send a record", e)),
            }
        }
        Ok(())
    }

    fn commit(&self, batch: &mut Batch) -> Result<()> {
        if !batch.open {
            return Ok(());
        }
        let started = Instant::now();
        self.producer
            .commit_transaction(self.opts.give_up_after)
            .map_err(|e| self.fail("commit a transaction", e))?;
        tracing::debug!("committed {} records in {:?}", batch.records, started.elapsed());
        batch.open = false;
        batch.records = 0;
        Ok(())
    }
}

/// An encoder whose directory is the store's tables as of `published`.
fn encoder_at(store: &Store, published: Option<Lsn>, opts: &PublishOptions) -> Encoder {
    let catalog = store.catalog();
    let at = published.unwrap_or(Lsn::ZERO);
    let latest = catalog
        .tables()
        .filter_map(|(id, e)| published.and_then(|_| e.history.at(at)).map(|v| (id, &v.change)));
    let tables = Tables::from_latest(latest, catalog.next_table_id());
    let encoder = Encoder::new(
        tables,
        EncodeOptions {
            server: opts.server.clone(),
            database: opts.database.clone(),
        },
    );
    match published {
        Some(lsn) => encoder.after(lsn),
        None => encoder,
    }
}

/// Refuses a store that does not continue what the topic holds.
fn check_store(target: &Target, store: &Store, published: Option<Lsn>) -> Result<()> {
    let store_lsn = store.watermark().map_or(Lsn::ZERO, |w| w.commit_lsn);
    if let Some(p) = published {
        if store.commit(p)?.is_none() {
            return Err(RelayError::ForeignTopic {
                topic: target.topic.clone(),
                topic_lsn: p,
                store_lsn,
            });
        }
    }
    if let Some(horizon) = store.horizon() {
        if published.is_none_or(|p| p < horizon) {
            return Err(RelayError::Compacted {
                topic: target.topic.clone(),
                horizon,
                topic_lsn: published.unwrap_or(Lsn::ZERO),
            });
        }
    }
    Ok(())
}
