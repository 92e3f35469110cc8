//! The key layout: every column family, and how its keys are encoded.
//!
//! This module is the only writer of key bytes; the values the `versions`
//! and `latest` families hold are encoded in [`crate::codec`].
//!
//! All integers are big-endian so that RocksDB's default bytewise comparator
//! orders keys numerically; nothing needs a custom comparator.
//!
//! ```text
//! cf "meta"      b"format" | b"watermark" | b"source" | b"horizon" | b"compacted"
//!                | b"next_table" | b"scanned" | b"inflight"     (see [`meta`])
//! cf "tables"    table_id:u32                                  -> TableName
//! cf "schemas"   table_id:u32 version:u32                      -> SchemaVersion
//! cf "commits"   commit_lsn:u64                                -> CommitEntry
//! cf "times"     commit_time:i64^signbit commit_lsn:u64        -> ()
//! cf "log"       commit_lsn:u64 ordinal:u32                    -> ChangeRecord
//! cf "resets"    table_id:u32 lsn:u64                          -> ResetKind
//! cf "versions"  table_id:u32 user_key !commit_lsn:u64         -> tag [copies] schema_version row
//! cf "latest"    table_id:u32 user_key                         -> commit_lsn:u64 tag [copies] schema_version row
//! cf "images"    0x00 table_id:u32 image_lsn:u64               -> rows:u64 (the image is complete)
//!                0x01 table_id:u32 image_lsn:u64 user_key      -> commit_lsn:u64 tag [copies] schema_version row
//!                0x02 table_id:u32 image_lsn:u64               -> end_lsn:u64 versions:u64 (the run is complete)
//!                0x03 table_id:u32 image_lsn:u64 user_key !commit_lsn:u64
//!                                                              -> tag [copies] schema_version row
//! ```
//!
//! `user_key` is a memcomparable, prefix-free encoding of the row's key
//! columns ([`encode_user_key`], [`row_key`]). A table keyed by all its
//! columns ([`TableSchema::counts_copies`]) has the whole row as its key,
//! and its versions count the row's identical copies. The version suffix is the
//! bitwise NOT of the commit LSN, so the newest version of a key sorts first
//! and "the version visible at cut c" is a single seek to `(key, !c)` (the
//! layout of TiKV and CockroachDB's MVCC keys).
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::codec::CorruptEncoding;
use crate::ids::TableId;
use crate::lsn::Lsn;
use crate::schema::TableSchema;
use crate::time::CommitTime;
use crate::value::{Datum, DatumRef};

/// Column family names.
pub mod cf {
    /// Store-wide metadata.
    pub const META: &str = "meta";
    /// Table id to name.
    pub const TABLES: &str = "tables";
    /// Schema history.
    pub const SCHEMAS: &str = "schemas";
    /// One entry per committed transaction.
    pub const COMMITS: &str = "commits";
    /// Commit-time index.
    pub const TIMES: &str = "times";
    /// The change log itself.
    pub const LOG: &str = "log";
    /// Points where a table was emptied (truncate, full re-read, drop).
    pub const RESETS: &str = "resets";
    /// The MVCC version index.
    pub const VERSIONS: &str = "versions";
    /// The newest version of every key (a copy of its first `versions`
    /// entry), so scans of recent state do not wade through history.
    pub const LATEST: &str = "latest";
    /// Base images: every live row of a table at one cut, so a read at a
    /// past cut need not go through every key's history.
    pub const IMAGES: &str = "images";
    /// Every family, in creation order.
    pub const ALL: [&str; 10] = [
        META, TABLES, SCHEMAS, COMMITS, TIMES, LOG, RESETS, VERSIONS, LATEST, IMAGES,
    ];
}

