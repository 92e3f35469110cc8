//! Passing the log on: the capture's hook for a second home of the log
//! (a Kafka topic), kept in step before the source is acknowledged.
//!
//! The store stays the capture's working copy: it resolves unchanged TOAST
//! values, keeps the table directory and holds what was captured but not
//! yet passed on. A [`Relay`] reads what the store holds and makes it
//! durable elsewhere. The writer calls it after every durable store step
//! and before reporting that step, so the slot is never acknowledged past
//! what the relay's system holds; after a crash, what the store has and
//! the relay's system lacks is passed on first, before streaming resumes.

use changelog::{Lsn, Store, Transaction};

/// Why a relay could not pass the log on; it has given up retrying.
pub type RelayError = Box<dyn std::error::Error + Send + Sync>;

/// Keeps another system's copy of the log in step with the store.
pub trait Relay: Send + 'static {
    /// Passes on every transaction the store holds through commit LSN
    /// `through` that the other system does not yet have, returning once
    /// they are durable there; later ones may wait for the next call.
    /// Retries transient failures itself; an error ends the capture.
    ///
    /// `appended` holds, in commit order, transactions stored since the
    /// last call whose records the store logged exactly as given
    /// ([`Transaction::logged_as_given`]): the relay may take their records
    /// from here instead of reading them back. Others (spilled or resolved)
    /// are only in the store.
    fn relay(&mut self, store: &Store, through: Lsn, appended: &[Transaction]) -> Result<(), RelayError>;
}
