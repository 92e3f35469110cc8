//! Compact byte encodings of the values in the `versions` and `latest`
//! families: row versions, row images and varints.
//!
//! Row versions sit on the hot path of every as-of scan, so they use a
//! hand-written format that decodes into borrowed slices without allocating:
//!
//! ```text
//! version := 0x00 (PUT) varint(schema version) row
//!          | 0x01 (TOMBSTONE)
//! latest  := commit_lsn:u64 BE version
//! row     := varint(ncols) datum*
//! datum   := varint(0)                 NULL
//!          | varint(1)                 missing (not known)
//!          | varint(len + 2) bytes     text value of `len` bytes
//! ```
//!
//! Unchanged-TOAST markers are never encoded: the store resolves them first.
//! Keys are encoded in [`crate::keys`].
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::lsn::Lsn;
use crate::schema::SchemaVersionNo;
use crate::value::{Datum, DatumRef};

/// Version value tags.
pub mod version_tag {
    /// The row exists with the encoded image.
    pub const PUT: u8 = 0;
    /// The row was deleted.
    pub const TOMBSTONE: u8 = 1;
}

/// The version value of a deletion.
pub const TOMBSTONE_VERSION: [u8; 1] = [version_tag::TOMBSTONE];

/// Encodes the version value of a live row into `out` (cleared first).
/// `UnchangedToast` is written as missing; callers resolve it first.
pub fn encode_row_version(out: &mut Vec<u8>, schema: SchemaVersionNo, row: &[Datum]) {
    out.clear();
    out.push(version_tag::PUT);
    put_varint(out, u64::from(schema.0));
    encode_row(out, row);
}

/// True when a version value holds a row (not a deletion).
pub fn is_row_version(v: &[u8]) -> bool {
    v.first() == Some(&version_tag::PUT)
}

/// Reads the head of a version value: for a row, its schema version and
/// where the row starts; `None` for a deletion.
pub fn decode_version_head(v: &[u8]) -> Result<Option<(SchemaVersionNo, usize)>, CorruptEncoding> {
    match v.first() {
        Some(&version_tag::PUT) => {
            let mut pos = 1;
            let sv = get_varint(v, &mut pos)?;
            let sv = u32::try_from(sv).map_err(|_| CorruptEncoding {
                offset: 1,
                what: "schema version",
            })?;
            Ok(Some((SchemaVersionNo(sv), pos)))
        }
        Some(&version_tag::TOMBSTONE) => Ok(None),
        _ => Err(CorruptEncoding {
            offset: 0,
            what: "version tag",
        }),
    }
}

/// Decodes a whole version value: the schema version and owned values of a
/// row, or `None` for a deletion.
pub fn decode_version_owned(v: &[u8]) -> Result<Option<(SchemaVersionNo, Vec<Datum>)>, CorruptEncoding> {
    let Some((schema, mut pos)) = decode_version_head(v)? else {
        return Ok(None);
    };
    Ok(Some((schema, decode_row_owned(v, &mut pos)?)))
}

/// A `latest` value: the commit LSN, then the version value.
pub fn encode_latest(lsn: Lsn, version: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + version.len());
    v.extend_from_slice(&lsn.0.to_be_bytes());
    v.extend_from_slice(version);
    v
}

/// Splits a `latest` value into the commit LSN and the version value.
pub fn decode_latest(v: &[u8]) -> Result<(Lsn, &[u8]), CorruptEncoding> {
    let lsn = v
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or(CorruptEncoding {
            offset: 0,
            what: "latest lsn",
        })?;
    Ok((Lsn(lsn), v.get(8..).unwrap_or_default()))
}

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

    proptest! {
        #[test]
        fn versions_round_trip(row in proptest::collection::vec(datum(), 0..8), sv in any::<u32>(), lsn in any::<u64>()) {
            let mut v = Vec::new();
            encode_row_version(&mut v, SchemaVersionNo(sv), &row);
            prop_assert!(is_row_version(&v));
            prop_assert_eq!(decode_version_owned(&v).unwrap(), Some((SchemaVersionNo(sv), row)));
            let latest = encode_latest(Lsn(lsn), &v);
            prop_assert_eq!(decode_latest(&latest).unwrap(), (Lsn(lsn), v.as_slice()));
        }
    }

    #[test]
    fn tombstones_decode_as_deletions() {
        assert!(!is_row_version(&TOMBSTONE_VERSION));
        assert_eq!(decode_version_owned(&TOMBSTONE_VERSION).unwrap(), None);
        assert!(decode_version_head(&[]).is_err());
        assert!(decode_version_head(&[7]).is_err());
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
