//! `cdc-source`: captures a PostgreSQL database's changes into the `asof`
//! change log, exactly once, through logical replication.
//!
//! Point [`capture()`] at a database ([`CaptureOptions`]): it checks the
//! server's settings and the role's privileges (with errors that say what
//! to change), creates or reuses a publication and a replication slot,
//! copies the existing rows in the slot's exported snapshot, and then
//! streams every committed transaction (`pgoutput`, decoded by
//! [`pgoutput`]) into a [`changelog::Store`]. The slot's flush position is
//! acknowledged only after the store made the data durable (see the
//! [`mod@capture`] module docs for the argument), and
//! transient failures reconnect with backoff. DDL is captured through
//! event triggers ([`ddl`]). A start that is refused or fails leaves the
//! source as it was, and [`uninstall`] removes everything the capture
//! installed there. Values are stored as Postgres prints them in one fixed
//! set of output settings ([`output`]); a table whose rows cannot be told
//! apart is never captured with a made-up key ([`identity::missing_key`]).
//!
//! Central pieces: [`conninfo`] (libpq connection strings), [`replication`]
//! (the streaming replication protocol), [`pgoutput`] (the wire decoder),
//! [`assemble`] (messages to transactions), [`snapshot`] (the initial copy),
//! [`mod@capture`] (set-up, then the stream into the store writer).
//!
//! Not here: answering questions about the past (`materializer`), or the
//! storage format (`changelog`).

#[cfg(feature = "capture")]
pub mod assemble;
#[cfg(feature = "capture")]
mod bulk_copy;
#[cfg(feature = "capture")]
pub mod capture;
pub mod catalog;
pub mod conninfo;
#[cfg(feature = "capture")]
mod copy_readers;
pub mod copy_source;
#[cfg(feature = "capture")]
mod coverage;
pub mod ddl;
mod error;
pub mod identity;
pub mod output;
pub mod pgoutput;
#[cfg(feature = "capture")]
mod relay;
pub mod replication;
mod reread;
#[cfg(feature = "capture")]
mod sink;
#[cfg(feature = "capture")]
pub mod snapshot;
pub mod sql;
pub mod text_formats;
mod transient;
pub mod uninstall;
#[cfg(feature = "capture")]
mod writer;

#[cfg(feature = "capture")]
pub use capture::{
    capture, capture_relayed, default_copy_connections, CaptureEvent, CaptureOptions, CaptureSummary, SessionStage,
    StreamProgress, Until, SPILL_RECORDS, SQL_CATCH_UP_ABOVE,
};
pub use error::{CaptureError, CopyProblem, Result, StreamProblem};
#[cfg(feature = "capture")]
pub use relay::{Relay, RelayError};
