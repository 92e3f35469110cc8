//! A running fixture cluster: where its brokers are, and their life cycle
//! (kill, stop, restart, drop).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::builder::KafkaClusterBuilder;
use crate::conf::{self, NodeConf, NodePorts, Replication, HOST};
use crate::log::{self, RunLog};
use crate::process::{self, Jvm, NodeProcess};
use crate::{probe, KafkaFixtureError};

/// A Kafka node id (`node.id`): the cluster's nodes are numbered from 1.
/// Clients report the same number as the broker id.
pub type NodeId = i32;

/// The cluster id every fixture cluster is formatted with (16 bytes,
/// base64url). Each cluster is private to its directory and ports, so one
/// id serves them all.
const CLUSTER_ID: &str = "YXNvZiBrYWZrYSB0ZXN0IQ";
/// Start attempts on fresh ports before a port collision becomes an error.
const PORT_ATTEMPTS: usize = 5;
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// How long one probe may wait on a node's socket.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A private Apache Kafka cluster (KRaft mode, every node both broker and
/// controller) in a temporary directory, each node a child JVM. Dropping
/// it kills the nodes and deletes the directory (also when a test panics).
#[derive(Debug)]
pub struct KafkaCluster {
    /// `None` only while dropping.
    dir: Option<TempDir>,
    jvm: Jvm,
    nodes: Vec<Node>,
    replication: Replication,
    settings: Vec<(String, String)>,
    keep_on_drop: bool,
    start_timeout: Duration,
}

/// One node: its files, its ports, and its process while it runs.
#[derive(Debug)]
struct Node {
    id: NodeId,
    config: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    ports: NodePorts,
    /// `None` while stopped or killed.
    process: Option<NodeProcess>,
    /// The output of the latest start, for errors.
    last_run: RunLog,
}

impl Node {
    fn broker_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.broker))
    }
}

/// What the builder hands over once the directory exists.
pub(crate) struct Parts {
    pub(crate) dir: TempDir,
    pub(crate) jvm: Jvm,
    pub(crate) brokers: usize,
    pub(crate) settings: Vec<(String, String)>,
    pub(crate) keep_on_drop: bool,
    pub(crate) start_timeout: Duration,
}

/// Why a start or a wait for readiness failed.
enum StartFailure {
    /// A node could not bind a port another process holds; worth retrying
    /// on other ports.
    PortInUse,
    Failed(KafkaFixtureError),
}

impl From<KafkaFixtureError> for StartFailure {
    fn from(e: KafkaFixtureError) -> Self {
        StartFailure::Failed(e)
    }
}

impl KafkaCluster {
    /// Starts a one-node cluster with default options.
    pub fn start() -> Result<KafkaCluster, KafkaFixtureError> {
        KafkaCluster::builder().start()
    }

    /// Options: the number of brokers, extra broker settings, JVM options.
    pub fn builder() -> KafkaClusterBuilder {
        KafkaClusterBuilder::default()
    }

    pub(crate) fn new(parts: Parts) -> Result<KafkaCluster, KafkaFixtureError> {
        let root = parts.dir.path().to_path_buf();
        let mut nodes = Vec::with_capacity(parts.brokers);
        for index in 1..=parts.brokers {
            let id = NodeId::try_from(index).map_err(|_| KafkaFixtureError::NoBrokers { brokers: parts.brokers })?;
            let node_dir = root.join(format!("node-{id}"));
            std::fs::create_dir(&node_dir)
                .map_err(|e| KafkaFixtureError::io(format!("creating {}", node_dir.display()), e))?;
            let log_file = node_dir.join("kafka.log");
            nodes.push(Node {
                id,
                last_run: RunLog::starting(&log_file),
                config: node_dir.join("server.properties"),
                data_dir: node_dir.join("data"),
                log_file,
                ports: NodePorts {
                    broker: 0,
                    controller: 0,
                },
                process: None,
            });
        }
        Ok(KafkaCluster {
            dir: Some(parts.dir),
            jvm: parts.jvm,
            replication: Replication::for_brokers(parts.brokers),
            nodes,
            settings: parts.settings,
            keep_on_drop: parts.keep_on_drop,
            start_timeout: parts.start_timeout,
        })
    }

