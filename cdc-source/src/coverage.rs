//! What of a source table the capture leaves out, in the log's terms
//! ([`Coverage`]), and what the capture says about it when it starts.

use changelog::{Coverage, Omission, OmittedColumn, TableName};

/// The coverage of a table as its own shape makes it: its stored generated
/// columns are left out, since pgoutput (before PostgreSQL 18) does not
/// send them, so the copy leaves them out too and every stored row has the
/// same columns; a partitioned table (only ever captured through its root)
/// does not see a TRUNCATE of one partition.
pub fn of_shape(generated: Vec<String>, partitioned: bool) -> Coverage {
    Coverage {
        omitted: generated
            .into_iter()
            .map(|name| OmittedColumn {
                name,
                why: Omission::Generated,
            })
            .collect(),
        row_filter: None,
        partition_truncates_unseen: partitioned,
    }
}

/// The notice a capture gives about a table it does not capture whole.
pub fn notice(table: &TableName, coverage: &Coverage) -> Option<String> {
    (!coverage.is_whole()).then(|| format!("table {table}: {coverage}"))
}
