//! `Message::parse`: one payload in, one message out.

use bytes::Bytes;

use super::message::*;
use super::reader::Reader;
use super::DecodeError;

/// Smallest encoding of one `Relation` column: flags, empty name, type OID,
/// type modifier. Bounds the column count against the bytes left.
const MIN_RELATION_COLUMN_LEN: usize = 1 + 1 + 4 + 4;
/// Smallest encoding of one tuple column: its kind byte.
const MIN_TUPLE_VALUE_LEN: usize = 1;
/// Encoding of one relation OID in `Truncate`.
const REL_ID_LEN: usize = 4;

impl Message {
    /// Decodes one complete `pgoutput` payload (the data of one `XLogData`
    /// message) received outside a stream block.
    ///
    /// Column values and logical message contents are zero-copy slices of
    /// `buf`. The whole payload must be consumed: trailing bytes are an
    /// error, as are unknown tags and out-of-range bytes in enumerated
    /// fields.
    pub fn parse(buf: &Bytes) -> Result<Message, DecodeError> {
        let mut r = Reader::new(buf);
        let tag = r.u8("message tag")?;
        let (message, name) = match tag {
            BEGIN_TAG => (Message::Begin(parse_begin(&mut r)?), "Begin"),
            COMMIT_TAG => (Message::Commit(parse_commit(&mut r)?), "Commit"),
            STREAM_START_TAG => (Message::StreamStart(parse_stream_start(&mut r)?), "Stream Start"),
            STREAM_COMMIT_TAG => (Message::StreamCommit(parse_stream_commit(&mut r)?), "Stream Commit"),
            STREAM_ABORT_TAG => (Message::StreamAbort(parse_stream_abort(&mut r)?), "Stream Abort"),
            tag => match parse_body(tag, &mut r)? {
                Some(parsed) => parsed,
                None => return Err(DecodeError::UnknownTag { offset: 0, tag }),
            },
        };
        r.finish(name)?;
        Ok(message)
    }

    /// Decodes one payload received inside a stream block (after a
    /// `StreamStart`, up to and including its `StreamStop`): the messages
    /// that carry an xid there are read with it, and messages that cannot
    /// occur in a block are [`DecodeError::NotInStream`].
    pub fn parse_in_stream(buf: &Bytes) -> Result<InStream, DecodeError> {
        let mut r = Reader::new(buf);
        let tag = r.u8("message tag")?;
        let (xid, (message, name)) = match tag {
            STREAM_STOP_TAG => (None, (Message::StreamStop, "Stream Stop")),
            ORIGIN_TAG => (None, (Message::Origin(parse_origin(&mut r)?), "Origin")),
            BEGIN_TAG | COMMIT_TAG | STREAM_START_TAG | STREAM_COMMIT_TAG | STREAM_ABORT_TAG => {
                return Err(DecodeError::NotInStream { tag })
            }
            tag => {
                let xid = r.u32("streamed transaction xid")?;
                match parse_body(tag, &mut r)? {
                    Some(parsed) => (Some(xid), parsed),
                    None => return Err(DecodeError::UnknownTag { offset: 0, tag }),
                }
            }
        };
        r.finish(name)?;
        Ok(InStream { xid, message })
    }
}

/// The messages that read the same in and out of a stream block once the
/// block's xid is taken off; `None` for any other tag.
fn parse_body(tag: u8, r: &mut Reader<'_>) -> Result<Option<(Message, &'static str)>, DecodeError> {
    Ok(Some(match tag {
        ORIGIN_TAG => (Message::Origin(parse_origin(r)?), "Origin"),
        RELATION_TAG => (Message::Relation(parse_relation(r)?), "Relation"),
        TYPE_TAG => (Message::Type(parse_type(r)?), "Type"),
        INSERT_TAG => (Message::Insert(parse_insert(r)?), "Insert"),
        UPDATE_TAG => (Message::Update(parse_update(r)?), "Update"),
        DELETE_TAG => (Message::Delete(parse_delete(r)?), "Delete"),
        TRUNCATE_TAG => (Message::Truncate(parse_truncate(r)?), "Truncate"),
        LOGICAL_MESSAGE_TAG => (Message::LogicalMessage(parse_logical_message(r)?), "Message"),
        _ => return Ok(None),
    }))
}

