//! The raw log as a stream of row-level change events.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use changelog::keys::{self, UserKey};
use changelog::{
    ChangeRecord, CommitEntry, Datum, Lsn, RowImage, SchemaVersionNo, Store, TableId, TableName, VersionState,
};

use crate::cut::Cut;
use crate::error::{Carried, QueryError, Result};
use crate::snapshot::Projector;

/// The kind of a change event (Debezium's `op`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChangeOp {
    /// `c`: insert.
    Create,
    /// `u`: update.
    Update,
    /// `d`: delete.
    Delete,
    /// `t`: truncate.
    Truncate,
    /// `r`: a row of a full read (initial copy or re-read).
    Read,
}

impl ChangeOp {
    /// Debezium's one-letter code.
    pub fn code(self) -> &'static str {
        match self {
            ChangeOp::Create => "c",
            ChangeOp::Update => "u",
            ChangeOp::Delete => "d",
            ChangeOp::Truncate => "t",
            ChangeOp::Read => "r",
        }
    }
}

/// One row-level change, with full before and after images where known.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChangeEvent {
    /// The transaction.
    pub commit: CommitEntry,
    /// Position within the transaction.
    pub ordinal: u32,
    /// The table, by its name at that moment.
    pub table: TableName,
    /// Column names of the images.
    pub columns: Vec<String>,
    /// What happened.
    pub op: ChangeOp,
    /// The row before (updates, deletes), from the log or the version index.
    pub before: Option<Vec<Datum>>,
    /// The row after (inserts, updates, reads).
    pub after: Option<Vec<Datum>>,
}

