//! Values in JSON: the Debezium form of a row image, and the exact form of
//! the values that form cannot carry.
//!
//! In a row image (Debezium's `before`/`after`, and the key) a column's
//! value is its Postgres text as a JSON string, `null` for SQL NULL, and the
//! column is absent when the value is not known ([`Datum::Missing`]).
//! Two values have no exact string: text that is not UTF-8 (written as its
//! lossy UTF-8 form) and an unchanged TOAST marker (written as Debezium's
//! placeholder [`UNAVAILABLE`]); for these the record's
//! [`crate::header::EXACT`] header carries the exact value, which a reader
//! takes instead.

use std::collections::BTreeMap;

use changelog::{Column, Datum, RowImage, TableSchema};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// What Debezium writes for a value it does not have (its
/// `unavailable.value.placeholder`), used for an unchanged TOAST marker.
pub const UNAVAILABLE: &str = "__debezium_unavailable_value";

/// One value in its exact, self-describing JSON form.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DatumWire {
    Null,
    Missing,
    UnchangedToast,
    /// Text that is valid UTF-8.
    Text(String),
    /// Text that is not UTF-8, in lower-case hexadecimal.
    Bytes(String),
}

impl DatumWire {
    pub(crate) fn of(d: &Datum) -> Self {
        match d {
            Datum::Null => DatumWire::Null,
            Datum::Missing => DatumWire::Missing,
            Datum::UnchangedToast => DatumWire::UnchangedToast,
            Datum::Text(b) => match std::str::from_utf8(b) {
                Ok(s) => DatumWire::Text(s.to_owned()),
                Err(_) => DatumWire::Bytes(hex(b)),
            },
        }
    }

    pub(crate) fn into_datum(self) -> Option<Datum> {
        Some(match self {
            DatumWire::Null => Datum::Null,
            DatumWire::Missing => Datum::Missing,
            DatumWire::UnchangedToast => Datum::UnchangedToast,
            DatumWire::Text(s) => Datum::Text(s.into_bytes()),
            DatumWire::Bytes(h) => Datum::Text(unhex(&h)?),
        })
    }
}

fn hex(b: &[u8]) -> String {
    let digit = |d: u8| char::from_digit(u32::from(d), 16).unwrap_or('0');
    b.iter().flat_map(|&x| [digit(x >> 4), digit(x & 0xf)]).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}

/// The exact values of the columns a row image's JSON cannot say exactly,
/// by column name; `None` when it says every value exactly.
pub(crate) fn exceptions(columns: &[Column], row: &RowImage) -> Option<BTreeMap<String, DatumWire>> {
    let map: BTreeMap<String, DatumWire> = columns
        .iter()
        .zip(row.values())
        .filter(|(_, d)| match d {
            Datum::UnchangedToast => true,
            Datum::Text(b) => std::str::from_utf8(b).is_err(),
            Datum::Null | Datum::Missing => false,
        })
        .map(|(c, d)| (c.name.clone(), DatumWire::of(d)))
        .collect();
    (!map.is_empty()).then_some(map)
}

/// A row image as a Debezium JSON object, columns in table order.
pub(crate) struct ImageJson<'a> {
    pub(crate) columns: &'a [Column],
    pub(crate) row: &'a RowImage,
    /// Only the key columns (the record key).
    pub(crate) keys_only: bool,
}

impl Serialize for ImageJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (c, d) in self.columns.iter().zip(self.row.values()) {
            if self.keys_only && !c.is_key {
                continue;
            }
            match d {
                Datum::Null => map.serialize_entry(&c.name, &())?,
                Datum::Text(b) => map.serialize_entry(&c.name, &String::from_utf8_lossy(b))?,
                Datum::UnchangedToast => map.serialize_entry(&c.name, UNAVAILABLE)?,
                Datum::Missing => {}
            }
        }
        map.end()
    }
}

/// A row image's JSON did not fit the table's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// A column the table does not have.
    #[error("column {0:?} is not a column of the table")]
    UnknownColumn(String),
    /// A value that is neither a string nor null.
    #[error("column {0:?} is neither a string nor null")]
    NotText(String),
    /// An exact value that does not decode.
    #[error("the exact value of column {0:?} is not valid")]
    BadExact(String),
}

/// The row image a JSON object holds, in the shape's column order, exact
/// values taken from `exact` where given.
pub(crate) fn decode_image(
    shape: &TableSchema,
    object: serde_json::Map<String, serde_json::Value>,
    mut exact: BTreeMap<String, DatumWire>,
) -> Result<RowImage, RowError> {
    if let Some(name) = object
        .keys()
        .chain(exact.keys())
        .find(|n| shape.column_index(n).is_none())
    {
        return Err(RowError::UnknownColumn(name.clone()));
    }
    let mut object = object;
    shape
        .columns
        .iter()
        .map(|c| {
            if let Some(w) = exact.remove(&c.name) {
                return w.into_datum().ok_or_else(|| RowError::BadExact(c.name.clone()));
            }
            match object.remove(&c.name) {
                None => Ok(Datum::Missing),
                Some(serde_json::Value::Null) => Ok(Datum::Null),
                Some(serde_json::Value::String(s)) => Ok(Datum::Text(s.into_bytes())),
                Some(_) => Err(RowError::NotText(c.name.clone())),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(RowImage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let b = vec![0u8, 0x7f, 0x80, 0xff, b'a'];
        assert_eq!(hex(&b), "007f80ff61");
        assert_eq!(unhex(&hex(&b)), Some(b));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("+1"), None);
    }
}
