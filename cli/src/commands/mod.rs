//! One module per subcommand.

mod changes;
mod compact;
mod demo;
mod diff;
mod history;
mod rows;
mod status;
mod tables;
mod tail;

use std::path::Path;

use anyhow::{Context, Result};
use changelog::Store;

use crate::args::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Tail(a) => tail::run(&cli.store, a),
        Command::Snapshot(a) => rows::snapshot(&cli.store, a),
        Command::Get(a) => rows::get(&cli.store, a),
        Command::History(a) => history::run(&cli.store, a),
        Command::Diff(a) => diff::run(&cli.store, a),
        Command::Changes(a) => changes::run(&cli.store, a),
        Command::Tables(a) => tables::run(&cli.store, a),
        Command::Status(a) => status::run(&cli.store, a),
        Command::Compact(a) => compact::run(&cli.store, a),
        Command::Demo(a) => demo::run(a),
    }
}

/// Opens the store for reading beside a possibly running `asof tail`.
pub fn open_reader(path: &Path) -> Result<Store> {
    Store::open_read_only(path).with_context(|| format!("cannot open the store at {}", path.display()))
}

/// Buffered stdout.
pub fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(256 << 10, std::io::stdout().lock())
}
