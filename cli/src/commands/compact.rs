//! `asof compact`.

use std::path::Path;

use anyhow::{Context, Result};
use changelog::{CommitTime, Store, StoreOptions};
use materializer::When;

use crate::args::CompactArgs;
use crate::when;

pub fn run(store_path: &Path, a: CompactArgs) -> Result<()> {
    let mut store = Store::open(store_path, &StoreOptions::default())
        .with_context(|| format!("cannot open the store at {} for compaction", store_path.display()))?;
    refuse_beyond_the_log(&store, a.before)?;
    let r = when::resolve(&store, a.before, "new horizon: ")?;
    let stats = store.compact(r.cut.lsn)?;
    eprintln!(
        "removed {} versions, {} log records and {} commits; kept {} base rows",
        stats.versions_removed, stats.log_records_removed, stats.commits_removed, stats.base_versions
    );
    Ok(())
}

/// A horizon in the future, or past the end of the log, would fold away
/// history the user never asked to lose (every version but the latest): a
/// moment the log has not reached is refused rather than clamped.
fn refuse_beyond_the_log(store: &Store, before: When) -> Result<()> {
    let now = CommitTime::now();
    let beyond = match before {
        When::Time(_) | When::Relative(_) => before.to_time(now).is_some_and(|t| t > now),
        When::Lsn(l) => store.watermark().is_some_and(|w| l > w.end_lsn),
        When::Now => false,
    };
    if beyond {
        return Err(crate::UsageError(format!(
            "--before {before} lies beyond the end of the log; give a past moment (or `now` to keep only the latest state)"
        ))
        .into());
    }
    Ok(())
}
