//! `asof diff`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Result;
use changelog::{Datum, DatumRef, TableName};
use materializer::DiffKind;

use crate::args::DiffArgs;
use crate::commands::{open_reader, stdout};
use crate::output::{self, Format, TableWriter};
use crate::when;

fn kind_name(k: &DiffKind) -> &'static str {
    match k {
        DiffKind::Inserted => "inserted",
        DiffKind::Deleted => "deleted",
        DiffKind::Changed => "changed",
    }
}

pub fn run(store_path: &Path, a: DiffArgs) -> Result<()> {
    let from_w = when::parse("--from", &a.from)?;
    let to_w = when::parse("--to", &a.to)?;
    let format = Format::resolve(a.format.format);
    let store = open_reader(store_path)?;
    let from = when::resolve(&store, from_w, "from ")?;
    let to = when::resolve(&store, to_w, "to   ")?;
    if from.cut.lsn > to.cut.lsn {
        return Err(materializer::QueryError::ReversedRange {
            from: from.cut,
            to: to.cut,
        }
        .into());
    }
    let name = TableName::parse(&a.table);
    let to_t = materializer::table_at(&store, &name, to.cut)?;
    let from_t = materializer::table_at(&store, &name, from.cut).ok();
    let from_cols: Vec<String> = from_t
        .as_ref()
        .map(|t| t.schema.column_names().map(String::from).collect())
        .unwrap_or_default();
    let to_cols: Vec<String> = to_t.schema.column_names().map(String::from).collect();
    let mut out = stdout();
    let mut table = TableWriter::new({
        let mut h = vec!["change".to_string()];
        h.extend(to_cols.iter().cloned());
        h
    });
    if format == Format::Csv {
        let mut h = vec!["change".to_string()];
        h.extend(to_cols.iter().cloned());
        let refs: Vec<DatumRef<'_>> = h.iter().map(|c| DatumRef::Text(c.as_bytes())).collect();
        output::write_csv_record(&mut out, &refs)?;
    }
    let (mut ins, mut del, mut chg) = (0u64, 0u64, 0u64);
    materializer::diff(&store, from_t.as_ref(), &to_t, from.cut, to.cut, |e| -> Result<_> {
        match e.kind {
            DiffKind::Inserted => ins += 1,
            DiffKind::Deleted => del += 1,
            DiffKind::Changed => chg += 1,
        }
        let res: std::io::Result<()> = (|| {
            match format {
                Format::Jsonl => {
                    let obj = serde_json::json!({
                        "change": kind_name(&e.kind),
                        "before": e.before.as_ref().map(|r| output::json_row(&from_cols, r.iter().map(Datum::as_ref))),
                        "after": e.after.as_ref().map(|r| output::json_row(&to_cols, r.iter().map(Datum::as_ref))),
                    });
                    serde_json::to_writer(&mut out, &obj)?;
                    out.write_all(b"\n")?;
                }
                Format::Csv | Format::Table => {
                    // A changed row prints as its before (-) and after (+) lines;
                    // the before values are laid out in the later columns.
                    let mut lines: Vec<(&str, Vec<DatumRef<'_>>)> = Vec::new();
                    fn pick<'r>(row: &'r [Datum], cols: &[String], to_cols: &[String]) -> Vec<DatumRef<'r>> {
                        to_cols
                            .iter()
                            .map(|c| {
                                cols.iter()
                                    .position(|n| n == c)
                                    .and_then(|i| row.get(i))
                                    .map_or(DatumRef::Null, Datum::as_ref)
                            })
                            .collect()
                    }
                    if let Some(b) = &e.before {
                        lines.push((
                            if e.kind == DiffKind::Changed {
                                "-changed"
                            } else {
                                "deleted"
                            },
                            pick(b, &from_cols, &to_cols),
                        ));
                    }
                    if let Some(af) = &e.after {
                        lines.push((
                            if e.kind == DiffKind::Changed {
                                "+changed"
                            } else {
                                "inserted"
                            },
                            pick(af, &to_cols, &to_cols),
                        ));
                    }
                    for (label, vals) in lines {
                        if format == Format::Csv {
                            let mut all = vec![DatumRef::Text(label.as_bytes())];
                            all.extend(vals);
                            output::write_csv_record(&mut out, &all)?;
                        } else {
                            let mut all = vec![label.to_string()];
                            all.extend(vals.iter().map(|d| output::text(*d).into_owned()));
                            table.push_strings(all);
                        }
                    }
                }
            }
            Ok(())
        })();
        res?;
        Ok(ControlFlow::Continue(()))
    })?;
    if format == Format::Table {
        table.finish(&mut out)?;
    }
    out.flush()?;
    eprintln!("{ins} inserted, {del} deleted, {chg} changed");
    Ok(())
}
