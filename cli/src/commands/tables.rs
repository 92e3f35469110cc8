//! `asof tables`.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::args::TablesArgs;
use crate::commands::{open_reader, stdout};
use crate::output::TableWriter;
use crate::when;

pub fn run(store_path: &Path, a: TablesArgs) -> Result<()> {
    let store = open_reader(store_path)?;
    let r = when::resolve(&store, a.at.at, "as of ")?;
    let mut t = TableWriter::new(vec!["table".into(), "columns".into(), "key".into()]);
    for table in materializer::tables_at(&store, r.cut) {
        let cols: Vec<String> = table
            .schema
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.type_name))
            .collect();
        let key: Vec<&str> = table
            .schema
            .columns
            .iter()
            .filter(|c| c.is_key)
            .map(|c| c.name.as_str())
            .collect();
        t.push_strings(vec![table.schema.name.to_string(), cols.join(", "), key.join(", ")]);
    }
    let mut out = stdout();
    t.finish(&mut out)?;
    out.flush()?;
    Ok(())
}