    /// `host:port` of every broker, comma-separated: the
    /// `bootstrap.servers` of a client. It lists stopped brokers too (their
    /// ports are kept for a restart); clients skip those.
    pub fn bootstrap_servers(&self) -> String {
        let servers: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("{HOST}:{}", node.ports.broker))
            .collect();
        servers.join(",")
    }

    /// The node ids, `1..=brokers`.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    /// The client address of one broker (stable across restarts).
    pub fn broker_addr(&self, node: NodeId) -> Result<SocketAddr, KafkaFixtureError> {
        Ok(self.node(node)?.broker_addr())
    }

    /// The replication factor of internal and default topics: the number
    /// of brokers, at most 3.
    pub fn replication_factor(&self) -> usize {
        self.replication.factor
    }

    /// `min.insync.replicas` of internal and default topics: one less than
    /// the replication factor, at least 1.
    pub fn min_insync_replicas(&self) -> usize {
        self.replication.min_insync
    }

    /// The cluster's directory (one `node-<id>` directory per node).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), TempDir::path)
    }

    /// One node's log file (its JVM's stdout and stderr).
    pub fn log_file(&self, node: NodeId) -> Result<&Path, KafkaFixtureError> {
        Ok(&self.node(node)?.log_file)
    }

    /// Whether a node's process is alive.
    pub fn is_running(&mut self, node: NodeId) -> Result<bool, KafkaFixtureError> {
        let node = self.node_mut(node)?;
        Ok(node.process.as_mut().is_some_and(|p| p.exited().is_none()))
    }

    /// Kills a node with SIGKILL, as a crash would; its data stays for a
    /// [`KafkaCluster::restart`]. The others notice within the broker
    /// session timeout (`broker.session.timeout.ms`, 4 s unless set) and
    /// move its partition leadership away.
    /// No-op when it is not running.
    pub fn kill(&mut self, node: NodeId) -> Result<(), KafkaFixtureError> {
        match self.node_mut(node)?.process.take() {
            Some(process) => process.kill().map(drop),
            None => Ok(()),
        }
    }

    /// Stops a node cleanly (SIGTERM: a controlled shutdown that hands its
    /// partition leadership over first). No-op when it is not running.
    pub fn stop(&mut self, node: NodeId) -> Result<(), KafkaFixtureError> {
        match self.node_mut(node)?.process.take() {
            Some(process) => process.stop().map(drop),
            None => Ok(()),
        }
    }

    /// Stops a node if it runs (cleanly), starts it again on the same ports
    /// with the same data, and waits until every running node sees every
    /// other as alive.
    pub fn restart(&mut self, node: NodeId) -> Result<(), KafkaFixtureError> {
        self.stop(node)?;
        let result = match spawn(&self.jvm, find_mut(&mut self.nodes, node)?) {
            Ok(()) => self.wait_ready(),
            Err(e) => Err(StartFailure::Failed(e)),
        };
        let Err(failure) = result else {
            return Ok(());
        };
        // Leave it stopped rather than half started.
        self.kill(node)?;
        Err(match failure {
            StartFailure::Failed(e) => e,
            StartFailure::PortInUse => start_error(
                self.node(node)?,
                "a port of this node was taken while it was down".to_owned(),
                None,
            ),
        })
    }

    /// Formats every node's storage and starts them all, on fresh ports
    /// until none collides with another process.
    pub(crate) fn start_on_free_ports(&mut self) -> Result<(), KafkaFixtureError> {
        for _ in 0..PORT_ATTEMPTS {
            match self.start_all() {
                Ok(()) => return Ok(()),
                Err(StartFailure::PortInUse) => self.kill_all(),
                Err(StartFailure::Failed(e)) => {
                    self.kill_all();
                    return Err(e);
                }
            }
        }
        let reason = format!("{PORT_ATTEMPTS} sets of free ports in a row were taken before the nodes could bind them");
        match self.nodes.first() {
            Some(node) => Err(start_error(node, reason, None)),
            None => Err(KafkaFixtureError::NoBrokers { brokers: 0 }),
        }
    }

    fn start_all(&mut self) -> Result<(), StartFailure> {
        self.assign_free_ports()?;
        let voters: Vec<(NodeId, NodePorts)> = self.nodes.iter().map(|n| (n.id, n.ports)).collect();
        let voters = conf::voters(&voters);
        for node in &self.nodes {
            write_config(node, &voters, self.replication, &self.settings)?;
        }
        let to_format: Vec<(NodeId, &Path)> = self.nodes.iter().map(|n| (n.id, n.config.as_path())).collect();
        process::format_storage(&self.jvm, CLUSTER_ID, &to_format)?;
        for node in &mut self.nodes {
            spawn(&self.jvm, node)?;
        }
        self.wait_ready()
    }

    /// Two distinct free ports per node, and empty data directories (a
    /// previous attempt may have written into them).
    fn assign_free_ports(&mut self) -> Result<(), KafkaFixtureError> {
        let mut taken = Vec::with_capacity(self.nodes.len() * 2);
        for node in &mut self.nodes {
            node.ports = NodePorts {
                broker: distinct_free_port(&mut taken)?,
                controller: distinct_free_port(&mut taken)?,
            };
            if node.data_dir.exists() {
                std::fs::remove_dir_all(&node.data_dir)
                    .map_err(|e| KafkaFixtureError::io(format!("emptying {}", node.data_dir.display()), e))?;
            }
        }
        Ok(())
    }

    /// Waits until every running node lists every running node as alive:
    /// each has then joined the quorum, caught up with the metadata and
    /// been unfenced, and answers client requests.
    fn wait_ready(&mut self) -> Result<(), StartFailure> {
        let deadline = Instant::now() + self.start_timeout;
        loop {
            if let Some(failure) = self.first_exited() {
                return Err(failure);
            }
            let running: Vec<NodeId> = self.running().map(|node| node.id).collect();
            let mut waiting_for = None;
            for node in self.running() {
                match probe::alive_brokers(node.broker_addr(), PROBE_TIMEOUT) {
                    Ok(alive) if running.iter().all(|id| alive.contains(id)) => {}
                    Ok(alive) => {
                        waiting_for = Some((node, format!("it listed only brokers {alive:?} of {running:?}"), None));
                        break;
                    }
                    Err(e) => {
                        waiting_for = Some((node, "it did not answer a metadata request".to_owned(), Some(e)));
                        break;
                    }
                }
            }
            let Some((node, state, error)) = waiting_for else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                let secs = self.start_timeout.as_secs_f64();
                let reason = format!("it was not ready within {secs:.0} s: {state}");
                return Err(start_error(node, reason, error).into());
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
    }

    /// A failure for the first node whose process has ended, if any.
    fn first_exited(&mut self) -> Option<StartFailure> {
        let node = self.nodes.iter_mut().find_map(|node| {
            let status = node.process.as_mut()?.exited()?;
            Some((node, status))
        });
        let (node, status) = node?;
        if log::shows_port_taken(&node.last_run.text()) {
            return Some(StartFailure::PortInUse);
        }
        Some(start_error(node, format!("the node exited ({status})"), None).into())
    }

    fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|node| node.process.is_some())
    }

    fn kill_all(&mut self) {
        for node in &mut self.nodes {
            if let Some(process) = node.process.take() {
                // SIGKILL cannot be refused; an error means it was reaped.
                let _ = process.kill();
            }
        }
    }

    fn node(&self, node: NodeId) -> Result<&Node, KafkaFixtureError> {
        self.nodes
            .iter()
            .find(|n| n.id == node)
            .ok_or_else(|| unknown_broker(&self.nodes, node))
    }

    fn node_mut(&mut self, node: NodeId) -> Result<&mut Node, KafkaFixtureError> {
        find_mut(&mut self.nodes, node)
    }
}

