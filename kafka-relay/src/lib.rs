//! `kafka-relay`: asof's change log on a Kafka topic, for when one machine
//! is not enough.
//!
//! Two directions, both exactly once:
//!
//! - [`Publisher`]: the capture's [`cdc_source::Relay`]. Every transaction
//!   the capture stores is published to one topic of one partition through
//!   a transactional, idempotent producer before the slot is acknowledged;
//!   a restart publishes what the store holds after the topic's last
//!   complete transaction, and a newer publisher of the topic fences an
//!   older one ([`mod@publish`] has the argument step by step).
//! - [`follow()`]: reads the topic `read_committed` into a store that
//!   answers exactly as one captured from Postgres, keeping its offset in
//!   the same atomic batch as the data.
//!
//! [`Target`] names the brokers and topic, and creates the topic with the
//! settings the log needs (one partition, kept forever, replicated).
//!
//! Not here: the records' format (`kafka-log`), capturing from Postgres
//! (`cdc-source`), or the store (`changelog`).

mod context;
mod error;
pub mod follow;
pub mod publish;
mod topic;

pub use error::{RelayError, Result};
pub use follow::{follow, FollowOptions, FollowProgress, FollowUntil};
pub use publish::{PublishOptions, Publisher};
pub use topic::{Target, MAX_RECORD_BYTES, PARTITION};
