//! Change records and transactions: what the log stores.

use serde::{Deserialize, Serialize};

use crate::ids::{TableId, Xid};
use crate::lsn::Lsn;
use crate::schema::SchemaChange;
use crate::time::CommitTime;
use crate::value::RowImage;

/// Where and when a transaction committed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CommitInfo {
    /// LSN of the commit record: the transaction's place in the one log order.
    pub commit_lsn: Lsn,
    /// LSN just past the commit record; what the source acknowledges.
    pub end_lsn: Lsn,
    /// Commit time as the server reported it.
    pub commit_time: CommitTime,
    /// Transaction id.
    pub xid: Xid,
}

/// One change inside a transaction.
///
/// Row images are in the column order of the table's current schema (the
/// latest [`ChangeRecord::Schema`] for the table at that point of the log).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChangeRecord {
    /// A new row.
    Insert {
        /// The table.
        table: TableId,
        /// The new row (may contain [`crate::Datum::UnchangedToast`] only in updates).
        new: RowImage,
    },
    /// A changed row.
    Update {
        /// The table.
        table: TableId,
        /// The old key (key columns set, others missing) when the key changed,
        /// or the whole old row under `REPLICA IDENTITY FULL`; `None` when the
        /// key did not change and the source sent no before-image.
        old: Option<RowImage>,
        /// The new row; unchanged TOAST values are resolved on append.
        new: RowImage,
    },
    /// A deleted row.
    Delete {
        /// The table.
        table: TableId,
        /// The old key (or the whole old row under `REPLICA IDENTITY FULL`).
        old: RowImage,
    },
    /// Every listed table was emptied.
    Truncate {
        /// The tables, in the order the source listed them.
        tables: Vec<TableId>,
    },
    /// The table's schema changed (or it was created or dropped).
    Schema {
        /// The table.
        table: TableId,
        /// What changed.
        change: SchemaChange,
    },
    /// The start of a full read of the table (the initial copy, or a re-read
    /// after a rewriting ALTER): the table's rows are exactly the
    /// [`ChangeRecord::Read`] rows that follow in this transaction.
    ReadStart {
        /// The table.
        table: TableId,
    },
    /// One row of a full read.
    Read {
        /// The table.
        table: TableId,
        /// The row as read.
        row: RowImage,
    },
}

impl ChangeRecord {
    /// The tables the record touches.
    pub fn tables(&self) -> &[TableId] {
        match self {
            ChangeRecord::Insert { table, .. }
            | ChangeRecord::Update { table, .. }
            | ChangeRecord::Delete { table, .. }
            | ChangeRecord::Schema { table, .. }
            | ChangeRecord::ReadStart { table }
            | ChangeRecord::Read { table, .. } => std::slice::from_ref(table),
            ChangeRecord::Truncate { tables } => tables,
        }
    }

    /// Whether the store logs the record exactly as given: true unless its
    /// new row image carries an unchanged-TOAST marker, which the store
    /// replaces by the value it resolves from the row's previous version.
    pub fn logged_as_given(&self) -> bool {
        match self {
            ChangeRecord::Insert { new, .. }
            | ChangeRecord::Update { new, .. }
            | ChangeRecord::Read { row: new, .. } => !new.has_unchanged_toast(),
            ChangeRecord::Delete { .. }
            | ChangeRecord::Truncate { .. }
            | ChangeRecord::Schema { .. }
            | ChangeRecord::ReadStart { .. } => true,
        }
    }

    /// True for records that change rows (not schema, not read markers).
    pub fn is_row_change(&self) -> bool {
        matches!(
            self,
            ChangeRecord::Insert { .. }
                | ChangeRecord::Update { .. }
                | ChangeRecord::Delete { .. }
                | ChangeRecord::Read { .. }
        )
    }
}

/// A committed transaction: its records and where it committed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Transaction {
    /// Commit position and time.
    pub commit: CommitInfo,
    /// Records in the order the source produced them.
    pub records: Vec<ChangeRecord>,
}

impl Transaction {
    /// Whether the store logs every record exactly as given (see
    /// [`ChangeRecord::logged_as_given`]).
    pub fn logged_as_given(&self) -> bool {
        self.records.iter().all(ChangeRecord::logged_as_given)
    }
}
