//! A node's log: what one run of the node wrote, the part of it an error
//! message shows, and whether it says a port was taken.
//!
//! A node appends to the same file across restarts, so each run
//! remembers where its output begins: an earlier run's failure must not
//! be mistaken for this one's.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// At most this much of a run's output is read back (the end of it).
const MAX_READ_BYTES: u64 = 4 << 20;
/// How many lines an error message carries.
pub(crate) const ERROR_LINES: usize = 40;
/// What the JVM's `BindException` says.
const PORT_TAKEN: &str = "Address already in use";

/// Where one run's output starts in a node's log file.
#[derive(Debug, Clone)]
pub(crate) struct RunLog {
    path: PathBuf,
    offset: u64,
}

impl RunLog {
    /// The run about to start, which will append to `path`.
    pub(crate) fn starting(path: &Path) -> RunLog {
        RunLog {
            path: path.to_path_buf(),
            offset: std::fs::metadata(path).map_or(0, |m| m.len()),
        }
    }

    /// What this run has written, lossily decoded.
    pub(crate) fn text(&self) -> String {
        let mut bytes = Vec::new();
        let read = File::open(&self.path).and_then(|mut file| {
            let len = file.metadata()?.len();
            file.seek(SeekFrom::Start(self.offset.max(len.saturating_sub(MAX_READ_BYTES))))?;
            file.read_to_end(&mut bytes)
        });
        match read {
            Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(could not read {}: {e})", self.path.display()),
        }
    }
}

/// The lines worth showing when a start fails: the last of those that are
/// not routine (`INFO`) messages, which keeps errors, warnings and stack
/// traces in view even when a long shutdown sequence follows them. A log
/// with nothing else shows its last lines.
pub(crate) fn error_tail(log: &str) -> String {
    let notable: Vec<&str> = log.lines().filter(|line| !is_routine(line)).collect();
    if notable.is_empty() {
        last_lines(log.lines().collect(), ERROR_LINES)
    } else {
        last_lines(notable, ERROR_LINES)
    }
}

/// Whether a run's log says it could not bind one of its ports.
pub(crate) fn shows_port_taken(log: &str) -> bool {
    log.contains(PORT_TAKEN)
}

pub(crate) fn last_lines(lines: Vec<&str>, count: usize) -> String {
    lines
        .get(lines.len().saturating_sub(count)..)
        .unwrap_or_default()
        .join("\n")
}

/// slf4j-simple writes `<time> [<thread>] <LEVEL> <logger> - <message>`.
fn is_routine(line: &str) -> bool {
    line.contains("] INFO ") || line.contains("] DEBUG ") || line.contains("] TRACE ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reads_only_its_own_output() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kafka.log");
        std::fs::write(&path, "first run: Address already in use\n").expect("write");
        let run = RunLog::starting(&path);
        std::fs::write(&path, "first run: Address already in use\nsecond run\n").expect("append");
        assert_eq!(run.text(), "second run\n");
        assert!(!shows_port_taken(&run.text()));
        assert!(RunLog::starting(&dir.path().join("absent.log"))
            .text()
            .contains("could not read"));
    }

    #[test]
    fn errors_show_what_is_not_routine() {
        let log = "\
2026-01-01T00:00:00.000 [main] INFO kafka.Kafka - starting
2026-01-01T00:00:01.000 [main] ERROR kafka.server.BrokerServer - Fatal error during startup.
org.apache.kafka.common.KafkaException: Socket server failed to bind to 127.0.0.1:1: Address already in use.
\tat kafka.network.Acceptor.openServerSocket(SocketServer.scala:1)
2026-01-01T00:00:02.000 [kafka-shutdown-hook] INFO kafka.Kafka - shut down
";
        let tail = error_tail(log);
        assert!(tail.starts_with("2026-01-01T00:00:01.000 [main] ERROR"), "{tail}");
        assert!(tail.ends_with("(SocketServer.scala:1)"), "{tail}");
        assert!(shows_port_taken(log));
        assert_eq!(
            error_tail("[main] INFO a\n[main] INFO b"),
            "[main] INFO a\n[main] INFO b"
        );
    }

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines(vec!["a", "b", "c"], 2), "b\nc");
        assert_eq!(last_lines(vec!["a"], 5), "a");
        assert_eq!(last_lines(Vec::new(), 5), "");
    }
}