fn parse_stream_start(r: &mut Reader<'_>) -> Result<StreamStartBody, DecodeError> {
    let xid = r.u32("Stream Start xid")?;
    let offset = r.offset();
    let first_segment = match r.u8("Stream Start first-segment flag")? {
        0 => false,
        1 => true,
        value => {
            return Err(DecodeError::InvalidByte {
                offset,
                field: "Stream Start first-segment flag",
                value,
            })
        }
    };
    Ok(StreamStartBody { xid, first_segment })
}

fn parse_stream_commit(r: &mut Reader<'_>) -> Result<StreamCommitBody, DecodeError> {
    Ok(StreamCommitBody {
        xid: r.u32("Stream Commit xid")?,
        flags: r.u8("Stream Commit flags")?,
        commit_lsn: r.lsn("Stream Commit LSN")?,
        end_lsn: r.lsn("Stream Commit end LSN")?,
        commit_time_us: r.i64("Stream Commit commit time")?,
    })
}

fn parse_stream_abort(r: &mut Reader<'_>) -> Result<StreamAbortBody, DecodeError> {
    Ok(StreamAbortBody {
        xid: r.u32("Stream Abort xid")?,
        subxid: r.u32("Stream Abort subtransaction xid")?,
    })
}

fn parse_begin(r: &mut Reader<'_>) -> Result<BeginBody, DecodeError> {
    Ok(BeginBody {
        final_lsn: r.lsn("Begin final LSN")?,
        commit_time_us: r.i64("Begin commit time")?,
        xid: r.u32("Begin xid")?,
    })
}

fn parse_commit(r: &mut Reader<'_>) -> Result<CommitBody, DecodeError> {
    Ok(CommitBody {
        flags: r.u8("Commit flags")?,
        commit_lsn: r.lsn("Commit LSN")?,
        end_lsn: r.lsn("Commit end LSN")?,
        commit_time_us: r.i64("Commit commit time")?,
    })
}

fn parse_origin(r: &mut Reader<'_>) -> Result<OriginBody, DecodeError> {
    Ok(OriginBody {
        commit_lsn: r.lsn("Origin commit LSN")?,
        name: r.cstr("Origin name")?,
    })
}