/// Keys of the `meta` family.
pub mod meta {
    /// The store format version (u32 BE).
    pub const FORMAT: &[u8] = b"format";
    /// The durable watermark.
    pub const WATERMARK: &[u8] = b"watermark";
    /// Source (server, slot, publication) metadata.
    pub const SOURCE: &[u8] = b"source";
    /// The retention horizon.
    pub const HORIZON: &[u8] = b"horizon";
    /// The horizon up to which compaction finished (re-run when below).
    pub const COMPACTED: &[u8] = b"compacted";
    /// The next table id to assign.
    pub const NEXT_TABLE: &[u8] = b"next_table";
    /// How far the source has confirmed the log complete (may pass the
    /// watermark on an idle server).
    pub const SCANNED: &[u8] = b"scanned";
    /// A spilled transaction in flight (removed on open after a crash).
    pub const INFLIGHT: &[u8] = b"inflight";
    /// How far a follower has read its upstream log.
    pub const FOLLOW: &[u8] = b"follow";
}

fn take<const N: usize>(buf: &[u8], at: usize, what: &'static str) -> Result<[u8; N], CorruptEncoding> {
    buf.get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(CorruptEncoding { offset: at, what })
}

/// `lsn` as 8 big-endian bytes.
pub fn encode_lsn(lsn: Lsn) -> [u8; 8] {
    lsn.0.to_be_bytes()
}

/// Reads an LSN from exactly 8 bytes: anything longer is damage, not a
/// key with a suffix.
pub fn decode_lsn(buf: &[u8]) -> Result<Lsn, CorruptEncoding> {
    if buf.len() != 8 {
        return Err(CorruptEncoding {
            offset: buf.len().min(8),
            what: "lsn of 8 bytes",
        });
    }
    Ok(Lsn(u64::from_be_bytes(take::<8>(buf, 0, "lsn")?)))
}

/// `commits` key.
pub fn encode_commit_key(lsn: Lsn) -> [u8; 8] {
    encode_lsn(lsn)
}

/// `times` key: the time with its sign bit flipped (so negative times sort
/// first), then the commit LSN.
pub fn encode_time_key(t: CommitTime, lsn: Lsn) -> [u8; 16] {
    let mut k = [0u8; 16];
    let (a, b) = k.split_at_mut(8);
    a.copy_from_slice(&((t.unix_micros() as u64) ^ (1 << 63)).to_be_bytes());
    b.copy_from_slice(&lsn.0.to_be_bytes());
    k
}

/// Decodes a `times` key.
pub fn decode_time_key(k: &[u8]) -> Result<(CommitTime, Lsn), CorruptEncoding> {
    let t = u64::from_be_bytes(take::<8>(k, 0, "time")?) ^ (1 << 63);
    let lsn = u64::from_be_bytes(take::<8>(k, 8, "lsn")?);
    Ok((CommitTime::from_unix_micros(t as i64), Lsn(lsn)))
}

/// `log` key.
pub fn encode_log_key(lsn: Lsn, ordinal: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    let (a, b) = k.split_at_mut(8);
    a.copy_from_slice(&lsn.0.to_be_bytes());
    b.copy_from_slice(&ordinal.to_be_bytes());
    k
}

/// Decodes a `log` key.
pub fn decode_log_key(k: &[u8]) -> Result<(Lsn, u32), CorruptEncoding> {
    Ok((
        Lsn(u64::from_be_bytes(take::<8>(k, 0, "lsn")?)),
        u32::from_be_bytes(take::<4>(k, 8, "ordinal")?),
    ))
}

/// `tables` key.
pub fn encode_table_key(t: TableId) -> [u8; 4] {
    t.0.to_be_bytes()
}

/// Decodes a `tables` key (also the first 4 bytes of other table-prefixed keys).
pub fn decode_table_key(k: &[u8]) -> Result<TableId, CorruptEncoding> {
    Ok(TableId(u32::from_be_bytes(take::<4>(k, 0, "table id")?)))
}

