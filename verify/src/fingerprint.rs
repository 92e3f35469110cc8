//! Row hashes and fingerprints, computed identically here and in SQL
//! ([`crate::sql`]).
//!
//! A row is serialized column by column in the table's column order: `N`
//! for NULL, else the value's byte length, `:`, and its text bytes. Every
//! piece says where it ends, so NULL, the empty string and values holding
//! separators never collide. A row's hash is the lowercase hex MD5 of that
//! serialization; a fingerprint of rows is the hex MD5 of their hashes
//! concatenated in key order. MD5 is used because PostgreSQL has it
//! built in; this guards against mistakes, not against an adversary.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use changelog::DatumRef;
use md5::{Digest, Md5};

/// A row hash: 32 lowercase hex digits.
pub type RowHash = [u8; 32];

/// The hash of a row, its values in the table's column order.
pub fn row_hash(values: &[DatumRef<'_>]) -> RowHash {
    let mut h = Md5::new();
    for v in values {
        match v {
            DatumRef::Null => h.update(b"N"),
            DatumRef::Text(b) => {
                h.update(b.len().to_string().as_bytes());
                h.update(b":");
                h.update(b);
            }
            // Not a form the source ever prints, so never equal to it.
            DatumRef::Missing => h.update(b"?"),
        }
    }
    hex(&h.finalize())
}

/// The fingerprint of rows given by their hashes in order, as PostgreSQL's
/// `md5(string_agg(hash, ''))` computes it; `None` for no rows, like
/// `string_agg` over nothing.
pub fn fingerprint<'a>(hashes: impl IntoIterator<Item = &'a RowHash>) -> Option<String> {
    let mut h = Md5::new();
    let mut any = false;
    for r in hashes {
        h.update(r);
        any = true;
    }
    any.then(|| String::from_utf8_lossy(&hex(&h.finalize())).into_owned())
}

fn hex(digest: &[u8]) -> RowHash {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; 32];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest) {
        if let [hi, lo] = pair {
            *hi = DIGITS.get(usize::from(byte >> 4)).copied().unwrap_or(b'0');
            *lo = DIGITS.get(usize::from(byte & 0x0F)).copied().unwrap_or(b'0');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_keeps_null_empty_and_separators_apart() {
        let t = |s: &'static str| DatumRef::Text(s.as_bytes());
        let rows = [
            vec![DatumRef::Null],
            vec![t("")],
            vec![t("N")],
            vec![t("a"), t("b")],
            vec![t("ab"), t("")],
            vec![t("1:a")],
        ];
        let hashes: std::collections::HashSet<RowHash> = rows.iter().map(|r| row_hash(r)).collect();
        assert_eq!(hashes.len(), rows.len());
    }

    #[test]
    fn matches_postgres_md5() {
        // SELECT md5('1:a' || 'N')
        let a = row_hash(&[DatumRef::Text(b"a"), DatumRef::Null]);
        assert_eq!(&a, b"fb8525c8aaa6e1723c4da846ef238253");
        assert_eq!(fingerprint(std::iter::empty()), None);
    }
}
