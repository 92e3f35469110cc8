//! `kafka-log`: the format of asof's change log on a Kafka topic.
//!
//! When the log of record moves to Kafka, every committed Postgres
//! transaction is published to one topic of one partition, in commit
//! order, and followers read it back into stores that answer exactly as a
//! store captured from Postgres. This crate is that format, and nothing
//! but the format: [`Encoder`] turns a [`changelog::Transaction`] into
//! [`TopicRecord`]s (key, value, headers), and [`Reassembler`] takes
//! records in topic order, with their offsets, and gives back each
//! transaction once its end marker is read, or a [`ReassemblyError`]
//! naming the offset of the first record out of place.
//!
//! Row changes and truncates are Debezium envelopes (JSON, as Debezium's
//! `JsonConverter` writes them without schemas), so consumers built for
//! Debezium read them; schema changes, the start of a full read and the
//! end marker of each transaction are records of asof's own, told apart by
//! the `asof.type` header. Values are Postgres's exact text; what JSON
//! strings cannot say exactly travels in the `asof.exact` header.
//! `docs/kafka-format.md` describes the topic record by record.
//!
//! Table ids are local to a store, so the topic names tables by
//! schema-qualified name; each side keeps a [`Tables`] directory (names,
//! ids and shapes) that the schema changes it writes or reads advance, and
//! gives a new table the next id as the capture does.
//!
//! Central types: [`TopicRecord`], [`RecordKind`], [`Encoder`],
//! [`Reassembler`], [`Tables`], [`EncodeError`], [`ReassemblyError`].
//!
//! Not here: talking to Kafka (producing, consuming, transactions, the
//! broker), deciding where a publisher resumes, or writing to a store.
//! Chunking is the producer's choice: the records of one transaction may
//! be committed in several Kafka transactions; their headers let the
//! reader put them back together.
//!
//! ```
//! use changelog::{CommitInfo, CommitTime, Lsn, Transaction, Xid};
//! use kafka_log::{EncodeOptions, Encoder, Reassembler, Tables};
//!
//! let tx = Transaction {
//!     commit: CommitInfo {
//!         commit_lsn: Lsn(0x16B3748),
//!         end_lsn: Lsn(0x16B3778),
//!         commit_time: CommitTime::from_unix_micros(1_700_000_000_000_000),
//!         xid: Xid(571),
//!     },
//!     records: Vec::new(),
//! };
//! let mut encoder = Encoder::new(Tables::default(), EncodeOptions::default());
//! let records = encoder.encode(&tx)?;
//! let mut reader = Reassembler::new(Tables::default());
//! let mut out = Vec::new();
//! for (offset, r) in (0..).zip(&records) {
//!     out.extend(reader.push(offset, r)?);
//! }
//! assert_eq!(out, vec![tx]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The reader takes bytes from a topic anyone may write to: no panics.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod datum;
mod encode;
mod envelope;
mod error;
mod events;
mod fan_out;
mod json;
mod reassemble;
mod record;
mod tables;

pub use datum::{RowError, UNAVAILABLE};
pub use encode::{EncodeOptions, Encoder, TxEncoder};
pub use envelope::CONNECTOR;
pub use error::{EncodeError, ReassemblyError};
pub use fan_out::{fan_out, table_topic, FanOutRecord};
pub use reassemble::{Pending, Reassembler};
pub use record::{header, RecordKind, TopicRecord, FORMAT_VERSION};
pub use tables::Tables;
