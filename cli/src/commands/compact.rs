//! `asof compact`.

use std::path::Path;

use anyhow::{Context, Result};
use changelog::{Store, StoreOptions};

use crate::args::CompactArgs;
use crate::when;

pub fn run(store_path: &Path, a: CompactArgs) -> Result<()> {
    let mut store = Store::open(store_path, &StoreOptions::default())
        .with_context(|| format!("cannot open the store at {} for compaction", store_path.display()))?;
    let r = when::resolve(&store, a.before, "new horizon: ")?;
    let stats = store.compact(r.cut.lsn)?;
    eprintln!(
        "removed {} versions, {} log records and {} commits; kept {} base rows",
        stats.versions_removed, stats.log_records_removed, stats.commits_removed, stats.base_versions
    );
    Ok(())
}
