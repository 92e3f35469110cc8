//! Compact byte encodings of the values in the `versions` and `latest`
//! families: row versions, row images and varints.
//!
//! Row versions sit on the hot path of every as-of scan, so they use a
//! hand-written format that decodes into borrowed slices without allocating:
//!
//! ```text
//! version := 0x00 (PUT) varint(schema version) row
//!          | 0x01 (TOMBSTONE)
//!          | 0x02 (COPIES) varint(copies) varint(schema version) row
//! latest  := commit_lsn:u64 BE version
//! row     := varint(ncols) datum*
//! datum   := varint(0)                 NULL
//!          | varint(1)                 missing (not known)
//!          | varint(len + 2) bytes     text value of `len` bytes
//! ```
//!
//! `COPIES` holds a row of a table that keeps identical rows apart only by
//! counting them ([`crate::TableSchema::counts_copies`]) when it has two
//! copies or more (`copies >= 2`); one copy is a plain `PUT`, so such a
//! table's unique rows are stored exactly as before and stores written
//! before the tag existed decode unchanged.
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
    /// The row exists as several identical copies: a count, then as `PUT`.
    pub const COPIES: u8 = 2;
}

/// The version value of a deletion.
pub const TOMBSTONE_VERSION: [u8; 1] = [version_tag::TOMBSTONE];

/// Encodes the version value of a live row with `copies` identical copies
/// (at least one) into `out` (cleared first). `UnchangedToast` is written as
/// missing; callers resolve it first.
pub fn encode_row_version(out: &mut Vec<u8>, schema: SchemaVersionNo, copies: u64, row: &[Datum]) {
    out.clear();
    if copies > 1 {
        out.push(version_tag::COPIES);
        put_varint(out, copies);
    } else {
        out.push(version_tag::PUT);
    }
    put_varint(out, u64::from(schema.0));
    encode_row(out, row);
}

/// True when a version value holds a row (not a deletion).
pub fn is_row_version(v: &[u8]) -> bool {
    matches!(v.first(), Some(&version_tag::PUT | &version_tag::COPIES))
}

/// The head of a version value that holds a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionHead {
    /// The schema version the row was written under.
    pub schema: SchemaVersionNo,
    /// How many identical copies of the row exist (1 unless the table
    /// counts copies).
    pub copies: u64,
    /// Where the row starts.
    pub row_at: usize,
}

/// Reads the head of a version value: for a row, its schema version, its
/// copies and where the row starts; `None` for a deletion.
pub fn decode_version_head(v: &[u8]) -> Result<Option<VersionHead>, CorruptEncoding> {
    let mut pos = 1;
    let copies = match v.first() {
        Some(&version_tag::PUT) => 1,
        Some(&version_tag::COPIES) => match get_varint(v, &mut pos)? {
            0 => {
                return Err(CorruptEncoding {
                    offset: 1,
                    what: "copies of a row",
                })
            }
            n => n,
        },
        Some(&version_tag::TOMBSTONE) => return Ok(None),
        _ => {
            return Err(CorruptEncoding {
                offset: 0,
                what: "version tag",
            })
        }
    };
    let at = pos;
    let sv = get_varint(v, &mut pos)?;
    let sv = u32::try_from(sv).map_err(|_| CorruptEncoding {
        offset: at,
        what: "schema version",
    })?;
    Ok(Some(VersionHead {
        schema: SchemaVersionNo(sv),
        copies,
        row_at: pos,
    }))
}

/// How many copies of the row a version value holds: 0 for a deletion.
pub fn version_copies(v: &[u8]) -> Result<u64, CorruptEncoding> {
    Ok(decode_version_head(v)?.map_or(0, |h| h.copies))
}

/// A whole version value that holds a row, decoded into owned values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRowVersion {
    /// The schema version the row was written under.
    pub schema: SchemaVersionNo,
    /// How many identical copies of the row exist.
    pub copies: u64,
    /// The row's values.
    pub values: Vec<Datum>,
}

