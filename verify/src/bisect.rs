//! Finding the differing keys of a keyed table without shipping it: the
//! source computes fingerprints of key ranges, split at keys the store
//! holds, and only ranges whose fingerprints differ are split further;
//! a small range is listed (keys and row hashes) and compared key by key.

use std::cmp::Ordering;
use std::collections::HashMap;

use changelog::keys::{encode_user_key, UserKey};
use changelog::{DatumRef, TableId};
use tokio_postgres::Client;

use crate::error::VerifyError;
use crate::fingerprint::{fingerprint, RowHash};
use crate::report::{Difference, DifferenceKind};
use crate::sql::{KeyRange, KeyText, TableSql};

/// A range is listed rather than split once the store holds this few rows
/// in it.
const LIST_BELOW: usize = 256;
/// Ranges one split makes.
const FAN_OUT: usize = 16;
/// Source rows fetched by one listing at most.
const LIST_LIMIT: usize = 10_000;
/// Store rows in one range of the first comparison at most.
const MAX_FIRST_RANGE: usize = 1_000_000;
/// Differing keys kept by name per table.
pub const MAX_NAMED_KEYS: usize = 1_000;

/// One stored row: its key (encoded and as text) and its hash.
pub struct StoreRow {
    /// The store's encoding: its order is the order compared in.
    pub key: UserKey,
    /// The key columns' text.
    pub text: KeyText,
    /// The row's hash.
    pub hash: RowHash,
}

/// A range of keys given by store rows: from row `lo` (included) to row
/// `hi` (excluded), unbounded where `None`.
#[derive(Clone, Copy, Debug)]
struct Span {
    lo: Option<usize>,
    hi: Option<usize>,
}

/// What the comparison found.
#[derive(Default)]
pub struct Found {
    /// Differing keys, in key order, the first [`MAX_NAMED_KEYS`].
    pub named: Vec<Difference>,
    /// All differing keys found.
    pub differing: u64,
    /// Some keys could not be named (a listing hit its limit).
    pub incomplete: bool,
    /// Source rows in the table.
    pub source_rows: u64,
    /// Ranges whose fingerprints were compared.
    pub ranges: u64,
    /// Source rows listed.
    pub listed: u64,
    /// Store rows the source no longer has that the publication did not
    /// delete (see [`Bisect::keeps_unpublished_deletes`]).
    pub kept: u64,
}

/// Compares the table's rows at the source with `rows` (the store's, in
/// key order).
pub struct Bisect<'a> {
    /// The source, in its snapshot.
    pub client: &'a Client,
    /// The table's queries.
    pub sql: &'a TableSql,
    /// The store's id of the table (part of every encoded key).
    pub table: TableId,
    /// The key columns' types.
    pub key_types: &'a [u32],
    /// The store's rows.
    pub rows: &'a [StoreRow],
    /// The publication does not publish deletes (or truncates): rows the
    /// source removed are kept in the store, and are not differences.
    pub keeps_unpublished_deletes: bool,
}

