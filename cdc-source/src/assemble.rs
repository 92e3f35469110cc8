//! Turning pgoutput messages into change-log transactions.
//!
//! The assembler keeps the capture's view of the published tables (relation
//! OID to store table id and current shape) and builds one
//! [`changelog::Transaction`] per Begin..Commit. Schema versions come from
//! two places: `asof.ddl` logical messages (at the DDL's own position, with
//! the values older rows take in added columns) and Relation messages (sent
//! before a table's next change after its shape changed). A Relation whose
//! shape equals the current one records nothing. A Relation is applied when
//! a change first names its relation: a publication that publishes
//! partitions through their root sends the root's Relation and then the
//! leaf's, but every change names the root, and the leaf is no table of
//! the capture.
//!
//! A table whose rows cannot be told apart ([`identity::missing_key`]) is
//! recorded as uncaptured, its row changes are left out, and a notice says
//! why; it is captured again once a DDL message brings a key together with
//! all its rows.
//!
//! Pure and synchronous: it never talks to the network or the store; type
//! names for Relation-only schemas come from a cache the stream fills.

use std::collections::HashMap;

use changelog::{
    Catalog, ChangeRecord, Column, CommitInfo, CommitTime, Coverage, Datum, Lsn, RowImage, SchemaChange, TableId,
    TableName, TableSchema, Transaction, Xid,
};

use crate::coverage;
use crate::ddl;
use crate::error::{CaptureError, Result, StreamProblem};
use crate::identity;
use crate::pgoutput::{Message, OldTuple, RelationBody, TupleData, TupleValue};

/// What the capture knows about one published table.
#[derive(Clone, Debug)]
pub struct TableView {
    /// The store's id.
    pub id: TableId,
    /// The shape last recorded in the log.
    pub schema: TableSchema,
    /// What of the source table that shape leaves out.
    pub coverage: Coverage,
}

/// The open transaction.
#[derive(Debug)]
pub struct OpenTxn {
    /// Commit LSN announced by Begin.
    pub final_lsn: Lsn,
    /// Commit time announced by Begin.
    pub commit_time: CommitTime,
    /// Transaction id.
    pub xid: Xid,
    /// Records so far (not yet handed to the store).
    pub records: Vec<ChangeRecord>,
    /// Records already spilled to the store.
    pub spilled: u64,
    /// Rows of an `asof.row` re-read being collected: table and whether its
    /// ReadStart was emitted.
    reread: Option<(u32, TableId)>,
}

/// What feeding one message produced.
#[derive(Debug)]
pub enum Fed {
    /// Nothing to do yet.
    Nothing,
    /// A transaction committed.
    Committed(Transaction),
}

/// Assembles transactions.
#[derive(Debug, Default)]
pub struct Assembler {
    by_oid: HashMap<u32, TableView>,
    ids_by_name: HashMap<TableName, TableId>,
    next_id: u32,
    /// `format_type` names by (type OID, modifier).
    pub type_names: HashMap<(u32, i32), String>,
    open: Option<OpenTxn>,
    /// Relation OIDs published (None: every table is).
    published: Option<std::collections::HashSet<u32>>,
    /// Published tables that are not captured (no usable key).
    uncaptured: HashMap<u32, TableView>,
    /// Things to tell the user, collected while feeding.
    notices: Vec<String>,
    /// Relation messages not yet named by a change, by relation OID.
    pending: HashMap<u32, RelationBody>,
    /// The publication captured: DDL messages of other publications'
    /// captures are in the same WAL and are not for this one.
    publication: Option<String>,
}

impl TableView {
    /// A table that is not captured: it has no coverage to speak of.
    fn uncaptured(id: TableId, schema: TableSchema) -> Self {
        TableView {
            id,
            schema,
            coverage: Coverage::default(),
        }
    }
}

