//! `asof history`.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use changelog::{CommitTime, Datum, TableName};
use materializer::When;

use crate::args::HistoryArgs;
use crate::commands::{open_reader, stdout};
use crate::output::{self, Format, TableWriter};

pub fn run(store_path: &Path, a: HistoryArgs) -> Result<()> {
    let format = Format::resolve(a.format.format);
    let store = open_reader(store_path)?;
    let now = materializer::resolve(&store, When::Now, CommitTime::now())?;
    // The row's table as it is now; a dropped table is found at its last moment.
    let name = TableName::parse(&a.table);
    let table = match materializer::table_at(&store, &name, now.cut) {
        Ok(t) => t,
        Err(e) => match materializer::last_moment_of(&store, &name)? {
            Some(cut) => materializer::table_at(&store, &name, cut)?,
            None => return Err(e.into()),
        },
    };
    let keys: Vec<&str> = a.key.iter().map(String::as_str).collect();
    let key = materializer::user_key(&table, &keys).map_err(|e| crate::UsageError(e.to_string()))?;
    let entries = materializer::history(&store, &table, &key)?;
    if entries.is_empty() {
        eprintln!("no history for key ({}) in {}", keys.join(", "), table.schema.name);
    }
    let mut out = stdout();
    match format {
        Format::Jsonl => {
            for e in &entries {
                let row = e
                    .row
                    .as_ref()
                    .map(|r| output::json_row(&e.columns, r.iter().map(Datum::as_ref)));
                let obj = serde_json::json!({
                    "op": e.op.name(),
                    "lsn": e.cut.lsn.to_string(),
                    "commit_time": e.cut.commit_time.to_string(),
                    "xid": e.cut.xid.0,
                    "row": row,
                });
                serde_json::to_writer(&mut out, &obj)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Csv => {
            // Columns can change over a row's life; use the latest shape.
            let cols: Vec<String> = table.schema.column_names().map(String::from).collect();
            let mut header = vec!["commit_time".to_string(), "lsn".into(), "xid".into(), "op".into()];
            header.extend(cols.iter().cloned());
            let hrefs: Vec<changelog::DatumRef<'_>> =
                header.iter().map(|h| changelog::DatumRef::Text(h.as_bytes())).collect();
            output::write_csv_record(&mut out, &hrefs)?;
            for e in &entries {
                let meta = [
                    e.cut.commit_time.to_string(),
                    e.cut.lsn.to_string(),
                    e.cut.xid.0.to_string(),
                    e.op.name().to_string(),
                ];
                let mut vals: Vec<changelog::DatumRef<'_>> =
                    meta.iter().map(|m| changelog::DatumRef::Text(m.as_bytes())).collect();
                for c in &cols {
                    let v = e
                        .row
                        .as_ref()
                        .and_then(|r| e.columns.iter().position(|n| n == c).and_then(|i| r.get(i)));
                    vals.push(v.map_or(changelog::DatumRef::Null, Datum::as_ref));
                }
                output::write_csv_record(&mut out, &vals)?;
            }
        }
        Format::Table => {
            let cols: Vec<String> = table.schema.column_names().map(String::from).collect();
            let mut header = vec!["commit_time".to_string(), "lsn".into(), "xid".into(), "op".into()];
            header.extend(cols.iter().cloned());
            let mut t = TableWriter::new(header);
            for e in &entries {
                let mut cells = vec![
                    e.cut.commit_time.to_string(),
                    e.cut.lsn.to_string(),
                    e.cut.xid.0.to_string(),
                    e.op.name().to_string(),
                ];
                for c in &cols {
                    let v = e
                        .row
                        .as_ref()
                        .and_then(|r| e.columns.iter().position(|n| n == c).and_then(|i| r.get(i)));
                    cells.push(v.map_or(String::new(), |d| output::text(d.as_ref()).into_owned()));
                }
                t.push_strings(cells);
            }
            t.finish(&mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}
