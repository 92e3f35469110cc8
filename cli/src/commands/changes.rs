//! `asof changes`: the raw log as Debezium-style JSON lines.

use std::collections::HashSet;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Result;
use changelog::{Datum, TableName};

use crate::args::ChangesArgs;
use crate::commands::{open_reader, stdout};
use crate::output;
use crate::when;

pub fn run(store_path: &Path, a: ChangesArgs) -> Result<()> {
    let from_w = a.from.as_deref().map(|f| when::parse("--from", f)).transpose()?;
    let to_w = when::parse("--to", &a.to)?;
    let store = open_reader(store_path)?;
    let from = from_w.map(|w| when::resolve(&store, w, "after ")).transpose()?;
    let to = when::resolve(&store, to_w, "up to ")?;
    let only: Option<HashSet<changelog::TableId>> = if a.tables.is_empty() {
        None
    } else {
        let mut ids = HashSet::new();
        for t in &a.tables {
            let name = TableName::parse(t);
            // A table counts if it had that name at either end of the range.
            let mut found = false;
            for cut in [Some(to.cut), from.map(|f| f.cut)].into_iter().flatten() {
                if let Ok(tab) = materializer::table_at(&store, &name, cut) {
                    ids.insert(tab.id);
                    found = true;
                }
            }
            if !found {
                materializer::table_at(&store, &name, to.cut)?;
            }
        }
        Some(ids)
    };
    let mut out = stdout();
    let mut n = 0u64;
    materializer::changes(&store, from.map(|f| f.cut), to.cut, only.as_ref(), |ev| -> Result<_> {
        let image = |r: &Option<Vec<Datum>>| {
            r.as_ref()
                .map(|r| output::json_row(&ev.columns, r.iter().map(Datum::as_ref)))
        };
        let obj = serde_json::json!({
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
        });
        let r: std::io::Result<()> = (|| {
            serde_json::to_writer(&mut out, &obj)?;
            out.write_all(b"\n")
        })();
        r?;
        n += 1;
        Ok(ControlFlow::Continue(()))
    })?;
    out.flush()?;
    eprintln!("{n} changes");
    Ok(())
}