impl Assembler {
    /// Starts from what the store already holds.
    pub fn from_catalog(catalog: &Catalog) -> Self {
        let mut a = Assembler {
            next_id: catalog.next_table_id(),
            ..Assembler::default()
        };
        for (id, entry) in catalog.tables() {
            if let Some(SchemaChange::Uncaptured { schema, .. }) = entry.history.latest().map(|v| &v.change) {
                a.ids_by_name.insert(schema.name.clone(), id);
                let view = TableView {
                    id,
                    schema: schema.clone(),
                    coverage: Coverage::default(),
                };
                a.uncaptured.insert(schema.relation_oid, view);
            }
            if let Some(schema) = entry.current_schema() {
                a.ids_by_name.insert(schema.name.clone(), id);
                a.by_oid.insert(
                    schema.relation_oid,
                    TableView {
                        id,
                        schema: schema.clone(),
                        coverage: entry
                            .history
                            .latest()
                            .and_then(|v| v.coverage())
                            .cloned()
                            .unwrap_or_default(),
                    },
                );
                a.next_id = a.next_id.max(id.0 + 1);
                for c in &schema.columns {
                    a.type_names.insert((c.type_oid, c.type_modifier), c.type_name.clone());
                }
            }
        }
        a
    }

    /// Limits DDL capture to these relations (a publication for some tables).
    pub fn set_published(&mut self, oids: Option<std::collections::HashSet<u32>>) {
        self.published = oids;
    }

    /// Names the publication captured (see [`Assembler::feed`]).
    pub fn set_publication(&mut self, name: &str) {
        self.publication = Some(name.to_owned());
    }

    /// Whether a DDL message came from another publication's capture.
    fn foreign(&self, sender: Option<&str>) -> bool {
        matches!((sender, &self.publication), (Some(s), Some(p)) if s != p)
    }

    /// The table for a relation, if known.
    pub fn table(&self, oid: u32) -> Option<&TableView> {
        self.by_oid.get(&oid)
    }

    /// Registers a table read by the initial copy; returns its id.
    pub fn register(&mut self, schema: TableSchema, coverage: Coverage) -> TableId {
        let id = self.id_for(&schema.name);
        self.by_oid
            .insert(schema.relation_oid, TableView { id, schema, coverage });
        id
    }

    /// Registers a table the initial copy could not read (see
    /// [`crate::copy_source`]) as not captured; returns its id.
    pub fn register_uncaptured(&mut self, schema: TableSchema, reason: String) -> TableId {
        let id = self.id_for(&schema.name);
        self.notices
            .push(format!("table {} is not captured: {reason}", schema.name));
        self.uncaptured
            .insert(schema.relation_oid, TableView::uncaptured(id, schema));
        id
    }

    /// Adds a notice for the user.
    pub fn note(&mut self, text: String) {
        self.notices.push(text);
    }

    fn id_for(&mut self, name: &TableName) -> TableId {
        if let Some(id) = self.ids_by_name.get(name) {
            return *id;
        }
        let id = TableId(self.next_id);
        self.next_id += 1;
        self.ids_by_name.insert(name.clone(), id);
        id
    }

    /// Type (OID, modifier) pairs of a Relation message not yet named.
    pub fn unknown_types(&self, rel: &RelationBody) -> Vec<(u32, i32)> {
        rel.columns
            .iter()
            .map(|c| (c.type_oid, c.type_modifier))
            .filter(|k| !self.type_names.contains_key(k))
            .collect()
    }

    /// Takes the notices collected since the last call.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// Whether a transaction is open (between Begin and Commit).
    pub fn in_transaction(&self) -> bool {
        self.open.is_some()
    }

    /// The open transaction, for spilling.
    pub fn open_mut(&mut self) -> Option<&mut OpenTxn> {
        self.open.as_mut()
    }

    /// Drops a partly received transaction (the connection was lost; the
    /// server sends it again).
    pub fn reset(&mut self) {
        self.open = None;
    }

