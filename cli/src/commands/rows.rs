//! `asof snapshot` and `asof get`.

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Result;
use changelog::{Datum, DatumRef};

use crate::args::{GetArgs, SnapshotArgs};
use crate::commands::{column_names, note_coverage, open_reader, row_key, stdout};
use crate::output::{render_row, Format, RowPrinter};
use crate::when;

pub fn snapshot(store_path: &Path, a: SnapshotArgs) -> Result<()> {
    let format = Format::resolve(a.format.format);
    let store = open_reader(store_path)?;
    let r = when::resolve(&store, a.at.at, "as of ")?;
    let table = materializer::table_at(&store, &a.table, r.cut)?;
    note_coverage(&table);
    let columns = column_names(&table);
    let mut printer = RowPrinter::start(stdout(), format, columns.clone())?;
    if printer.renders_rows() {
        // Read and render on every core; the rows still come out in key order.
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        materializer::snapshot_rendered::<anyhow::Error>(
            &store,
            &table,
            r.cut,
            workers,
            |row, buf| Ok(render_row(format, &columns, row, buf)?),
            |bytes| Ok(printer.rendered(bytes)?),
        )?;
    } else {
        materializer::snapshot(&store, &table, r.cut, |row| -> Result<_> {
            printer.row(row)?;
            Ok(ControlFlow::Continue(()))
        })?;
    }
    printer.finish()?;
    Ok(())
}

pub fn get(store_path: &Path, a: GetArgs) -> Result<()> {
    let format = Format::resolve(a.format.format);
    let store = open_reader(store_path)?;
    let r = when::resolve(&store, a.at.at, "as of ")?;
    let table = materializer::table_at(&store, &a.table, r.cut)?;
    note_coverage(&table);
    let key = row_key(&table, &a.key)?;
    let row = materializer::get(&store, &table, &key, r.cut)?;
    let mut printer = RowPrinter::start(stdout(), format, column_names(&table))?;
    match row {
        None => {
            eprintln!(
                "no row with key ({}) in {} as of that moment",
                a.key.join(", "),
                table.schema.name
            );
            printer.finish_without_table()?;
        }
        // Identical copies (a table keyed by all its columns) print once
        // each, as a SELECT of that row would return them.
        Some(found) => {
            let values: Vec<DatumRef<'_>> = found.row.iter().map(Datum::as_ref).collect();
            for _ in 0..found.copies {
                printer.row(&values)?;
            }
            printer.finish()?;
        }
    }
    Ok(())
}
