//! The `asof` binary: parses the command line, runs a command, and turns
//! every failure into one line on stderr and an exit code (2 for usage, 3
//! for a publisher fenced by a newer one, 1 for other runtime errors). A
//! closed stdout (`asof snapshot t | head`) ends the program quietly.

mod args;
mod commands;
mod metrics;
mod output;
mod values;
mod when;

use std::io::IsTerminal as _;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

/// The capture, the relay and the follower hand millions of small
/// allocations from one thread to another; mimalloc's per-thread free lists
/// keep that off the critical path, where glibc's arenas spend a third of
/// the relay's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An error in how the command was used (exit code 2), as opposed to a
/// failure while running it (exit code 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Turns transparent huge pages off for this process, unless
/// `MIMALLOC_ALLOW_THP` says otherwise. mimalloc asks for them on the
/// memory it takes from the system, and the kernel zeroes the whole 2 MiB
/// page on its first touch, where a query touches a few tens of MiB spread
/// over many such pages: a GROUP BY over 800,000 rows spent 9% of its
/// samples zeroing them, and ran about 12% faster without them.
///
/// It runs as a constructor, before the runtime's first allocation: from
/// `main` it came after the first arena was already backed by a huge page,
/// whose zeroing was an eighth of a short command's time.
extern "C" fn without_huge_pages() {
    // SAFETY: `getenv` reads a NUL-terminated name before any thread
    // exists; PR_SET_THP_DISABLE takes integers only and changes nothing
    // but how the kernel backs this process's future page faults.
    unsafe {
        if libc::getenv(c"MIMALLOC_ALLOW_THP".as_ptr()).is_null() {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

#[used]
#[link_section = ".init_array"]
static WITHOUT_HUGE_PAGES: extern "C" fn() = without_huge_pages;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return parse_failure(&e),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASOF_LOG")
                .unwrap_or_else(|_| "warn,asof=info,cdc_source=info".into()),
        )
        .with_writer(io::stderr)
        // Colour only on a terminal: log files and pipes get plain text.
        .with_ansi(io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .init();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Help and version exit 0; a value that does not parse is one `asof: `
/// line like any other usage error; clap reports the rest itself.
fn parse_failure(e: &clap::Error) -> ExitCode {
    use std::error::Error;
    let bad_value = e.source().and_then(|s| s.downcast_ref::<values::BadValue>());
    let arg = e.get(clap::error::ContextKind::InvalidArg);
    if let (Some(bad), Some(clap::error::ContextValue::String(arg))) = (bad_value, arg) {
        let _ = writeln!(io::stderr(), "asof: {}", bad.line(arg));
        return ExitCode::from(2);
    }
    let _ = e.print();
    ExitCode::from(if e.use_stderr() { 2 } else { 0 })
}

fn report(e: &anyhow::Error) -> ExitCode {
    let broken_pipe = |c: &(dyn std::error::Error + 'static)| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(io::ErrorKind::BrokenPipe)
    };
    if e.chain().any(broken_pipe) {
        return ExitCode::SUCCESS;
    }
    let mut line = String::new();
    for (i, cause) in e.chain().enumerate() {
        let text = cause.to_string();
        // Skip causes that only repeat what the previous line said.
        if i > 0 && line.contains(&text) {
            continue;
        }
        if i > 0 {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    let _ = writeln!(io::stderr(), "asof: {line}");
    let usage = e.chain().any(|c| c.downcast_ref::<UsageError>().is_some());
    let fenced = e
        .chain()
        .any(|c| matches!(c.downcast_ref(), Some(kafka_relay::RelayError::Fenced { .. })));
    ExitCode::from(match (usage, fenced) {
        (true, _) => 2,
        (_, true) => 3,
        _ => 1,
    })
}
