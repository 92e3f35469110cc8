//! The topic that holds the log: its settings, reading it in order, and
//! finding where it ends.

use std::time::{Duration, Instant};

use changelog::Lsn;
use kafka_log::{header, RecordKind, TopicRecord};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::context::Quiet;
use crate::error::{RelayError, Result};

/// The log is one totally ordered partition.
pub const PARTITION: i32 = 0;

/// Largest record the topic accepts: a row of wide TOASTed values is one
/// record, and Kafka's default of 1 MB would refuse it.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Where the log lives: bootstrap servers and topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic.
    pub topic: String,
}

impl Target {
    /// Settings every client of the topic shares.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "asof")
            // Quiet: failures reach the caller as errors, once.
            .set("log_level", "3");
        c
    }

    /// A client for metadata and offsets.
    fn client(&self) -> Result<BaseConsumer<Quiet>> {
        self.client_config()
            .create_with_context(Quiet)
            .map_err(|source| RelayError::Kafka {
                action: "create a client".into(),
                source,
            })
    }

    /// A reader of the topic's committed records from `offset` on; the end
    /// of what is committed shows as [`KafkaError::PartitionEOF`].
    pub(crate) fn reader(&self, offset: i64) -> Result<BaseConsumer<Quiet>> {
        let consumer: BaseConsumer<Quiet> = self
            .client_config()
            // Assigned, never subscribed: the group is not joined.
            .set("group.id", "asof-reader")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            // The end of the partition shows only when a fetch comes back
            // empty; the default waits half a second for one.
            .set("fetch.wait.max.ms", "20")
            .set("fetch.max.bytes", (MAX_RECORD_BYTES * 2).to_string())
            .set("max.partition.fetch.bytes", (MAX_RECORD_BYTES).to_string())
            .set("receive.message.max.bytes", (MAX_RECORD_BYTES * 2 + 65536).to_string())
            .create_with_context(Quiet)
            .map_err(|source| RelayError::Kafka {
                action: "create a consumer".into(),
                source,
            })?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, PARTITION, Offset::Offset(offset))
            .and_then(|()| consumer.assign(&assignment))
            .map_err(|source| RelayError::Kafka {
                action: format!("read topic {}", self.topic),
                source,
            })?;
        Ok(consumer)
    }

    /// The number of partitions of the topic, `None` when it does not
    /// exist; fails when the brokers do not answer within `timeout`.
    pub fn partitions(&self, timeout: Duration) -> Result<Option<usize>> {
        let consumer = self.client()?;
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), timeout)
            .map_err(|source| self.unreachable(timeout, source))?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == self.topic) else {
            return Ok(None);
        };
        match t.error().map(RDKafkaErrorCode::from) {
            None => Ok(Some(t.partitions().len())),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Ok(None),
            Some(code) => Err(RelayError::Kafka {
                action: format!("describe topic {}", self.topic),
                source: KafkaError::MetadataFetch(code),
            }),
        }
    }

    /// The broker that leads the log's partition.
    pub fn leader(&self, timeout: Duration) -> Result<i32> {
        let consumer = self.client()?;
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), timeout)
            .map_err(|source| self.unreachable(timeout, source))?;
        metadata
            .topics()
            .first()
            .and_then(|t| t.partitions().iter().find(|p| p.id() == PARTITION))
            .map(|p| p.leader())
            .ok_or_else(|| RelayError::Kafka {
                action: format!("find the leader of topic {}", self.topic),
                source: KafkaError::MetadataFetch(RDKafkaErrorCode::LeaderNotAvailable),
            })
    }

    /// How many brokers the cluster has.
    fn brokers_in_cluster(&self, timeout: Duration) -> Result<usize> {
        let consumer = self.client()?;
        let metadata = consumer
            .fetch_metadata(None, timeout)
            .map_err(|source| self.unreachable(timeout, source))?;
        Ok(metadata.brokers().len())
    }

    /// Creates the topic when missing: one partition, kept forever,
    /// replicated three times (or on every broker of a smaller cluster),
    /// and acknowledged by two replicas when there are three. An existing
    /// topic must have one partition.
    pub fn ensure(&self, timeout: Duration) -> Result<()> {
        if let Some(n) = self.partitions(timeout)? {
            return self.check_partitions(n);
        }
        let replicas = self.replicas(timeout)?;
        let insync = if replicas >= 3 { "2" } else { "1" };
        let max_bytes = MAX_RECORD_BYTES.to_string();
        let new_topic = NewTopic::new(&self.topic, 1, TopicReplication::Fixed(replicas))
            .set("retention.ms", "-1")
            .set("retention.bytes", "-1")
            .set("min.insync.replicas", insync)
            .set("max.message.bytes", &max_bytes)
            // Exactly the order written: never compact away a key's history.
            .set("cleanup.policy", "delete");
        let n = self.create(&new_topic, timeout)?;
        self.check_partitions(n)
    }

    fn check_partitions(&self, n: usize) -> Result<()> {
        match n {
            1 => Ok(()),
            partitions => Err(RelayError::Partitions {
                topic: self.topic.clone(),
                partitions,
            }),
        }
    }

    /// Creates a per-table topic when missing: replicated like the log,
    /// partitioned by the broker's default.
    pub(crate) fn ensure_table_topic(&self, topic: &str, timeout: Duration) -> Result<()> {
        let table = Target {
            brokers: self.brokers.clone(),
            topic: topic.to_owned(),
        };
        if table.partitions(timeout)?.is_none() {
            let new_topic = NewTopic::new(topic, -1, TopicReplication::Fixed(self.replicas(timeout)?));
            table.create(&new_topic, timeout)?;
        }
        Ok(())
    }

    /// Replicas for a new topic: three, or every broker of a smaller
    /// cluster.
    fn replicas(&self, timeout: Duration) -> Result<i32> {
        let brokers = self.brokers_in_cluster(timeout)?.clamp(1, 3);
        Ok(i32::try_from(brokers).unwrap_or(1))
    }

    /// Creates `new_topic` (named as this target's) unless someone else
    /// just did, and waits until the brokers know it; its partition count.
    fn create(&self, new_topic: &NewTopic<'_>, timeout: Duration) -> Result<usize> {
        let failed = |source| RelayError::Kafka {
            action: format!("create topic {}", self.topic),
            source,
        };
        let admin: AdminClient<Quiet> = self.client_config().create_with_context(Quiet).map_err(failed)?;
        let options = AdminOptions::new().operation_timeout(Some(timeout));
        // The admin client answers through a future; this runs on threads
        // without an async runtime.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RelayError::Runtime)?;
        let results = rt
            .block_on(admin.create_topics([new_topic], &options))
            .map_err(failed)?;
        for result in results {
            match result {
                // Created by someone else meanwhile: checked as any other.
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(failed(KafkaError::AdminOp(code))),
            }
        }
        // Every broker learns of the new topic a moment later.
        let created = Instant::now();
        loop {
            match self.partitions(timeout)? {
                Some(n) => return Ok(n),
                None if created.elapsed() < timeout => std::thread::sleep(Duration::from_millis(100)),
                None => {
                    return Err(failed(KafkaError::MetadataFetch(
                        RDKafkaErrorCode::UnknownTopicOrPartition,
                    )))
                }
            }
        }
    }

    /// The offset after the topic's last record (its high watermark).
    pub fn end_offset(&self, timeout: Duration) -> Result<i64> {
        let consumer = self.client()?;
        let (_, high) = self.watermarks(&consumer, timeout)?;
        Ok(high)
    }

    /// The partition's first and next offsets. A broker learns of a topic
    /// created elsewhere a moment after the one that answered its creation,
    /// and a partition's leadership is settled a moment after its creation
    /// or its leader's loss: until `timeout`, the brokers are asked again.
    fn watermarks(&self, consumer: &BaseConsumer<Quiet>, timeout: Duration) -> Result<(i64, i64)> {
        let started = Instant::now();
        loop {
            let source = match consumer.fetch_watermarks(&self.topic, PARTITION, timeout) {
                Ok(w) => return Ok(w),
                Err(source) => source,
            };
            let unknown = matches!(
                source,
                KafkaError::MetadataFetch(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownPartition
                )
            );
            if unknown && started.elapsed() >= timeout {
                return Err(RelayError::NoTopic {
                    brokers: self.brokers.clone(),
                    topic: self.topic.clone(),
                });
            }
            if !unknown && (!leadership_moving(&source) || started.elapsed() >= timeout) {
                return Err(self.unreachable(timeout, source));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The commit LSN of the last transaction the topic holds complete (its
    /// end marker committed), reading back from the end in growing windows.
    pub fn last_transaction(&self, timeout: Duration) -> Result<Option<Lsn>> {
        let consumer = self.client()?;
        let (low, high) = self.watermarks(&consumer, timeout)?;
        let mut window = 1024_i64;
        let mut until = high;
        while until > low {
            let from = until.saturating_sub(window).max(low);
            let mut last = None;
            self.read(from, timeout, |offset, record| {
                if offset >= until {
                    return Ok(false);
                }
                if let Some(lsn) = end_marker(record) {
                    last = Some(lsn);
                }
                Ok(true)
            })?;
            if last.is_some() {
                return Ok(last);
            }
            until = from;
            window = window.saturating_mul(4);
        }
        Ok(None)
    }

    /// Reads committed records from `from` to the end, in order, through
    /// `f` (return `false` to stop).
    pub(crate) fn read(
        &self,
        from: i64,
        timeout: Duration,
        mut f: impl FnMut(i64, &TopicRecord) -> Result<bool>,
    ) -> Result<()> {
        let consumer = self.reader(from)?;
        let mut quiet_since = Instant::now();
        loop {
            match consumer.poll(Duration::from_millis(200)) {
                None if quiet_since.elapsed() > timeout => {
                    return Err(self.unreachable(timeout, KafkaError::NoMessageReceived));
                }
                None => {}
                Some(Ok(m)) => {
                    quiet_since = Instant::now();
                    if !f(m.offset(), &topic_record(&m))? {
                        return Ok(());
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => return Ok(()),
                Some(Err(source)) => {
                    return Err(RelayError::Kafka {
                        action: format!("read topic {}", self.topic),
                        source,
                    })
                }
            }
        }
    }

    pub(crate) fn unreachable(&self, timeout: Duration, source: KafkaError) -> RelayError {
        RelayError::Unreachable {
            brokers: self.brokers.clone(),
            seconds: timeout.as_secs(),
            source,
        }
    }
}

/// Whether a broker answered that the partition has no leader it knows
/// of yet, or that it is not the leader any more: true for a moment after
/// a topic is created and after a leader is lost.
fn leadership_moving(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MetadataFetch(RDKafkaErrorCode::NotLeaderForPartition | RDKafkaErrorCode::LeaderNotAvailable)
    )
}

/// The record as the format sees it.
pub(crate) fn topic_record(m: &BorrowedMessage<'_>) -> TopicRecord {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    TopicRecord {
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().unwrap_or_default().to_vec(),
        headers,
    }
}

/// The commit LSN an end marker closes, from its headers.
pub(crate) fn end_marker(record: &TopicRecord) -> Option<Lsn> {
    let kind = std::str::from_utf8(record.header(header::TYPE)?).ok()?;
    if RecordKind::parse(kind)? != RecordKind::End {
        return None;
    }
    std::str::from_utf8(record.header(header::COMMIT_LSN)?)
        .ok()?
        .parse()
        .ok()
}
