//! A bounds-checked cursor over one payload.
//!
//! Every read checks the remaining length first and reports the offset and
//! the field name on failure, so the message parsers above it contain no
//! arithmetic on untrusted lengths.

use bytes::Bytes;

use super::DecodeError;
use changelog::Lsn;

pub(super) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(super) fn offset(&self) -> usize {
        self.pos
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub(super) fn remaining(&self) -> usize {
        self.rest().len()
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.rest().first_chunk::<N>().ok_or(DecodeError::UnexpectedEnd {
            offset: self.pos,
            expected: field,
        })?;
        self.pos += N;
        Ok(*bytes)
    }

    pub(super) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(field).map(u8::from_be_bytes)
    }

    pub(super) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    pub(super) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub(super) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.array(field).map(i32::from_be_bytes)
    }

    pub(super) fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.array(field).map(i64::from_be_bytes)
    }

    pub(super) fn lsn(&mut self, field: &'static str) -> Result<Lsn, DecodeError> {
        self.array(field).map(u64::from_be_bytes).map(Lsn)
    }

    /// Reads a count of items that each take at least `min_item_len` bytes,
    /// and rejects a count the rest of the payload cannot hold. The result is
    /// therefore safe to pass to `Vec::with_capacity`.
    pub(super) fn count(
        &mut self,
        raw: u64,
        min_item_len: usize,
        field: &'static str,
        offset: usize,
    ) -> Result<usize, DecodeError> {
        let remaining = self.remaining();
        let fits = usize::try_from(raw)
            .ok()
            .filter(|&n| n.checked_mul(min_item_len).is_some_and(|len| len <= remaining));
        fits.ok_or(DecodeError::LengthOutOfRange {
            offset,
            field,
            value: raw,
            remaining,
        })
    }

    /// Reads an `Int32` length followed by that many bytes, returned as a
    /// zero-copy slice of the payload.
    pub(super) fn len_prefixed(&mut self, len_field: &'static str) -> Result<Bytes, DecodeError> {
        let offset = self.pos;
        let raw = self.u32(len_field)?;
        let len = self.count(u64::from(raw), 1, len_field, offset)?;
        let start = self.pos;
        self.pos += len;
        // In range: `count` checked `len <= remaining`.
        Ok(self.buf.slice(start..self.pos))
    }

    /// Reads a NUL-terminated UTF-8 string.
    pub(super) fn cstr(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let offset = self.pos;
        let rest = self.rest();
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::UnterminatedString { offset, field })?;
        let text = rest
            .get(..nul)
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .ok_or(DecodeError::InvalidUtf8 { offset, field })?;
        self.pos += nul + 1;
        Ok(text.to_owned())
    }

    /// Fails unless the whole payload was consumed.
    pub(super) fn finish(&self, message: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            remaining => Err(DecodeError::TrailingBytes {
                offset: self.pos,
                remaining,
                message,
            }),
        }
    }
}
