//! Output formats: CSV exactly as PostgreSQL's COPY prints it, JSON lines,
//! and an aligned table for people. [`RowPrinter`] is the one place that
//! writes rows; the commands only say which rows.

mod csv;
mod json;
mod printer;
mod table;

use std::io;

use changelog::DatumRef;

pub use json::json_row;
pub use printer::{render_row, RowPrinter};
pub use table::TableWriter;

/// How rows are printed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading (the default on a terminal).
    Table,
    /// `COPY ... TO STDOUT (FORMAT csv, HEADER)`, byte for byte.
    Csv,
    /// One JSON object per line; values are Postgres text, NULL is null.
    Jsonl,
}

impl Format {
    /// The explicit choice, else `table` on a terminal and `csv` otherwise.
    pub fn resolve(choice: Option<Format>) -> Format {
        use std::io::IsTerminal;
        choice.unwrap_or(if io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Csv
        })
    }
}

/// Text of a value for display (lossy only for non-UTF-8 bytes).
pub fn text(d: DatumRef<'_>) -> std::borrow::Cow<'_, str> {
    match d {
        DatumRef::Text(b) => String::from_utf8_lossy(b),
        DatumRef::Null => "".into(),
        DatumRef::Missing => "".into(),
    }
}
