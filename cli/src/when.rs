//! Resolving WHEN arguments and telling the user which cut they resolved to.

use anyhow::{Context, Result};
use changelog::{CommitTime, Store};
use materializer::{Resolved, When};

/// Resolves a WHEN against the store and reports the cut on stderr.
pub fn resolve(store: &Store, when: When, label: &str) -> Result<Resolved> {
    let r = materializer::resolve(store, when, CommitTime::now()).context("cannot answer")?;
    note(label, &r);
    Ok(r)
}

/// Prints `as of <time> (lsn X/Y, xid N)` and any edge note to stderr.
pub fn note(label: &str, r: &Resolved) {
    eprintln!("{label}{}", r.cut);
    if let Some(reach) = r.beyond_log {
        eprintln!("note: that is the latest captured state; the log is complete through lsn {reach}");
    }
}