    /// Feeds one decoded message.
    pub fn feed(&mut self, msg: Message, at: Lsn) -> Result<Fed> {
        self.apply_pending(&msg);
        match msg {
            Message::Begin(b) => {
                self.open = Some(OpenTxn {
                    final_lsn: b.final_lsn,
                    commit_time: CommitTime::from_pg_micros(b.commit_time_us),
                    xid: Xid(b.xid),
                    records: Vec::new(),
                    spilled: 0,
                    reread: None,
                });
                Ok(Fed::Nothing)
            }
            Message::Commit(c) => {
                let open = self
                    .open
                    .take()
                    .ok_or_else(|| protocol(at, StreamProblem::CommitWithoutBegin))?;
                if c.commit_lsn != open.final_lsn {
                    return Err(protocol(at, StreamProblem::CommitLsnMismatch));
                }
                Ok(Fed::Committed(Transaction {
                    commit: CommitInfo {
                        commit_lsn: c.commit_lsn,
                        end_lsn: c.end_lsn,
                        commit_time: CommitTime::from_pg_micros(c.commit_time_us),
                        xid: open.xid,
                    },
                    records: open.records,
                }))
            }
            Message::Relation(r) => {
                self.pending.insert(r.rel_id, r);
                Ok(Fed::Nothing)
            }
            Message::Insert(i) if self.uncaptured.contains_key(&i.rel_id) => Ok(Fed::Nothing),
            Message::Update(u) if self.uncaptured.contains_key(&u.rel_id) => Ok(Fed::Nothing),
            Message::Delete(d) if self.uncaptured.contains_key(&d.rel_id) => Ok(Fed::Nothing),
            Message::Insert(i) => {
                let t = self.known(i.rel_id, at)?;
                let new = row(&i.new, at)?;
                self.push(ChangeRecord::Insert { table: t, new }, at)
            }
            Message::Update(u) => {
                let t = self.known(u.rel_id, at)?;
                let new = row(&u.new, at)?;
                let old = match &u.old {
                    Some(OldTuple::Key(k)) => Some(key_image(k, at)?),
                    Some(OldTuple::Full(f)) => Some(row(f, at)?),
                    None => None,
                };
                self.push(ChangeRecord::Update { table: t, old, new }, at)
            }
            Message::Delete(d) => {
                let t = self.known(d.rel_id, at)?;
                let old = match &d.old {
                    OldTuple::Key(k) => key_image(k, at)?,
                    OldTuple::Full(f) => row(f, at)?,
                };
                self.push(ChangeRecord::Delete { table: t, old }, at)
            }
            Message::Truncate(tr) => {
                let tables = tr
                    .rel_ids
                    .iter()
                    .filter(|r| !self.uncaptured.contains_key(r))
                    .map(|r| self.known(*r, at))
                    .collect::<Result<Vec<_>>>()?;
                if tables.is_empty() {
                    return Ok(Fed::Nothing);
                }
                self.push(ChangeRecord::Truncate { tables }, at)
            }
            Message::LogicalMessage(m) if m.transactional => self.logical_message(&m.prefix, &m.content, at),
            _ => Ok(Fed::Nothing),
        }
    }

    /// Applies the Relation messages of the relations a change names.
    fn apply_pending(&mut self, msg: &Message) {
        let named = match msg {
            Message::Insert(i) => std::slice::from_ref(&i.rel_id),
            Message::Update(u) => std::slice::from_ref(&u.rel_id),
            Message::Delete(d) => std::slice::from_ref(&d.rel_id),
            Message::Truncate(t) => t.rel_ids.as_slice(),
            _ => return,
        };
        for oid in named {
            if let Some(r) = self.pending.remove(oid) {
                self.relation(r);
            }
        }
    }

    fn push(&mut self, rec: ChangeRecord, at: Lsn) -> Result<Fed> {
        let open = self
            .open
            .as_mut()
            .ok_or_else(|| protocol(at, StreamProblem::OutsideTransaction("change")))?;
        open.records.push(rec);
        Ok(Fed::Nothing)
    }

