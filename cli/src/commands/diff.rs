//! `asof diff`.

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Result;
use changelog::{Datum, DatumRef};
use materializer::{DiffEntry, DiffKind};

use crate::args::DiffArgs;
use crate::commands::{column_names, note_coverage, open_reader, stdout};
use crate::output::{json_row, Format, RowPrinter};
use crate::when;

/// How many rows of each kind differ (each copy of a row counted), for the
/// closing note.
#[derive(Default)]
struct Counts {
    inserted: u64,
    deleted: u64,
    changed: u64,
}

/// The two shapes of the table and how to print its differing rows.
struct DiffPrinter<'c, W: std::io::Write> {
    printer: RowPrinter<W>,
    from_cols: &'c [String],
    to_cols: &'c [String],
    counts: Counts,
}

pub fn run(store_path: &Path, a: DiffArgs) -> Result<()> {
    let format = Format::resolve(a.format.format);
    let store = open_reader(store_path)?;
    let from = when::resolve(&store, a.from, "from ")?;
    let to = when::resolve(&store, a.to, "to   ")?;
    if from.cut.lsn > to.cut.lsn {
        return Err(materializer::QueryError::ReversedRange {
            from: from.cut,
            to: to.cut,
        }
        .into());
    }
    let to_t = materializer::table_at(&store, &a.table, to.cut)?;
    let from_t = materializer::table_at(&store, &a.table, from.cut).ok();
    match &from_t {
        Some(f) if f.coverage != to_t.coverage => note_coverage(f),
        _ => {}
    }
    note_coverage(&to_t);
    let from_cols = from_t.as_ref().map(column_names).unwrap_or_default();
    let to_cols = column_names(&to_t);
    let header = std::iter::once("change".to_string()).chain(to_cols.iter().cloned());
    let mut p = DiffPrinter {
        printer: RowPrinter::start(stdout(), format, header.collect())?,
        from_cols: &from_cols,
        to_cols: &to_cols,
        counts: Counts::default(),
    };
    materializer::diff(&store, from_t.as_ref(), &to_t, from.cut, to.cut, |e| -> Result<_> {
        p.entry(&e)?;
        Ok(ControlFlow::Continue(()))
    })?;
    let Counts {
        inserted,
        deleted,
        changed,
    } = p.counts;
    p.printer.finish()?;
    eprintln!("{inserted} inserted, {deleted} deleted, {changed} changed");
    Ok(())
}

impl<W: std::io::Write> DiffPrinter<'_, W> {
    /// Prints an entry once per copy it stands for (identical rows of a
    /// table keyed by all its columns), so the lines are the rows added and
    /// removed, as Postgres would list them.
    fn entry(&mut self, e: &DiffEntry) -> std::io::Result<()> {
        for _ in 0..e.copies {
            self.one(e)?;
        }
        Ok(())
    }

    fn one(&mut self, e: &DiffEntry) -> std::io::Result<()> {
        let (count, label) = match e.kind {
            DiffKind::Inserted => (&mut self.counts.inserted, "inserted"),
            DiffKind::Deleted => (&mut self.counts.deleted, "deleted"),
            DiffKind::Changed => (&mut self.counts.changed, "changed"),
        };
        *count += 1;
        if self.printer.is_jsonl() {
            let image = |row: &Option<Vec<Datum>>, cols: &[String]| {
                row.as_ref().map(|r| json_row(cols, r.iter().map(Datum::as_ref)))
            };
            let obj = serde_json::json!({
                "change": label,
                "before": image(&e.before, self.from_cols),
                "after": image(&e.after, self.to_cols),
            });
            return self.printer.json_line(&obj);
        }
        // A changed row prints as its before (-) and after (+) lines; the
        // before values are laid out in the later columns.
        let changed = e.kind == DiffKind::Changed;
        if let Some(before) = &e.before {
            self.line(if changed { "-changed" } else { "deleted" }, before, self.from_cols)?;
        }
        if let Some(after) = &e.after {
            self.line(if changed { "+changed" } else { "inserted" }, after, self.to_cols)?;
        }
        Ok(())
    }

    /// One labelled line of a row whose values are in `cols`, printed in
    /// the later columns (NULL where a column did not exist).
    fn line(&mut self, label: &str, row: &[Datum], cols: &[String]) -> std::io::Result<()> {
        let mut values = vec![DatumRef::Text(label.as_bytes())];
        values.extend(self.to_cols.iter().map(|c| {
            cols.iter()
                .position(|n| n == c)
                .and_then(|i| row.get(i))
                .map_or(DatumRef::Null, Datum::as_ref)
        }));
        self.printer.row(&values)
    }
}
