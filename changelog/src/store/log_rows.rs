//! Reading the row changes of `log` values without building them: the
//! record's kind, table and rows as spans of the encoded value, whose
//! values decode to borrowed [`DatumRef`]s. The log's values are bincode's
//! standard encoding of [`crate::ChangeRecord`] ([`super::meta::encode`]);
//! a test holds this reader to it. Reads after a base image decode a
//! window of the log this way, at a fraction of the cost of the owned
//! records.

use crate::codec::CorruptEncoding;
use crate::ids::TableId;
use crate::store::meta::BulkReads;
use crate::value::DatumRef;

/// `ChangeRecord`'s variant indexes, in declaration order.
mod variant {
    pub const INSERT: u64 = 0;
    pub const UPDATE: u64 = 1;
    pub const DELETE: u64 = 2;
    pub const TRUNCATE: u64 = 3;
    pub const READ: u64 = 6;
}

/// `Datum`'s variant indexes.
mod datum {
    pub const NULL: u64 = 0;
    pub const TEXT: u64 = 1;
    pub const UNCHANGED_TOAST: u64 = 2;
    pub const MISSING: u64 = 3;
}

/// A row image inside a log value, still encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EncodedRow<'a>(pub &'a [u8]);

/// What a log value does to rows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LogRows<'a> {
    /// A new row (an insert, or a row of a full read).
    Put { table: TableId, row: EncodedRow<'a> },
    /// A changed row, with the old key or row when the source sent one.
    Update {
        table: TableId,
        old: Option<EncodedRow<'a>>,
        new: EncodedRow<'a>,
    },
    /// A deleted row, by its old key or row.
    Delete { table: TableId, old: EncodedRow<'a> },
    /// Something else (a truncate, schema change, read start or the rows of
    /// a bulk load) touching these tables.
    Other(Vec<TableId>),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, what: &'static str) -> CorruptEncoding {
        CorruptEncoding { offset: self.pos, what }
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CorruptEncoding> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.err(what))?;
        let s = self.buf.get(self.pos..end).ok_or_else(|| self.err(what))?;
        self.pos = end;
        Ok(s)
    }

    /// An integer in bincode's standard variable-length encoding.
    fn varint(&mut self) -> Result<u64, CorruptEncoding> {
        let first = *self.bytes(1, "varint")?.first().ok_or_else(|| self.err("varint"))?;
        let le = |b: &[u8]| b.iter().rev().fold(0u64, |v, x| (v << 8) | u64::from(*x));
        Ok(match first {
            0..=250 => u64::from(first),
            251 => le(self.bytes(2, "varint")?),
            252 => le(self.bytes(4, "varint")?),
            253 => le(self.bytes(8, "varint")?),
            _ => return Err(self.err("varint of at most 64 bits")),
        })
    }

    fn len(&mut self) -> Result<usize, CorruptEncoding> {
        let n = self.varint()?;
        usize::try_from(n).map_err(|_| self.err("length"))
    }

    fn table(&mut self) -> Result<TableId, CorruptEncoding> {
        let t = self.varint()?;
        u32::try_from(t).map(TableId).map_err(|_| self.err("table id"))
    }

    /// Skips one encoded row image and returns its span.
    fn row(&mut self) -> Result<EncodedRow<'a>, CorruptEncoding> {
        let start = self.pos;
        let n = self.len()?;
        for _ in 0..n {
            match self.varint()? {
                datum::NULL | datum::UNCHANGED_TOAST | datum::MISSING => {}
                datum::TEXT => {
                    let len = self.len()?;
                    self.bytes(len, "text value")?;
                }
                _ => return Err(self.err("datum variant")),
            }
        }
        Ok(EncodedRow(self.buf.get(start..self.pos).unwrap_or_default()))
    }
}

/// Reads what the log value `v` does to rows.
pub(crate) fn log_rows(v: &[u8]) -> Result<LogRows<'_>, CorruptEncoding> {
    // The rows a bulk load put are in `versions` only; their read start is
    // a reset before them anyway.
    if let Some(bulk) = BulkReads::decode(v)? {
        return Ok(LogRows::Other(vec![bulk.table]));
    }
    let mut r = Reader { buf: v, pos: 0 };
    Ok(match r.varint()? {
        variant::INSERT | variant::READ => LogRows::Put {
            table: r.table()?,
            row: r.row()?,
        },
        variant::UPDATE => {
            let table = r.table()?;
            let old = match r.varint()? {
                0 => None,
                1 => Some(r.row()?),
                _ => return Err(r.err("option tag")),
            };
            LogRows::Update {
                table,
                old,
                new: r.row()?,
            }
        }
        variant::DELETE => LogRows::Delete {
            table: r.table()?,
            old: r.row()?,
        },
        variant::TRUNCATE => {
            let n = r.len()?;
            LogRows::Other((0..n).map(|_| r.table()).collect::<Result<_, _>>()?)
        }
        // Schema, ReadStart: the table comes first.
        4 | 5 => LogRows::Other(vec![r.table()?]),
        _ => return Err(r.err("record variant")),
    })
}

