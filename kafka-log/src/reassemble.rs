//! Reading the topic back into transactions.

use changelog::{ChangeRecord, CommitInfo, CommitTime, Lsn, RowImage, TableId, TableName, Transaction, Xid};
use serde::Deserialize;

use crate::datum::decode_image;
use crate::envelope::{op, EnvelopeIn, Exact};
use crate::error::ReassemblyError;
use crate::events::{EndEvent, ReadStartEvent, SchemaEvent, END_STATUS};
use crate::record::{header, RecordKind, TopicRecord, FORMAT_VERSION};
use crate::tables::{Staged, Tables};

/// Takes the topic's records in order and gives back each transaction once
/// its end marker is read.
///
/// Strict: anything out of place is an error naming the record's offset,
/// after which the reader is done (its state is no longer defined; a
/// follower starts a new one from its store). With one exception a publisher relies on to recover: a transaction that
/// starts again from its first record (after a publisher lost the rest of
/// it) replaces what was read of it, and is counted in
/// [`Reassembler::restarts`].
#[derive(Debug)]
pub struct Reassembler {
    tables: Staged,
    open: Option<Open>,
    last: Option<Lsn>,
    restarts: u64,
}

/// The transaction being read.
#[derive(Debug)]
struct Open {
    commit_lsn: Lsn,
    first_offset: i64,
    next_ordinal: u64,
    records: Vec<ChangeRecord>,
    /// Data events (row changes and truncates), as the end marker counts.
    events: u64,
    /// The tables of a TRUNCATE read so far, and how many it has.
    truncate: Option<(Vec<TableId>, usize)>,
}

/// What [`Reassembler::pending`] tells of a transaction not yet complete.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Pending {
    /// The transaction.
    pub commit_lsn: Lsn,
    /// Offset of its first record.
    pub first_offset: i64,
    /// Records read of it.
    pub records: u64,
}

/// The headers every record carries.
struct Place {
    kind: RecordKind,
    commit_lsn: Lsn,
    ordinal: u64,
}

impl Reassembler {
    /// A reader whose directory is `tables`: the store's tables as of the
    /// first record it will read.
    pub fn new(tables: Tables) -> Self {
        Reassembler {
            tables: Staged::new(tables),
            open: None,
            last: None,
            restarts: 0,
        }
    }

    /// Reads on from the transaction at `lsn` (the store's last): refuses
    /// transactions at or before it, and expects the next end marker to
    /// name it as the one before.
    pub fn after(mut self, lsn: Lsn) -> Self {
        self.last = Some(lsn);
        self
    }

    /// Takes the next record; a transaction when this was its end marker.
    pub fn push(&mut self, offset: i64, record: &TopicRecord) -> Result<Option<Transaction>, ReassemblyError> {
        let place = place(offset, record)?;
        self.sequence(offset, &place)?;
        self.take(offset, &place, record)
    }

    /// Checks the record's place: next in the open transaction, or the
    /// first of a new one. Opens the transaction.
    fn sequence(&mut self, offset: i64, place: &Place) -> Result<(), ReassemblyError> {
        let commit_lsn = place.commit_lsn;
        if let Some(open) = &self.open {
            if open.commit_lsn != commit_lsn {
                return Err(ReassemblyError::Interleaved {
                    offset,
                    open: open.commit_lsn,
                    found: commit_lsn,
                });
            }
            let expected = open.next_ordinal;
            return match place.ordinal {
                o if o == expected => {
                    self.advance();
                    Ok(())
                }
                0 => {
                    self.restarts += 1;
                    self.tables.discard();
                    self.begin(offset, commit_lsn);
                    Ok(())
                }
                o if o < expected => Err(ReassemblyError::Duplicate {
                    offset,
                    commit_lsn,
                    ordinal: o,
                }),
                found => Err(ReassemblyError::Gap {
                    offset,
                    commit_lsn,
                    expected,
                    found,
                }),
            };
        }
        if let Some(last) = self.last.filter(|l| commit_lsn <= *l) {
            return Err(ReassemblyError::NotAfterLast {
                offset,
                commit_lsn,
                last,
            });
        }
        if place.ordinal != 0 {
            return Err(ReassemblyError::Gap {
                offset,
                commit_lsn,
                expected: 0,
                found: place.ordinal,
            });
        }
        self.begin(offset, commit_lsn);
        Ok(())
    }

