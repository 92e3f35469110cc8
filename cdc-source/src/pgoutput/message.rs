//! The message types of `pgoutput` protocol versions 1 and 2, with their
//! wire tags.
//!
//! Version 2 adds streamed in-progress transactions: a transaction larger
//! than the server's `logical_decoding_work_mem` is sent in blocks
//! (`StreamStart` .. `StreamStop`) before it ends, then `StreamCommit` or
//! `StreamAbort`. Inside a block, row changes, descriptions and
//! transactional messages carry the xid of the (sub)transaction that made
//! them ([`InStream`]).
//!
//! Field names follow the PostgreSQL documentation, "Logical Replication
//! Message Formats". Times are microseconds since 2000-01-01 00:00:00 UTC
//! (the Postgres epoch), exactly as sent; converting them is left to the
//! caller so that no precision is lost here.

use bytes::Bytes;
use changelog::Lsn;

/// Tag of [`Message::Begin`].
pub const BEGIN_TAG: u8 = b'B';
/// Tag of [`Message::Commit`].
pub const COMMIT_TAG: u8 = b'C';
/// Tag of [`Message::Origin`].
pub const ORIGIN_TAG: u8 = b'O';
/// Tag of [`Message::Relation`].
pub const RELATION_TAG: u8 = b'R';
/// Tag of [`Message::Type`].
pub const TYPE_TAG: u8 = b'Y';
/// Tag of [`Message::Insert`].
pub const INSERT_TAG: u8 = b'I';
/// Tag of [`Message::Update`].
pub const UPDATE_TAG: u8 = b'U';
/// Tag of [`Message::Delete`].
pub const DELETE_TAG: u8 = b'D';
/// Tag of [`Message::Truncate`].
pub const TRUNCATE_TAG: u8 = b'T';
/// Tag of [`Message::LogicalMessage`] (`pg_logical_emit_message`).
pub const LOGICAL_MESSAGE_TAG: u8 = b'M';
/// Tag of [`Message::StreamStart`].
pub const STREAM_START_TAG: u8 = b'S';
/// Tag of [`Message::StreamStop`].
pub const STREAM_STOP_TAG: u8 = b'E';
/// Tag of [`Message::StreamCommit`].
pub const STREAM_COMMIT_TAG: u8 = b'c';
/// Tag of [`Message::StreamAbort`].
pub const STREAM_ABORT_TAG: u8 = b'A';

/// Marks the new row image in `Insert` and `Update`.
pub const NEW_TUPLE_TAG: u8 = b'N';
/// Marks an old row image holding only the replica identity key columns.
pub const KEY_TUPLE_TAG: u8 = b'K';
/// Marks a full old row image (`REPLICA IDENTITY FULL`).
pub const OLD_TUPLE_TAG: u8 = b'O';

/// Column kind: SQL NULL.
pub const NULL_VALUE_TAG: u8 = b'n';
/// Column kind: a TOASTed value the change did not touch, so it was not sent.
pub const UNCHANGED_TOAST_VALUE_TAG: u8 = b'u';
/// Column kind: a value in the type's text output form.
pub const TEXT_VALUE_TAG: u8 = b't';
/// Column kind: a value in the type's binary send form.
pub const BINARY_VALUE_TAG: u8 = b'b';

/// `Truncate` option bit: `TRUNCATE ... CASCADE`.
pub const TRUNCATE_CASCADE: u8 = 1;
/// `Truncate` option bit: `TRUNCATE ... RESTART IDENTITY`.
pub const TRUNCATE_RESTART_IDENTITY: u8 = 2;

/// `Relation` column flag: the column is part of the replica identity key.
pub const COLUMN_FLAG_KEY: u8 = 1;
/// `LogicalMessage` flag: the message was emitted transactionally.
pub const MESSAGE_FLAG_TRANSACTIONAL: u8 = 1;

/// One decoded `pgoutput` message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Start of a committed transaction.
    Begin(BeginBody),
    /// End of the transaction opened by the last `Begin`.
    Commit(CommitBody),
    /// The transaction was replicated into this server from another origin.
    Origin(OriginBody),
    /// Describes a table; sent before its first change in a session and
    /// again after its definition changes.
    Relation(RelationBody),
    /// Describes a non-builtin column type.
    Type(TypeBody),
    /// A row was inserted.
    Insert(InsertBody),
    /// A row was updated.
    Update(UpdateBody),
    /// A row was deleted.
    Delete(DeleteBody),
    /// One or more tables were truncated.
    Truncate(TruncateBody),
    /// A message written with `pg_logical_emit_message`.
    LogicalMessage(LogicalMessageBody),
    /// A block of an in-progress transaction's changes begins.
    StreamStart(StreamStartBody),
    /// The open block ends.
    StreamStop,
    /// A streamed transaction committed.
    StreamCommit(StreamCommitBody),
    /// A streamed transaction, or one of its subtransactions, aborted.
    StreamAbort(StreamAbortBody),
}

