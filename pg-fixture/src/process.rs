//! The postmaster process: spawning it, waiting until it accepts
//! connections, and shutting it down.
//!
//! The fixture runs `postgres` directly as its child rather than through
//! `pg_ctl`: it then owns the process (it can signal and reap it without
//! trusting `postmaster.pid`), and `pg_ctl`'s refusal to run as root does
//! not matter.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::client::{run_on_private_runtime, try_connect};
use crate::privileges::RunAs;
use crate::FixtureError;

/// How long a fast shutdown may take before it is escalated.
const FAST_SHUTDOWN_GRACE: Duration = Duration::from_secs(60);
/// How long an immediate shutdown may take before SIGKILL. The postmaster
/// itself SIGKILLs stuck children after 5 s.
const IMMEDIATE_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause between readiness probes and exit checks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How many log lines a start error carries.
const LOG_TAIL_LINES: usize = 30;

/// How to stop the server (PostgreSQL's shutdown modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// SIGINT: abort sessions, checkpoint, exit cleanly.
    Fast,
    /// SIGQUIT: exit at once without a checkpoint; the next start runs
    /// crash recovery, as after a power cut (minus the lost page cache).
    Immediate,
}

/// What a postmaster needs to start.
pub(crate) struct Launch<'a> {
    pub(crate) bin_dir: &'a Path,
    pub(crate) data_dir: &'a Path,
    pub(crate) log_file: &'a Path,
    pub(crate) port: u16,
    pub(crate) run_as: Option<RunAs>,
    /// Used to probe readiness.
    pub(crate) probe: &'a tokio_postgres::Config,
    pub(crate) timeout: Duration,
}

/// Why a start failed.
pub(crate) enum StartFailure {
    /// Another process holds the port; worth retrying on another one.
    PortInUse,
    Failed(FixtureError),
}

/// A running postmaster, owned as a child process.
#[derive(Debug)]
pub(crate) struct Postmaster {
    child: Child,
}

impl Postmaster {
    /// Spawns the server and waits until it accepts connections.
    pub(crate) fn start(launch: &Launch<'_>) -> Result<Postmaster, StartFailure> {
        let log_offset = std::fs::metadata(launch.log_file).map_or(0, |m| m.len());
        let mut postmaster = Postmaster::spawn(launch).map_err(StartFailure::Failed)?;
        match postmaster.wait_ready(launch) {
            Ok(()) => Ok(postmaster),
            Err(failure) => {
                // Whatever state it is in, do not leave it behind.
                let _ = postmaster.shut_down(Shutdown::Immediate);
                let log = read_from(launch.log_file, log_offset);
                if is_port_collision(&log) {
                    return Err(StartFailure::PortInUse);
                }
                Err(StartFailure::Failed(FixtureError::StartFailed {
                    reason: failure.reason,
                    log_file: launch.log_file.to_path_buf(),
                    log_tail: tail(&log, LOG_TAIL_LINES),
                    source: failure.last_error,
                }))
            }
        }
    }

