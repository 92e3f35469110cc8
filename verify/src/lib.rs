//! `verify`: checks that an `asof` store holds exactly what its source
//! database held, at one exact LSN.
//!
//! [`verify()`] fixes a position at the source with a temporary
//! replication slot's exported snapshot ([`source`]), waits until the
//! store is complete through that position ([`wait`]), and compares every
//! table's rows with the store's state just before it: a fingerprint per
//! table ([`fingerprint`], computed alike by the source in SQL, [`sql`]),
//! and where fingerprints differ, the differing keys, found by comparing
//! fingerprints of ever smaller key ranges ([`bisect`]) rather than by
//! shipping whole tables. It only reads: the store is opened read-only
//! beside a running `asof tail`, and the temporary slot vanishes with its
//! connection.
//!
//! Not here: repairing a store (re-capture it), or comparing values in
//! any form but the text the source prints them in.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let mut store = changelog::Store::open_read_only("asof-data")?;
//! let options = verify::VerifyOptions {
//!     conninfo: cdc_source::conninfo::parse_conninfo("host=db dbname=shop")?,
//!     tables: Vec::new(),
//!     timeout: Duration::from_secs(60),
//! };
//! let report = verify::verify(&mut store, &options, |_| {}).await?;
//! assert!(report.is_equal());
//! # Ok(()) }
//! ```

pub mod bisect;
mod error;
pub mod fingerprint;
mod report;
pub mod source;
pub mod sql;
mod table;
pub mod wait;

use std::time::Duration;

use cdc_source::conninfo::ConnInfo;
use changelog::{CommitTime, Store, TableName};
use materializer::When;

pub use bisect::MAX_NAMED_KEYS;
pub use error::VerifyError;
pub use report::{Difference, DifferenceKind, Outcome, Report, TableReport};

/// What to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The source database.
    pub conninfo: ConnInfo,
    /// Only these tables; empty means every table the store has.
    pub tables: Vec<TableName>,
    /// How long to wait for the store to reach the source's position.
    pub timeout: Duration,
}

/// Compares the store with the source at one position; `on_table` sees
/// each table's verdict as soon as it is known. A difference is a verdict
/// in the [`Report`], not an error.
pub async fn verify(
    store: &mut Store,
    options: &VerifyOptions,
    mut on_table: impl FnMut(&TableReport),
) -> Result<Report, VerifyError> {
    let source = source::SourceAt::open(&options.conninfo).await?;
    wait::until_store_reaches(store, source.lsn, options.timeout).await?;
    // The capture stores its base copy just below the consistent point,
    // and every streamed commit is at or above it: the state at `lsn.prev()`
    // is exactly what the snapshot sees.
    let lsn = source.lsn.prev();
    let cut = materializer::resolve(store, When::Lsn(lsn), CommitTime::now())
        .map_err(|source| VerifyError::Query { lsn, source })?
        .cut;
    let names: Vec<TableName> = if options.tables.is_empty() {
        materializer::tables_at(store, cut)
            .into_iter()
            .map(|t| t.schema.name.clone())
            .collect()
    } else {
        options.tables.clone()
    };
    let mut tables = Vec::with_capacity(names.len());
    for name in &names {
        let report = table::compare(store, &source.client, name, cut).await?;
        on_table(&report);
        tables.push(report);
    }
    let lsn = source.lsn;
    source.close().await?;
    Ok(Report { lsn, cut, tables })
}
