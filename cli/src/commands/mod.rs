//! One module per subcommand, and what several of them share: opening the
//! store, buffered stdout, the columns and key of a table.

mod changes;
mod compact;
mod copy_progress;
mod demo;
mod demo_kafka;
mod diff;
mod follow;
mod history;
mod image;
mod rows;
mod serve;
mod sql;
mod status;
mod tables;
mod tail;
mod uninstall;
mod verify;

use std::path::Path;

use anyhow::{Context, Result};
use changelog::keys::UserKey;
use changelog::{Store, StoreOptions};
use materializer::TableAt;

use crate::args::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Tail(a) => tail::run(&cli.store, a),
        Command::Follow(a) => follow::run(&cli.store, a),
        Command::Snapshot(a) => rows::snapshot(&cli.store, a),
        Command::Get(a) => rows::get(&cli.store, a),
        Command::History(a) => history::run(&cli.store, a),
        Command::Diff(a) => diff::run(&cli.store, a),
        Command::Changes(a) => changes::run(&cli.store, a),
        Command::Tables(a) => tables::run(&cli.store, a),
        Command::Status(a) => status::run(&cli.store, a),
        Command::Compact(a) => compact::run(&cli.store, a),
        Command::Image(a) => image::run(&cli.store, a),
        Command::Verify(a) => verify::run(&cli.store, a),
        Command::Demo(a) => demo::run(a),
        Command::Uninstall(a) => uninstall::run(a),
        Command::Sql(a) => sql::run(&cli.store, a),
        Command::Export(a) => sql::export(&cli.store, a),
        Command::Serve(a) => serve::run(&cli.store, a),
    }
}

/// Opens the store for one read, as it stands, beside a possibly running
/// `asof tail`.
pub fn open_reader(path: &Path) -> Result<Store> {
    Store::open_fixed(path).with_context(|| format!("cannot open the store at {}", path.display()))
}

/// Opens the store for reading beside a possibly running `asof tail`, able
/// to follow what it adds.
pub fn open_follower(path: &Path) -> Result<Store> {
    Store::open_read_only(path).with_context(|| format!("cannot open the store at {}", path.display()))
}

/// Opens the store for capturing into, creating it when missing.
pub fn open_writer(path: &Path) -> Result<Store> {
    let options = StoreOptions {
        create_if_missing: true,
        ..StoreOptions::default()
    };
    Store::open(path, &options).with_context(|| format!("cannot open the store at {}", path.display()))
}

/// Buffered stdout.
/// `println!` that returns a write error (a closed pipe) instead of
/// panicking, so `asof status | head -1` ends quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}
pub(crate) use outln;

pub fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(256 << 10, std::io::stdout().lock())
}

/// Says on stderr what of the table the answer leaves out, when the
/// capture did not take it whole.
pub fn note_coverage(table: &TableAt<'_>) {
    if !table.coverage.is_whole() {
        eprintln!("note: table {}: {}", table.schema.name, table.coverage);
    }
}

/// The table's column names, in order.
pub fn column_names(table: &TableAt<'_>) -> Vec<String> {
    table.schema.column_names().map(String::from).collect()
}

/// The key of the row named by primary-key values on the command line; the
/// wrong number of values is a usage error.
pub fn row_key(table: &TableAt<'_>, values: &[String]) -> Result<UserKey> {
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    materializer::user_key(table, &values).map_err(|e| crate::UsageError(e.to_string()).into())
}

/// Seconds from a commit to now (0 for a clock behind the commit).
pub fn seconds_since(t: changelog::CommitTime) -> f64 {
    (changelog::CommitTime::now().unix_micros() - t.unix_micros()).max(0) as f64 / 1e6
}
