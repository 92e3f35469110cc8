//! `asof changes`: the raw log as Debezium-style JSON lines.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Result;
use changelog::Datum;
use materializer::ChangeEvent;

use crate::args::ChangesArgs;
use crate::commands::{open_reader, stdout};
use crate::output::{json_row, Format, RowPrinter};
use crate::when;

pub fn run(store_path: &Path, a: ChangesArgs) -> Result<()> {
    let store = open_reader(store_path)?;
    let from = a.from.map(|w| when::resolve(&store, w, "after ")).transpose()?;
    let to = when::resolve(&store, a.to, "up to ")?;
    let only: Option<HashSet<changelog::TableId>> = if a.tables.is_empty() {
        None
    } else {
        let mut ids = HashSet::new();
        for name in &a.tables {
            // A table counts if it had that name at either end of the range.
            let mut found = false;
            for cut in [Some(to.cut), from.map(|f| f.cut)].into_iter().flatten() {
                if let Ok(tab) = materializer::table_at(&store, name, cut) {
                    ids.insert(tab.id);
                    found = true;
                }
            }
            if !found {
                materializer::table_at(&store, name, to.cut)?;
            }
        }
        Some(ids)
    };
    let mut printer = RowPrinter::start(stdout(), Format::Jsonl, Vec::new())?;
    let mut n = 0u64;
    materializer::changes(&store, from.map(|f| f.cut), to.cut, only.as_ref(), |ev| -> Result<_> {
        printer.json_line(&change_json(&ev))?;
        n += 1;
        Ok(ControlFlow::Continue(()))
    })?;
    printer.finish()?;
    eprintln!("{n} changes");
    Ok(())
}

/// One change in Debezium's envelope: `op`, `before`, `after`, `source`.
fn change_json(ev: &ChangeEvent) -> serde_json::Value {
    let image = |r: &Option<Vec<Datum>>| r.as_ref().map(|r| json_row(&ev.columns, r.iter().map(Datum::as_ref)));
    serde_json::json!({
        "op": ev.op.code(),
        "before": image(&ev.before),
        "after": image(&ev.after),
        "source": {
            "schema": ev.table.schema,
            "table": ev.table.name,
            "lsn": ev.commit.commit_lsn.to_string(),
            "commit_time": ev.commit.commit_time.to_string(),
            "xid": ev.commit.xid.0,
            "ordinal": ev.ordinal,
        },
        "ts_us": ev.commit.commit_time.unix_micros(),
    })
}