    fn known(&self, oid: u32, at: Lsn) -> Result<TableId> {
        self.by_oid
            .get(&oid)
            .map(|t| t.id)
            .ok_or_else(|| protocol(at, StreamProblem::UnknownRelation(oid)))
    }

    fn relation(&mut self, r: RelationBody) {
        let name = TableName::new(r.namespace.clone(), r.name.clone());
        let prev = self.by_oid.get(&r.rel_id).cloned();
        let columns: Vec<Column> = r
            .columns
            .iter()
            .map(|c| {
                // Under REPLICA IDENTITY FULL pgoutput flags every column, and
                // under NOTHING none; keep the key the table already had (its
                // primary key, from the catalog) when it still fits.
                let prev_key = prev
                    .as_ref()
                    .and_then(|p| p.schema.columns.iter().find(|pc| pc.name == c.name))
                    .map(|pc| pc.is_key);
                let is_key = match (r.replica_identity, prev_key) {
                    (crate::pgoutput::ReplicaIdentity::Full | crate::pgoutput::ReplicaIdentity::Nothing, Some(k))
                        if prev.as_ref().is_some_and(|p| {
                            p.schema
                                .columns
                                .iter()
                                .any(|pc| pc.is_key && r.columns.iter().any(|rc| rc.name == pc.name))
                        }) =>
                    {
                        k
                    }
                    _ => c.is_key,
                };
                Column {
                    name: c.name.clone(),
                    type_oid: c.type_oid,
                    type_name: self
                        .type_names
                        .get(&(c.type_oid, c.type_modifier))
                        .cloned()
                        .unwrap_or_else(|| c.type_oid.to_string()),
                    type_modifier: c.type_modifier,
                    is_key,
                }
            })
            .collect();
        let ident = changelog::ReplicaIdentity::from(r.replica_identity);
        let schema = TableSchema {
            name,
            relation_oid: r.rel_id,
            columns,
            replica_identity: ident,
        };
        if let Some(was) = self.uncaptured.get(&r.rel_id) {
            // Without its rows a key is no use: only a DDL message, which
            // brings them, captures the table again.
            if identity::missing_key(&schema).is_none() && !same_shape(&was.schema, &schema) {
                self.notices.push(format!(
                    "table {} now has a key, but its rows can only be read afresh by the DDL capture; it stays \
                     uncaptured",
                    schema.name
                ));
            }
            let id = was.id;
            self.uncaptured.insert(r.rel_id, TableView::uncaptured(id, schema));
            return;
        }
        let id = match &prev {
            Some(p) => p.id,
            None => self.id_for(&schema.name),
        };
        if prev.as_ref().is_some_and(|p| same_shape(&p.schema, &schema)) {
            return;
        }
        if let Some(reason) = identity::missing_key(&schema) {
            self.set_uncaptured(r.rel_id, id, schema, reason);
            return;
        }
        if let Some(p) = &prev {
            if p.schema.name != schema.name {
                self.ids_by_name.remove(&p.schema.name);
                self.ids_by_name.insert(schema.name.clone(), id);
            }
        }
        // A Relation message says nothing of what it leaves out: what was
        // left out before and is still absent stays so.
        let mut coverage = prev.map(|p| p.coverage).unwrap_or_default();
        coverage.omitted.retain(|c| schema.column_index(&c.name).is_none());
        self.by_oid.insert(
            r.rel_id,
            TableView {
                id,
                schema: schema.clone(),
                coverage: coverage.clone(),
            },
        );
        if let Some(open) = self.open.as_mut() {
            open.records.push(ChangeRecord::Schema {
                table: id,
                change: SchemaChange::Define {
                    schema,
                    backfill: Vec::new(),
                    coverage,
                },
            });
        }
    }

