//! Resolving a [`When`] to a [`Cut`]: a transaction boundary of the log.

use std::fmt;

use changelog::{CommitEntry, CommitTime, Lsn, Store, Xid};

use crate::error::{QueryError, Result};
use crate::when::When;

/// A transaction boundary: the state after every transaction with commit
/// LSN `<= lsn`, and none after. Every answer names the cut it used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cut {
    /// Commit LSN of the last included transaction.
    pub lsn: Lsn,
    /// Its commit time (monotonic, UTC).
    pub commit_time: CommitTime,
    /// Its transaction id.
    pub xid: Xid,
}

impl Cut {
    /// The cut at a stored commit.
    pub fn from_commit(c: &CommitEntry) -> Cut {
        Cut {
            lsn: c.commit_lsn,
            commit_time: c.commit_time,
            xid: c.xid,
        }
    }
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (lsn {}, xid {})", self.commit_time, self.lsn, self.xid.0)
    }
}

/// A resolved moment, with what the user should be told about its edges.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Resolved {
    /// The cut used.
    pub cut: Cut,
    /// Set when the moment asked for lies beyond the last captured commit:
    /// the answer is the latest state, and this says how far the log reaches
    /// (the LSN up to which the source confirmed it complete).
    pub beyond_log: Option<Lsn>,
}

/// Resolves `when` against the store. `now` is the wall clock, passed in so
/// relative times are testable.
pub fn resolve(store: &Store, when: When, now: CommitTime) -> Result<Resolved> {
    let mark = store.watermark().ok_or(QueryError::EmptyStore)?;
    let latest = store.commit(mark.commit_lsn)?.ok_or(QueryError::EmptyStore)?;
    let asked = when.to_string();
    let earliest = || -> Result<QueryError> {
        let first = store
            .first_commit_lsn()
            .and_then(|l| store.commit(l).transpose())
            .transpose()?;
        let first = first.map(|c| Cut::from_commit(&c)).unwrap_or(Cut::from_commit(&latest));
        Ok(if store.horizon().is_some() {
            QueryError::BeforeHorizon {
                asked: asked.clone(),
                earliest: first,
            }
        } else {
            QueryError::BeforeHistory {
                asked: asked.clone(),
                earliest: first,
            }
        })
    };
    let (commit, beyond) = match when {
        When::Now => (latest, Some(store.scanned_through())),
        When::Lsn(l) => {
            let beyond = l > mark.end_lsn;
            match store.commit_at_or_before(l)? {
                Some(c) => (c, beyond.then(|| store.scanned_through())),
                None => return Err(earliest()?),
            }
        }
        When::Time(_) | When::Relative(_) => {
            let t = when.to_time(now).unwrap_or(now);
            match store.commit_at_or_before_time(t)? {
                Some(c) => (
                    c,
                    (t > latest.commit_time && c.commit_lsn == latest.commit_lsn).then(|| store.scanned_through()),
                ),
                None => return Err(earliest()?),
            }
        }
    };
    if store.horizon().is_some_and(|h| commit.commit_lsn < h) {
        return Err(earliest()?);
    }
    Ok(Resolved {
        cut: Cut::from_commit(&commit),
        beyond_log: beyond,
    })
}
