//! An encoder for the decoder's tests and fuzz target.
//!
//! Production code never encodes `pgoutput` (the server does); this exists
//! so round-trip tests can state "parse is the inverse of encode" and the
//! fuzz target can check that the decoder is canonical.
// Lengths beyond the wire format's range are a bug in the test generating
// them, so failing loudly is right here.
#![allow(clippy::expect_used)]

use super::message::*;

impl Message {
    /// Appends the wire form of this message to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        self.encode_body(out);
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Begin(b) => {
                put_u64(out, b.final_lsn.0);
                out.extend_from_slice(&b.commit_time_us.to_be_bytes());
                out.extend_from_slice(&b.xid.to_be_bytes());
            }
            Message::Commit(c) => {
                out.push(c.flags);
                put_u64(out, c.commit_lsn.0);
                put_u64(out, c.end_lsn.0);
                out.extend_from_slice(&c.commit_time_us.to_be_bytes());
            }
            Message::Origin(o) => {
                put_u64(out, o.commit_lsn.0);
                put_cstr(out, &o.name);
            }
            Message::Relation(r) => {
                out.extend_from_slice(&r.rel_id.to_be_bytes());
                put_cstr(out, &r.namespace);
                put_cstr(out, &r.name);
                out.push(r.replica_identity.to_byte());
                put_u16_len(out, r.columns.len());
                for c in &r.columns {
                    out.push(if c.is_key { COLUMN_FLAG_KEY } else { 0 });
                    put_cstr(out, &c.name);
                    out.extend_from_slice(&c.type_oid.to_be_bytes());
                    out.extend_from_slice(&c.type_modifier.to_be_bytes());
                }
            }
            Message::Type(t) => {
                out.extend_from_slice(&t.type_oid.to_be_bytes());
                put_cstr(out, &t.namespace);
                put_cstr(out, &t.name);
            }
            Message::Insert(i) => {
                out.extend_from_slice(&i.rel_id.to_be_bytes());
                out.push(NEW_TUPLE_TAG);
                put_tuple(out, &i.new);
            }
            Message::Update(u) => {
                out.extend_from_slice(&u.rel_id.to_be_bytes());
                if let Some(old) = &u.old {
                    put_old(out, old);
                }
                out.push(NEW_TUPLE_TAG);
                put_tuple(out, &u.new);
            }
            Message::Delete(d) => {
                out.extend_from_slice(&d.rel_id.to_be_bytes());
                put_old(out, &d.old);
            }
            Message::Truncate(t) => {
                put_u32_len(out, t.rel_ids.len());
                out.push(t.options);
                for id in &t.rel_ids {
                    out.extend_from_slice(&id.to_be_bytes());
                }
            }
            Message::LogicalMessage(m) => {
                out.push(if m.transactional { MESSAGE_FLAG_TRANSACTIONAL } else { 0 });
                put_u64(out, m.lsn.0);
                put_cstr(out, &m.prefix);
                put_u32_len(out, m.content.len());
                out.extend_from_slice(&m.content);
            }
            Message::StreamStart(s) => {
                out.extend_from_slice(&s.xid.to_be_bytes());
                out.push(u8::from(s.first_segment));
            }
            Message::StreamStop => {}
            Message::StreamCommit(c) => {
                out.extend_from_slice(&c.xid.to_be_bytes());
                out.push(c.flags);
                put_u64(out, c.commit_lsn.0);
                put_u64(out, c.end_lsn.0);
                out.extend_from_slice(&c.commit_time_us.to_be_bytes());
            }
            Message::StreamAbort(a) => {
                out.extend_from_slice(&a.xid.to_be_bytes());
                out.extend_from_slice(&a.subxid.to_be_bytes());
            }
        }
    }
}

impl InStream {
    /// Appends the wire form of this message as sent inside a stream block.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.message.tag());
        if let Some(xid) = self.xid {
            out.extend_from_slice(&xid.to_be_bytes());
        }
        self.message.encode_body(out);
    }
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u16_len(out: &mut Vec<u8>, len: usize) {
    let len = u16::try_from(len).expect("count fits the wire's Int16");
    out.extend_from_slice(&len.to_be_bytes());
}

fn put_u32_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("length fits the wire's Int32");
    out.extend_from_slice(&len.to_be_bytes());
}

fn put_cstr(out: &mut Vec<u8>, s: &str) {
    assert!(!s.contains('\0'), "wire strings cannot contain NUL");
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn put_old(out: &mut Vec<u8>, old: &OldTuple) {
    match old {
        OldTuple::Key(t) => {
            out.push(KEY_TUPLE_TAG);
            put_tuple(out, t);
        }
        OldTuple::Full(t) => {
            out.push(OLD_TUPLE_TAG);
            put_tuple(out, t);
        }
    }
}

fn put_tuple(out: &mut Vec<u8>, tuple: &TupleData) {
    put_u16_len(out, tuple.values.len());
    for value in &tuple.values {
        match value {
            TupleValue::Null => out.push(NULL_VALUE_TAG),
            TupleValue::UnchangedToast => out.push(UNCHANGED_TOAST_VALUE_TAG),
            TupleValue::Text(b) => {
                out.push(TEXT_VALUE_TAG);
                put_u32_len(out, b.len());
                out.extend_from_slice(b);
            }
            TupleValue::Binary(b) => {
                out.push(BINARY_VALUE_TAG);
                put_u32_len(out, b.len());
                out.extend_from_slice(b);
            }
        }
    }
}