    fn logical_message(&mut self, prefix: &str, content: &[u8], at: Lsn) -> Result<Fed> {
        match prefix {
            ddl::DDL_PREFIX => {
                let ev = ddl::parse_ddl(content).map_err(|e| at_lsn(e, at))?;
                if self.foreign(ev.publication.as_deref()) {
                    // Rows it re-reads are not for an earlier re-read here.
                    if let Some(open) = self.open.as_mut() {
                        open.reread = None;
                    }
                    return Ok(Fed::Nothing);
                }
                // Older triggers named no publication; their messages are
                // limited to the tables published when the capture started.
                if ev.publication.is_none()
                    && self
                        .published
                        .as_ref()
                        .is_some_and(|p| !p.contains(&ev.schema.relation_oid))
                {
                    return Ok(Fed::Nothing);
                }
                let oid = ev.schema.relation_oid;
                for c in &ev.schema.columns {
                    self.type_names
                        .insert((c.type_oid, c.type_modifier), c.type_name.clone());
                }
                let open = self
                    .open
                    .as_mut()
                    .ok_or_else(|| protocol(at, StreamProblem::OutsideTransaction("DDL message")))?;
                // Rows of an earlier re-read in this transaction end here.
                open.reread = None;
                let was_uncaptured = self.uncaptured.get(&oid).map(|v| v.id);
                let missing = identity::missing_key(&ev.schema);
                if let Some(id) = was_uncaptured.filter(|_| missing.is_some() || !ev.rewrite) {
                    // Still without a key (the advice may have changed with
                    // the table), or a key without the rows.
                    let before = self.uncaptured.get(&oid).and_then(|v| identity::missing_key(&v.schema));
                    match missing {
                        Some(reason) if before.as_ref() != Some(&reason) => {
                            self.set_uncaptured(oid, id, ev.schema, reason);
                        }
                        _ => {
                            self.uncaptured.insert(oid, TableView::uncaptured(id, ev.schema));
                        }
                    }
                    return Ok(Fed::Nothing);
                }
                let prev = self.by_oid.get(&oid).cloned();
                let id = match (&prev, was_uncaptured) {
                    (Some(p), _) => p.id,
                    (None, Some(id)) => id,
                    (None, None) => self.id_for(&ev.schema.name),
                };
                if let Some(reason) = missing {
                    self.set_uncaptured(oid, id, ev.schema, reason);
                    return Ok(Fed::Nothing);
                }
                if was_uncaptured.is_some() {
                    self.uncaptured.remove(&oid);
                    self.notices.push(format!(
                        "table {} has a key now and is captured from here on",
                        ev.schema.name
                    ));
                }
                if let Some(p) = &prev {
                    if p.schema.name != ev.schema.name {
                        self.ids_by_name.remove(&p.schema.name);
                        self.ids_by_name.insert(ev.schema.name.clone(), id);
                    }
                }
                // Columns this change adds: older rows take attmissingval.
                let backfill: Vec<(String, Datum)> = ev
                    .missing
                    .iter()
                    .filter(|(n, _)| prev.as_ref().is_none_or(|p| p.schema.column_index(n).is_none()))
                    .cloned()
                    .collect();
                let changed = prev
                    .as_ref()
                    .is_none_or(|p| !same_shape(&p.schema, &ev.schema) || p.coverage != ev.coverage)
                    || !backfill.is_empty();
                self.by_oid.insert(
                    oid,
                    TableView {
                        id,
                        schema: ev.schema.clone(),
                        coverage: ev.coverage.clone(),
                    },
                );
                let open = self
                    .open
                    .as_mut()
                    .ok_or_else(|| protocol(at, StreamProblem::OutsideTransaction("DDL message")))?;
                if changed {
                    if let Some(note) = coverage::notice(&ev.schema.name, &ev.coverage) {
                        self.notices.push(note);
                    }
                    open.records.push(ChangeRecord::Schema {
                        table: id,
                        change: SchemaChange::Define {
                            schema: ev.schema,
                            backfill,
                            coverage: ev.coverage,
                        },
                    });
                }
                if ev.rewrite {
                    open.records.push(ChangeRecord::ReadStart { table: id });
                    open.reread = Some((oid, id));
                }
                Ok(Fed::Nothing)
            }
            ddl::ROW_PREFIX => {
                let (oid, values) = ddl::parse_row(content).map_err(|e| at_lsn(e, at))?;
                let open = self
                    .open
                    .as_mut()
                    .ok_or_else(|| protocol(at, StreamProblem::OutsideTransaction("row message")))?;
                let Some((roid, id)) = open.reread else {
                    return Ok(Fed::Nothing);
                };
                if roid != oid {
                    return Ok(Fed::Nothing);
                }
                let width = self.by_oid.get(&oid).map_or(0, |t| t.schema.columns.len());
                // A one-column table's NULL prints as "()", like zero columns.
                let values = if values.len() != width && width == 0 {
                    Vec::new()
                } else {
                    values
                };
                if values.len() != width {
                    return Err(protocol(at, StreamProblem::RereadWidth));
                }
                open.records.push(ChangeRecord::Read {
                    table: id,
                    row: RowImage(values),
                });
                Ok(Fed::Nothing)
            }
            ddl::DROP_PREFIX => {
                let dropped = ddl::parse_drop(content).map_err(|e| at_lsn(e, at))?;
                if self.foreign(dropped.publication.as_deref()) {
                    return Ok(Fed::Nothing);
                }
                let oid = dropped.oid;
                let Some(view) = self.by_oid.remove(&oid).or_else(|| self.uncaptured.remove(&oid)) else {
                    return Ok(Fed::Nothing);
                };
                self.ids_by_name.remove(&view.schema.name);
                let open = self
                    .open
                    .as_mut()
                    .ok_or_else(|| protocol(at, StreamProblem::OutsideTransaction("drop message")))?;
                open.records.push(ChangeRecord::Schema {
                    table: view.id,
                    change: SchemaChange::Drop,
                });
                Ok(Fed::Nothing)
            }
            ddl::UNPUBLISHED_PREFIX => {
                let gone = ddl::parse_drop(content).map_err(|e| at_lsn(e, at))?;
                if self.foreign(gone.publication.as_deref()) {
                    return Ok(Fed::Nothing);
                }
                let Some(view) = self.by_oid.get(&gone.oid).cloned() else {
                    return Ok(Fed::Nothing);
                };
                if self.open.is_none() {
                    return Err(protocol(at, StreamProblem::OutsideTransaction("unpublished message")));
                }
                let reason = "the publication stopped publishing it, so its changes since are not captured; \
                              publishing it again reads it afresh"
                    .to_owned();
                self.set_uncaptured(gone.oid, view.id, view.schema, reason);
                Ok(Fed::Nothing)
            }
            ddl::UNLOGGED_PREFIX => {
                let name = ddl::parse_unlogged(content).map_err(|e| at_lsn(e, at))?;
                self.notices.push(format!(
                    "table {name} is unlogged: its changes are not written to the WAL, so it is not captured"
                ));
                Ok(Fed::Nothing)
            }
            _ => Ok(Fed::Nothing),
        }
    }

