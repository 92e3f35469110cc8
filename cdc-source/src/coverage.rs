//! What the capture says about a table it does not capture whole
//! ([`Coverage`]).

use changelog::{Coverage, TableName};

/// The notice a capture gives about a table it does not capture whole.
pub fn notice(table: &TableName, coverage: &Coverage) -> Option<String> {
    (!coverage.is_whole()).then(|| format!("table {table}: {coverage}"))
}
