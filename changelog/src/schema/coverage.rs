//! What of a source table is not captured, so that readers can say so
//! where the answer is read instead of answering as if the table were whole.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The parts of a source table a schema version leaves out. The default
/// (nothing left out) is the common case.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Coverage {
    /// Source columns that are not captured, in table order.
    pub omitted: Vec<OmittedColumn>,
    /// The publication's row filter: only rows matching this `WHERE`
    /// expression are captured.
    pub row_filter: Option<String>,
    /// A partitioned table answered through its root: Postgres does not
    /// send a `TRUNCATE` of one of its partitions, so rows that removes
    /// stay in the root's answers.
    pub partition_truncates_unseen: bool,
    /// Kinds of change the publication does not publish (`insert`,
    /// `update`, `delete`, `truncate`): such changes are missing from the
    /// answers.
    pub unpublished_operations: Vec<String>,
}

/// A source column that is not captured.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct OmittedColumn {
    /// The column's name in the source.
    pub name: String,
    /// Why it is not captured.
    pub why: Omission,
}

/// Why a source column is not captured.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Omission {
    /// A stored generated column: logical replication does not send it
    /// (before PostgreSQL 18), so the copy leaves it out too.
    Generated,
    /// Left out of the publication's column list.
    NotPublished,
}

impl Coverage {
    /// True when the whole table is captured.
    pub fn is_whole(&self) -> bool {
        self.omitted.is_empty()
            && self.row_filter.is_none()
            && !self.partition_truncates_unseen
            && self.unpublished_operations.is_empty()
    }
}

impl fmt::Display for Omission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Omission::Generated => "generated",
            Omission::NotPublished => "not in the publication's column list",
        })
    }
}

/// One line for the user, e.g. `column total (generated) not captured;
/// only rows where (amount > 0)`. Empty for a whole table.
impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if !self.omitted.is_empty() {
            let noun = if self.omitted.len() == 1 { "column" } else { "columns" };
            write!(f, "{noun} ")?;
            for (i, c) in self.omitted.iter().enumerate() {
                let comma = if i == 0 { "" } else { ", " };
                write!(f, "{comma}{} ({})", c.name, c.why)?;
            }
            f.write_str(" not captured")?;
            sep = "; ";
        }
        if let Some(filter) = &self.row_filter {
            write!(f, "{sep}only rows where {filter}")?;
            sep = "; ";
        }
        if self.partition_truncates_unseen {
            write!(
                f,
                "{sep}a TRUNCATE of a single partition is not sent by Postgres, so rows it removes stay until the \
                 root is truncated"
            )?;
            sep = "; ";
        }
        if !self.unpublished_operations.is_empty() {
            write!(
                f,
                "{sep}the publication does not publish {}, so such changes are missing",
                self.unpublished_operations.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_what_is_left_out() {
        let mut c = Coverage::default();
        assert!(c.is_whole());
        assert_eq!(c.to_string(), "");
        c.omitted.push(OmittedColumn {
            name: "total".into(),
            why: Omission::Generated,
        });
        assert_eq!(c.to_string(), "column total (generated) not captured");
        c.row_filter = Some("(amount > 0)".into());
        assert_eq!(
            c.to_string(),
            "column total (generated) not captured; only rows where (amount > 0)"
        );
        let root = Coverage {
            partition_truncates_unseen: true,
            ..Coverage::default()
        };
        assert!(!root.is_whole());
        assert!(root.to_string().starts_with("a TRUNCATE of a single partition"));
        let no_deletes = Coverage {
            unpublished_operations: vec!["delete".into(), "truncate".into()],
            ..Coverage::default()
        };
        assert_eq!(
            no_deletes.to_string(),
            "the publication does not publish delete, truncate, so such changes are missing"
        );
    }
}