    /// Records that a table is not captured from here on, and says why.
    fn set_uncaptured(&mut self, oid: u32, id: TableId, schema: TableSchema, reason: String) {
        self.by_oid.remove(&oid);
        self.notices
            .push(format!("table {} is not captured: {reason}", schema.name));
        if let Some(open) = self.open.as_mut() {
            open.records.push(ChangeRecord::Schema {
                table: id,
                change: SchemaChange::Uncaptured {
                    schema: schema.clone(),
                    reason,
                },
            });
        }
        self.uncaptured.insert(oid, TableView::uncaptured(id, schema));
    }
}

/// Equal for the log's purposes: names, types and keys of the columns.
fn same_shape(a: &TableSchema, b: &TableSchema) -> bool {
    a.name == b.name
        && a.columns.len() == b.columns.len()
        && a.columns.iter().zip(&b.columns).all(|(x, y)| {
            x.name == y.name && x.type_oid == y.type_oid && x.type_modifier == y.type_modifier && x.is_key == y.is_key
        })
}

fn protocol(at: Lsn, problem: StreamProblem) -> CaptureError {
    CaptureError::Stream { lsn: at, problem }
}

fn at_lsn(source: ddl::MessageError, at: Lsn) -> CaptureError {
    CaptureError::LogicalMessage { lsn: at, source }
}

