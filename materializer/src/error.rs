//! Errors of as-of queries.

use changelog::{StoreError, TableName};

use crate::cut::Cut;

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The store holds no transactions yet.
    #[error("the store holds no history yet (run `asof tail` first)")]
    EmptyStore,
    /// The moment lies before the first captured transaction.
    #[error("{asked} is before the start of history; the earliest answerable moment is {earliest}")]
    BeforeHistory {
        /// What was asked, as text.
        asked: String,
        /// The first answerable cut.
        earliest: Cut,
    },
    /// The moment lies before the retention horizon (history was compacted).
    #[error("{asked} is before the retention horizon; the earliest answerable moment is {earliest}")]
    BeforeHorizon {
        /// What was asked, as text.
        asked: String,
        /// The horizon cut.
        earliest: Cut,
    },
    /// The table existed at the cut but was not captured then.
    #[error("table {name} is not captured as of {cut}: {reason}")]
    NotCaptured {
        /// The table.
        name: TableName,
        /// The cut.
        cut: Cut,
        /// Why, as recorded by the capture.
        reason: String,
    },
    /// No table of that name existed at the cut.
    #[error("no table {name} as of {cut}{}", suggestion(.suggestions))]
    UnknownTable {
        /// The name asked for.
        name: TableName,
        /// The cut.
        cut: Cut,
        /// Close names that did exist.
        suggestions: Vec<String>,
    },
    /// The number of key values does not match the table's key.
    #[error("table {table} has {expected} key column(s) ({columns}), but {got} value(s) were given")]
    KeyArity {
        /// The table.
        table: TableName,
        /// Key columns.
        expected: usize,
        /// Their names.
        columns: String,
        /// Values given.
        got: usize,
    },
    /// A key value does not fit its column's type.
    #[error("key column {column} is {type_name}, and {value:?} is not a valid value for it")]
    BadKey {
        /// The key column.
        column: String,
        /// The value given.
        value: String,
        /// Its type.
        type_name: String,
    },
    /// `from` is after `to` in a diff or range.
    #[error("the start {from} is after the end {to}")]
    ReversedRange {
        /// The start.
        from: Cut,
        /// The end.
        to: Cut,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn suggestion(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", s.join(", "))
    }
}

/// A caller's error on its way through a `changelog` scan: the store's own
/// errors join it as [`QueryError::Store`], so a callback's error (an output
/// error, say) reaches the caller as its own type, not as a store error.
pub(crate) struct Carried<E>(pub(crate) E);

impl<E: From<QueryError>> From<StoreError> for Carried<E> {
    fn from(e: StoreError) -> Self {
        Carried(E::from(QueryError::Store(e)))
    }
}

impl<E: From<QueryError>> From<QueryError> for Carried<E> {
    fn from(e: QueryError) -> Self {
        Carried(E::from(e))
    }
}

/// Result alias for queries.
pub type Result<T, E = QueryError> = std::result::Result<T, E>;
