//! `materializer`: folds the `asof` change log into point-in-time answers.
//!
//! Given a [`changelog::Store`], it resolves a user's [`When`] (timestamp,
//! LSN, `now`, relative time) to a transaction-consistent [`Cut`], and
//! answers at that cut:
//!
//! - [`snapshot`]: a whole table, streamed in key order, with the columns
//!   the table had at the cut (each copy of a row a table without a
//!   primary key holds several times, see
//!   [`changelog::TableSchema::counts_copies`]); [`snapshot_range`] one
//!   range of its keys, and [`snapshot_rendered`] the whole table read on
//!   several threads and rendered to bytes, still in key order;
//! - [`get`]: one row by key, with its number of copies;
//! - [`history`]: every version of one row;
//! - [`diff`]: rows inserted, deleted and changed between two cuts;
//! - [`tables_at`]: the tables that existed;
//! - [`changes`]: the raw log as row-level change events.
//!
//! Results stream through callbacks; nothing builds a whole table in memory.
//! A callback returns [`std::ops::ControlFlow`] to go on or stop, and its
//! error type is the caller's own (anything a [`QueryError`] converts into),
//! so an output error reaches the caller unchanged.
//! Edges are explicit: a moment before history or before the retention
//! horizon is a [`QueryError`] naming the earliest answerable cut, and a
//! moment after the last captured commit resolves to the latest state with
//! [`Resolved::beyond_log`] set.
//!
//! Not here: capturing changes (`cdc-source`), storage layout (`changelog`),
//! or output formats (the `asof` binary).
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use changelog::{CommitTime, Store, TableName};
//! use materializer::{resolve, snapshot, table_at, QueryError, When};
//! let store = Store::open_read_only("asof-data")?;
//! let at = resolve(&store, "2026-11-20T09:00:00Z".parse::<When>()?, CommitTime::now())?;
//! let orders = table_at(&store, &TableName::parse("orders"), at.cut)?;
//! snapshot(&store, &orders, at.cut, |row| {
//!     println!("{row:?}");
//!     Ok::<_, QueryError>(ControlFlow::Continue(()))
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "store")]
mod changes;
#[cfg(feature = "store")]
mod cut;
#[cfg(feature = "store")]
mod error;
#[cfg(feature = "store")]
mod history;
#[cfg(feature = "store")]
mod parallel;
#[cfg(all(feature = "store", feature = "reference"))]
pub mod reference;
#[cfg(feature = "store")]
mod snapshot;
#[cfg(feature = "store")]
mod table;
mod when;

#[cfg(feature = "store")]
pub use changes::{changes, ChangeEvent, ChangeOp};
#[cfg(feature = "store")]
pub use cut::{resolve, Cut, Resolved};
#[cfg(feature = "store")]
pub use error::{QueryError, Result};
#[cfg(feature = "store")]
pub use history::{diff, history, DiffEntry, DiffKind, HistoryEntry, HistoryOp};
#[cfg(feature = "store")]
pub use parallel::snapshot_rendered;
#[cfg(feature = "store")]
pub use snapshot::{get, plan_snapshot, snapshot, snapshot_part, snapshot_range, Found, SnapshotPlan};
#[cfg(feature = "store")]
pub use table::{last_moment_of, table_at, tables_at, uncaptured_at, user_key, TableAt, UncapturedAt};
pub use when::{ParseWhenError, When};
