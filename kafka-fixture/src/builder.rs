//! Creating a cluster: the builder's options and the first start.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::{KafkaCluster, Parts};
use crate::process::Jvm;
use crate::{conf, libs, KafkaFixtureError};

/// Default time the nodes get to form a cluster and accept requests.
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(90);

/// Options for a [`KafkaCluster`]; get one from [`KafkaCluster::builder`].
///
/// ```no_run
/// let cluster = kafka_fixture::KafkaCluster::builder()
///     .brokers(3)
///     .setting("log.retention.ms", "60000")
///     .start()?;
/// # Ok::<(), kafka_fixture::KafkaFixtureError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct KafkaClusterBuilder {
    brokers: usize,
    settings: Vec<(String, String)>,
    jvm_options: Vec<String>,
    libs_dir: Option<PathBuf>,
    parent_dir: Option<PathBuf>,
    keep_on_drop: bool,
    start_timeout: Duration,
}

impl Default for KafkaClusterBuilder {
    fn default() -> Self {
        KafkaClusterBuilder {
            brokers: 1,
            settings: Vec::new(),
            jvm_options: Vec::new(),
            libs_dir: None,
            parent_dir: None,
            keep_on_drop: false,
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }
}

impl KafkaClusterBuilder {
    /// How many nodes (default 1). Each is a broker and a controller; with
    /// three or more, internal and default topics get three replicas and
    /// `min.insync.replicas=2`, so one broker can be down.
    pub fn brokers(mut self, brokers: usize) -> Self {
        self.brokers = brokers;
        self
    }

    /// Adds a broker property (`server.properties`) to every node. It is
    /// written after the fixture's own, so it overrides them.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Adds a JVM option to every node, after the fixture's own (e.g.
    /// `-Xmx1g` overrides the default heap of 384 MB).
    pub fn jvm_option(mut self, option: impl Into<String>) -> Self {
        self.jvm_options.push(option.into());
        self
    }

    /// Uses the Kafka jars in `dir` instead of `$ASOF_KAFKA_LIBS` or the
    /// setup script's cache.
    pub fn libs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.libs_dir = Some(dir.into());
        self
    }

    /// Creates the cluster's directory under `dir` instead of the system
    /// temp directory.
    pub fn parent_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.parent_dir = Some(dir.into());
        self
    }

    /// On drop, kills the nodes but keeps the directory (configuration,
    /// data and logs), and prints where it is to stderr. For debugging a
    /// failing test.
    pub fn keep_on_drop(mut self, keep: bool) -> Self {
        self.keep_on_drop = keep;
        self
    }

    /// How long the nodes may take to form the cluster after a start or
    /// restart (default 90 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Formats each node's storage, starts the nodes on free ports and
    /// waits until every one sees all of them alive. On error nothing is
    /// left running.
    pub fn start(self) -> Result<KafkaCluster, KafkaFixtureError> {
        if self.brokers == 0 {
            return Err(KafkaFixtureError::NoBrokers { brokers: self.brokers });
        }
        for (name, _) in &self.settings {
            conf::validate_setting_name(name)?;
        }
        let libs_dir = libs::locate(self.libs_dir.as_deref())?;
        let parent = self.parent_dir.unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("asof-kafka-")
            .tempdir_in(&parent)
            .map_err(|e| KafkaFixtureError::io(format!("creating the cluster directory in {}", parent.display()), e))?;
        let mut cluster = KafkaCluster::new(Parts {
            dir,
            jvm: Jvm {
                java: libs::java(),
                class_path: libs::class_path(&libs_dir),
                extra_options: self.jvm_options,
            },
            brokers: self.brokers,
            settings: self.settings,
            keep_on_drop: self.keep_on_drop,
            start_timeout: self.start_timeout,
        })?;
        // From here on, dropping `cluster` on error cleans up.
        cluster.start_on_free_ports()?;
        Ok(cluster)
    }
}
