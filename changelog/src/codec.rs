//! Compact byte encodings for row images and varints.
//!
//! Row images sit on the hot path of every as-of scan, so they use a
//! hand-written format that decodes into borrowed slices without allocating:
//!
//! ```text
//! row   := varint(ncols) datum*
//! datum := varint(0)                 NULL
//!        | varint(1)                 missing (not known)
//!        | varint(len + 2) bytes     text value of `len` bytes
//! ```
//!
//! Unchanged-TOAST markers are never encoded: the store resolves them first.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::value::{Datum, DatumRef};

/// Bytes that do not form a valid encoding. Only possible with a damaged
/// store, since the store itself wrote them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt encoding at byte {offset}: {what}")]
pub struct CorruptEncoding {
    /// Where decoding stopped.
    pub offset: usize,
    /// What was expected there.
    pub what: &'static str,
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint from `buf` at `*pos`, advancing it.
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, CorruptEncoding> {
    let mut v: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos).ok_or(CorruptEncoding {
            offset: *pos,
            what: "varint",
        })?;
        *pos += 1;
        if shift >= 64 {
            return Err(CorruptEncoding {
                offset: *pos,
                what: "varint too long",
            });
        }
        v |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
}

/// Encodes a row of datums. `UnchangedToast` is written as missing; callers
/// resolve it before this point.
pub fn encode_row(out: &mut Vec<u8>, row: &[Datum]) {
    put_varint(out, row.len() as u64);
    for d in row {
        encode_datum(out, d.as_ref());
    }
}

/// Encodes a row of borrowed datums.
pub fn encode_row_refs(out: &mut Vec<u8>, row: &[DatumRef<'_>]) {
    put_varint(out, row.len() as u64);
    for d in row {
        encode_datum(out, *d);
    }
}

fn encode_datum(out: &mut Vec<u8>, d: DatumRef<'_>) {
    match d {
        DatumRef::Null => put_varint(out, 0),
        DatumRef::Missing => put_varint(out, 1),
        DatumRef::Text(b) => {
            put_varint(out, b.len() as u64 + 2);
            out.extend_from_slice(b);
        }
    }
}

/// Decodes a row into `out` (cleared first) as borrowed slices of `buf`,
/// starting at `*pos` and advancing it past the row.
pub fn decode_row_into<'a>(buf: &'a [u8], pos: &mut usize, out: &mut Vec<DatumRef<'a>>) -> Result<(), CorruptEncoding> {
    out.clear();
    let n = get_varint(buf, pos)?;
    // Each datum takes at least one byte, so a larger count is corrupt; this
    // also bounds the allocation.
    if n > (buf.len().saturating_sub(*pos)) as u64 {
        return Err(CorruptEncoding {
            offset: *pos,
            what: "column count beyond end",
        });
    }
    for _ in 0..n {
        let code = get_varint(buf, pos)?;
        let d = match code {
            0 => DatumRef::Null,
            1 => DatumRef::Missing,
            len => {
                let len = usize::try_from(len - 2).map_err(|_| CorruptEncoding {
                    offset: *pos,
                    what: "value length",
                })?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or(CorruptEncoding {
                        offset: *pos,
                        what: "value beyond end",
                    })?;
                let s = buf.get(*pos..end).ok_or(CorruptEncoding {
                    offset: *pos,
                    what: "value",
                })?;
                *pos = end;
                DatumRef::Text(s)
            }
        };
        out.push(d);
    }
    Ok(())
}

/// Decodes a whole row into owned datums.
pub fn decode_row_owned(buf: &[u8], pos: &mut usize) -> Result<Vec<Datum>, CorruptEncoding> {
    let mut refs = Vec::new();
    decode_row_into(buf, pos, &mut refs)?;
    Ok(refs.into_iter().map(DatumRef::to_datum).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn datum() -> impl Strategy<Value = Datum> {
        prop_oneof![
            Just(Datum::Null),
            Just(Datum::Missing),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Datum::Text),
        ]
    }

    proptest! {
        #[test]
        fn row_round_trips(row in proptest::collection::vec(datum(), 0..20)) {
            let mut buf = Vec::new();
            encode_row(&mut buf, &row);
            let mut pos = 0;
            let back = decode_row_owned(&buf, &mut pos).unwrap();
            prop_assert_eq!(pos, buf.len());
            prop_assert_eq!(back, row);
        }

        #[test]
        fn garbage_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut pos = 0;
            let _ = decode_row_owned(&buf, &mut pos);
        }

        #[test]
        fn varint_round_trips(v in any::<u64>()) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut pos = 0;
            prop_assert_eq!(get_varint(&buf, &mut pos).unwrap(), v);
            prop_assert_eq!(pos, buf.len());
        }
    }

    #[test]
    fn null_empty_and_missing_differ() {
        let row = vec![Datum::Null, Datum::Text(vec![]), Datum::Missing];
        let mut buf = Vec::new();
        encode_row(&mut buf, &row);
        let mut pos = 0;
        assert_eq!(decode_row_owned(&buf, &mut pos).unwrap(), row);
    }
}
