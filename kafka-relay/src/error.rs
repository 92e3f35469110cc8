//! What can go wrong between a store and a topic.

use changelog::Lsn;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why publishing to or following a topic failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The brokers did not answer within the time allowed.
    #[error("Kafka at {brokers} did not answer within {seconds} s (is it running and reachable?)")]
    Unreachable {
        /// The bootstrap servers.
        brokers: String,
        /// How long it was tried.
        seconds: u64,
        /// The client's last error.
        #[source]
        source: KafkaError,
    },
    /// The topic does not exist (or the brokers did not learn of it in
    /// the time allowed).
    #[error("topic {topic} does not exist at {brokers}")]
    NoTopic {
        /// The bootstrap servers.
        brokers: String,
        /// The topic.
        topic: String,
    },
    /// A newer publisher of the same topic took over.
    #[error("another asof publisher took over topic {topic} (transactional id {transactional_id}); this one stops")]
    Fenced {
        /// The topic.
        topic: String,
        /// The transactional id both use.
        transactional_id: String,
    },
    /// A Kafka call failed for good.
    #[error("Kafka: {action}")]
    Kafka {
        /// What was being done.
        action: String,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The topic cannot hold the log as one ordered sequence.
    #[error("topic {topic} has {partitions} partitions; the log needs exactly one")]
    Partitions {
        /// The topic.
        topic: String,
        /// Its partition count.
        partitions: usize,
    },
    /// The topic holds a history this store does not continue.
    #[error("topic {topic} ends with the transaction at {topic_lsn}, which this store does not hold (its last is {store_lsn}); it was published from another store")]
    ForeignTopic {
        /// The topic.
        topic: String,
        /// The topic's last transaction.
        topic_lsn: Lsn,
        /// The store's last transaction, `0/0` when empty.
        store_lsn: Lsn,
    },
    /// The store no longer has the history the topic lacks.
    #[error("the store was compacted at {horizon}, so its history before that can no longer be published to topic {topic}, which ends at {topic_lsn}")]
    Compacted {
        /// The topic.
        topic: String,
        /// The store's retention horizon.
        horizon: Lsn,
        /// The topic's last transaction, `0/0` when empty.
        topic_lsn: Lsn,
    },
    /// A follower's store belongs to something else.
    #[error("{0}")]
    NotAFollower(String),
    /// A record of the topic is not what the format allows.
    #[error("topic {topic}: {source}")]
    Format {
        /// The topic.
        topic: String,
        /// What is wrong, naming the offset.
        #[source]
        source: kafka_log::ReassemblyError,
    },
    /// The follower's writer was told to end a large transaction it was
    /// never given the start of.
    #[error("a large transaction ended before its first records were applied")]
    SpillOrder,
    /// No runtime to wait for the admin client in.
    #[error("cannot start a runtime for Kafka's admin client")]
    Runtime(#[source] std::io::Error),
    /// A stored transaction could not be written as records.
    #[error(transparent)]
    Encode(#[from] kafka_log::EncodeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] changelog::StoreError),
}

impl RelayError {
    /// Whether trying again may succeed: Kafka calls that failed or timed
    /// out, not a refusal or a broken store.
    pub fn is_transient(&self) -> bool {
        match self {
            RelayError::Unreachable { .. } => true,
            RelayError::Kafka { source, .. } => match source {
                KafkaError::Transaction(t) => !t.is_fatal() || t.is_retriable(),
                _ => true,
            },
            _ => false,
        }
    }

    /// A failed Kafka call: fencing gets its own error, everything else
    /// names the action.
    pub(crate) fn kafka(action: impl Into<String>, topic: &str, transactional_id: &str, source: KafkaError) -> Self {
        if is_fenced(&source) {
            return RelayError::Fenced {
                topic: topic.to_owned(),
                transactional_id: transactional_id.to_owned(),
            };
        }
        RelayError::Kafka {
            action: action.into(),
            source,
        }
    }
}

/// Whether a newer producer with the same transactional id fenced this one.
pub(crate) fn is_fenced(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
    )
}

/// Result alias.
pub type Result<T, E = RelayError> = std::result::Result<T, E>;