impl Bisect<'_> {
    /// Runs the comparison.
    pub async fn run(&self) -> Result<Found, VerifyError> {
        let mut found = Found::default();
        let mut pending = Vec::new();
        // A very large table starts out split, so that no one fingerprint
        // concatenates more row hashes than a text value can hold.
        let first: Vec<usize> = (1..self.rows.len().div_ceil(MAX_FIRST_RANGE))
            .map(|p| p * MAX_FIRST_RANGE)
            .collect();
        let whole = Span { lo: None, hi: None };
        found.source_rows = self.split(whole, &first, &mut found, &mut pending).await?;
        while let Some(span) = pending.pop() {
            let (i, j) = self.slice(span);
            if j - i <= LIST_BELOW {
                self.list(span, &mut found).await?;
                continue;
            }
            let bounds: Vec<usize> = (1..FAN_OUT).map(|p| i + (j - i) * p / FAN_OUT).collect();
            self.split(span, &bounds, &mut found, &mut pending).await?;
        }
        Ok(found)
    }

    /// Compares the parts of `span` split at the store rows `bounds`,
    /// pushing the mismatching ones onto `pending` (in reverse, so ranges
    /// are examined, and keys named, in key order). Returns the source's
    /// row count in `span`.
    async fn split(
        &self,
        span: Span,
        bounds: &[usize],
        found: &mut Found,
        pending: &mut Vec<Span>,
    ) -> Result<u64, VerifyError> {
        let buckets = self.fingerprints(span, bounds, found).await?;
        let edges: Vec<Option<usize>> = std::iter::once(span.lo)
            .chain(bounds.iter().copied().map(Some))
            .chain(std::iter::once(span.hi))
            .collect();
        let mut total = 0;
        for (b, w) in edges.windows(2).enumerate().rev() {
            let (&lo, &hi) = (w.first().unwrap_or(&None), w.get(1).unwrap_or(&None));
            let part = Span { lo, hi };
            let (count, fp) = buckets.get(&b).cloned().unwrap_or_default();
            total += count;
            if !self.same(part, count, fp.as_deref()) {
                pending.push(part);
            }
        }
        Ok(total)
    }

    /// The store rows inside `span`.
    fn slice(&self, span: Span) -> (usize, usize) {
        (span.lo.unwrap_or(0), span.hi.unwrap_or(self.rows.len()))
    }

    fn range(&self, span: Span) -> KeyRange<'_> {
        let text = |i: usize| self.rows.get(i).map(|r| &r.text);
        KeyRange {
            lo: span.lo.and_then(text),
            hi: span.hi.and_then(text),
        }
    }

    /// Whether the source's count and fingerprint for `span` match the store's.
    fn same(&self, span: Span, count: u64, fp: Option<&str>) -> bool {
        let (i, j) = self.slice(span);
        let rows = self.rows.get(i..j).unwrap_or_default();
        count == rows.len() as u64 && fingerprint(rows.iter().map(|r| &r.hash)).as_deref() == fp
    }

    /// The source's (count, fingerprint) per bucket of `span` split at the
    /// store rows `bounds`.
    async fn fingerprints(
        &self,
        span: Span,
        bounds: &[usize],
        found: &mut Found,
    ) -> Result<HashMap<usize, (u64, Option<String>)>, VerifyError> {
        let texts: Vec<&KeyText> = bounds
            .iter()
            .filter_map(|&b| self.rows.get(b).map(|r| &r.text))
            .collect();
        let query = self.sql.buckets(self.range(span), &texts);
        found.ranges += bounds.len() as u64 + 1;
        let mut out = HashMap::new();
        for row in self.client.query(&query, &[]).await? {
            let bucket: i32 = row.try_get(0)?;
            let count: i64 = row.try_get(1)?;
            let fp: Option<String> = row.try_get(2)?;
            out.insert(
                usize::try_from(bucket).unwrap_or(usize::MAX),
                (u64::try_from(count).unwrap_or(0), fp),
            );
        }
        Ok(out)
    }

    /// Lists `span` at the source and compares it with the store key by key.
    async fn list(&self, span: Span, found: &mut Found) -> Result<(), VerifyError> {
        let width = self.key_types.len();
        let listed = self
            .client
            .query(&self.sql.rows(self.range(span), LIST_LIMIT), &[])
            .await?;
        found.listed += listed.len() as u64;
        let mut source = Vec::with_capacity(listed.len());
        for row in &listed {
            let mut text = Vec::with_capacity(width);
            for c in 0..width {
                text.push(row.try_get::<_, String>(c)?.into_bytes());
            }
            let hash: String = row.try_get(width)?;
            let key = encode_user_key(self.table, self.key_types, text.iter().map(|t| DatumRef::Text(t)));
            source.push((key, text, hash.into_bytes()));
        }
        let truncated = listed.len() >= LIST_LIMIT;
        let (i, j) = self.slice(span);
        let mut stored = self.rows.get(i..j).unwrap_or_default().iter().peekable();
        let mut at_source = source.iter().peekable();
        loop {
            let order = match (stored.peek(), at_source.peek()) {
                (None, None) => break,
                (Some(_), None) if truncated => {
                    // Past the last source row fetched: unknown.
                    found.incomplete = true;
                    break;
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(s), Some(p)) => s.key.cmp(&p.0),
            };
            match order {
                Ordering::Less if self.keeps_unpublished_deletes => {
                    stored.next();
                    found.kept += 1;
                }
                Ordering::Less => {
                    let s = stored.next();
                    note(found, s.map(|s| &s.text), DifferenceKind::NotAtSource);
                }
                Ordering::Greater => {
                    let p = at_source.next();
                    note(found, p.map(|p| &p.1), DifferenceKind::MissingFromStore);
                }
                Ordering::Equal => {
                    let (s, p) = (stored.next(), at_source.next());
                    if let (Some(s), Some(p)) = (s, p) {
                        if s.hash.as_slice() != p.2.as_slice() {
                            note(found, Some(&s.text), DifferenceKind::ValuesDiffer);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn note(found: &mut Found, key: Option<&KeyText>, kind: DifferenceKind) {
    found.differing += 1;
    if found.named.len() < MAX_NAMED_KEYS {
        let key = key
            .map(|k| k.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect())
            .unwrap_or_default();
        found.named.push(Difference { key, kind });
    }
}