fn find_mut(nodes: &mut [Node], node: NodeId) -> Result<&mut Node, KafkaFixtureError> {
    let error = unknown_broker(nodes, node);
    nodes.iter_mut().find(|n| n.id == node).ok_or(error)
}

fn unknown_broker(nodes: &[Node], node: NodeId) -> KafkaFixtureError {
    KafkaFixtureError::UnknownBroker {
        node,
        ids: nodes.iter().map(|n| n.id).collect(),
    }
}

fn spawn(jvm: &Jvm, node: &mut Node) -> Result<(), KafkaFixtureError> {
    node.last_run = RunLog::starting(&node.log_file);
    node.process = Some(NodeProcess::spawn(jvm, &node.config, &node.log_file)?);
    Ok(())
}

/// An error about a node's start, showing what its latest run logged.
fn start_error(node: &Node, reason: String, source: Option<std::io::Error>) -> KafkaFixtureError {
    KafkaFixtureError::StartFailed {
        node: node.id,
        reason,
        log_file: node.log_file.clone(),
        log_tail: log::error_tail(&node.last_run.text()),
        source,
    }
}

fn write_config(
    node: &Node,
    voters: &str,
    replication: Replication,
    settings: &[(String, String)],
) -> Result<(), KafkaFixtureError> {
    let text = conf::server_properties(&NodeConf {
        node: node.id,
        ports: node.ports,
        voters,
        data_dir: &node.data_dir,
        replication,
        extra: settings,
    });
    std::fs::write(&node.config, text)
        .map_err(|e| KafkaFixtureError::io(format!("writing {}", node.config.display()), e))
}

/// A free port not among `taken` (the OS may hand out one just released).
fn distinct_free_port(taken: &mut Vec<u16>) -> Result<u16, KafkaFixtureError> {
    loop {
        let port = process::free_port()?;
        if !taken.contains(&port) {
            taken.push(port);
            return Ok(port);
        }
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        // The data is about to be deleted (or kept as a crash would leave
        // it, which Kafka recovers from), so there is nothing to shut down
        // cleanly for.
        self.kill_all();
        if let Some(dir) = self.dir.take() {
            if self.keep_on_drop {
                let root = dir.keep();
                eprintln!(
                    "kafka-fixture: kept the cluster in {} (each node-<id> holds server.properties, data/, tmp/ and kafka.log)",
                    root.display()
                );
            } else {
                // Best effort: a failure leaves a directory in the temp
                // dir, which is better than panicking in drop.
                let _ = dir.close();
            }
        }
    }
}
