//! Private, throwaway Apache Kafka clusters.
//!
//! `kafka-fixture` gives asof's tests real Kafka brokers of their own, the
//! way `pg-fixture` gives them a real PostgreSQL: [`KafkaCluster`] formats
//! one or more nodes in KRaft mode (each node is both broker and
//! controller, a static quorum of all of them) in a fresh temporary
//! directory, starts each as a child JVM on free ports of 127.0.0.1, waits
//! until every node sees every other as alive and answers requests, and
//! kills them and deletes the directory when dropped, also when a test
//! panics. A three-node cluster replicates internal and default topics
//! three times with `min.insync.replicas=2` (transaction state included),
//! so a test can [`KafkaCluster::kill`] a broker, keep writing with
//! `acks=all`, and [`KafkaCluster::restart`] it.
//!
//! Central types: [`KafkaCluster`] (a running cluster: bootstrap servers,
//! kill/stop/restart of one node), [`KafkaClusterBuilder`] (node count,
//! broker settings, JVM options) and [`KafkaFixtureError`].
//!
//! It is **not** a Kafka client: topics are created and records produced
//! with a client library (the tests use `rdkafka`); the fixture only
//! speaks enough of the protocol to see when the cluster is ready. It is
//! not for production either: no authentication, no TLS, small heaps,
//! short timeouts, and everything is deleted on drop. A cluster held in a
//! `static` is never dropped, and a test process killed from outside
//! cannot clean up: either leaves its JVMs running (about 400 MB each).
//! Prefer one cluster per test.
//!
//! The broker is Apache Kafka [`KAFKA_VERSION`] from Maven Central:
//! `scripts/setup.sh` copies its jars (from `kafka-fixture/maven/pom.xml`)
//! to `$HOME/.cache/asof-kafka/<version>/libs`, and the fixture looks for
//! them there, or in `$ASOF_KAFKA_LIBS`. Java 17 or newer runs them:
//! `$JAVA_HOME/bin/java`, else `java` from `PATH`. Each node's log is
//! `node-<id>/kafka.log` in the cluster's directory; a start error carries
//! its last lines.
//!
//! ```no_run
//! use kafka_fixture::KafkaCluster;
//!
//! let single = KafkaCluster::start()?;
//! let bootstrap: String = single.bootstrap_servers(); // "127.0.0.1:port"
//! # let _ = bootstrap;
//!
//! let mut cluster = KafkaCluster::builder().brokers(3).start()?;
//! cluster.kill(2)?; // as a crash would; writes with acks=all still succeed
//! cluster.restart(2)?; // back, and seen alive by the others
//! # Ok::<(), kafka_fixture::KafkaFixtureError>(())
//! ```

mod builder;
mod cluster;
mod conf;
mod error;
mod libs;
mod log;
mod probe;
mod process;

pub use builder::KafkaClusterBuilder;
pub use cluster::{KafkaCluster, NodeId};
pub use error::KafkaFixtureError;
pub use libs::{KAFKA_VERSION, LIBS_DIR_ENV};