/// Decodes a whole version value: the row with its schema version and
/// copies, or `None` for a deletion.
pub fn decode_version_owned(v: &[u8]) -> Result<Option<OwnedRowVersion>, CorruptEncoding> {
    let Some(head) = decode_version_head(v)? else {
        return Ok(None);
    };
    let mut pos = head.row_at;
    Ok(Some(OwnedRowVersion {
        schema: head.schema,
        copies: head.copies,
        values: decode_row_owned(v, &mut pos)?,
    }))
}

/// A `latest` value: the commit LSN, then the version value.
pub fn encode_latest(lsn: Lsn, version: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + version.len());
    encode_latest_into(&mut v, lsn, version);
    v
}

/// [`encode_latest`] into a reused buffer (cleared first).
pub fn encode_latest_into(out: &mut Vec<u8>, lsn: Lsn, version: &[u8]) {
    out.clear();
    out.extend_from_slice(&lsn.0.to_be_bytes());
    out.extend_from_slice(version);
}

/// The `latest` value of a key whose newest version is its `versions` entry
/// at `lsn`, referred to instead of repeated: the commit LSN alone. A row of
/// a copy (a `Read` of a table with a unique key) is stored this way, once.
pub fn encode_latest_ref_into(out: &mut Vec<u8>, lsn: Lsn) {
    encode_latest_into(out, lsn, &[]);
}

/// Whether the version of a `latest` value (see [`decode_latest`]) is only
/// a reference to the key's `versions` entry at its LSN. Every version
/// value has a tag, so an empty one is never a version itself.
pub fn latest_refers_to_versions(version: &[u8]) -> bool {
    version.is_empty()
}

/// Splits a `latest` value into the commit LSN and the version value,
/// which is empty when the value refers to `versions`
/// ([`latest_refers_to_versions`]).
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
#[inline]
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, CorruptEncoding> {
    // Most varints of a row (column counts, the lengths of short values)
    // are one byte: read those here, inline, and the rest below.
    if let Some(&b) = buf.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(u64::from(b));
        }
    }
    get_long_varint(buf, pos)
}

/// [`get_varint`] of two bytes or more, or past the end.
#[inline(never)]
fn get_long_varint(buf: &[u8], pos: &mut usize) -> Result<u64, CorruptEncoding> {
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
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Any datum the version format holds.
    pub(crate) fn datum() -> impl Strategy<Value = Datum> {
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
        fn versions_round_trip(
            row in proptest::collection::vec(datum(), 0..8),
            sv in any::<u32>(),
            copies in prop_oneof![Just(1u64), 1..5u64, any::<u64>().prop_map(|c| c.max(1))],
            lsn in any::<u64>(),
        ) {
            let mut v = Vec::new();
            encode_row_version(&mut v, SchemaVersionNo(sv), copies, &row);
            prop_assert!(is_row_version(&v));
            prop_assert_eq!(version_copies(&v).unwrap(), copies);
            let expected = OwnedRowVersion { schema: SchemaVersionNo(sv), copies, values: row };
            prop_assert_eq!(decode_version_owned(&v).unwrap(), Some(expected));
            let latest = encode_latest(Lsn(lsn), &v);
            prop_assert_eq!(decode_latest(&latest).unwrap(), (Lsn(lsn), v.as_slice()));
        }
    }

    #[test]
    fn one_copy_is_a_plain_put() {
        // Stores written before copies were counted hold only PUTs: one copy
        // must encode the same bytes, so both read alike.
        let row = vec![Datum::text("x")];
        let mut one = Vec::new();
        encode_row_version(&mut one, SchemaVersionNo(3), 1, &row);
        assert_eq!(one, [version_tag::PUT, 3, 1, 3, b'x']);
        let mut three = Vec::new();
        encode_row_version(&mut three, SchemaVersionNo(3), 3, &row);
        assert_eq!(three, [version_tag::COPIES, 3, 3, 1, 3, b'x']);
        assert!(decode_version_head(&[version_tag::COPIES, 0, 3, 0]).is_err());
    }

    #[test]
    fn tombstones_decode_as_deletions() {
        assert!(!is_row_version(&TOMBSTONE_VERSION));
        assert_eq!(decode_version_owned(&TOMBSTONE_VERSION).unwrap(), None);
        assert_eq!(version_copies(&TOMBSTONE_VERSION).unwrap(), 0);
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