/// `schemas` key.
pub fn encode_schema_key(t: TableId, version: u32) -> [u8; 8] {
    let mut k = [0u8; 8];
    let (a, b) = k.split_at_mut(4);
    a.copy_from_slice(&t.0.to_be_bytes());
    b.copy_from_slice(&version.to_be_bytes());
    k
}

/// `resets` key.
pub fn encode_reset_key(t: TableId, lsn: Lsn) -> [u8; 12] {
    let mut k = [0u8; 12];
    let (a, b) = k.split_at_mut(4);
    a.copy_from_slice(&t.0.to_be_bytes());
    b.copy_from_slice(&lsn.0.to_be_bytes());
    k
}

/// Decodes a `resets` key.
pub fn decode_reset_key(k: &[u8]) -> Result<(TableId, Lsn), CorruptEncoding> {
    Ok((decode_table_key(k)?, Lsn(u64::from_be_bytes(take::<8>(k, 4, "lsn")?))))
}

/// Tag of an image's completion marker in the `images` family.
const IMAGE_MARKER: u8 = 0x00;
/// Tag of an image's rows in the `images` family.
const IMAGE_ROW: u8 = 0x01;

/// The completion marker of `table`'s image at `at`; markers sort before
/// every row, so a table's images are listed without reading their rows.
pub fn encode_image_marker(table: TableId, at: Lsn) -> [u8; 13] {
    let mut k = [IMAGE_MARKER; 13];
    let (t, l) = k.split_at_mut(1).1.split_at_mut(4);
    t.copy_from_slice(&table.0.to_be_bytes());
    l.copy_from_slice(&at.0.to_be_bytes());
    k
}

/// The first and one-past-last markers of `table`'s images.
pub fn image_marker_range(table: TableId) -> ([u8; 5], Vec<u8>) {
    let (lo, hi) = table_range(table);
    let mut start = [IMAGE_MARKER; 5];
    start.split_at_mut(1).1.copy_from_slice(&lo);
    let mut end = vec![IMAGE_MARKER];
    end.extend_from_slice(&hi);
    (start, end)
}

/// Decodes a marker key into its table and cut.
pub fn decode_image_marker(k: &[u8]) -> Result<(TableId, Lsn), CorruptEncoding> {
    if k.len() != 13 || k.first() != Some(&IMAGE_MARKER) {
        return Err(CorruptEncoding {
            offset: 0,
            what: "image marker",
        });
    }
    let table = decode_table_key(k.get(1..).unwrap_or_default())?;
    Ok((table, decode_lsn(k.get(5..).unwrap_or_default())?))
}

/// The prefix of the rows of `table`'s image at `at`; a row's key is the
/// prefix followed by its user key.
pub fn image_row_prefix(table: TableId, at: Lsn) -> [u8; 13] {
    image_head(IMAGE_ROW, table, at)
}

/// The first and one-past-last keys of the rows of `table`'s image at `at`
/// whose user keys lie in `range`.
pub fn image_row_range(table: TableId, at: Lsn, range: &KeyRange) -> (Vec<u8>, Vec<u8>) {
    head_range(
        image_row_prefix(table, at),
        table,
        range.start.as_deref(),
        range.end.as_deref(),
    )
}

/// `head` followed by `start` and by `end`, each the table's own bound
/// when `None`.
fn head_range(head: [u8; 13], table: TableId, start: Option<&[u8]>, end: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    let (table_lo, table_hi) = table_range(table);
    let bound = |suffix: &[u8]| [head.as_slice(), suffix].concat();
    (bound(start.unwrap_or(&table_lo)), bound(end.unwrap_or(&table_hi)))
}

/// Tag of a run's completion marker in the `images` family.
const RUN_MARKER: u8 = 0x02;
/// Tag of a run's versions in the `images` family.
const RUN_VERSION: u8 = 0x03;

/// `tag table at`: the head every key of one image or run starts with.
fn image_head(tag: u8, table: TableId, at: Lsn) -> [u8; 13] {
    let mut k = encode_image_marker(table, at);
    if let Some(t) = k.first_mut() {
        *t = tag;
    }
    k
}

