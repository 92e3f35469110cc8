//! Where the stream hands what it captured, and how it learns what is
//! durable: the narrow boundary between decoding and storing.
//!
//! The store writer (`Writer`) is today's one sink; a
//! publisher to another system would be a second one. The contract the
//! stream relies on for exactly-once:
//!
//! - items are made durable strictly in the order they were handed over;
//! - [`Sink::append`], [`Sink::finish_spill`] and [`Sink::note_scanned`]
//!   are each answered by exactly one [`Durable`] report from
//!   [`Sink::durable`], sent only once the item is durable, and carrying
//!   the position up to which everything is durable;
//! - [`Sink::begin_spill`] and [`Sink::spill_chunk`] get no report; a
//!   spilled transaction that is never finished is discarded;
//! - a sink that cannot carry out an item (a chunk with no spill open, a
//!   failed write) says so through an error rather than staying silent,
//!   because the stream would otherwise wait for its report forever.

use std::future::Future;

use changelog::{ChangeRecord, CommitInfo, Lsn, Transaction};

use crate::error::Result;

/// A sink's answer to one item: it is durable, and so is everything
/// handed over before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durable {
    /// Everything up to this position is durable and may be acknowledged.
    pub lsn: Lsn,
    /// Row changes the item stored.
    pub records: u64,
    /// Transactions the item stored.
    pub txns: u64,
    /// The newest transaction durable so far (none before the first).
    pub last_commit: Option<changelog::Watermark>,
}

/// Receives captured transactions and reports what is durable.
pub trait Sink {
    /// Hands over whole transactions, to be made durable together.
    fn append(&mut self, txns: Vec<Transaction>) -> impl Future<Output = Result<()>> + Send;

    /// Starts a transaction too large to hold in memory, committing at
    /// `commit_lsn`; its records follow in chunks.
    fn begin_spill(&mut self, commit_lsn: Lsn) -> impl Future<Output = Result<()>> + Send;

    /// One chunk of the open spilled transaction.
    fn spill_chunk(&mut self, records: Vec<ChangeRecord>) -> impl Future<Output = Result<()>> + Send;

    /// The open spilled transaction's last records and its commit.
    fn finish_spill(
        &mut self,
        commit: CommitInfo,
        records: Vec<ChangeRecord>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The source confirmed that nothing captured lies before `lsn`.
    fn note_scanned(&mut self, lsn: Lsn) -> impl Future<Output = Result<()>> + Send;

    /// The next report. Cancel-safe: the stream waits for it beside the
    /// server's messages and drops the wait when a message comes first.
    fn durable(&mut self) -> impl Future<Output = Result<Durable>> + Send;
}
