//! `asof history`.

use std::path::Path;

use anyhow::Result;
use changelog::{CommitTime, Datum, DatumRef};
use materializer::{HistoryEntry, When};

use crate::args::HistoryArgs;
use crate::commands::{column_names, note_coverage, open_reader, row_key, stdout};
use crate::output::{json_row, Format, RowPrinter};

/// The columns that say which transaction wrote a version, before the
/// row's own columns in CSV and table output.
const META_COLUMNS: [&str; 4] = ["commit_time", "lsn", "xid", "op"];

/// The column, after the meta columns, with the number of identical copies
/// of the row after each transaction; only for a table that counts copies.
const COPIES_COLUMN: &str = "copies";

pub fn run(store_path: &Path, a: HistoryArgs) -> Result<()> {
    let format = Format::resolve(a.format.format);
    let store = open_reader(store_path)?;
    let now = materializer::resolve(&store, When::Now, CommitTime::now())?;
    // The row's table as it is now; a dropped table is found at its last moment.
    let table = match materializer::table_at(&store, &a.table, now.cut) {
        Ok(t) => t,
        Err(e) => match materializer::last_moment_of(&store, &a.table)? {
            Some(cut) => materializer::table_at(&store, &a.table, cut)?,
            None => return Err(e.into()),
        },
    };
    note_coverage(&table);
    let key = row_key(&table, &a.key)?;
    let entries = materializer::history(&store, &table, &key)?;
    if entries.is_empty() {
        eprintln!("no history for key ({}) in {}", a.key.join(", "), table.schema.name);
    }
    // Columns can change over a row's life; use the latest shape.
    let cols = column_names(&table);
    let counted = table.schema.counts_copies();
    let copies_column = counted.then(|| COPIES_COLUMN.to_string());
    let header = META_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(copies_column)
        .chain(cols.iter().cloned());
    let mut printer = RowPrinter::start(stdout(), format, header.collect())?;
    for e in &entries {
        if printer.is_jsonl() {
            printer.json_line(&json_entry(e, counted))?;
            continue;
        }
        let mut meta = vec![
            e.cut.commit_time.to_string(),
            e.cut.lsn.to_string(),
            e.cut.xid.0.to_string(),
            e.op.name().to_string(),
        ];
        if counted {
            meta.push(e.copies.to_string());
        }
        let mut values: Vec<DatumRef<'_>> = meta.iter().map(|m| DatumRef::Text(m.as_bytes())).collect();
        values.extend(cols.iter().map(|c| value_of(e, c)));
        printer.row(&values)?;
    }
    printer.finish()?;
    Ok(())
}

/// A version as one JSON object, the row in its own columns of the time;
/// with its number of copies when the table counts them.
fn json_entry(e: &HistoryEntry, counted: bool) -> serde_json::Value {
    let row = e
        .row
        .as_ref()
        .map(|r| json_row(&e.columns, r.iter().map(Datum::as_ref)));
    let mut obj = serde_json::json!({
        "op": e.op.name(),
        "lsn": e.cut.lsn.to_string(),
        "commit_time": e.cut.commit_time.to_string(),
        "xid": e.cut.xid.0,
        "row": row,
    });
    if counted {
        obj[COPIES_COLUMN] = e.copies.into();
    }
    obj
}

/// The version's value of a column; NULL when the column did not exist
/// then or the row was deleted.
fn value_of<'e>(e: &'e HistoryEntry, column: &str) -> DatumRef<'e> {
    let i = e.columns.iter().position(|n| n == column);
    let v = e.row.as_ref().and_then(|r| i.and_then(|i| r.get(i)));
    v.map_or(DatumRef::Null, Datum::as_ref)
}
