//! `asof tables`.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use changelog::{TableName, TableSchema};

use crate::args::TablesArgs;
use crate::commands::{open_reader, stdout};
use crate::output::TableWriter;
use crate::when;

pub fn run(store_path: &Path, a: TablesArgs) -> Result<()> {
    let store = open_reader(store_path)?;
    let r = when::resolve(&store, a.at.at, "as of ")?;
    let mut t = TableWriter::new(vec!["table".into(), "columns".into(), "key".into(), "notes".into()]);
    let mut rows: Vec<(TableName, Vec<String>)> = Vec::new();
    for table in materializer::tables_at(&store, r.cut) {
        let key: Vec<&str> = table
            .schema
            .columns
            .iter()
            .filter(|c| c.is_key)
            .map(|c| c.name.as_str())
            .collect();
        // Rows told apart by nothing but their values: said, as copies count.
        let key = match (key.join(", "), table.schema.counts_copies()) {
            (key, false) => key,
            (key, true) if key.is_empty() => "(identical rows counted)".to_owned(),
            (key, true) => format!("{key} (identical rows counted)"),
        };
        let notes = table.coverage.to_string();
        rows.push((table.schema.name.clone(), vec![columns(table.schema), key, notes]));
    }
    // Tables that exist but are not captured are listed too, with why.
    for u in materializer::uncaptured_at(&store, r.cut) {
        rows.push((
            u.schema.name.clone(),
            vec![columns(u.schema), String::new(), format!("not captured: {}", u.reason)],
        ));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, rest) in rows {
        let mut values = vec![name.to_string()];
        values.extend(rest);
        t.push_strings(values);
    }
    let mut out = stdout();
    t.finish(&mut out)?;
    out.flush()?;
    Ok(())
}

fn columns(schema: &TableSchema) -> String {
    let cols: Vec<String> = schema
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.type_name))
        .collect();
    cols.join(", ")
}