/// Streams change events of transactions with `from < commit_lsn <= to`
/// (`from = None`: from the start), optionally limited to some tables. `f`
/// returns [`ControlFlow::Break`] to stop; its errors come back unchanged.
pub fn changes<E: From<QueryError>>(
    store: &Store,
    from: Option<Cut>,
    to: Cut,
    tables: Option<&HashSet<TableId>>,
    mut f: impl FnMut(ChangeEvent) -> Result<ControlFlow<()>, E>,
) -> Result<(), E> {
    if let Some(from) = from {
        if from.lsn > to.lsn {
            return Err(QueryError::ReversedRange { from, to }.into());
        }
    }
    let start = from.map_or(Lsn::ZERO, |c| c.lsn.next());
    let mut txn = TxnView::default();
    let walk = store.for_each_log_entry::<Carried<E>>(start, to.lsn, |e| {
        if txn.commit.as_ref().is_none_or(|c| c.commit_lsn != e.commit_lsn) {
            let Some(c) = store.commit(e.commit_lsn)? else {
                return Ok(ControlFlow::Continue(()));
            };
            txn = TxnView {
                commit: Some(c),
                ..TxnView::default()
            };
        }
        for ev in txn.events(store, &e.record, e.ordinal, tables)? {
            if f(ev).map_err(Carried)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    });
    walk.map_err(|Carried(e)| e)
}

/// State while walking one transaction's records.
#[derive(Default)]
struct TxnView {
    commit: Option<CommitEntry>,
    /// Schema version each table's rows are aligned to at this point.
    versions: HashMap<TableId, SchemaVersionNo>,
    /// Tables whose schema changed earlier in this transaction.
    schema_seen: HashSet<TableId>,
    /// Latest image of each key written so far in the transaction.
    images: HashMap<Vec<u8>, Option<Vec<Datum>>>,
}

impl TxnView {
    fn version(&mut self, store: &Store, t: TableId) -> Option<SchemaVersionNo> {
        let lsn = self.commit.as_ref()?.commit_lsn;
        if let Some(v) = self.versions.get(&t) {
            return Some(*v);
        }
        let entry = store.catalog().table(t)?;
        let v = entry.history.at(lsn.prev())?.version;
        self.versions.insert(t, v);
        Some(v)
    }

    fn events(
        &mut self,
        store: &Store,
        rec: &ChangeRecord,
        ordinal: u32,
        only: Option<&HashSet<TableId>>,
    ) -> Result<Vec<ChangeEvent>> {
        if let ChangeRecord::Schema { table, .. } = rec {
            // The k-th schema record of a table in this transaction is the
            // k-th stored version with this commit LSN.
            let lsn = self.commit.map_or(Lsn::ZERO, |c| c.commit_lsn);
            let next = if self.schema_seen.insert(*table) {
                store
                    .catalog()
                    .table(*table)
                    .and_then(|e| e.history.versions().iter().find(|v| v.valid_from == lsn))
                    .map(|v| v.version)
            } else {
                self.versions.get(table).map(|v| SchemaVersionNo(v.0 + 1))
            };
            if let Some(n) = next {
                self.versions.insert(*table, n);
            }
            return Ok(Vec::new());
        }
        let Some(commit) = self.commit else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for t in rec.tables() {
            if only.is_some_and(|s| !s.contains(t)) {
                continue;
            }
            let Some(entry) = store.catalog().table(*t) else {
                continue;
            };
            let Some(sv) = self.version(store, *t) else { continue };
            let Some(schema) = entry.history.get(sv).and_then(|v| v.schema()) else {
                continue;
            };
            let columns: Vec<String> = schema.column_names().map(String::from).collect();
            let key_of = |row: &RowImage| keys::row_key(*t, schema, &row.0);
            let (op, before, after) = match rec {
                ChangeRecord::Insert { new, .. } => {
                    self.images.insert(key_of(new).0, Some(new.0.clone()));
                    (ChangeOp::Create, None, Some(new.0.clone()))
                }
                ChangeRecord::Read { row, .. } => {
                    self.images.insert(key_of(row).0, Some(row.0.clone()));
                    (ChangeOp::Read, None, Some(row.0.clone()))
                }
                ChangeRecord::Update { old, new, .. } => {
                    let old_key = key_of(old.as_ref().unwrap_or(new));
                    // A row whose key is the whole row is its own before-image
                    // (and other copies of it may remain).
                    let before = match old {
                        Some(old) if schema.counts_copies() => Some(old.0.clone()),
                        _ => self.before(store, &old_key, commit.commit_lsn, sv, *t)?,
                    };
                    let new_key = key_of(new);
                    if new_key != old_key {
                        self.images.insert(old_key.0, None);
                    }
                    self.images.insert(new_key.0, Some(new.0.clone()));
                    (ChangeOp::Update, before, Some(new.0.clone()))
                }
                ChangeRecord::Delete { old, .. } => {
                    let k = key_of(old);
                    let before = if schema.counts_copies() {
                        Some(old.0.clone())
                    } else {
                        self.before(store, &k, commit.commit_lsn, sv, *t)?
                            .or_else(|| Some(old.0.clone()))
                    };
                    self.images.insert(k.0, None);
                    (ChangeOp::Delete, before, None)
                }
                ChangeRecord::Truncate { .. } => {
                    let prefix = t.0.to_be_bytes();
                    self.images.retain(|k, _| !k.starts_with(&prefix));
                    (ChangeOp::Truncate, None, None)
                }
                ChangeRecord::ReadStart { .. } | ChangeRecord::Schema { .. } => continue,
            };
            out.push(ChangeEvent {
                commit,
                ordinal,
                table: schema.name.clone(),
                columns,
                op,
                before,
                after,
            });
        }
        Ok(out)
    }

    /// The full row before this change: an earlier image in the same
    /// transaction, else the version visible just before the transaction.
    fn before(
        &self,
        store: &Store,
        key: &UserKey,
        lsn: Lsn,
        sv: SchemaVersionNo,
        t: TableId,
    ) -> Result<Option<Vec<Datum>>> {
        if let Some(img) = self.images.get(&key.0) {
            return Ok(img.clone());
        }
        let prev_cut = lsn.prev();
        let Some(entry) = store.catalog().table(t) else {
            return Ok(None);
        };
        let Some(v) = store.version_at(key, prev_cut)? else {
            return Ok(None);
        };
        if !entry.survives_resets(v.lsn, prev_cut) {
            return Ok(None);
        }
        match v.state {
            VersionState::Row { schema, values, .. } => {
                Ok(Some(Projector::new(&entry.history, sv).owned(schema, &values)))
            }
            VersionState::Deleted => Ok(None),
        }
    }
}
