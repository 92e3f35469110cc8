//! The row printer behind `snapshot`, `get`, `history` and `diff`.

use std::io::{self, Write};

use changelog::DatumRef;

use super::{csv, json_row, Format, TableWriter};

/// Writes rows of known columns in one format: CSV (header first), JSON
/// lines, or an aligned table printed with its row count at the end.
pub struct RowPrinter<W: Write> {
    out: W,
    format: Format,
    columns: Vec<String>,
    /// The rows collected so far, in the table format.
    table: Option<TableWriter>,
}

impl<W: Write> RowPrinter<W> {
    /// Starts printing rows of these columns; the CSV header goes out now.
    pub fn start(mut out: W, format: Format, columns: Vec<String>) -> io::Result<Self> {
        let mut table = None;
        match format {
            Format::Csv => {
                let header: Vec<DatumRef<'_>> = columns.iter().map(|c| DatumRef::Text(c.as_bytes())).collect();
                csv::write_csv_record(&mut out, &header)?;
            }
            Format::Table => table = Some(TableWriter::new(columns.clone())),
            Format::Jsonl => {}
        }
        Ok(RowPrinter {
            out,
            format,
            columns,
            table,
        })
    }

    /// Whether rows are JSON lines, for callers that print their own shape
    /// of object with [`RowPrinter::json_line`].
    pub fn is_jsonl(&self) -> bool {
        self.format == Format::Jsonl
    }

    /// One row, its values in column order: a CSV record, a table row, or a
    /// JSON object of column name to value.
    pub fn row(&mut self, values: &[DatumRef<'_>]) -> io::Result<()> {
        match &mut self.table {
            Some(t) => {
                t.push(values.iter().copied());
                Ok(())
            }
            None => render_row(self.format, &self.columns, values, &mut self.out),
        }
    }

    /// Whether rows print one by one, each on its own (CSV and JSON lines),
    /// so they can be rendered elsewhere with [`render_row`] and handed
    /// over with [`RowPrinter::rendered`]; a table needs them all.
    pub fn renders_rows(&self) -> bool {
        self.table.is_none()
    }

    /// Rows rendered with [`render_row`], in order.
    pub fn rendered(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    /// One JSON line of the caller's own shape.
    pub fn json_line(&mut self, obj: &serde_json::Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, obj)?;
        self.out.write_all(b"\n")
    }

    /// Prints the table, if the format is one, and flushes.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(t) = self.table.take() {
            t.finish(&mut self.out)?;
        }
        self.out.flush()
    }

    /// Flushes without printing a table: there is no row to show, and the
    /// note on stderr says so.
    pub fn finish_without_table(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Renders one row as [`RowPrinter::row`] prints it in `format` (CSV or
/// JSON lines) into any writer, so rendering can run on other threads.
pub fn render_row(format: Format, columns: &[String], values: &[DatumRef<'_>], out: &mut impl Write) -> io::Result<()> {
    if format == Format::Csv {
        return csv::write_csv_record(out, values);
    }
    let obj = json_row(columns, values.iter().copied());
    serde_json::to_writer(&mut *out, &serde_json::Value::Object(obj))?;
    out.write_all(b"\n")
}