    fn begin(&mut self, offset: i64, commit_lsn: Lsn) {
        self.open = Some(Open {
            commit_lsn,
            first_offset: offset,
            next_ordinal: 1,
            records: Vec::new(),
            events: 0,
            truncate: None,
        });
    }

    fn advance(&mut self) {
        if let Some(open) = &mut self.open {
            open.next_ordinal += 1;
        }
    }

    /// Decodes the record into the open transaction.
    fn take(
        &mut self,
        offset: i64,
        place: &Place,
        record: &TopicRecord,
    ) -> Result<Option<Transaction>, ReassemblyError> {
        let Some(open) = &mut self.open else {
            return Ok(None);
        };
        let tables = &mut self.tables;
        if open.truncate.is_some() && place.kind != RecordKind::Truncate {
            return Err(ReassemblyError::TruncateIncomplete {
                offset,
                commit_lsn: open.commit_lsn,
            });
        }
        match place.kind {
            RecordKind::Change => {
                let rec = change(offset, tables.current(), record)?;
                open.events += 1;
                open.records.push(rec);
            }
            RecordKind::Truncate => truncate(offset, tables.current(), record, open)?,
            RecordKind::ReadStart => {
                let event: ReadStartEvent = json(offset, &record.value)?;
                let table = known(offset, tables.current(), event.table)?;
                open.records.push(ChangeRecord::ReadStart { table });
            }
            RecordKind::Schema => {
                let event: SchemaEvent = json(offset, &record.value)?;
                let change = event.change.into_change().ok_or(ReassemblyError::BadEvent {
                    offset,
                    problem: "a backfilled value is not valid",
                })?;
                let table = match (tables.current().id(&event.table), &change) {
                    (Some(id), _) => id,
                    (None, changelog::SchemaChange::Drop) => {
                        return Err(ReassemblyError::UnknownTable {
                            offset,
                            table: event.table,
                        })
                    }
                    (None, _) => tables.current().next_id(),
                };
                tables.edit().apply(table, &change);
                open.records.push(ChangeRecord::Schema { table, change });
            }
            RecordKind::End => {
                let commit = end(offset, record, open, self.last)?;
                tables.commit();
                self.last = Some(commit.commit_lsn);
                let records = self.open.take().map(|o| o.records).unwrap_or_default();
                return Ok(Some(Transaction { commit, records }));
            }
        }
        Ok(None)
    }

    /// Takes the records read so far of the incomplete transaction, for a
    /// reader that keeps a large one out of memory. The transaction still
    /// completes, checked whole, at its end marker, which then carries only
    /// the records read after the last take. If the transaction starts
    /// over ([`Reassembler::restarts`] grows), what was taken is void.
    pub fn take_open(&mut self) -> Option<(Pending, Vec<ChangeRecord>)> {
        let pending = self.pending()?;
        let records = self.open.as_mut().map(|o| std::mem::take(&mut o.records))?;
        Some((pending, records))
    }

    /// Records of the incomplete transaction held in memory.
    pub fn held(&self) -> usize {
        self.open.as_ref().map_or(0, |o| o.records.len())
    }

    /// The transaction read so far, when one is incomplete.
    pub fn pending(&self) -> Option<Pending> {
        self.open.as_ref().map(|o| Pending {
            commit_lsn: o.commit_lsn,
            first_offset: o.first_offset,
            records: o.next_ordinal,
        })
    }

    /// How often a transaction started again from its first record.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The directory as of the last complete transaction.
    pub fn tables(&self) -> &Tables {
        self.tables.committed()
    }

