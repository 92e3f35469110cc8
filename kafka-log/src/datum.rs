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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use changelog::{Column, Datum, RowImage, TableSchema};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::json;

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

impl ImageJson<'_> {
    /// Appends the image as a JSON object.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for (c, d) in self.columns.iter().zip(self.row.values()) {
            if (self.keys_only && !c.is_key) || matches!(d, Datum::Missing) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            json::string(out, &c.name);
            out.push(b':');
            match d {
                Datum::Null | Datum::Missing => out.extend_from_slice(b"null"),
                Datum::Text(b) => json::string(out, &String::from_utf8_lossy(b)),
                Datum::UnchangedToast => json::string(out, UNAVAILABLE),
            }
        }
        out.push(b'}');
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

/// A row image's JSON object as read: its members in order, strings
/// borrowed from the record where they have no escapes. Reading into this
/// rather than a map keeps decoding to one pass without a node per member.
pub(crate) struct ImageIn<'a>(Vec<(Cow<'a, str>, ValueIn<'a>)>);

/// A member's value in a row image.
pub(crate) enum ValueIn<'a> {
    Null,
    Text(Cow<'a, str>),
    /// Anything else: a number, a boolean, an array or an object.
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for ImageIn<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Members<'a> {
            type Value = ImageIn<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row image object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Name(name)) = map.next_key::<Name<'a>>()? {
                    members.push((name, map.next_value::<ValueIn<'a>>()?));
                }
                Ok(ImageIn(members))
            }
        }
        d.deserialize_map(Members(PhantomData))
    }
}

/// A member's name, borrowed where it has no escapes (`Cow`'s own
/// `Deserialize` always copies).
struct Name<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Text<'a> {
            type Value = Name<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a column name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Text(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ValueIn<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Value<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Value<'a> {
            type Value = ValueIn<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ValueIn::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(ValueIn::Null)
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ValueIn::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ValueIn::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(ValueIn::Text(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ValueIn::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ValueIn::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ValueIn::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ValueIn::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ValueIn::Other)
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ValueIn::Other)
            }
        }
        d.deserialize_any(Value(PhantomData))
    }
}

/// The row image a JSON object holds, in the shape's column order, exact
/// values taken from `exact` where given. A column named twice takes its
/// last value, as a JSON object read into a map would.
pub(crate) fn decode_image(
    shape: &TableSchema,
    image: ImageIn<'_>,
    exact: BTreeMap<String, DatumWire>,
) -> Result<RowImage, RowError> {
    let columns = &shape.columns;
    let mut values: Vec<Option<ValueIn<'_>>> = Vec::new();
    values.resize_with(columns.len(), || None);
    for (i, (name, value)) in image.0.into_iter().enumerate() {
        // Members come in table order: try the column at the same place
        // before searching.
        let at = match columns.get(i) {
            Some(c) if c.name == name => i,
            _ => shape
                .column_index(&name)
                .ok_or_else(|| RowError::UnknownColumn(name.into_owned()))?,
        };
        if let Some(slot) = values.get_mut(at) {
            *slot = Some(value);
        }
    }
    let mut exact_at: Vec<Option<DatumWire>> = Vec::new();
    if !exact.is_empty() {
        exact_at.resize_with(columns.len(), || None);
        for (name, w) in exact {
            let at = shape.column_index(&name).ok_or(RowError::UnknownColumn(name))?;
            if let Some(slot) = exact_at.get_mut(at) {
                *slot = Some(w);
            }
        }
    }
    columns
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (c, value))| {
            if let Some(w) = exact_at.get_mut(i).and_then(Option::take) {
                return w.into_datum().ok_or_else(|| RowError::BadExact(c.name.clone()));
            }
            match value {
                None => Ok(Datum::Missing),
                Some(ValueIn::Null) => Ok(Datum::Null),
                Some(ValueIn::Text(s)) => Ok(Datum::Text(s.into_owned().into_bytes())),
                Some(ValueIn::Other) => Err(RowError::NotText(c.name.clone())),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(RowImage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> TableSchema {
        let column = |name: &str, is_key| changelog::Column {
            name: name.into(),
            type_oid: 25,
            type_name: "text".into(),
            type_modifier: -1,
            is_key,
        };
        TableSchema {
            name: changelog::TableName::new("public", "t"),
            relation_oid: 1,
            columns: vec![column("id", true), column("a\"b", false), column("c", false)],
            replica_identity: changelog::ReplicaIdentity::Default,
        }
    }

    fn decode(json: &str, exact: BTreeMap<String, DatumWire>) -> Result<RowImage, RowError> {
        let image: ImageIn<'_> = serde_json::from_str(json).expect("an object");
        decode_image(&shape(), image, exact)
    }

    fn text(s: &str) -> Datum {
        Datum::Text(s.as_bytes().to_vec())
    }

    #[test]
    fn images_decode_in_any_member_order_with_escapes() {
        let row = decode(r#"{"c":null,"id":"1\n2","a\"b":"x"}"#, BTreeMap::new()).expect("decodes");
        assert_eq!(row, RowImage(vec![text("1\n2"), text("x"), Datum::Null]));
        let row = decode(r#"{"id":"1"}"#, BTreeMap::new()).expect("decodes");
        assert_eq!(row, RowImage(vec![text("1"), Datum::Missing, Datum::Missing]));
    }

    #[test]
    fn a_member_named_twice_takes_its_last_value() {
        let row = decode(r#"{"id":"1","c":"first","c":"last"}"#, BTreeMap::new()).expect("decodes");
        assert_eq!(row, RowImage(vec![text("1"), Datum::Missing, text("last")]));
    }

    #[test]
    fn exact_values_replace_the_json_ones() {
        let exact = BTreeMap::from([("c".to_owned(), DatumWire::UnchangedToast)]);
        let row = decode(r#"{"id":"1","c":"__debezium_unavailable_value"}"#, exact).expect("decodes");
        assert_eq!(row, RowImage(vec![text("1"), Datum::Missing, Datum::UnchangedToast]));
        let bad = BTreeMap::from([("c".to_owned(), DatumWire::Bytes("zz".into()))]);
        assert_eq!(decode(r#"{"id":"1"}"#, bad), Err(RowError::BadExact("c".into())));
        let unknown = BTreeMap::from([("d".to_owned(), DatumWire::Null)]);
        assert_eq!(
            decode(r#"{"id":"1"}"#, unknown),
            Err(RowError::UnknownColumn("d".into()))
        );
    }

    #[test]
    fn members_that_are_not_text_or_columns_are_refused() {
        for (json, err) in [
            (r#"{"id":1}"#, RowError::NotText("id".into())),
            (r#"{"id":true}"#, RowError::NotText("id".into())),
            (r#"{"id":["1"]}"#, RowError::NotText("id".into())),
            (r#"{"id":{"x":"1"}}"#, RowError::NotText("id".into())),
            (r#"{"id":"1","zz":"2"}"#, RowError::UnknownColumn("zz".into())),
        ] {
            assert_eq!(decode(json, BTreeMap::new()), Err(err), "{json}");
        }
        assert!(serde_json::from_str::<ImageIn<'_>>(r#"["id"]"#).is_err());
    }

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
