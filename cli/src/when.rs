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
    // One write: stderr is unbuffered, and the moment's parts would each
    // be a write of their own (thirty of them), interleaving with anything
    // else written to stderr.
    let line = format!("{label}{}\n", r.cut);
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    if let Some(reach) = r.beyond_log {
        eprintln!("note: that is the latest captured state; the log is complete through lsn {reach}");
    }
}
