//! Writing a transaction as topic records.

use changelog::{ChangeRecord, CommitInfo, Lsn, RowImage, SchemaChange, TableId, TableName, TableSchema, Transaction};
use serde::Serialize;

use crate::datum::{exceptions, ImageJson};
use crate::envelope::{self, op, EnvelopeOut, Exact, SourceOut, TransactionBlock};
use crate::error::EncodeError;
use crate::events::{ChangeWire, DataCollection, EndEvent, ReadStartEvent, SchemaEvent, END_STATUS};
use crate::record::{header, RecordKind, TopicRecord, FORMAT_VERSION};
use crate::tables::{Staged, Tables};

/// Room reserved for a row change's envelope and key, enough for most.
const ENVELOPE_BYTES: usize = 512;
const KEY_BYTES: usize = 32;

/// What the `source` blocks say about where the changes come from.
#[derive(Clone, Debug, Default)]
pub struct EncodeOptions {
    /// Debezium's logical server name (`source.name`), e.g. the topic's
    /// prefix.
    pub server: String,
    /// The source database (`source.db`).
    pub database: String,
}

/// Writes transactions as topic records, keeping the directory of table
/// names in step with the schema changes it writes.
#[derive(Debug)]
pub struct Encoder {
    tables: Staged,
    options: EncodeOptions,
    /// The last transaction encoded, which the next end marker names.
    previous: Option<Lsn>,
}

impl Encoder {
    /// An encoder whose directory is `tables`: the store's tables as of the
    /// first transaction it will encode.
    pub fn new(tables: Tables, options: EncodeOptions) -> Self {
        Encoder {
            tables: Staged::new(tables),
            options,
            previous: None,
        }
    }

    /// Names `lsn` as the transaction published before the first one this
    /// encoder writes (the last one the topic holds).
    pub fn after(mut self, lsn: Lsn) -> Self {
        self.previous = Some(lsn);
        self
    }

    /// The directory as of the last encoded transaction.
    pub fn tables(&self) -> &Tables {
        self.tables.committed()
    }

    /// The records of one transaction, in order, its end marker last. On
    /// error nothing is taken into account: the directory is as before.
    pub fn encode(&mut self, tx: &Transaction) -> Result<Vec<TopicRecord>, EncodeError> {
        let mut w = self.begin(tx.commit);
        w.add(&tx.records)?;
        w.finish()
    }

    /// Starts writing a transaction whose records come in pieces, for one
    /// too large to hold at once: [`TxEncoder::add`] each piece, take the
    /// records written so far with [`TxEncoder::take`], and end with
    /// [`TxEncoder::finish`]. Dropped unfinished, it leaves the directory
    /// as before.
    pub fn begin(&mut self, commit: CommitInfo) -> TxEncoder<'_> {
        let writer = Writer::new(commit, self.options.clone(), self.previous);
        TxEncoder {
            encoder: self,
            writer: Some(writer),
        }
    }
}

/// One transaction being written in pieces (see [`Encoder::begin`]).
#[derive(Debug)]
pub struct TxEncoder<'e> {
    encoder: &'e mut Encoder,
    /// `None` once finished.
    writer: Option<Writer>,
}

impl TxEncoder<'_> {
    /// Writes more of the transaction's records, in order.
    pub fn add(&mut self, records: &[ChangeRecord]) -> Result<(), EncodeError> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let tables = &mut self.encoder.tables;
        for rec in records {
            let current = tables.current();
            match rec {
                ChangeRecord::Insert { table, new } => w.row(current, *table, op::CREATE, None, Some(new))?,
                ChangeRecord::Update { table, old, new } => {
                    w.row(current, *table, op::UPDATE, old.as_ref(), Some(new))?
                }
                ChangeRecord::Delete { table, old } => w.row(current, *table, op::DELETE, Some(old), None)?,
                ChangeRecord::Read { table, row } => w.row(current, *table, op::READ, None, Some(row))?,
                ChangeRecord::Truncate { tables: truncated } => w.truncate(current, truncated)?,
                ChangeRecord::ReadStart { table } => {
                    let event = ReadStartEvent {
                        table: w.name_of(current, *table)?.clone(),
                    };
                    w.push(RecordKind::ReadStart, None, &event, Vec::new())?;
                }
                ChangeRecord::Schema { table, change } => {
                    let event = SchemaEvent {
                        table: w.schema_name(current, *table, change)?.clone(),
                        change: ChangeWire::of(change),
                    };
                    w.push(RecordKind::Schema, None, &event, Vec::new())?;
                    tables.edit().apply(*table, change);
                }
            }
        }
        Ok(())
    }

    /// The records written since the last call, to be sent before the
    /// rest; their ordinals go on counting.
    pub fn take(&mut self) -> Vec<TopicRecord> {
        self.writer
            .as_mut()
            .map(|w| std::mem::take(&mut w.out))
            .unwrap_or_default()
    }

    /// The records not yet taken, the end marker last; the transaction
    /// becomes the one the next end marker names.
    pub fn finish(mut self) -> Result<Vec<TopicRecord>, EncodeError> {
        let Some(writer) = self.writer.take() else {
            return Ok(Vec::new());
        };
        let commit_lsn = writer.commit.commit_lsn;
        match writer.end() {
            Ok(out) => {
                self.encoder.tables.commit();
                self.encoder.previous = Some(commit_lsn);
                Ok(out)
            }
            Err(e) => {
                self.encoder.tables.discard();
                Err(e)
            }
        }
    }
}