/// The completion marker of the run of `table`'s versions that follows its
/// image at `from`: every version after `from` up to the run's end, keyed
/// as in `versions` after [`run_version_prefix`].
pub fn encode_run_marker(table: TableId, from: Lsn) -> [u8; 13] {
    image_head(RUN_MARKER, table, from)
}

/// The prefix of the versions of the run after `table`'s image at `from`.
pub fn run_version_prefix(table: TableId, from: Lsn) -> [u8; 13] {
    image_head(RUN_VERSION, table, from)
}

/// The first and one-past-last keys of the versions of the run after
/// `table`'s image at `from`, from the first key of `range` on (its end
/// cannot bound version keys: a user key before it can be a prefix of it).
pub fn run_version_range(table: TableId, from: Lsn, range: &KeyRange) -> (Vec<u8>, Vec<u8>) {
    head_range(run_version_prefix(table, from), table, range.start.as_deref(), None)
}

/// The value of a run's marker: where it ends and how many versions it
/// holds.
pub fn encode_run_extent(end: Lsn, versions: u64) -> [u8; 16] {
    (u128::from(end.0) << 64 | u128::from(versions)).to_be_bytes()
}

/// Decodes the value of a run's marker into its end and its versions.
pub fn decode_run_extent(v: &[u8]) -> Result<(Lsn, u64), CorruptEncoding> {
    if v.len() != 16 {
        return Err(CorruptEncoding {
            offset: v.len().min(16),
            what: "run extent of 16 bytes",
        });
    }
    Ok((
        Lsn(u64::from_be_bytes(take::<8>(v, 0, "run end")?)),
        u64::from_be_bytes(take::<8>(v, 8, "run versions")?),
    ))
}

/// The value of an image's marker: its row count.
pub fn encode_image_rows(rows: u64) -> [u8; 8] {
    rows.to_be_bytes()
}

/// Decodes the value of an image's marker.
pub fn decode_image_rows(v: &[u8]) -> Result<u64, CorruptEncoding> {
    if v.len() != 8 {
        return Err(CorruptEncoding {
            offset: v.len().min(8),
            what: "image row count of 8 bytes",
        });
    }
    Ok(u64::from_be_bytes(take::<8>(v, 0, "image row count")?))
}

/// Type OIDs whose text form is an integer and that are encoded numerically
/// in keys (int2, int4, int8, oid), so integer keys scan in numeric order.
const INTEGER_TYPES: [u32; 4] = [21, 23, 20, 26];

/// True when key values of this type are encoded as integers (int2, int4,
/// int8, oid): such a value that is not an integer cannot match any row.
pub fn is_integer_key_type(type_oid: u32) -> bool {
    INTEGER_TYPES.contains(&type_oid)
}

// Tags that start each key component; distinct tags keep components of
// different kinds from ever comparing equal or being prefixes of each other.
const TAG_NULL: u8 = 0x05;
const TAG_MISSING: u8 = 0x06;
const TAG_INT: u8 = 0x10;
const TAG_BYTES: u8 = 0x20;

/// A table id plus the encoded key columns of one row: identifies a row
/// across its versions. Memcomparable and prefix-free.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct UserKey(pub Vec<u8>);

/// A [`UserKey`] plus a version suffix: one key of the `versions` family.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct VersionKey(pub Vec<u8>);

/// Encodes the key of a row: the table id, then each key column.
///
/// Integers (by type OID) become 8 sign-flipped big-endian bytes so `9` sorts
/// before `10`; every other value is its text bytes with `0x00` escaped as
/// `0x00 0xFF` and a `0x00 0x01` terminator, which keeps byte order and makes
/// the encoding prefix-free (`"a"` and `"ab"` stay apart, and `("a","b")`
/// never equals `("ab","")`).
pub fn encode_user_key<'a>(
    table: TableId,
    key_types: &[u32],
    key_values: impl IntoIterator<Item = DatumRef<'a>>,
) -> UserKey {
    let mut out = Vec::with_capacity(24);
    encode_user_key_into(&mut out, table, key_types, key_values);
    UserKey(out)
}

