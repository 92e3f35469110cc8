//! Table schemas, their history, and projecting old rows onto a later schema.

use serde::{Deserialize, Serialize};

mod coverage;
mod wire;

pub use coverage::{Coverage, Omission, OmittedColumn};

use crate::ids::{TableId, TableName};
use crate::lsn::Lsn;
use crate::value::{Datum, DatumRef};

/// One column of a table schema.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// PostgreSQL type OID (e.g. 23 for `int4`).
    pub type_oid: u32,
    /// Type name as Postgres prints it (e.g. `int4`, `numeric`, `public.mood`).
    pub type_name: String,
    /// Type modifier (`atttypmod`), -1 when none.
    pub type_modifier: i32,
    /// Part of the table's row identity (primary key or replica identity).
    pub is_key: bool,
}

/// How Postgres identifies a row in UPDATE/DELETE messages for the table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum ReplicaIdentity {
    /// The primary key.
    Default,
    /// No identity: UPDATE/DELETE cannot be captured.
    Nothing,
    /// Every column.
    Full,
    /// A unique index chosen with `REPLICA IDENTITY USING INDEX`.
    Index,
}

/// The shape of a table at one point of its history.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct TableSchema {
    /// Schema-qualified name.
    pub name: TableName,
    /// The Postgres relation OID at the time (informational).
    pub relation_oid: u32,
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// How rows are identified.
    pub replica_identity: ReplicaIdentity,
}

impl TableSchema {
    /// Indices of the key columns, in column order.
    pub fn key_indices(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_key)
            .map(|(i, _)| i)
            .collect()
    }

    /// True when identical rows can exist and are kept apart only by
    /// counting them: under `REPLICA IDENTITY FULL` with every column a key
    /// (no primary key or identity index), the whole row is the key, so the
    /// store keeps one version per distinct row with its number of copies.
    /// The one rule for which tables are multisets. A FULL table whose
    /// primary key is every column is counted too, harmlessly: its copies
    /// never exceed one. A FULL table without columns is one: every row is
    /// the same empty row.
    pub fn counts_copies(&self) -> bool {
        self.replica_identity == ReplicaIdentity::Full && self.columns.iter().all(|c| c.is_key)
    }

    /// Position of a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Column names in order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }
}

/// What a schema change does to a table.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(from = "wire::SchemaChangeRepr", into = "wire::SchemaChangeRepr")]
pub enum SchemaChange {
    /// The table has this shape from now on (created or altered).
    Define {
        /// The new shape.
        schema: TableSchema,
        /// Values that rows written before this change take in columns this
        /// change adds (`ADD COLUMN ... DEFAULT <constant>`); added columns not
        /// listed read as NULL in older rows, as in Postgres.
        backfill: Vec<(String, Datum)>,
        /// What of the source table is not captured under this shape.
        coverage: Coverage,
    },
    /// The table was dropped; it has no rows and no shape from now on.
    Drop,
    /// The table exists in the source but is not captured from now on
    /// (no primary key or usable replica identity, so its rows cannot be
    /// told apart). Like a drop it has no rows and no shape; unlike a drop
    /// readers can say why. A later `Define` captures it again, with its
    /// rows read afresh.
    Uncaptured {
        /// The table's shape in the source (no column is a key).
        schema: TableSchema,
        /// Why it is not captured, and what would fix it.
        reason: String,
    },
}

/// The per-table sequence number of a schema version (0, 1, 2, ...).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
pub struct SchemaVersionNo(pub u32);

/// One stored schema version: a [`SchemaChange`] that took effect at a
/// commit LSN.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SchemaVersion {
    /// The table.
    pub table: TableId,
    /// Sequence number within the table's history.
    pub version: SchemaVersionNo,
    /// Commit LSN of the transaction that made the change.
    pub valid_from: Lsn,
    /// The change.
    pub change: SchemaChange,
}

impl SchemaVersion {
    /// The table shape, or `None` for a drop.
    pub fn schema(&self) -> Option<&TableSchema> {
        match &self.change {
            SchemaChange::Define { schema, .. } => Some(schema),
            SchemaChange::Drop | SchemaChange::Uncaptured { .. } => None,
        }
    }

    /// What the shape leaves out of the source table, or `None` when the
    /// table has no shape here.
    pub fn coverage(&self) -> Option<&Coverage> {
        match &self.change {
            SchemaChange::Define { coverage, .. } => Some(coverage),
            SchemaChange::Drop | SchemaChange::Uncaptured { .. } => None,
        }
    }
}

/// All schema versions of one table, oldest first.
#[derive(Clone, Debug, Default)]
pub struct SchemaHistory {
    versions: Vec<SchemaVersion>,
}

impl SchemaHistory {
    /// From versions in any order.
    pub fn new(mut versions: Vec<SchemaVersion>) -> Self {
        versions.sort_by_key(|v| v.version);
        SchemaHistory { versions }
    }

    /// Every version, oldest first.
    pub fn versions(&self) -> &[SchemaVersion] {
        &self.versions
    }

    /// The newest version.
    pub fn latest(&self) -> Option<&SchemaVersion> {
        self.versions.last()
    }

    /// The version in effect at `cut` (the newest with `valid_from <= cut`).
    pub fn at(&self, cut: Lsn) -> Option<&SchemaVersion> {
        let idx = self.versions.partition_point(|v| v.valid_from <= cut);
        idx.checked_sub(1).and_then(|i| self.versions.get(i))
    }