impl Message {
    /// The wire tag of this message.
    pub fn tag(&self) -> u8 {
        match self {
            Message::Begin(_) => BEGIN_TAG,
            Message::Commit(_) => COMMIT_TAG,
            Message::Origin(_) => ORIGIN_TAG,
            Message::Relation(_) => RELATION_TAG,
            Message::Type(_) => TYPE_TAG,
            Message::Insert(_) => INSERT_TAG,
            Message::Update(_) => UPDATE_TAG,
            Message::Delete(_) => DELETE_TAG,
            Message::Truncate(_) => TRUNCATE_TAG,
            Message::LogicalMessage(_) => LOGICAL_MESSAGE_TAG,
            Message::StreamStart(_) => STREAM_START_TAG,
            Message::StreamStop => STREAM_STOP_TAG,
            Message::StreamCommit(_) => STREAM_COMMIT_TAG,
            Message::StreamAbort(_) => STREAM_ABORT_TAG,
        }
    }

    /// Whether, inside a stream block, this message carries the xid of the
    /// (sub)transaction that made it.
    pub fn carries_xid_in_stream(&self) -> bool {
        matches!(
            self,
            Message::Relation(_)
                | Message::Type(_)
                | Message::Insert(_)
                | Message::Update(_)
                | Message::Delete(_)
                | Message::Truncate(_)
                | Message::LogicalMessage(_)
        )
    }
}

/// A message inside a stream block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InStream {
    /// The (sub)transaction that made it; `None` for the messages that do
    /// not carry one (`StreamStop`, `Origin`).
    pub xid: Option<u32>,
    /// The message.
    pub message: Message,
}

/// `Stream Start` (`S`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStartBody {
    /// The top-level transaction the block belongs to.
    pub xid: u32,
    /// The transaction's first block: anything held for this xid before
    /// (from a session the server no longer counts) starts over.
    pub first_segment: bool,
}

/// `Stream Commit` (`c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCommitBody {
    /// The top-level transaction.
    pub xid: u32,
    /// Unused (always 0); kept as received.
    pub flags: u8,
    /// The LSN of the commit record.
    pub commit_lsn: Lsn,
    /// The LSN just past the commit record.
    pub end_lsn: Lsn,
    /// Commit time, microseconds since 2000-01-01 UTC.
    pub commit_time_us: i64,
}

/// `Stream Abort` (`A`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamAbortBody {
    /// The top-level transaction.
    pub xid: u32,
    /// The transaction that aborted: `xid` itself, or one of its
    /// subtransactions (`ROLLBACK TO SAVEPOINT`).
    pub subxid: u32,
}

/// `Begin` (`B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeginBody {
    /// The LSN of the transaction's commit record.
    pub final_lsn: Lsn,
    /// Commit time, microseconds since 2000-01-01 UTC.
    pub commit_time_us: i64,
    /// The transaction id.
    pub xid: u32,
}

/// `Commit` (`C`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitBody {
    /// Unused by protocol version 1 (always 0); kept as received.
    pub flags: u8,
    /// The LSN of the commit record (equals the `Begin`'s `final_lsn`).
    pub commit_lsn: Lsn,
    /// The LSN just past the commit record: where streaming resumes.
    pub end_lsn: Lsn,
    /// Commit time, microseconds since 2000-01-01 UTC.
    pub commit_time_us: i64,
}

/// `Origin` (`O`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginBody {
    /// The commit LSN on the origin server.
    pub commit_lsn: Lsn,
    /// The origin's name.
    pub name: String,
}

/// How a table identifies the old row of an update or delete
/// (`pg_class.relreplident`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaIdentity {
    /// `d`: the primary key (nothing if there is none).
    Default,
    /// `n`: nothing; updates and deletes carry no old row.
    Nothing,
    /// `f`: all columns.
    Full,
    /// `i`: the columns of a chosen unique index.
    Index,
}

