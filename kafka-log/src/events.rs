//! The values of the records that are not Debezium envelopes: schema
//! changes, the start of a full read, and the end marker.

use changelog::{Coverage, SchemaChange, TableName, TableSchema};
use serde::{Deserialize, Serialize};

use crate::datum::DatumWire;

/// A schema change. `table` is the name the table had before the change
/// (for a new table, its new name); a rename is a `define` whose shape
/// carries the new name.
#[derive(Serialize, Deserialize)]
pub(crate) struct SchemaEvent {
    pub table: TableName,
    #[serde(flatten)]
    pub change: ChangeWire,
}

/// What the schema change does.
#[derive(Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub(crate) enum ChangeWire {
    Define {
        shape: TableSchema,
        backfill: Vec<Backfill>,
        coverage: Coverage,
    },
    Drop,
    Uncaptured {
        shape: TableSchema,
        reason: String,
    },
}

/// The value older rows take in a column the change adds.
#[derive(Serialize, Deserialize)]
pub(crate) struct Backfill {
    pub column: String,
    pub value: DatumWire,
}

/// The start of a full read of a table.
#[derive(Serialize, Deserialize)]
pub(crate) struct ReadStartEvent {
    pub table: TableName,
}

/// The end marker: Debezium's transaction `END` event, with asof's commit
/// and the number of records before it.
#[derive(Serialize, Deserialize)]
pub(crate) struct EndEvent {
    pub status: String,
    pub id: String,
    pub ts_ms: i64,
    /// Data events (row changes and truncates), as Debezium counts.
    pub event_count: u64,
    pub data_collections: Vec<DataCollection>,
    /// `X/Y`.
    pub commit_lsn: String,
    /// `X/Y`.
    pub end_lsn: String,
    pub commit_time_us: i64,
    pub xid: u32,
    /// Every record of the transaction before this one.
    pub record_count: u64,
    /// Commit LSN of the transaction published before this one, `X/Y`;
    /// `null` for the first a publisher wrote without knowing one.
    pub previous_commit_lsn: Option<String>,
}

/// Debezium's per-table event count.
#[derive(Serialize, Deserialize)]
pub(crate) struct DataCollection {
    pub data_collection: String,
    pub event_count: u64,
}

/// The `status` of an end marker.
pub(crate) const END_STATUS: &str = "END";

impl ChangeWire {
    pub(crate) fn of(change: &SchemaChange) -> Self {
        match change {
            SchemaChange::Define {
                schema,
                backfill,
                coverage,
            } => ChangeWire::Define {
                shape: schema.clone(),
                backfill: backfill
                    .iter()
                    .map(|(column, d)| Backfill {
                        column: column.clone(),
                        value: DatumWire::of(d),
                    })
                    .collect(),
                coverage: coverage.clone(),
            },
            SchemaChange::Drop => ChangeWire::Drop,
            SchemaChange::Uncaptured { schema, reason } => ChangeWire::Uncaptured {
                shape: schema.clone(),
                reason: reason.clone(),
            },
        }
    }

    /// The change, or `None` when a backfilled value does not decode.
    pub(crate) fn into_change(self) -> Option<SchemaChange> {
        Some(match self {
            ChangeWire::Define {
                shape,
                backfill,
                coverage,
            } => SchemaChange::Define {
                schema: shape,
                backfill: backfill
                    .into_iter()
                    .map(|b| Some((b.column, b.value.into_datum()?)))
                    .collect::<Option<_>>()?,
                coverage,
            },
            ChangeWire::Drop => SchemaChange::Drop,
            ChangeWire::Uncaptured { shape, reason } => SchemaChange::Uncaptured { schema: shape, reason },
        })
    }
}
