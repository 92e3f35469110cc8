//! What a verification found, table by table.

use changelog::{Lsn, TableName};
use materializer::Cut;

/// The verdict for the whole store.
#[derive(Clone, Debug)]
pub struct Report {
    /// The source's position (the temporary slot's consistent point).
    pub lsn: Lsn,
    /// The store's cut compared with it: the last commit before `lsn`.
    pub cut: Cut,
    /// One entry per table compared, in the order compared.
    pub tables: Vec<TableReport>,
}

impl Report {
    /// True when every table is equal.
    pub fn is_equal(&self) -> bool {
        self.tables.iter().all(|t| t.outcome == Outcome::Equal)
    }
}

/// The verdict for one table.
#[derive(Clone, Debug)]
pub struct TableReport {
    /// The table.
    pub table: TableName,
    /// Its rows in the store at the cut.
    pub store_rows: u64,
    /// Its rows at the source (`None` when it is missing there).
    pub source_rows: Option<u64>,
    /// Compared key by key; `false` for a table without a usable key,
    /// which is compared by fingerprint only.
    pub keyed: bool,
    /// The verdict.
    pub outcome: Outcome,
    /// The differing keys found, in key order, at most
    /// [`crate::MAX_NAMED_KEYS`].
    pub differences: Vec<Difference>,
    /// How many differing keys were found in all.
    pub differing: u64,
    /// Some differences could not be named: a range held more source rows
    /// than one listing fetches.
    pub incomplete: bool,
    /// Key ranges whose fingerprints were compared (1 when the table's
    /// fingerprint matched at once).
    pub ranges_compared: u64,
    /// Rows whose hashes were fetched from the source to name keys.
    pub rows_listed: u64,
    /// Store rows the source removed by changes its publication does not
    /// publish (deletes, truncates): kept, as the publication intends.
    pub kept: u64,
}

/// How a table compared.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Same rows, same values.
    Equal,
    /// Rows differ (see [`TableReport::differences`]).
    RowsDiffer,
    /// The store has the table but the source does not.
    MissingAtSource,
    /// The table was asked for but the store has no such table at the cut.
    MissingInStore,
    /// The table's columns differ (store's, then source's).
    ColumnsDiffer(Vec<String>, Vec<String>),
}

/// One key whose row differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The key's column values in their text form.
    pub key: Vec<String>,
    /// How it differs.
    pub kind: DifferenceKind,
}

/// How a key's row differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DifferenceKind {
    /// At the source, not in the store.
    MissingFromStore,
    /// In the store, not at the source.
    NotAtSource,
    /// In both, with different values.
    ValuesDiffer,
}

impl DifferenceKind {
    /// How the kind reads in a report line.
    pub fn describe(self) -> &'static str {
        match self {
            DifferenceKind::MissingFromStore => "missing from the store",
            DifferenceKind::NotAtSource => "in the store but not at the source",
            DifferenceKind::ValuesDiffer => "values differ",
        }
    }
}
