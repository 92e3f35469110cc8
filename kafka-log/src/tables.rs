//! Which table a name means, on either side of the topic.
//!
//! Table ids are local to a store, so the topic names tables by their
//! schema-qualified name and each side keeps its own directory of names,
//! ids and shapes, advanced by the schema changes it writes or reads. The
//! rules are the capture's: a new name takes the next id; a rename keeps
//! the id; a dropped table's name is free again and a table created under
//! it later takes a new id.

use std::collections::HashMap;

use changelog::{SchemaChange, TableId, TableName, TableSchema};

/// One table the directory knows.
#[derive(Clone, Debug)]
struct Entry {
    name: TableName,
    /// The shape rows are written in; `None` while the table is not
    /// captured.
    shape: Option<TableSchema>,
}

/// The live tables: id, name and shape of each, and the next id to give.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    by_id: HashMap<TableId, Entry>,
    by_name: HashMap<TableName, TableId>,
    next_id: u32,
}

impl Tables {
    /// An empty directory whose first new table takes id `next_id`.
    pub fn new(next_id: u32) -> Self {
        Tables {
            next_id,
            ..Tables::default()
        }
    }

    /// The directory of a store: each table's latest schema change (a
    /// dropped table is skipped) and the store's next table id.
    pub fn from_latest<'a>(latest: impl IntoIterator<Item = (TableId, &'a SchemaChange)>, next_id: u32) -> Self {
        let mut tables = Tables::new(next_id);
        for (id, change) in latest {
            tables.apply(id, change);
        }
        tables
    }

    /// Takes a schema change of table `id` into account.
    pub fn apply(&mut self, id: TableId, change: &SchemaChange) {
        self.next_id = self.next_id.max(id.0.saturating_add(1));
        let (schema, shape) = match change {
            SchemaChange::Define { schema, .. } => (schema, Some(schema.clone())),
            SchemaChange::Uncaptured { schema, .. } => (schema, None),
            SchemaChange::Drop => {
                if let Some(old) = self.by_id.remove(&id) {
                    self.release(&old.name, id);
                }
                return;
            }
        };
        if let Some(old) = self.by_id.get(&id) {
            if old.name != schema.name {
                let old = old.name.clone();
                self.release(&old, id);
            }
        }
        self.by_name.insert(schema.name.clone(), id);
        self.by_id.insert(
            id,
            Entry {
                name: schema.name.clone(),
                shape,
            },
        );
    }

    /// Frees `name` if it still means `id`.
    fn release(&mut self, name: &TableName, id: TableId) {
        if self.by_name.get(name) == Some(&id) {
            self.by_name.remove(name);
        }
    }

    /// The name of a live table.
    pub fn name(&self, id: TableId) -> Option<&TableName> {
        self.by_id.get(&id).map(|e| &e.name)
    }

    /// The live table with this name.
    pub fn id(&self, name: &TableName) -> Option<TableId> {
        self.by_name.get(name).copied()
    }

    /// The shape a captured table's rows are written in.
    pub fn shape(&self, id: TableId) -> Option<&TableSchema> {
        self.by_id.get(&id).and_then(|e| e.shape.as_ref())
    }

    /// The id the next new table takes.
    pub fn next_id(&self) -> TableId {
        TableId(self.next_id)
    }
}

/// A directory and the uncommitted changes of the transaction being
/// written or read: a transaction that fails or is read again from its
/// start leaves the directory as it was. Copied on the first schema change
/// only, since most transactions have none.
#[derive(Clone, Debug, Default)]
pub(crate) struct Staged {
    committed: Tables,
    working: Option<Tables>,
}

impl Staged {
    pub(crate) fn new(tables: Tables) -> Self {
        Staged {
            committed: tables,
            working: None,
        }
    }

    /// The directory as of the current record.
    pub(crate) fn current(&self) -> &Tables {
        self.working.as_ref().unwrap_or(&self.committed)
    }

    /// The directory, to change within the transaction.
    pub(crate) fn edit(&mut self) -> &mut Tables {
        self.working.get_or_insert_with(|| self.committed.clone())
    }

    /// The transaction is complete: its changes stand.
    pub(crate) fn commit(&mut self) {
        if let Some(t) = self.working.take() {
            self.committed = t;
        }
    }

    /// The transaction is abandoned: its changes are forgotten.
    pub(crate) fn discard(&mut self) {
        self.working = None;
    }

    /// The directory as of the last complete transaction.
    pub(crate) fn committed(&self) -> &Tables {
        &self.committed
    }

    /// The committed directory.
    pub(crate) fn into_committed(self) -> Tables {
        self.committed
    }
}
