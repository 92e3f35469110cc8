//! `asof-sql`: SQL at a point in time, and Parquet exports, over an `asof`
//! store, on DataFusion.
//!
//! - [`Engine`]: a DataFusion session at one cut, in which every table
//!   captured then is registered (schema-qualified; `public` tables also by
//!   bare name). Rows stream from [`materializer::snapshot`] in record
//!   batches, converting only the columns a query reads; all tables are
//!   read at the same cut, so a join is transaction-consistent.
//!   `asof_at('schema.table', 'WHEN')` reads one table at another moment
//!   inside the same query.
//! - [`types`]: the one rule mapping a Postgres column type to an Arrow
//!   type, and the parsers from Postgres's text to Arrow values.
//! - [`export_at`] / [`export_history`]: one Parquet file per table at one
//!   cut, or each table's whole history as SCD type-2 rows, with a
//!   `manifest.json`.
//! - [`write_rows`]: a query's rows as a table, CSV, JSON lines or Parquet.
//! - [`pg_catalog`]: the Postgres catalog of the tables at the cut, for
//!   clients that introspect (psql's `\d`, JDBC's metadata), and the
//!   planning that reads the Postgres spellings they use.
//!
//! Not here: capture, resolving history (`materializer`), the command
//! line (`asof sql`, `asof export` in the `asof` binary), or a Postgres
//! wire server (`asof-serve`). Filters on a table's key columns (`=`,
//! `IN`, ranges) read only the rows they select; other queries read each
//! table they name in full at its cut (only the columns they use).
//!
//! ```no_run
//! use std::sync::Arc;
//! use changelog::{CommitTime, Store};
//! use asof_sql::{write_rows, Engine, OutputFormat, Typing};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(Store::open_read_only("asof-data")?);
//! let at = materializer::resolve(&store, "-1h".parse()?, CommitTime::now())?;
//! let engine = Engine::new(store, at.cut, Typing::Typed)?;
//! let rows = engine.query("SELECT status, count(*) FROM orders GROUP BY status").await?;
//! write_rows(rows, OutputFormat::Csv, std::io::stdout()).await?;
//! # Ok(()) }
//! ```

mod atomic;
mod engine;
mod error;
mod export;
mod output;
pub mod pg_catalog;
mod pushdown;
mod table;
pub mod types;

pub use atomic::{write_atomically, AtomicFile};
pub use engine::{Engine, ASOF_AT};
pub use error::{Result, SqlError, ValueError};
pub use export::{
    export_at, export_history, file_name, ColumnManifest, CutInfo, ExportOptions, Manifest, TableManifest, MANIFEST,
};
pub use output::{write_rows, OutputFormat};
pub use table::{arrow_schema, AsOfTable};
pub use types::Typing;