    /// The end of a finite stream: the directory, or an error when a
    /// transaction has no end.
    pub fn finish(self) -> Result<Tables, ReassemblyError> {
        match self.pending() {
            Some(p) => Err(ReassemblyError::Incomplete {
                commit_lsn: p.commit_lsn,
                first_offset: p.first_offset,
                records: p.records,
            }),
            None => Ok(self.tables.into_committed()),
        }
    }
}

/// The headers every record carries.
fn place(offset: i64, record: &TopicRecord) -> Result<Place, ReassemblyError> {
    let text = |name: &'static str| -> Result<&str, ReassemblyError> {
        let raw = record
            .header(name)
            .ok_or(ReassemblyError::MissingHeader { offset, header: name })?;
        std::str::from_utf8(raw).map_err(|_| ReassemblyError::BadHeader {
            offset,
            header: name,
            value: String::from_utf8_lossy(raw).into_owned(),
        })
    };
    let bad = |name: &'static str, value: &str| ReassemblyError::BadHeader {
        offset,
        header: name,
        value: value.to_owned(),
    };
    let version = text(header::FORMAT)?;
    if version != FORMAT_VERSION {
        return Err(ReassemblyError::UnsupportedFormat {
            offset,
            version: version.to_owned(),
        });
    }
    let kind = text(header::TYPE)?;
    let kind = RecordKind::parse(kind).ok_or_else(|| ReassemblyError::UnknownType {
        offset,
        kind: kind.to_owned(),
    })?;
    let lsn = text(header::COMMIT_LSN)?;
    let commit_lsn = lsn.parse().map_err(|_| bad(header::COMMIT_LSN, lsn))?;
    let ordinal = text(header::ORDINAL)?;
    let ordinal = parse_number(ordinal).ok_or_else(|| bad(header::ORDINAL, ordinal))?;
    Ok(Place {
        kind,
        commit_lsn,
        ordinal,
    })
}

