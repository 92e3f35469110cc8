//! The log on Kafka: `asof tail --kafka` publishing while it is killed at
//! random, followers killed while they rebuild, a broker of three lost and
//! brought back, and the ways it ends with one clear line.
//!
//! Each test starts its own PostgreSQL and Kafka (KRaft, real brokers).

#[path = "kafka/support.rs"]
mod support;

#[path = "kafka/kills.rs"]
mod kills;

#[path = "kafka/failures.rs"]
mod failures;
