//! The in-memory catalog: tables, their schema histories and reset points.
//!
//! Small (one entry per table and per schema change or truncate), loaded at
//! open and kept in step with every append, so the hot paths never read
//! schema metadata from disk.

use std::collections::{BTreeMap, HashMap};

use crate::ids::{TableId, TableName};
use crate::lsn::Lsn;
use crate::schema::{SchemaHistory, SchemaVersion, TableSchema};
use crate::store::meta::ResetKind;

/// What the store knows about one table.
#[derive(Clone, Debug, Default)]
pub struct TableEntry {
    /// Every schema version.
    pub history: SchemaHistory,
    /// Points where the table was emptied, ascending by LSN.
    pub resets: Vec<(Lsn, ResetKind)>,
}

impl TableEntry {
    /// The latest reset at or before `cut`.
    pub fn last_reset_at(&self, cut: Lsn) -> Option<Lsn> {
        let i = self.resets.partition_point(|(l, _)| *l <= cut);
        i.checked_sub(1).and_then(|i| self.resets.get(i)).map(|(l, _)| *l)
    }

    /// True when a version written at `version_lsn` is still alive at `cut`
    /// as far as resets go (no reset strictly after it, up to `cut`).
    pub fn survives_resets(&self, version_lsn: Lsn, cut: Lsn) -> bool {
        self.last_reset_at(cut).is_none_or(|r| version_lsn >= r)
    }

    /// The current (latest) shape, unless dropped or unknown.
    pub fn current_schema(&self) -> Option<&TableSchema> {
        self.history.latest().and_then(SchemaVersion::schema)
    }
}

/// All tables.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub(crate) tables: BTreeMap<TableId, TableEntry>,
    /// Names of tables whose latest version is not a drop.
    pub(crate) live_names: HashMap<TableName, TableId>,
    pub(crate) next_table: u32,
}

impl Catalog {
    /// A table's entry.
    pub fn table(&self, t: TableId) -> Option<&TableEntry> {
        self.tables.get(&t)
    }

    /// Every table, in id order.
    pub fn tables(&self) -> impl Iterator<Item = (TableId, &TableEntry)> {
        self.tables.iter().map(|(k, v)| (*k, v))
    }

    /// The smallest table id never used (dropped tables keep theirs).
    pub fn next_table_id(&self) -> u32 {
        self.tables
            .keys()
            .map(|t| t.0 + 1)
            .max()
            .unwrap_or(0)
            .max(self.next_table)
    }

    /// The id of the live (not dropped) table with this name.
    pub fn live_table(&self, name: &TableName) -> Option<TableId> {
        self.live_names.get(name).copied()
    }

    /// Tables that exist at `cut`, with their schema at that moment.
    pub fn tables_at(&self, cut: Lsn) -> Vec<(TableId, &SchemaVersion)> {
        self.tables
            .iter()
            .filter_map(|(id, e)| e.history.at(cut).filter(|v| v.schema().is_some()).map(|v| (*id, v)))
            .collect()
    }

    /// The table that had this name at `cut`.
    pub fn table_named_at(&self, name: &TableName, cut: Lsn) -> Option<(TableId, &SchemaVersion)> {
        self.tables_at(cut)
            .into_iter()
            .find(|(_, v)| v.schema().is_some_and(|s| &s.name == name))
    }

    pub(crate) fn rebuild_names(&mut self) {
        self.live_names = self
            .tables
            .iter()
            .filter_map(|(id, e)| e.current_schema().map(|s| (s.name.clone(), *id)))
            .collect();
    }
}