/// [`encode_user_key`] into a reused buffer (cleared first).
pub fn encode_user_key_into<'a>(
    out: &mut Vec<u8>,
    table: TableId,
    key_types: &[u32],
    key_values: impl IntoIterator<Item = DatumRef<'a>>,
) {
    // A value beyond the listed types is encoded as text (type 0).
    let types = key_types.iter().copied().chain(std::iter::repeat(0));
    encode_key_columns(out, table, types.zip(key_values));
}

/// The key of `row` (values in the columns of `schema`) in `table`: its key
/// columns, each encoded by its type. The one rule for finding a row's
/// versions, used by the store, the queries and the tests alike.
pub fn row_key(table: TableId, schema: &TableSchema, row: &[Datum]) -> UserKey {
    let mut out = Vec::with_capacity(24);
    row_key_into(&mut out, table, schema, row);
    UserKey(out)
}

/// [`row_key`] into a reused buffer (cleared first).
pub fn row_key_into(out: &mut Vec<u8>, table: TableId, schema: &TableSchema, row: &[Datum]) {
    let key_columns = schema
        .columns
        .iter()
        .zip(row)
        .filter(|(c, _)| c.is_key)
        .map(|(c, d)| (c.type_oid, d.as_ref()));
    encode_key_columns(out, table, key_columns);
}

/// [`row_key_into`] for a row of borrowed values.
pub fn row_key_of_refs_into(out: &mut Vec<u8>, table: TableId, schema: &TableSchema, row: &[DatumRef<'_>]) {
    let key_columns = schema
        .columns
        .iter()
        .zip(row)
        .filter(|(c, _)| c.is_key)
        .map(|(c, d)| (c.type_oid, *d));
    encode_key_columns(out, table, key_columns);
}

fn encode_key_columns<'a>(out: &mut Vec<u8>, table: TableId, columns: impl Iterator<Item = (u32, DatumRef<'a>)>) {
    out.clear();
    out.extend_from_slice(&table.0.to_be_bytes());
    for (ty, v) in columns {
        match v {
            DatumRef::Null => out.push(TAG_NULL),
            DatumRef::Missing => out.push(TAG_MISSING),
            DatumRef::Text(b) => {
                let int = if is_integer_key_type(ty) {
                    std::str::from_utf8(b).ok().and_then(|s| s.parse::<i64>().ok())
                } else {
                    None
                };
                match int {
                    Some(n) => {
                        out.push(TAG_INT);
                        out.extend_from_slice(&((n as u64) ^ (1 << 63)).to_be_bytes());
                    }
                    None => {
                        out.push(TAG_BYTES);
                        for &byte in b {
                            out.push(byte);
                            if byte == 0 {
                                out.push(0xFF);
                            }
                        }
                        out.extend_from_slice(&[0x00, 0x01]);
                    }
                }
            }
        }
    }
}

/// The `versions` key of the version of `user_key` committed at `lsn`: the
/// user key, then the inverted LSN, so the newest version sorts first.
pub fn encode_version_key(user_key: &[u8], lsn: Lsn) -> VersionKey {
    let mut k = Vec::with_capacity(user_key.len() + 8);
    encode_version_key_into(&mut k, user_key, lsn);
    VersionKey(k)
}

/// [`encode_version_key`] into a reused buffer (cleared first).
pub fn encode_version_key_into(out: &mut Vec<u8>, user_key: &[u8], lsn: Lsn) {
    out.clear();
    extend_version_key(out, user_key, lsn);
}

