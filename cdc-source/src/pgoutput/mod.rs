//! A decoder for the `pgoutput` logical replication protocol, versions 1
//! and 2.
//!
//! `pgoutput` is the output plugin built into PostgreSQL (10+). A walsender
//! running it sends one message per `XLogData` payload: `Begin`, then the
//! row changes of one committed transaction (`Insert`, `Update`, `Delete`,
//! `Truncate`), `Relation`/`Type` descriptions before first use, and `Commit`.
//! [`Message::parse`] turns one complete payload into a typed [`Message`].
//!
//! What this module is:
//! - a pure function from bytes to values, in the style of
//!   `postgres-protocol`'s backend message parser: no I/O, no tokio, no state
//!   carried between messages;
//! - zero-copy for column values: each [`TupleValue::Text`] or
//!   [`TupleValue::Binary`] is a [`bytes::Bytes`] slice of the input, because
//!   this runs once per row change on the capture's hot path;
//! - total on untrusted input: any byte string gives `Ok` or a
//!   [`DecodeError`] that names the byte offset and the field expected there,
//!   never a panic, an unbounded allocation or a silently ignored trailing
//!   byte. Every accepted payload re-encodes to exactly the same bytes.
//!
//! What it is not:
//! - it does not interpret column values; text values stay in Postgres's own
//!   text form, byte for byte (the change log stores them that way);
//! - it does not track relations: resolving an `Insert`'s `rel_id` to the
//!   latest `Relation` message is the caller's job;
//! - it keeps no state: whether a payload arrived inside a stream block is
//!   the caller's to track, and so is what to do with a streamed
//!   transaction's changes until it ends. Two-phase commit messages
//!   (version 3) are rejected as unknown tags, so a session must not
//!   request `two_phase`.
// Untrusted wire input: never panic, never convert numbers lossily.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![deny(clippy::as_conversions)]

mod error;
mod message;
mod parse;
mod reader;

#[cfg(any(test, feature = "fuzzing"))]
mod encode;
#[cfg(test)]
mod tests;

pub use error::DecodeError;
pub use message::*;

/// Fuzz entry point: parses arbitrary bytes and checks that every accepted
/// payload re-encodes to the same bytes (the decoder is canonical).
///
/// Panics only when that property is violated, which is what a fuzzer
/// looks for.
#[cfg(feature = "fuzzing")]
#[allow(clippy::panic)]
pub fn fuzz_parse(data: &[u8]) {
    let input = bytes::Bytes::copy_from_slice(data);
    if let Ok(message) = Message::parse(&input) {
        let mut out = Vec::new();
        message.encode(&mut out);
        if out != data {
            panic!("re-encoding {message:?} gave different bytes");
        }
    }
    if let Ok(message) = Message::parse_in_stream(&input) {
        let mut out = Vec::new();
        message.encode(&mut out);
        if out != data {
            panic!("re-encoding {message:?} inside a stream block gave different bytes");
        }
    }
}