fn parse_relation(r: &mut Reader<'_>) -> Result<RelationBody, DecodeError> {
    let rel_id = r.u32("Relation OID")?;
    let namespace = r.cstr("Relation namespace")?;
    let name = r.cstr("Relation name")?;
    let offset = r.offset();
    let identity = r.u8("Relation replica identity")?;
    let replica_identity = ReplicaIdentity::from_byte(identity).ok_or(DecodeError::InvalidByte {
        offset,
        field: "Relation replica identity",
        value: identity,
    })?;
    let offset = r.offset();
    let count = r.u16("Relation column count")?;
    let count = r.count(
        u64::from(count),
        MIN_RELATION_COLUMN_LEN,
        "Relation column count",
        offset,
    )?;
    let mut columns = Vec::with_capacity(count);
    for _ in 0..count {
        let offset = r.offset();
        let flags = r.u8("Relation column flags")?;
        let is_key = match flags {
            0 => false,
            COLUMN_FLAG_KEY => true,
            value => {
                return Err(DecodeError::InvalidByte {
                    offset,
                    field: "Relation column flags",
                    value,
                })
            }
        };
        columns.push(RelationColumn {
            is_key,
            name: r.cstr("Relation column name")?,
            type_oid: r.u32("Relation column type OID")?,
            type_modifier: r.i32("Relation column type modifier")?,
        });
    }
    Ok(RelationBody {
        rel_id,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

fn parse_type(r: &mut Reader<'_>) -> Result<TypeBody, DecodeError> {
    Ok(TypeBody {
        type_oid: r.u32("Type OID")?,
        namespace: r.cstr("Type namespace")?,
        name: r.cstr("Type name")?,
    })
}

fn parse_insert(r: &mut Reader<'_>) -> Result<InsertBody, DecodeError> {
    let rel_id = r.u32("Insert relation OID")?;
    expect_byte(r, NEW_TUPLE_TAG, "Insert new tuple marker 'N'")?;
    Ok(InsertBody {
        rel_id,
        new: parse_tuple(r)?,
    })
}

fn parse_update(r: &mut Reader<'_>) -> Result<UpdateBody, DecodeError> {
    let rel_id = r.u32("Update relation OID")?;
    let offset = r.offset();
    let old = match r.u8("Update tuple marker 'K', 'O' or 'N'")? {
        KEY_TUPLE_TAG => Some(OldTuple::Key(parse_tuple(r)?)),
        OLD_TUPLE_TAG => Some(OldTuple::Full(parse_tuple(r)?)),
        NEW_TUPLE_TAG => None,
        value => {
            return Err(DecodeError::InvalidByte {
                offset,
                field: "Update tuple marker",
                value,
            })
        }
    };
    if old.is_some() {
        expect_byte(r, NEW_TUPLE_TAG, "Update new tuple marker 'N'")?;
    }
    Ok(UpdateBody {
        rel_id,
        old,
        new: parse_tuple(r)?,
    })
}

fn parse_delete(r: &mut Reader<'_>) -> Result<DeleteBody, DecodeError> {
    let rel_id = r.u32("Delete relation OID")?;
    let offset = r.offset();
    let old = match r.u8("Delete old tuple marker 'K' or 'O'")? {
        KEY_TUPLE_TAG => OldTuple::Key(parse_tuple(r)?),
        OLD_TUPLE_TAG => OldTuple::Full(parse_tuple(r)?),
        value => {
            return Err(DecodeError::InvalidByte {
                offset,
                field: "Delete old tuple marker",
                value,
            })
        }
    };
    Ok(DeleteBody { rel_id, old })
}

fn parse_truncate(r: &mut Reader<'_>) -> Result<TruncateBody, DecodeError> {
    let offset = r.offset();
    let count = r.u32("Truncate relation count")?;
    let options = r.u8("Truncate options")?;
    let count = r.count(u64::from(count), REL_ID_LEN, "Truncate relation count", offset)?;
    let mut rel_ids = Vec::with_capacity(count);
    for _ in 0..count {
        rel_ids.push(r.u32("Truncate relation OID")?);
    }
    Ok(TruncateBody { options, rel_ids })
}

fn parse_logical_message(r: &mut Reader<'_>) -> Result<LogicalMessageBody, DecodeError> {
    let offset = r.offset();
    let transactional = match r.u8("Message flags")? {
        0 => false,
        MESSAGE_FLAG_TRANSACTIONAL => true,
        value => {
            return Err(DecodeError::InvalidByte {
                offset,
                field: "Message flags",
                value,
            })
        }
    };
    Ok(LogicalMessageBody {
        transactional,
        lsn: r.lsn("Message LSN")?,
        prefix: r.cstr("Message prefix")?,
        content: r.len_prefixed("Message content length")?,
    })
}

fn parse_tuple(r: &mut Reader<'_>) -> Result<TupleData, DecodeError> {
    let offset = r.offset();
    let count = r.u16("tuple column count")?;
    let count = r.count(u64::from(count), MIN_TUPLE_VALUE_LEN, "tuple column count", offset)?;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let offset = r.offset();
        let value = match r.u8("tuple column kind")? {
            NULL_VALUE_TAG => TupleValue::Null,
            UNCHANGED_TOAST_VALUE_TAG => TupleValue::UnchangedToast,
            TEXT_VALUE_TAG => TupleValue::Text(r.len_prefixed("text value length")?),
            BINARY_VALUE_TAG => TupleValue::Binary(r.len_prefixed("binary value length")?),
            value => {
                return Err(DecodeError::InvalidByte {
                    offset,
                    field: "tuple column kind",
                    value,
                })
            }
        };
        values.push(value);
    }
    Ok(TupleData { values })
}

fn expect_byte(r: &mut Reader<'_>, want: u8, field: &'static str) -> Result<(), DecodeError> {
    let offset = r.offset();
    match r.u8(field)? {
        got if got == want => Ok(()),
        value => Err(DecodeError::InvalidByte { offset, field, value }),
    }
}