/// Appends the `versions` key of `user_key` at `lsn` to `out` (after a
/// prefix, as an image's run of versions keys them).
pub fn extend_version_key(out: &mut Vec<u8>, user_key: &[u8], lsn: Lsn) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&(!lsn.0).to_be_bytes());
}

/// The smallest key sorting after every version of `user_key` (and before
/// the next user key of the same shape: no key extends another of its
/// shape, but a key written under an older shape of a table keyed by all
/// its columns can be a prefix of one written after a column was added).
pub fn after_all_versions(user_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(user_key.len() + 9);
    k.extend_from_slice(user_key);
    k.extend_from_slice(&[0xFF; 9]);
    k
}

impl UserKey {
    /// The table this key belongs to.
    pub fn table(&self) -> Result<TableId, CorruptEncoding> {
        decode_table_key(&self.0)
    }

    /// The versioned key for the version committed at `lsn`.
    pub fn at(&self, lsn: Lsn) -> VersionKey {
        encode_version_key(&self.0, lsn)
    }

    /// The smallest key sorting after every version of this key.
    pub fn after_all_versions(&self) -> Vec<u8> {
        after_all_versions(&self.0)
    }
}

/// Splits a `versions` key into its user-key bytes and commit LSN.
pub fn split_version_key(k: &[u8]) -> Result<(&[u8], Lsn), CorruptEncoding> {
    let cut = k.len().checked_sub(8).filter(|c| *c >= 4).ok_or(CorruptEncoding {
        offset: 0,
        what: "version key",
    })?;
    let (user, suffix) = k.split_at(cut);
    let inv = u64::from_be_bytes(take::<8>(suffix, 0, "version suffix")?);
    Ok((user, Lsn(!inv)))
}

/// The first and one-past-last keys of a table's range in table-prefixed
/// families.
pub fn table_range(t: TableId) -> ([u8; 4], Vec<u8>) {
    let lo = t.0.to_be_bytes();
    let hi = match t.0.checked_add(1) {
        Some(n) => n.to_be_bytes().to_vec(),
        None => vec![0xFF; 5],
    };
    (lo, hi)
}

/// A range of encoded user keys of one table: from `start` (inclusive) to
/// `end` (exclusive); `None` is the table's own end on that side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// First key of the range, or the table's first key.
    pub start: Option<Vec<u8>>,
    /// First key after the range, or after the table's last key.
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// The whole table.
    pub const ALL: KeyRange = KeyRange { start: None, end: None };

    /// The range between two bounds on encoded user keys. The key right
    /// after `k` in byte order is `k` followed by a zero byte, so an
    /// excluded start and an included end become that key.
    pub fn from_bounds(start: std::ops::Bound<UserKey>, end: std::ops::Bound<UserKey>) -> KeyRange {
        use std::ops::Bound;
        let after = |k: UserKey| {
            let mut k = k.0;
            k.push(0);
            k
        };
        KeyRange {
            start: match start {
                Bound::Included(k) => Some(k.0),
                Bound::Excluded(k) => Some(after(k)),
                Bound::Unbounded => None,
            },
            end: match end {
                Bound::Included(k) => Some(after(k)),
                Bound::Excluded(k) => Some(k.0),
                Bound::Unbounded => None,
            },
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_deref().is_none_or(|s| key >= s) && self.end.as_deref().is_none_or(|e| key < e)
    }
}