/// A decimal number without sign or leading zeros: one text per number.
fn parse_number(s: &str) -> Option<u64> {
    let canonical = s == "0" || (!s.starts_with('0') && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    canonical.then(|| s.parse().ok()).flatten()
}

fn json<'a, T: Deserialize<'a>>(offset: i64, bytes: &'a [u8]) -> Result<T, ReassemblyError> {
    serde_json::from_slice(bytes).map_err(|source| ReassemblyError::Malformed { offset, source })
}

fn known(offset: i64, tables: &Tables, name: TableName) -> Result<TableId, ReassemblyError> {
    tables
        .id(&name)
        .ok_or(ReassemblyError::UnknownTable { offset, table: name })
}

/// A row change from its envelope.
fn change(offset: i64, tables: &Tables, record: &TopicRecord) -> Result<ChangeRecord, ReassemblyError> {
    let envelope: EnvelopeIn = json(offset, &record.value)?;
    let exact: Exact = match record.header(header::EXACT) {
        Some(raw) => json(offset, raw)?,
        None => Exact::default(),
    };
    let name = envelope.source.table_name();
    let table = known(offset, tables, name.clone())?;
    let shape = tables.shape(table).ok_or(ReassemblyError::BadEvent {
        offset,
        problem: "a row change of a table that is not captured",
    })?;
    let image = |object, exact: Option<_>| {
        decode_image(shape, object, exact.unwrap_or_default()).map_err(|source| ReassemblyError::BadRow {
            offset,
            table: name.clone(),
            source,
        })
    };
    let bad = |problem| ReassemblyError::BadEvent { offset, problem };
    let before = envelope.before.map(|o| image(o, exact.before)).transpose()?;
    let after = envelope.after.map(|o| image(o, exact.after)).transpose()?;
    let only_after = |before: Option<RowImage>, after: Option<RowImage>| match (before, after) {
        (None, Some(row)) => Ok(row),
        _ => Err(bad("an insert or read has a before image or no after image")),
    };
    Ok(match &*envelope.op {
        op::CREATE => ChangeRecord::Insert {
            table,
            new: only_after(before, after)?,
        },
        op::READ => ChangeRecord::Read {
            table,
            row: only_after(before, after)?,
        },
        op::UPDATE => ChangeRecord::Update {
            table,
            old: before,
            new: after.ok_or_else(|| bad("an update has no after image"))?,
        },
        op::DELETE => match (before, after) {
            (Some(old), None) => ChangeRecord::Delete { table, old },
            _ => return Err(bad("a delete has an after image or no before image")),
        },
        _ => return Err(bad("a change record's op is not c, u, d or r")),
    })
}

/// One table of a TRUNCATE; the record once all its tables are read.
fn truncate(offset: i64, tables: &Tables, record: &TopicRecord, open: &mut Open) -> Result<(), ReassemblyError> {
    let incomplete = ReassemblyError::TruncateIncomplete {
        offset,
        commit_lsn: open.commit_lsn,
    };
    let raw = record.header(header::TRUNCATE).ok_or(ReassemblyError::MissingHeader {
        offset,
        header: header::TRUNCATE,
    })?;
    let text = String::from_utf8_lossy(raw);
    let (k, n) = text
        .split_once('/')
        .and_then(|(k, n)| {
            Some((
                usize::try_from(parse_number(k)?).ok()?,
                usize::try_from(parse_number(n)?).ok()?,
            ))
        })
        .filter(|(k, n)| k < n)
        .ok_or_else(|| ReassemblyError::BadHeader {
            offset,
            header: header::TRUNCATE,
            value: text.clone().into_owned(),
        })?;
    let envelope: EnvelopeIn = json(offset, &record.value)?;
    if envelope.op != op::TRUNCATE || envelope.before.is_some() || envelope.after.is_some() {
        return Err(ReassemblyError::BadEvent {
            offset,
            problem: "a truncate record is not a truncate event without images",
        });
    }
    let table = known(offset, tables, envelope.source.table_name())?;
    let (mut listed, of) = open.truncate.take().unwrap_or((Vec::new(), n));
    if listed.len() != k || of != n {
        return Err(incomplete);
    }
    listed.push(table);
    open.events += 1;
    if listed.len() == n {
        open.records.push(ChangeRecord::Truncate { tables: listed });
    } else {
        open.truncate = Some((listed, n));
    }
    Ok(())
}

/// The commit from an end marker, once its counts agree with what was read.
fn end(offset: i64, record: &TopicRecord, open: &Open, last: Option<Lsn>) -> Result<CommitInfo, ReassemblyError> {
    let event: EndEvent = json(offset, &record.value)?;
    let bad = |problem| ReassemblyError::BadEvent { offset, problem };
    if event.status != END_STATUS {
        return Err(bad("an end marker's status is not END"));
    }
    let commit_lsn: Lsn = event
        .commit_lsn
        .parse()
        .map_err(|_| bad("an end marker's commit LSN is not an LSN"))?;
    if commit_lsn != open.commit_lsn {
        return Err(bad("an end marker's commit LSN is not its header's"));
    }
    let end_lsn: Lsn = event
        .end_lsn
        .parse()
        .map_err(|_| bad("an end marker's end LSN is not an LSN"))?;
    let previous = match &event.previous_commit_lsn {
        Some(text) => Some(
            text.parse::<Lsn>()
                .map_err(|_| bad("an end marker's previous commit LSN is not an LSN"))?,
        ),
        None => None,
    };
    if let Some(last) = last.filter(|l| previous != Some(*l)) {
        return Err(ReassemblyError::Lost {
            offset,
            commit_lsn,
            previous,
            last,
        });
    }
    let read = open.next_ordinal.saturating_sub(1);
    for (what, stated, found) in [
        ("records", event.record_count, read),
        ("data events", event.event_count, open.events),
    ] {
        if stated != found {
            return Err(ReassemblyError::CountMismatch {
                offset,
                commit_lsn,
                what,
                stated,
                found,
            });
        }
    }
    Ok(CommitInfo {
        commit_lsn,
        end_lsn,
        commit_time: CommitTime::from_unix_micros(event.commit_time_us),
        xid: Xid(event.xid),
    })
}
