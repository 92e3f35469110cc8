//! `asof snapshot` and `asof get`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Result;
use changelog::{Datum, DatumRef, TableName};

use crate::args::{GetArgs, SnapshotArgs};
use crate::commands::{open_reader, stdout};
use crate::output::{self, Format, TableWriter};
use crate::when;

fn columns(t: &materializer::TableAt<'_>) -> Vec<String> {
    t.schema.column_names().map(String::from).collect()
}

pub fn snapshot(store_path: &Path, a: SnapshotArgs) -> Result<()> {
    let at = when::parse("--at", &a.at.at)?;
    let format = Format::resolve(a.format.format);
    let store = open_reader(store_path)?;
    let r = when::resolve(&store, at, "as of ")?;
    let table = materializer::table_at(&store, &TableName::parse(&a.table), r.cut)?;
    let cols = columns(&table);
    let mut out = stdout();
    match format {
        Format::Csv => {
            let header: Vec<DatumRef<'_>> = cols.iter().map(|c| DatumRef::Text(c.as_bytes())).collect();
            output::write_csv_record(&mut out, &header)?;
            materializer::snapshot(&store, &table, r.cut, |row| -> Result<_> {
                output::write_csv_record(&mut out, row)?;
                Ok(ControlFlow::Continue(()))
            })?;
        }
        Format::Jsonl => {
            materializer::snapshot(&store, &table, r.cut, |row| -> Result<_> {
                let obj = output::json_row(&cols, row.iter().copied());
                serde_json::to_writer(&mut out, &obj).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                Ok(ControlFlow::Continue(()))
            })?;
        }
        Format::Table => {
            let mut t = TableWriter::new(cols);
            materializer::snapshot(&store, &table, r.cut, |row| -> Result<_> {
                t.push(row.iter().copied());
                Ok(ControlFlow::Continue(()))
            })?;
            t.finish(&mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn get(store_path: &Path, a: GetArgs) -> Result<()> {
    let at = when::parse("--at", &a.at.at)?;
    let format = Format::resolve(a.format.format);
    let store = open_reader(store_path)?;
    let r = when::resolve(&store, at, "as of ")?;
    let table = materializer::table_at(&store, &TableName::parse(&a.table), r.cut)?;
    let keys: Vec<&str> = a.key.iter().map(String::as_str).collect();
    let key = materializer::user_key(&table, &keys).map_err(|e| crate::UsageError(e.to_string()))?;
    let row = materializer::get(&store, &table, &key, r.cut)?;
    let cols = columns(&table);
    let mut out = stdout();
    match row {
        None => {
            eprintln!(
                "no row with key ({}) in {} as of that moment",
                keys.join(", "),
                table.schema.name
            );
            if format == Format::Csv {
                let header: Vec<DatumRef<'_>> = cols.iter().map(|c| DatumRef::Text(c.as_bytes())).collect();
                output::write_csv_record(&mut out, &header)?;
            }
        }
        Some(values) => print_rows(&mut out, format, &cols, std::iter::once(values))?,
    }
    out.flush()?;
    Ok(())
}

/// Prints owned rows in a format.
pub fn print_rows(
    out: &mut impl Write,
    format: Format,
    cols: &[String],
    rows: impl Iterator<Item = Vec<Datum>>,
) -> Result<()> {
    match format {
        Format::Csv => {
            let header: Vec<DatumRef<'_>> = cols.iter().map(|c| DatumRef::Text(c.as_bytes())).collect();
            output::write_csv_record(out, &header)?;
            for r in rows {
                let refs: Vec<DatumRef<'_>> = r.iter().map(Datum::as_ref).collect();
                output::write_csv_record(out, &refs)?;
            }
        }
        Format::Jsonl => {
            for r in rows {
                serde_json::to_writer(&mut *out, &output::json_row(cols, r.iter().map(Datum::as_ref)))?;
                out.write_all(b"\n")?;
            }
        }
        Format::Table => {
            let mut t = TableWriter::new(cols.to_vec());
            for r in rows {
                t.push(r.iter().map(Datum::as_ref));
            }
            t.finish(out)?;
        }
    }
    Ok(())
}
