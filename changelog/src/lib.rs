//! `changelog`: the durable, append-only, indexed change log of `asof`.
//!
//! Every committed PostgreSQL transaction the capture sees is appended here
//! as one [`Transaction`] of [`ChangeRecord`]s, atomically and durably, and
//! indexed so that the state of any table at any past cut can be read back
//! without replaying the log:
//!
//! - the **log** in commit-LSN order ([`Store::for_each_log_entry`]);
//! - an MVCC **version index** ordered by (table, key, LSN descending), so
//!   the version of one key at a cut is one seek ([`Store::version_at`]) and
//!   a whole table at a cut is one pass ([`Store::scan_as_of`]);
//! - a **commit-time index** that resolves a timestamp to the last commit at
//!   or before it, with commit times made monotonic in LSN order;
//! - **schema history** per table ([`SchemaHistory`]), so old rows are read
//!   with the columns the table had at the cut;
//! - a **watermark**: the last durable transaction, which is what the
//!   capture may acknowledge to Postgres.
//!
//! Central types: [`Lsn`], [`CommitTime`], [`Xid`], [`TableId`],
//! [`TableSchema`]/[`SchemaVersion`], [`Datum`]/[`RowImage`],
//! [`ChangeRecord`], [`Transaction`], [`Store`].
//!
//! Key bytes are written only by [`keys`]; the version values the
//! `versions` and `latest` families hold are encoded by [`codec`]. With the
//! `reference` feature, `changelog::reference` adds a naive fold of
//! transactions that tests use as the oracle for the store.
//!
//! Not here: talking to Postgres (`cdc-source`), resolving user-facing time
//! expressions and assembling answers (`materializer`), or formatting.
//!
//! ```no_run
//! use changelog::{Store, StoreOptions};
//! let store = Store::open("asof-data", &StoreOptions { create_if_missing: true, ..Default::default() })?;
//! println!("log reaches {:?}", store.watermark());
//! # Ok::<(), changelog::StoreError>(())
//! ```

/// Implements `Debug` as the type's `Display`: for ids, names and positions
/// a raw struct dump is less readable than the form Postgres prints.
macro_rules! debug_as_display {
    ($($t:ty),+) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self, f)
            }
        }
    )+};
}

pub mod codec;
#[cfg(feature = "store")]
mod error;
mod ids;
pub mod keys;
mod lsn;
#[cfg(feature = "store")]
pub mod mvcc;
mod record;
#[cfg(feature = "reference")]
pub mod reference;
pub mod schema;
#[cfg(feature = "store")]
mod store;
mod time;
mod value;

#[cfg(feature = "store")]
pub use error::{Result, StoreError};
pub use ids::{TableId, TableName, Xid};
pub use lsn::{Lsn, ParseLsnError};
#[cfg(feature = "store")]
pub use mvcc::{DiffRow, ScanRow, ScanStats, SideVersion, MIN_KEYS_PER_RANGE, SEEKS_BEFORE_RETRY, SEEK_AFTER_NEXTS};
pub use record::{ChangeRecord, CommitInfo, Transaction};
pub use schema::{
    Column, Coverage, Omission, OmittedColumn, Projection, ReplicaIdentity, SchemaChange, SchemaHistory, SchemaVersion,
    SchemaVersionNo, TableSchema,
};
#[cfg(feature = "store")]
pub use store::{
    Access, AppendOutcome, BuiltRows, BulkRows, Catalog, CommitEntry, CompactStats, Durability, FollowPosition,
    HistoryWalk, ImageInfo, LogEntry, ResetKind, RowBlock, RunInfo, Settled, SourceInfo, SpillTxn, Store, StoreOptions,
    StoredVersion, TableEntry, TableRead, VersionState, Watermark, WrittenImage, FORMAT_VERSION, OLDEST_FORMAT,
};
pub use time::CommitTime;
pub use value::{Datum, DatumRef, RowImage};
