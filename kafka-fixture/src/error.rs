//! The one error type of this crate.

use std::path::PathBuf;
use std::process::ExitStatus;

use crate::NodeId;

/// Why a fixture operation failed.
///
/// Messages are written for the person running the tests: they say what to
/// install or change. Underlying causes are attached as
/// [`std::error::Error::source`], not repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaFixtureError {
    /// The Kafka jars are not where they were looked for.
    #[error(
        "Apache Kafka {version} jars not found in {}; run `source scripts/setup.sh` \
         (it fetches them with Maven) or set ASOF_KAFKA_LIBS to a directory holding them",
        looked_in.display()
    )]
    LibsNotFound {
        /// The directory that lacked them.
        looked_in: PathBuf,
        /// The Kafka version the fixture runs.
        version: &'static str,
    },

    /// `java` could not be run.
    #[error(
        "could not run {}; install a Java 17+ runtime (Debian: apt-get install \
         default-jre-headless) or set JAVA_HOME",
        java.display()
    )]
    JavaNotFound {
        /// The program that was tried.
        java: PathBuf,
        /// Why spawning it failed.
        #[source]
        source: std::io::Error,
    },

    /// A cluster needs at least one node.
    #[error("a Kafka cluster needs at least one broker, got {brokers}")]
    NoBrokers {
        /// The count asked for.
        brokers: usize,
    },

    /// A builder setting cannot be written to `server.properties`.
    #[error("invalid broker setting name {name:?}: expected letters, digits, `_`, `-` or `.`")]
    InvalidSetting {
        /// The offending property name.
        name: String,
    },

    /// A node id that is not one of the cluster's.
    #[error("no broker with node id {node} in this cluster (its node ids are {ids:?})")]
    UnknownBroker {
        /// The id asked for.
        node: NodeId,
        /// The cluster's node ids.
        ids: Vec<NodeId>,
    },

    /// A file-system or process operation failed.
    #[error("{action}")]
    Io {
        /// What was being done, e.g. "creating the cluster directory".
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// `kafka.tools.StorageTool format` ran and failed.
    #[error("formatting the storage of node {node} failed ({status}):\n{output}")]
    FormatFailed {
        /// The node whose directory was being formatted.
        node: NodeId,
        /// The tool's exit status.
        status: ExitStatus,
        /// What the tool printed (the end of stdout and stderr).
        output: String,
    },

    /// A broker did not come up, or the cluster did not become whole; the
    /// end of the broker's log says why.
    #[error(
        "Kafka node {node} did not start: {reason}\n--- last lines of {} ---\n{log_tail}",
        log_file.display()
    )]
    StartFailed {
        /// The node that failed or was being waited for.
        node: NodeId,
        /// What went wrong, e.g. "the broker exited (exit status: 1)".
        reason: String,
        /// The node's log file (removed with the cluster unless
        /// `keep_on_drop` is set).
        log_file: PathBuf,
        /// The last lines of that log.
        log_tail: String,
        /// The last error of the readiness probe, if any.
        #[source]
        source: Option<std::io::Error>,
    },
}

impl KafkaFixtureError {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        KafkaFixtureError::Io {
            action: action.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_and_clusters_cross_threads() {
        fn check<T: Send + Sync + 'static>() {}
        check::<super::KafkaFixtureError>();
        check::<crate::KafkaCluster>();
    }

    #[test]
    fn missing_libs_say_what_to_run() {
        let err = super::KafkaFixtureError::LibsNotFound {
            looked_in: "/nowhere".into(),
            version: "4.4.0",
        };
        let message = err.to_string();
        assert!(message.contains("scripts/setup.sh"), "{message}");
        assert!(message.contains("ASOF_KAFKA_LIBS"), "{message}");
    }
}