fn value(v: &TupleValue, at: Lsn) -> Result<Datum> {
    Ok(match v {
        TupleValue::Null => Datum::Null,
        TupleValue::UnchangedToast => Datum::UnchangedToast,
        TupleValue::Text(b) => Datum::Text(b.to_vec()),
        TupleValue::Binary(_) => return Err(protocol(at, StreamProblem::BinaryValue)),
    })
}

fn row(t: &TupleData, at: Lsn) -> Result<RowImage> {
    t.values
        .iter()
        .map(|v| value(v, at))
        .collect::<Result<Vec<_>>>()
        .map(RowImage)
}

/// A key-only old tuple: pgoutput sends the non-key columns as NULL; they
/// are not known, so they become `Missing`, never NULL.
fn key_image(t: &TupleData, at: Lsn) -> Result<RowImage> {
    // The caller maps columns by position; which are keys is decided by
    // the store from the schema, so every non-sent value is marked missing.
    t.values
        .iter()
        .map(|v| match v {
            TupleValue::Null => Ok(Datum::Missing),
            other => value(other, at),
        })
        .collect::<Result<Vec<_>>>()
        .map(RowImage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgoutput::{BeginBody, CommitBody, InsertBody, RelationColumn, ReplicaIdentity};

    fn relation(rel_id: u32, name: &str) -> Message {
        Message::Relation(RelationBody {
            rel_id,
            namespace: "public".into(),
            name: name.into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![RelationColumn {
                is_key: true,
                name: "id".into(),
                type_oid: 23,
                type_modifier: -1,
            }],
        })
    }

    #[test]
    fn a_relation_no_change_names_is_no_table() {
        let mut a = Assembler::default();
        a.type_names.insert((23, -1), "integer".into());
        let at = Lsn(10);
        let feed = |a: &mut Assembler, m: Message| a.feed(m, at).expect("feed");
        feed(
            &mut a,
            Message::Begin(BeginBody {
                final_lsn: at,
                commit_time_us: 0,
                xid: 1,
            }),
        );
        // Through the root, pgoutput sends the root's Relation, then the
        // leaf's, then the change as the root's.
        feed(&mut a, relation(100, "root"));
        feed(&mut a, relation(101, "root_1"));
        feed(
            &mut a,
            Message::Insert(InsertBody {
                rel_id: 100,
                new: TupleData {
                    values: vec![TupleValue::Text("1".into())],
                },
            }),
        );
        let Fed::Committed(txn) = feed(
            &mut a,
            Message::Commit(CommitBody {
                flags: 0,
                commit_lsn: at,
                end_lsn: Lsn(11),
                commit_time_us: 0,
            }),
        ) else {
            panic!("no commit");
        };
        let defined: Vec<String> = txn
            .records
            .iter()
            .filter_map(|r| match r {
                ChangeRecord::Schema {
                    change: SchemaChange::Define { schema, .. },
                    ..
                } => Some(schema.name.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(defined, ["public.root"]);
        assert!(a.table(101).is_none());
        assert!(matches!(txn.records.last(), Some(ChangeRecord::Insert { .. })));
    }
}