impl Drop for TxEncoder<'_> {
    fn drop(&mut self) {
        if self.writer.is_some() {
            self.encoder.tables.discard();
        }
    }
}

/// The records of one transaction being written.
#[derive(Debug)]
struct Writer {
    commit: CommitInfo,
    options: EncodeOptions,
    previous: Option<Lsn>,
    /// Records written so far, taken or not: the next one's ordinal.
    written: u64,
    lsn_header: Vec<u8>,
    /// Debezium's transaction id.
    id: String,
    out: Vec<TopicRecord>,
    /// Data events so far (Debezium's count).
    events: u64,
    /// Data events per table, in order of first appearance.
    collections: Vec<(TableName, u64)>,
}

impl Writer {
    fn new(commit: CommitInfo, options: EncodeOptions, previous: Option<Lsn>) -> Self {
        Writer {
            commit,
            options,
            previous,
            written: 0,
            lsn_header: commit.commit_lsn.to_string().into_bytes(),
            id: envelope::transaction_id(&commit),
            out: Vec::new(),
            events: 0,
            collections: Vec::new(),
        }
    }

    fn json(&self, value: &impl Serialize) -> Result<Vec<u8>, EncodeError> {
        serde_json::to_vec(value).map_err(|source| EncodeError::Json {
            commit_lsn: self.commit.commit_lsn,
            source,
        })
    }

    /// Appends a record with the headers every record carries.
    fn push(
        &mut self,
        kind: RecordKind,
        key: Option<Vec<u8>>,
        value: &impl Serialize,
        extra: Vec<(String, Vec<u8>)>,
    ) -> Result<(), EncodeError> {
        let value = self.json(value)?;
        self.push_bytes(kind, key, value, extra);
        Ok(())
    }

    fn push_bytes(&mut self, kind: RecordKind, key: Option<Vec<u8>>, value: Vec<u8>, extra: Vec<(String, Vec<u8>)>) {
        let mut headers = vec![
            (header::FORMAT.to_owned(), FORMAT_VERSION.as_bytes().to_vec()),
            (header::TYPE.to_owned(), kind.as_str().as_bytes().to_vec()),
            (header::COMMIT_LSN.to_owned(), self.lsn_header.clone()),
            (header::ORDINAL.to_owned(), self.written.to_string().into_bytes()),
        ];
        headers.extend(extra);
        self.written += 1;
        self.out.push(TopicRecord { key, value, headers });
    }

    /// A data event of `name` as a Debezium envelope, counted.
    fn envelope(
        &mut self,
        name: &TableName,
        op: &'static str,
        before: Option<ImageJson<'_>>,
        after: Option<ImageJson<'_>>,
    ) -> Vec<u8> {
        self.events += 1;
        let order = match self.collections.iter_mut().find(|(n, _)| n == name) {
            Some((_, count)) => {
                *count += 1;
                *count
            }
            None => {
                self.collections.push((name.clone(), 1));
                1
            }
        };
        let (server, db) = (&self.options.server, &self.options.database);
        let mut out = Vec::with_capacity(ENVELOPE_BYTES);
        EnvelopeOut {
            before,
            after,
            source: SourceOut::new(server, db, &self.commit, name, op == op::READ),
            op,
            ts_ms: envelope::millis(&self.commit),
            transaction: TransactionBlock {
                id: &self.id,
                total_order: self.events,
                data_collection_order: order,
            },
        }
        .write(&mut out);
        out
    }

