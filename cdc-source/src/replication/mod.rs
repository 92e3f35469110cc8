//! A small client for PostgreSQL's streaming replication protocol, for
//! logical decoding.
//!
//! Why it exists: exactly-once capture needs the flush position reported
//! to the server to be sent right after the change log is durable up to it,
//! and never beyond. The replication crates we evaluated acknowledge from a
//! background timer or not at all at a stop position
//! (`/work/shared/notes/replication-transport.md`). Here nothing is ever
//! acknowledged implicitly: the server learns a position only through
//! [`LogicalStream::send_status`].
//!
//! The pieces:
//! - [`ReplicationClient::connect`] opens a `replication=database`
//!   connection from a `tokio_postgres::Config` (TCP, TLS with libpq's
//!   unverified `prefer`/`require` semantics, or a Unix socket; trust,
//!   password, md5 or SCRAM-SHA-256 authentication).
//! - The client runs replication commands and SQL through the simple query
//!   protocol ([`ReplicationClient::query`], typed helpers such as
//!   [`ReplicationClient::create_logical_slot`]).
//! - [`ReplicationClient::start_logical`] turns it into a
//!   [`LogicalStream`], which yields [`ReplicationEvent`]s. Each `XLogData`
//!   payload is a zero-copy view of a large read buffer, ready for
//!   [`crate::pgoutput::Message::parse`].
//!
//! What it is not: a general Postgres client (no extended protocol, no
//! `COPY`), a physical replication client, or a policy: when to
//! acknowledge, reconnect or time out is the caller's decision, guided by
//! [`ReplicationError::is_transient`].
//!
//! Built on `postgres-protocol` for message encoding, backend message
//! parsing and authentication, as `tokio-postgres` is.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::as_conversions
)]

mod client;
mod commands;
mod error;
mod frame;
mod logical;
mod startup;
mod tls;
mod transport;

#[cfg(test)]
mod tests;

pub use client::{quote_identifier, quote_literal, QueryResult, ReplicationClient};
pub use commands::{CreatedSlot, SlotSnapshot, SystemIdentity};
pub use error::{ReplicationError, ServerError};
pub use logical::{LogicalStream, ReplicationEvent};