impl ReplicaIdentity {
    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            ReplicaIdentity::Default => b'd',
            ReplicaIdentity::Nothing => b'n',
            ReplicaIdentity::Full => b'f',
            ReplicaIdentity::Index => b'i',
        }
    }

    /// Decodes the wire byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b'd' => Some(ReplicaIdentity::Default),
            b'n' => Some(ReplicaIdentity::Nothing),
            b'f' => Some(ReplicaIdentity::Full),
            b'i' => Some(ReplicaIdentity::Index),
            _ => None,
        }
    }
}

/// One column of a [`RelationBody`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity key.
    pub is_key: bool,
    /// Column name.
    pub name: String,
    /// `pg_type` OID of the column type.
    pub type_oid: u32,
    /// Type modifier (`atttypmod`), -1 when none.
    pub type_modifier: i32,
}

/// `Relation` (`R`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationBody {
    /// The table's OID, used by row messages to refer to it.
    pub rel_id: u32,
    /// Schema name; empty for `pg_catalog`.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// The table's replica identity setting.
    pub replica_identity: ReplicaIdentity,
    /// The published columns, in the order row messages send them.
    pub columns: Vec<RelationColumn>,
}

/// `Type` (`Y`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeBody {
    /// The type's OID.
    pub type_oid: u32,
    /// Schema name; empty for `pg_catalog`.
    pub namespace: String,
    /// Type name.
    pub name: String,
}

/// One column value of a row image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue {
    /// SQL NULL.
    Null,
    /// A TOASTed value that this change did not modify and so was not sent.
    /// It is not NULL: the value is whatever the previous row version held.
    UnchangedToast,
    /// The type's text output, byte for byte (a slice of the payload).
    Text(Bytes),
    /// The type's binary send form (only with the `binary` option).
    Binary(Bytes),
}

/// A row image: one value per column of the relation, in relation order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TupleData {
    /// The column values.
    pub values: Vec<TupleValue>,
}

/// The old row image carried by an update or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// `K`: the replica identity key columns; the others are sent as NULL.
    Key(TupleData),
    /// `O`: every column (`REPLICA IDENTITY FULL`).
    Full(TupleData),
}

impl OldTuple {
    /// The row image, whichever kind it is.
    pub fn tuple(&self) -> &TupleData {
        match self {
            OldTuple::Key(tuple) | OldTuple::Full(tuple) => tuple,
        }
    }
}

/// `Insert` (`I`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertBody {
    /// OID of the table, as in its `Relation` message.
    pub rel_id: u32,
    /// The inserted row.
    pub new: TupleData,
}

/// `Update` (`U`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateBody {
    /// OID of the table, as in its `Relation` message.
    pub rel_id: u32,
    /// The old row: present with `REPLICA IDENTITY FULL`, or when the update
    /// changed the key columns; absent otherwise.
    pub old: Option<OldTuple>,
    /// The new row. Unmodified TOASTed columns are
    /// [`TupleValue::UnchangedToast`].
    pub new: TupleData,
}

/// `Delete` (`D`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteBody {
    /// OID of the table, as in its `Relation` message.
    pub rel_id: u32,
    /// The deleted row's key (or full row with `REPLICA IDENTITY FULL`).
    pub old: OldTuple,
}

/// `Truncate` (`T`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncateBody {
    /// Option bits ([`TRUNCATE_CASCADE`], [`TRUNCATE_RESTART_IDENTITY`]),
    /// kept as received.
    pub options: u8,
    /// OIDs of the truncated tables.
    pub rel_ids: Vec<u32>,
}

impl TruncateBody {
    /// `TRUNCATE ... CASCADE`.
    pub fn cascade(&self) -> bool {
        self.options & TRUNCATE_CASCADE != 0
    }

    /// `TRUNCATE ... RESTART IDENTITY`.
    pub fn restart_identity(&self) -> bool {
        self.options & TRUNCATE_RESTART_IDENTITY != 0
    }
}

/// `Message` (`M`): a logical decoding message (`pg_logical_emit_message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalMessageBody {
    /// Emitted inside the transaction (delivered between its `Begin` and
    /// `Commit`) rather than immediately.
    pub transactional: bool,
    /// The LSN of the message.
    pub lsn: Lsn,
    /// The prefix given by the emitter.
    pub prefix: String,
    /// The content (a slice of the payload).
    pub content: Bytes,
}