    /// The name of a live table, which must mean only it.
    fn name_of<'t>(&self, tables: &'t Tables, id: TableId) -> Result<&'t TableName, EncodeError> {
        let name = tables.name(id).ok_or(EncodeError::UnknownTable {
            commit_lsn: self.commit.commit_lsn,
            table: id,
        })?;
        self.check_free(tables, name, id)?;
        Ok(name)
    }

    /// Fails unless `name` is free or already means `id`.
    fn check_free(&self, tables: &Tables, name: &TableName, id: TableId) -> Result<(), EncodeError> {
        match tables.id(name) {
            Some(holder) if holder != id => Err(EncodeError::AmbiguousName {
                commit_lsn: self.commit.commit_lsn,
                name: name.clone(),
                table: id,
                holder,
            }),
            _ => Ok(()),
        }
    }

    /// The name a schema change is recorded under: the table's name before
    /// it, or the new table's own.
    fn schema_name<'t>(
        &self,
        tables: &'t Tables,
        id: TableId,
        change: &'t SchemaChange,
    ) -> Result<&'t TableName, EncodeError> {
        let shape = match change {
            SchemaChange::Define { schema, .. } | SchemaChange::Uncaptured { schema, .. } => Some(schema),
            SchemaChange::Drop => None,
        };
        if let Some(shape) = shape {
            self.check_free(tables, &shape.name, id)?;
            self.check_columns(shape)?;
        }
        match (tables.name(id), shape) {
            (Some(_), _) => self.name_of(tables, id),
            (None, Some(shape)) => Ok(&shape.name),
            (None, None) => Err(EncodeError::UnknownTable {
                commit_lsn: self.commit.commit_lsn,
                table: id,
            }),
        }
    }

    fn check_columns(&self, shape: &TableSchema) -> Result<(), EncodeError> {
        let mut names: Vec<&str> = shape.column_names().collect();
        names.sort_unstable();
        match names.windows(2).find(|w| w.first() == w.last()) {
            Some(w) => Err(EncodeError::DuplicateColumn {
                commit_lsn: self.commit.commit_lsn,
                name: shape.name.clone(),
                column: w.first().copied().unwrap_or_default().to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// A row change: a Debezium envelope keyed by the row's key columns.
    fn row(
        &mut self,
        tables: &Tables,
        id: TableId,
        op: &'static str,
        before: Option<&RowImage>,
        after: Option<&RowImage>,
    ) -> Result<(), EncodeError> {
        let name = self.name_of(tables, id)?;
        let shape = tables.shape(id).ok_or_else(|| EncodeError::NotCaptured {
            commit_lsn: self.commit.commit_lsn,
            table: id,
            name: name.clone(),
        })?;
        let columns = shape.columns.as_slice();
        if let Some(bad) = before.into_iter().chain(after).find(|r| r.0.len() != columns.len()) {
            return Err(EncodeError::RowShape {
                commit_lsn: self.commit.commit_lsn,
                name: name.clone(),
                values: bad.0.len(),
                columns: columns.len(),
            });
        }
        let image = |row| ImageJson {
            columns,
            row,
            keys_only: false,
        };
        // A table without key columns has no key, as in Debezium.
        let keyed = columns.iter().any(|c| c.is_key);
        let key = after.or(before).filter(|_| keyed).map(|row| ImageJson {
            columns,
            row,
            keys_only: true,
        });
        let key = key.map(|k| {
            let mut out = Vec::with_capacity(KEY_BYTES);
            k.write(&mut out);
            out
        });
        let exact = Exact {
            before: before.and_then(|r| exceptions(columns, r)),
            after: after.and_then(|r| exceptions(columns, r)),
        };
        let extra = match exact.before.is_some() || exact.after.is_some() {
            true => vec![(header::EXACT.to_owned(), self.json(&exact)?)],
            false => Vec::new(),
        };
        let value = self.envelope(name, op, before.map(image), after.map(image));
        self.push_bytes(RecordKind::Change, key, value, extra);
        Ok(())
    }

    /// A TRUNCATE: one Debezium truncate event per table, each saying its
    /// place among the statement's tables.
    fn truncate(&mut self, tables: &Tables, truncated: &[TableId]) -> Result<(), EncodeError> {
        if truncated.is_empty() {
            return Err(EncodeError::EmptyTruncate {
                commit_lsn: self.commit.commit_lsn,
            });
        }
        for (k, id) in truncated.iter().enumerate() {
            let name = self.name_of(tables, *id)?;
            let value = self.envelope(name, op::TRUNCATE, None, None);
            let place = format!("{k}/{}", truncated.len()).into_bytes();
            self.push_bytes(
                RecordKind::Truncate,
                None,
                value,
                vec![(header::TRUNCATE.to_owned(), place)],
            );
        }
        Ok(())
    }

    /// The end marker, and the transaction's records.
    fn end(mut self) -> Result<Vec<TopicRecord>, EncodeError> {
        let c = &self.commit;
        let event = EndEvent {
            status: END_STATUS.to_owned(),
            id: std::mem::take(&mut self.id),
            ts_ms: envelope::millis(c),
            event_count: self.events,
            data_collections: std::mem::take(&mut self.collections)
                .into_iter()
                .map(|(name, event_count)| DataCollection {
                    data_collection: name.to_string(),
                    event_count,
                })
                .collect(),
            commit_lsn: c.commit_lsn.to_string(),
            end_lsn: c.end_lsn.to_string(),
            commit_time_us: c.commit_time.unix_micros(),
            xid: c.xid.0,
            record_count: self.written,
            previous_commit_lsn: self.previous.map(|l| l.to_string()),
        };
        self.push(RecordKind::End, None, &event, Vec::new())?;
        Ok(self.out)
    }
}