    /// Why the table is not captured, when its newest version says so.
    pub fn uncaptured_reason(&self) -> Option<&str> {
        match &self.latest()?.change {
            SchemaChange::Uncaptured { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// A version by number.
    pub fn get(&self, no: SchemaVersionNo) -> Option<&SchemaVersion> {
        let i = usize::try_from(no.0).ok()?;
        self.versions.get(i).filter(|v| v.version == no)
    }

    /// The plan that maps rows written under version `from` onto the columns
    /// of version `to` (which must be a `Define`).
    ///
    /// A column of `to` takes the row's value when it existed without a break
    /// from `from` to `to`; otherwise it was added later and takes the value
    /// the adding change gave older rows (its backfill, else NULL). Columns
    /// dropped in between simply disappear, so ADD/DROP COLUMN mid-history
    /// reads back exactly as Postgres showed it.
    pub fn projection(&self, from: SchemaVersionNo, to: SchemaVersionNo) -> Projection {
        if from == to {
            return Projection::Identity;
        }
        let Some(target) = self.get(to).and_then(SchemaVersion::schema) else {
            return Projection::Map(Vec::new());
        };
        let lo = usize::try_from(from.0).unwrap_or(usize::MAX);
        let hi = usize::try_from(to.0).unwrap_or(0);
        let mut out = Vec::with_capacity(target.columns.len());
        for col in &target.columns {
            // Walk back from `to` while the column exists, to find where its
            // unbroken run began.
            let mut birth = hi;
            while birth > 0 {
                let prev = self.versions.get(birth - 1).and_then(SchemaVersion::schema);
                match prev {
                    Some(s) if s.column_index(&col.name).is_some() => birth -= 1,
                    _ => break,
                }
            }
            let source = if birth <= lo {
                self.versions
                    .get(lo)
                    .and_then(SchemaVersion::schema)
                    .and_then(|s| s.column_index(&col.name))
                    .map(Source::Column)
            } else {
                None
            };
            let source = source.unwrap_or_else(|| {
                let fill = self.versions.get(birth).and_then(|v| match &v.change {
                    SchemaChange::Define { backfill, .. } => {
                        backfill.iter().find(|(n, _)| *n == col.name).map(|(_, d)| d.clone())
                    }
                    SchemaChange::Drop | SchemaChange::Uncaptured { .. } => None,
                });
                Source::Constant(fill.unwrap_or(Datum::Null))
            });
            out.push(source);
        }
        Projection::Map(out)
    }
}

/// Where one output column of a [`Projection`] comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The stored row's column at this index.
    Column(usize),
    /// A constant (a backfilled default or NULL).
    Constant(Datum),
}

/// Maps a stored row onto a target schema; computed once per (row schema,
/// target schema) pair, then applied to every row of a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Projection {
    /// Same schema: the row is used as it is.
    Identity,
    /// One source per target column.
    Map(Vec<Source>),
}

impl Projection {
    /// Applies the projection, writing the target row into `out`.
    pub fn apply<'a>(&'a self, row: &[DatumRef<'a>], out: &mut Vec<DatumRef<'a>>) {
        out.clear();
        match self {
            Projection::Identity => out.extend_from_slice(row),
            Projection::Map(sources) => out.extend(sources.iter().map(|s| match s {
                Source::Column(i) => row.get(*i).copied().unwrap_or(DatumRef::Missing),
                Source::Constant(d) => d.as_ref(),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> Column {
        Column {
            name: name.into(),
            type_oid: 25,
            type_name: "text".into(),
            type_modifier: -1,
            is_key: name == "id",
        }
    }

    fn define(no: u32, lsn: u64, cols: &[&str], backfill: &[(&str, &str)]) -> SchemaVersion {
        SchemaVersion {
            table: TableId(1),
            version: SchemaVersionNo(no),
            valid_from: Lsn(lsn),
            change: SchemaChange::Define {
                schema: TableSchema {
                    name: TableName::new("public", "t"),
                    relation_oid: 1,
                    columns: cols.iter().map(|c| col(c)).collect(),
                    replica_identity: ReplicaIdentity::Default,
                },
                backfill: backfill.iter().map(|(n, v)| (n.to_string(), Datum::text(*v))).collect(),
                coverage: Coverage::default(),
            },
        }
    }

    #[test]
    fn add_drop_readd_column() {
        let h = SchemaHistory::new(vec![
            define(0, 10, &["id", "a"], &[]),
            define(1, 20, &["id", "a", "b"], &[("b", "7")]),
            define(2, 30, &["id", "b"], &[]),
            define(3, 40, &["id", "b", "a"], &[]),
        ]);
        let row = [DatumRef::Text(b"1"), DatumRef::Text(b"x")];
        let mut out = Vec::new();
        let p = h.projection(SchemaVersionNo(0), SchemaVersionNo(1));
        p.apply(&row, &mut out);
        assert_eq!(
            out,
            vec![DatumRef::Text(b"1"), DatumRef::Text(b"x"), DatumRef::Text(b"7")]
        );
        // `a` was dropped and re-added: the old value must not come back.
        let p = h.projection(SchemaVersionNo(0), SchemaVersionNo(3));
        p.apply(&row, &mut out);
        assert_eq!(out, vec![DatumRef::Text(b"1"), DatumRef::Text(b"7"), DatumRef::Null]);
        assert_eq!(h.at(Lsn(25)).map(|v| v.version), Some(SchemaVersionNo(1)));
        assert!(h.at(Lsn(5)).is_none());
    }
}
