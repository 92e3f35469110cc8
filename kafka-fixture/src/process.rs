//! The JVMs: formatting a node's storage, and running a node as a child
//! process that the fixture owns, signals and reaps.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::log;
use crate::{KafkaFixtureError, NodeId};

/// The JVM options every node gets before the builder's own: a small
/// heap so that three nodes fit beside the tests, the serial collector
/// (no GC threads to compete for 2 cores) and the client compiler only
/// (a faster start; peak speed does not matter to a test), and logging
/// through slf4j-simple to stderr, which goes to the node's log file.
const JVM_OPTIONS: [&str; 10] = [
    "-Xms64m",
    "-Xmx384m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
];
/// The JVM options of the short-lived storage tool.
const TOOL_JVM_OPTIONS: [&str; 4] = [
    "-Xmx128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
];
/// A broker's entry point: runs whatever `process.roles` says.
const MAIN_CLASS: &str = "kafka.Kafka";
const STORAGE_TOOL_CLASS: &str = "kafka.tools.StorageTool";
/// How long a controlled shutdown (SIGTERM) may take before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How to run Java with the Kafka jars.
#[derive(Debug, Clone)]
pub(crate) struct Jvm {
    pub(crate) java: PathBuf,
    pub(crate) class_path: OsString,
    /// The builder's options, after the fixture's own (the last of a
    /// repeated option wins).
    pub(crate) extra_options: Vec<String>,
}

impl Jvm {
    /// A JVM whose temporary files go to `<dir>/tmp`: Kafka's compression
    /// libraries unpack native code into the temporary directory and
    /// remove it only at a clean exit, so a killed node would leave it in
    /// the machine's `/tmp`; under `dir` it goes with the cluster.
    fn command(&self, options: &[&str], dir: &Path, main_class: &str) -> Result<Command, KafkaFixtureError> {
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| KafkaFixtureError::io(format!("creating {}", tmp.display()), e))?;
        let mut tmp_option = OsString::from("-Djava.io.tmpdir=");
        tmp_option.push(&tmp);
        let mut command = Command::new(&self.java);
        command
            .args(options)
            .arg(tmp_option)
            .arg("-cp")
            .arg(&self.class_path)
            .arg(main_class);
        command.stdin(Stdio::null()).current_dir(dir);
        Ok(command)
    }

    fn spawn(&self, mut command: Command) -> Result<Child, KafkaFixtureError> {
        command.spawn().map_err(|source| KafkaFixtureError::JavaNotFound {
            java: self.java.clone(),
            source,
        })
    }
}

/// Formats the storage of several nodes at once (one JVM each, in
/// parallel: each takes a second or two to start).
pub(crate) fn format_storage(jvm: &Jvm, cluster_id: &str, nodes: &[(NodeId, &Path)]) -> Result<(), KafkaFixtureError> {
    let mut running = Vec::new();
    for &(node, config) in nodes {
        let mut command = jvm.command(&TOOL_JVM_OPTIONS, node_dir(config), STORAGE_TOOL_CLASS)?;
        command
            .arg("format")
            .arg("--cluster-id")
            .arg(cluster_id)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        running.push((node, jvm.spawn(command)?));
    }
    // Wait for every one, so none is left running after an error.
    let mut first_error = None;
    for (node, child) in running {
        let result = match child.wait_with_output() {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => {
                let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&output.stderr));
                Err(KafkaFixtureError::FormatFailed {
                    node,
                    status: output.status,
                    output: log::last_lines(text.lines().collect(), log::ERROR_LINES),
                })
            }
            Err(e) => Err(KafkaFixtureError::io(
                format!("waiting for the storage tool of node {node}"),
                e,
            )),
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A running node (broker and controller in one JVM), owned as a child
/// process.
#[derive(Debug)]
pub(crate) struct NodeProcess {
    child: Child,
}

impl NodeProcess {
    /// Starts a node with `config`, appending its output to `log_file`. It
    /// returns at once; readiness is the cluster's to wait for.
    pub(crate) fn spawn(jvm: &Jvm, config: &Path, log_file: &Path) -> Result<NodeProcess, KafkaFixtureError> {
        let open_log = || {
            File::options()
                .create(true)
                .append(true)
                .open(log_file)
                .map_err(|e| KafkaFixtureError::io(format!("opening {}", log_file.display()), e))
        };
        let mut options: Vec<&str> = JVM_OPTIONS.to_vec();
        options.extend(jvm.extra_options.iter().map(String::as_str));
        let mut command = jvm.command(&options, node_dir(config), MAIN_CLASS)?;
        command.arg(config).stdout(open_log()?).stderr(open_log()?);
        Ok(NodeProcess {
            child: jvm.spawn(command)?,
        })
    }

    /// The exit status if the process has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, as a crash or power cut would end it; then reaps it.
    pub(crate) fn kill(mut self) -> Result<ExitStatus, KafkaFixtureError> {
        // Child::kill fails only when the process was already reaped.
        let _ = self.child.kill();
        self.child
            .wait()
            .map_err(|e| KafkaFixtureError::io("waiting for a Kafka node to exit", e))
    }

    /// SIGTERM: a controlled shutdown (leadership moves away first),
    /// escalated to SIGKILL after a grace period; then reaps it.
    pub(crate) fn stop(mut self) -> Result<ExitStatus, KafkaFixtureError> {
        let pid = libc::pid_t::try_from(self.child.id()).map_err(|_| {
            KafkaFixtureError::io(
                "signalling a Kafka node",
                std::io::Error::other("process id out of range"),
            )
        })?;
        if self.exited().is_none() {
            // SAFETY: kill has no memory-safety preconditions. The pid is
            // our own unreaped child, so it cannot name another process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        self.kill()
    }
}

/// A node's own directory: the one its configuration file is in.
fn node_dir(config: &Path) -> &Path {
    config.parent().unwrap_or(Path::new("."))
}

/// Picks a port that is free right now. Another process may take it
/// before the node binds it; the cluster retries on fresh ports then.
pub(crate) fn free_port() -> Result<u16, KafkaFixtureError> {
    std::net::TcpListener::bind((crate::conf::HOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| KafkaFixtureError::io("picking a free TCP port", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_nonzero() {
        assert_ne!(free_port().expect("port"), 0);
    }
}