/// `parts` ranges that together cover `first..=last` of one table (and all
/// of the table beyond them), cut at points spread evenly over the bytes
/// after the two keys' common prefix: even parts for keys spread evenly,
/// such as sequential integers. Fewer ranges when the keys leave no room.
pub fn split_range(first: &[u8], last: &[u8], parts: usize) -> Vec<KeyRange> {
    let common = first.iter().zip(last).take_while(|(a, b)| a == b).count();
    // The next 8 bytes of each key after the common prefix, as numbers.
    let window = |k: &[u8]| {
        let mut w = [0u8; 8];
        for (d, s) in w.iter_mut().zip(k.iter().skip(common)) {
            *d = *s;
        }
        u64::from_be_bytes(w)
    };
    let (lo, hi) = (window(first), window(last));
    let mut points: Vec<Vec<u8>> = Vec::new();
    if hi > lo && parts > 1 {
        let span = u128::from(hi - lo);
        for i in 1..parts {
            let at = u128::from(lo) + span * i as u128 / parts as u128;
            let mut p = first.get(..common).unwrap_or_default().to_vec();
            p.extend_from_slice(&u64::try_from(at).unwrap_or(u64::MAX).to_be_bytes());
            if points.last().is_none_or(|q| *q < p) && p.as_slice() > first {
                points.push(p);
            }
        }
    }
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut start = None;
    for p in points {
        out.push(KeyRange {
            start: start.take(),
            end: Some(p.clone()),
        });
        start = Some(p);
    }
    out.push(KeyRange { start, end: None });
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    #[test]
    fn an_lsn_with_trailing_bytes_is_damage() {
        // Found by the store_keys fuzz target: 9 bytes decoded as the LSN
        // of their first 8.
        let bytes = [10, 5, 0, 255, 255, 255, 255, 146, 10];
        assert!(super::decode_lsn(&bytes).is_err());
        assert!(super::decode_lsn(&bytes[..7]).is_err());
        let lsn = super::decode_lsn(&bytes[..8]).expect("8 bytes");
        assert_eq!(super::encode_lsn(lsn), bytes[..8]);
    }

    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum K {
        Int(i64),
        Text(Vec<u8>),
        Null,
    }

    fn component() -> impl Strategy<Value = K> {
        prop_oneof![
            any::<i64>().prop_map(K::Int),
            proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()], 0..6)
                .prop_map(K::Text),
            Just(K::Null),
        ]
    }

    fn enc(keys: &[K], lsn: u64) -> Vec<u8> {
        // Column i is an int column when its first value was an int, to mimic a fixed schema.
        let types: Vec<u32> = keys
            .iter()
            .map(|k| if matches!(k, K::Int(_)) { 20 } else { 25 })
            .collect();
        let texts: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| match k {
                K::Int(n) => n.to_string().into_bytes(),
                K::Text(b) => b.clone(),
                K::Null => vec![],
            })
            .collect();
        let refs = keys.iter().zip(&texts).map(|(k, t)| match k {
            K::Null => DatumRef::Null,
            _ => DatumRef::Text(t),
        });
        encode_user_key(TableId(7), &types, refs).at(Lsn(lsn)).0
    }

    fn cmp_model(a: &[K], b: &[K]) -> std::cmp::Ordering {
        fn rank(k: &K) -> u8 {
            match k {
                K::Null => 0,
                K::Int(_) => 1,
                K::Text(_) => 2,
            }
        }
        for (x, y) in a.iter().zip(b) {
            let o = rank(x).cmp(&rank(y)).then_with(|| match (x, y) {
                (K::Int(p), K::Int(q)) => p.cmp(q),
                (K::Text(p), K::Text(q)) => p.cmp(q),
                _ => std::cmp::Ordering::Equal,
            });
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        a.len().cmp(&b.len())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Comparing encoded version keys equals comparing (key, newest first).
        #[test]
        fn version_keys_order_like_the_model(
            (a, b) in (1usize..4).prop_flat_map(|n| (
                proptest::collection::vec(component(), n),
                proptest::collection::vec(component(), n),
            )),
            la in any::<u64>(), lb in any::<u64>(),
        ) {
            let model = cmp_model(&a, &b).then_with(|| lb.cmp(&la));
            prop_assert_eq!(enc(&a, la).cmp(&enc(&b, lb)), model);
        }

        #[test]
        fn split_recovers_lsn(a in proptest::collection::vec(component(), 1..4), l in any::<u64>()) {
            let k = enc(&a, l);
            let (user, lsn) = split_version_key(&k).unwrap();
            prop_assert_eq!(lsn, Lsn(l));
            prop_assert_eq!(user.len() + 8, k.len());
        }

        #[test]
        fn time_keys_round_trip_and_order(t1 in any::<i64>(), t2 in any::<i64>(), l in any::<u64>()) {
            let (a, b) = (encode_time_key(CommitTime::from_unix_micros(t1), Lsn(l)), encode_time_key(CommitTime::from_unix_micros(t2), Lsn(l)));
            prop_assert_eq!(a.cmp(&b), t1.cmp(&t2));
            prop_assert_eq!(decode_time_key(&a).unwrap(), (CommitTime::from_unix_micros(t1), Lsn(l)));
        }
    }

    #[test]
    fn row_key_encodes_the_key_columns_by_type() {
        let column = |name: &str, type_oid: u32, is_key: bool| crate::schema::Column {
            name: name.into(),
            type_oid,
            type_name: String::new(),
            type_modifier: -1,
            is_key,
        };
        let schema = TableSchema {
            name: crate::ids::TableName::new("public", "t"),
            relation_oid: 1,
            columns: vec![column("a", 25, true), column("v", 25, false), column("b", 20, true)],
            replica_identity: crate::schema::ReplicaIdentity::Default,
        };
        let row = [Datum::text("x"), Datum::text("ignored"), Datum::text("10")];
        let expected = encode_user_key(TableId(3), &[25, 20], [DatumRef::Text(b"x"), DatumRef::Text(b"10")]);
        assert_eq!(row_key(TableId(3), &schema, &row), expected);
        assert!(is_integer_key_type(20) && !is_integer_key_type(25));
        // 9 sorts before 10 as an integer key.
        let nine = [Datum::text("x"), Datum::Null, Datum::text("9")];
        assert!(row_key(TableId(3), &schema, &nine) < expected);
    }

    #[test]
    fn prefix_keys_stay_apart() {
        let t = [25u32, 25];
        let a = encode_user_key(TableId(1), &t, [DatumRef::Text(b"a"), DatumRef::Text(b"bc")]);
        let b = encode_user_key(TableId(1), &t, [DatumRef::Text(b"ab"), DatumRef::Text(b"c")]);
        assert_ne!(a, b);
        assert!(!b.0.starts_with(&a.0) && !a.0.starts_with(&b.0));
    }

    proptest! {
        #[test]
        fn split_ranges_cover_every_key_once(
            a in proptest::collection::vec(any::<u8>(), 0..12),
            b in proptest::collection::vec(any::<u8>(), 0..12),
            probes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 1..40),
            parts in 1usize..9,
        ) {
            let (first, last) = if a <= b { (a, b) } else { (b, a) };
            let ranges = split_range(&first, &last, parts);
            prop_assert!(!ranges.is_empty() && ranges.len() <= parts);
            prop_assert_eq!(ranges[0].start.as_ref(), None);
            prop_assert_eq!(ranges[ranges.len() - 1].end.as_ref(), None);
            for w in ranges.windows(2) {
                prop_assert_eq!(&w[0].end, &w[1].start);
            }
            for k in probes.iter().chain([&first, &last]) {
                prop_assert_eq!(ranges.iter().filter(|r| r.contains(k)).count(), 1);
            }
        }
    }

    #[test]
    fn sequential_integer_keys_split_evenly() {
        let key = |i: i64| {
            let v = Datum::text(i.to_string());
            encode_user_key(TableId(7), &[20], [v.as_ref()]).0
        };
        let ranges = split_range(&key(1), &key(1_000_000), 4);
        assert_eq!(ranges.len(), 4);
        for r in &ranges {
            let n = (1..=1_000_000i64).step_by(97).filter(|i| r.contains(&key(*i))).count();
            assert!((2_400..=2_760).contains(&n), "{n} keys in {r:?}");
        }
    }
}
