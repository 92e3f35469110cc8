//! How a [`SchemaChange`] is laid out in the log and the schema history.
//!
//! Stored schema changes are never rewritten, so the layout only grows: a
//! change that captures the whole table keeps the layout it had before
//! [`Coverage`] existed (stores written earlier read as they are, and
//! stay readable by earlier builds), and a partial capture takes a new
//! variant at the end.

use serde::{Deserialize, Serialize};

use super::{Coverage, SchemaChange, TableSchema};
use crate::value::Datum;

/// The stored form. Variant order is the format: append only.
#[derive(Serialize, Deserialize)]
pub(super) enum SchemaChangeRepr {
    Define {
        schema: TableSchema,
        backfill: Vec<(String, Datum)>,
    },
    Drop,
    Uncaptured {
        schema: TableSchema,
        reason: String,
    },
    DefinePartial {
        schema: TableSchema,
        backfill: Vec<(String, Datum)>,
        coverage: Coverage,
    },
}

impl From<SchemaChangeRepr> for SchemaChange {
    fn from(r: SchemaChangeRepr) -> Self {
        match r {
            SchemaChangeRepr::Define { schema, backfill } => SchemaChange::Define {
                schema,
                backfill,
                coverage: Coverage::default(),
            },
            SchemaChangeRepr::Drop => SchemaChange::Drop,
            SchemaChangeRepr::Uncaptured { schema, reason } => SchemaChange::Uncaptured { schema, reason },
            SchemaChangeRepr::DefinePartial {
                schema,
                backfill,
                coverage,
            } => SchemaChange::Define {
                schema,
                backfill,
                coverage,
            },
        }
    }
}

impl From<SchemaChange> for SchemaChangeRepr {
    fn from(c: SchemaChange) -> Self {
        match c {
            SchemaChange::Define {
                schema,
                backfill,
                coverage,
            } if coverage.is_whole() => SchemaChangeRepr::Define { schema, backfill },
            SchemaChange::Define {
                schema,
                backfill,
                coverage,
            } => SchemaChangeRepr::DefinePartial {
                schema,
                backfill,
                coverage,
            },
            SchemaChange::Drop => SchemaChangeRepr::Drop,
            SchemaChange::Uncaptured { schema, reason } => SchemaChangeRepr::Uncaptured { schema, reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Column, Omission, OmittedColumn, ReplicaIdentity};
    use super::*;
    use crate::ids::TableName;

    /// The layout as it was before coverage existed.
    #[derive(Serialize, Deserialize)]
    enum Earlier {
        Define {
            schema: TableSchema,
            backfill: Vec<(String, Datum)>,
        },
        Drop,
        Uncaptured {
            schema: TableSchema,
            reason: String,
        },
    }

    fn schema() -> TableSchema {
        TableSchema {
            name: TableName::new("public", "t"),
            relation_oid: 7,
            columns: vec![Column {
                name: "id".into(),
                type_oid: 23,
                type_name: "int4".into(),
                type_modifier: -1,
                is_key: true,
            }],
            replica_identity: ReplicaIdentity::Default,
        }
    }

    fn encode<T: Serialize>(v: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap_or_default()
    }

    fn decode(b: &[u8]) -> SchemaChange {
        let (v, used) = bincode::serde::decode_from_slice(b, bincode::config::standard()).expect("decodes");
        assert_eq!(used, b.len());
        v
    }

    #[test]
    fn whole_tables_keep_the_earlier_layout() {
        let backfill = vec![("b".to_owned(), Datum::text("7"))];
        let earlier = encode(&Earlier::Define {
            schema: schema(),
            backfill: backfill.clone(),
        });
        let now = SchemaChange::Define {
            schema: schema(),
            backfill,
            coverage: Coverage::default(),
        };
        assert_eq!(encode(&now), earlier);
        assert_eq!(decode(&earlier), now);
        let dropped = encode(&Earlier::Drop);
        assert_eq!(decode(&dropped), SchemaChange::Drop);
        let uncaptured = encode(&Earlier::Uncaptured {
            schema: schema(),
            reason: "no key".into(),
        });
        assert!(matches!(decode(&uncaptured), SchemaChange::Uncaptured { .. }));
    }

    #[test]
    fn partial_tables_round_trip() {
        let c = SchemaChange::Define {
            schema: schema(),
            backfill: Vec::new(),
            coverage: Coverage {
                omitted: vec![OmittedColumn {
                    name: "total".into(),
                    why: Omission::Generated,
                }],
                row_filter: Some("(id > 0)".into()),
                partition_truncates_unseen: true,
                unpublished_operations: vec!["delete".into()],
            },
        };
        assert_eq!(decode(&encode(&c)), c);
    }
}