    fn spawn(launch: &Launch<'_>) -> Result<Postmaster, FixtureError> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(launch.log_file)
            .map_err(|e| FixtureError::io(format!("opening {}", launch.log_file.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| FixtureError::io("duplicating the log file handle", e))?;
        let mut command = Command::new(launch.bin_dir.join("postgres"));
        command
            .arg("-D")
            .arg(launch.data_dir)
            .arg("-p")
            .arg(launch.port.to_string())
            .current_dir(launch.data_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if let Some(run_as) = launch.run_as {
            run_as.apply(&mut command);
        }
        let child = command
            .spawn()
            .map_err(|e| FixtureError::io("spawning the postgres server", e))?;
        Ok(Postmaster { child })
    }

    fn wait_ready(&mut self, launch: &Launch<'_>) -> Result<(), NotReady> {
        let deadline = Instant::now() + launch.timeout;
        let child = &mut self.child;
        let outcome = run_on_private_runtime(|| async move {
            let mut last_error = None;
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => return Err(NotReady::new(format!("the server exited ({status})"), last_error)),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(NotReady::new(
                            format!("could not check the server process: {e}"),
                            last_error,
                        ))
                    }
                }
                match try_connect(launch.probe).await {
                    Ok(()) => return Ok(()),
                    Err(e) => last_error = Some(e),
                }
                if Instant::now() >= deadline {
                    let secs = launch.timeout.as_secs_f64();
                    return Err(NotReady::new(
                        format!("it did not accept connections within {secs:.0} s"),
                        last_error,
                    ));
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        });
        match outcome {
            Ok(result) => result,
            Err(e) => Err(NotReady::new(e.to_string(), None)),
        }
    }

    /// Whether the process is still alive.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the server in `mode`, escalating to SIGKILL if it takes too
    /// long, and reaps it.
    pub(crate) fn shut_down(&mut self, mode: Shutdown) -> Result<ExitStatus, FixtureError> {
        let reap = |e| FixtureError::io("waiting for the postgres server to exit", e);
        if let Some(status) = self.child.try_wait().map_err(reap)? {
            return Ok(status);
        }
        let (signal, grace) = match mode {
            Shutdown::Fast => (libc::SIGINT, FAST_SHUTDOWN_GRACE),
            Shutdown::Immediate => (libc::SIGQUIT, IMMEDIATE_SHUTDOWN_GRACE),
        };
        self.signal(signal)?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(reap)? {
                return Ok(status);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        // Child::kill sends SIGKILL; it fails only if the child was reaped.
        let _ = self.child.kill();
        self.child.wait().map_err(reap)
    }

    fn signal(&self, signal: libc::c_int) -> Result<(), FixtureError> {
        let pid = libc::pid_t::try_from(self.child.id()).map_err(|_| {
            FixtureError::io(
                "signalling the postgres server",
                std::io::Error::other("process id out of range"),
            )
        })?;
        // SAFETY: kill has no memory-safety preconditions. The pid is our
        // own unreaped child, so it cannot have been recycled for another
        // process.
        if unsafe { libc::kill(pid, signal) } == 0 {
            Ok(())
        } else {
            Err(FixtureError::io(
                "signalling the postgres server",
                std::io::Error::last_os_error(),
            ))
        }
    }
}

/// Why waiting for readiness gave up.
struct NotReady {
    reason: String,
    last_error: Option<tokio_postgres::Error>,
}

impl NotReady {
    fn new(reason: String, last_error: Option<tokio_postgres::Error>) -> NotReady {
        NotReady { reason, last_error }
    }
}

/// Picks a port that is free right now. Another process may take it
/// before the server binds it; [`StartFailure::PortInUse`] covers that.
pub(crate) fn free_port() -> Result<u16, FixtureError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| FixtureError::io("picking a free TCP port", e))
}

fn is_port_collision(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("could not create any TCP/IP sockets")
}

/// The log written since `offset`, lossily decoded (the server writes in
/// the cluster encoding, but messages may quote arbitrary bytes).
fn read_from(path: &Path, offset: u64) -> String {
    let mut bytes = Vec::new();
    let read = OpenOptions::new().read(true).open(path).and_then(|mut file| {
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_end(&mut bytes)
    });
    match read {
        Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("(could not read the log: {e})"),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all.get(start..).unwrap_or_default().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn recognises_port_collisions() {
        let log = "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use\n\
                   WARNING:  could not create listen socket for \"127.0.0.1\"\n\
                   FATAL:  could not create any TCP/IP sockets\n";
        assert!(is_port_collision(log));
        assert!(!is_port_collision("FATAL:  data directory has wrong ownership"));
    }

    #[test]
    fn free_ports_are_nonzero() {
        assert_ne!(free_port().expect("port"), 0);
    }
}