impl<'a> EncodedRow<'a> {
    /// The row's values into `out` (cleared first); false when one is an
    /// unchanged-TOAST marker, which has no value to give.
    pub(crate) fn values_into(self, out: &mut Vec<DatumRef<'a>>) -> Result<bool, CorruptEncoding> {
        out.clear();
        let mut r = Reader { buf: self.0, pos: 0 };
        let n = r.len()?;
        for _ in 0..n {
            out.push(match r.varint()? {
                datum::NULL => DatumRef::Null,
                datum::MISSING => DatumRef::Missing,
                datum::TEXT => {
                    let len = r.len()?;
                    DatumRef::Text(r.bytes(len, "text value")?)
                }
                datum::UNCHANGED_TOAST => return Ok(false),
                _ => return Err(r.err("datum variant")),
            });
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::record::ChangeRecord;
    use crate::store::meta::encode;
    use crate::value::{Datum, RowImage};

    fn datum() -> impl Strategy<Value = Datum> {
        prop_oneof![
            Just(Datum::Null),
            Just(Datum::Missing),
            Just(Datum::UnchangedToast),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Datum::Text),
            (0usize..3, any::<u8>()).prop_map(|(i, b)| Datum::Text(vec![b; [251, 65_535, 65_536][i]])),
        ]
    }

    fn row() -> impl Strategy<Value = RowImage> {
        proptest::collection::vec(datum(), 0..12).prop_map(RowImage)
    }

    fn values(r: EncodedRow<'_>) -> Option<Vec<Datum>> {
        let mut out = Vec::new();
        r.values_into(&mut out)
            .unwrap()
            .then(|| out.into_iter().map(DatumRef::to_datum).collect())
    }

    fn owned(r: &RowImage) -> Option<Vec<Datum>> {
        (!r.has_unchanged_toast()).then(|| r.0.clone())
    }

    #[test]
    fn a_bulk_load_marker_reads_as_touching_its_table() {
        let marker = BulkReads {
            table: TableId(7),
            rows: 1000,
        };
        assert_eq!(log_rows(&marker.encode()), Ok(LogRows::Other(vec![TableId(7)])));
        assert!(log_rows(&marker.encode()[..5]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// What serde encoded, this reads back: kinds, tables and values.
        #[test]
        fn reads_what_serde_wrote(
            table in prop_oneof![0u32..300, any::<u32>()],
            kind in 0usize..5,
            a in row(),
            b in row(),
            with_old in any::<bool>(),
        ) {
            let t = TableId(table);
            let record = match kind {
                0 => ChangeRecord::Insert { table: t, new: a.clone() },
                1 => ChangeRecord::Update { table: t, old: with_old.then(|| b.clone()), new: a.clone() },
                2 => ChangeRecord::Delete { table: t, old: a.clone() },
                3 => ChangeRecord::Read { table: t, row: a.clone() },
                _ => ChangeRecord::Truncate { tables: vec![t, TableId(table ^ 1)] },
            };
            let bytes = encode(&record);
            match (log_rows(&bytes).unwrap(), &record) {
                (LogRows::Put { table, row }, ChangeRecord::Insert { new, .. } | ChangeRecord::Read { row: new, .. }) => {
                    prop_assert_eq!(table, t);
                    prop_assert_eq!(values(row), owned(new));
                }
                (LogRows::Update { table, old, new }, ChangeRecord::Update { old: o, new: n, .. }) => {
                    prop_assert_eq!(table, t);
                    prop_assert_eq!(old.map(values), o.as_ref().map(owned));
                    prop_assert_eq!(values(new), owned(n));
                }
                (LogRows::Delete { table, old }, ChangeRecord::Delete { old: o, .. }) => {
                    prop_assert_eq!(table, t);
                    prop_assert_eq!(values(old), owned(o));
                }
                (LogRows::Other(tables), ChangeRecord::Truncate { tables: want }) => prop_assert_eq!(&tables, want),
                (got, want) => prop_assert!(false, "{:?} read as {:?}", want, got),
            }
        }
    }

    #[test]
    fn schema_and_read_markers_name_their_table() {
        let bytes = encode(&ChangeRecord::ReadStart { table: TableId(300) });
        assert_eq!(log_rows(&bytes).unwrap(), LogRows::Other(vec![TableId(300)]));
        assert!(log_rows(&[9]).is_err());
        assert!(log_rows(&[0, 1, 5]).is_err(), "a row cut short");
    }
}
