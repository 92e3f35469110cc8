//! The one rule that maps a captured column's Postgres type to an Arrow
//! type, and how a stored value (Postgres's exact text) becomes an Arrow
//! value under it.
//!
//! A column is typed when its *declared* type can only hold values Arrow
//! represents exactly; otherwise it keeps Postgres's text as `Utf8`:
//!
//! | Postgres | Arrow |
//! | --- | --- |
//! | `int2`, `int4`, `int8` | `Int16`, `Int32`, `Int64` |
//! | `bool` | `Boolean` |
//! | `float4`, `float8` (NaN, ±Infinity too) | `Float32`, `Float64` |
//! | `numeric(p,s)`, `1 <= p <= 38`, `0 <= s <= p` | `Decimal128(p,s)` |
//! | `text`, `varchar`, `bpchar`, `name`, `uuid` | `Utf8` (uuid in its canonical text) |
//! | `bytea` | `Binary` |
//! | `date` | `Date32` (BC dates too) |
//! | `timestamp` | `Timestamp(µs)` (BC too) |
//! | `timestamptz` | `Timestamp(µs, "UTC")` |
//! | a one-dimensional array of the above | `List` of it |
//! | anything else (unconstrained `numeric`, `json`, `interval`, `time`, enums, ...) | `Utf8`, Postgres's text |
//!
//! A few values of typed columns have no Arrow counterpart: `infinity` and
//! `-infinity` dates and timestamps, `NaN` in a `numeric(p,s)`, and
//! multi-dimensional arrays or arrays with explicit bounds (an `int4[]`
//! column may hold `{{1,2},{3,4}}`). Such a value never reads as a nearby
//! one: the read fails with an error naming the table, the column and the
//! value. [`Typing::Text`] reads every column as Postgres text instead, which
//! always succeeds; a query can still cast.

use std::sync::Arc;

use changelog::Column;
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

mod build;
mod parse;

pub use build::{BatchBuilder, ColumnBuilder, Unfinished};
pub use parse::{days_from_civil, parse_array, Unrepresentable};

/// Whether columns get the Arrow type their Postgres type maps to, or all
/// stay text.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Typing {
    /// The mapping of this module's table.
    #[default]
    Typed,
    /// Every column is `Utf8` holding Postgres's text.
    Text,
}

/// How one column is read: the Arrow type and the parser behind it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ColumnType {
    /// `int2`.
    Int16,
    /// `int4`.
    Int32,
    /// `int8`.
    Int64,
    /// `bool`.
    Bool,
    /// `float4`.
    Float32,
    /// `float8`.
    Float64,
    /// `numeric(precision, scale)`.
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// Postgres's text, verbatim: text types and every type without a
    /// lossless Arrow type.
    Text,
    /// `bytea`.
    Bytes,
    /// `date`.
    Date,
    /// `timestamp` (`tz: false`) or `timestamptz` (`tz: true`, UTC).
    Timestamp {
        /// With time zone.
        tz: bool,
    },
    /// A one-dimensional array of a scalar type.
    List(Box<ColumnType>),
}

/// Postgres type OIDs (`pg_type.oid`) the rule knows; they are fixed in
/// every Postgres release.
mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    /// Array types, as (array OID, element OID).
    pub const ARRAYS: &[(u32, u32)] = &[
        (1000, BOOL),
        (1001, BYTEA),
        (1003, NAME),
        (1005, INT2),
        (1007, INT4),
        (1009, TEXT),
        (1014, BPCHAR),
        (1015, VARCHAR),
        (1016, INT8),
        (1021, FLOAT4),
        (1022, FLOAT8),
        (1115, TIMESTAMP),
        (1182, DATE),
        (1185, TIMESTAMPTZ),
        (1231, NUMERIC),
        (2951, UUID),
    ];
}

/// The largest precision `Decimal128` holds.
const MAX_DECIMAL_PRECISION: i32 = 38;

impl ColumnType {
    /// The type a column of this Postgres type (OID and `atttypmod`) is read
    /// as under `typing`.
    pub fn of(type_oid: u32, type_modifier: i32, typing: Typing) -> ColumnType {
        if typing == Typing::Text {
            return ColumnType::Text;
        }
        if let Some((_, element)) = oid::ARRAYS.iter().find(|(a, _)| *a == type_oid) {
            // An array of numeric that is text as a scalar is text whole;
            // arrays of text types are lists of text.
            return match ColumnType::scalar(*element, type_modifier) {
                ColumnType::Text if *element == oid::NUMERIC => ColumnType::Text,
                t => ColumnType::List(Box::new(t)),
            };
        }
        ColumnType::scalar(type_oid, type_modifier)
    }

    /// The type of a captured column.
    pub fn of_column(column: &Column, typing: Typing) -> ColumnType {
        ColumnType::of(column.type_oid, column.type_modifier, typing)
    }

    fn scalar(type_oid: u32, type_modifier: i32) -> ColumnType {
        match type_oid {
            oid::INT2 => ColumnType::Int16,
            oid::INT4 => ColumnType::Int32,
            oid::INT8 => ColumnType::Int64,
            oid::BOOL => ColumnType::Bool,
            oid::FLOAT4 => ColumnType::Float32,
            oid::FLOAT8 => ColumnType::Float64,
            oid::NUMERIC => numeric(type_modifier),
            oid::BYTEA => ColumnType::Bytes,
            oid::DATE => ColumnType::Date,
            oid::TIMESTAMP => ColumnType::Timestamp { tz: false },
            oid::TIMESTAMPTZ => ColumnType::Timestamp { tz: true },
            // Text types and uuid (kept in its canonical text, which
            // compares and joins as users write it) and everything else.
            oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::UUID => ColumnType::Text,
            _ => ColumnType::Text,
        }
    }

    /// The Arrow type.
    pub fn data_type(&self) -> DataType {
        match self {
            ColumnType::Int16 => DataType::Int16,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            ColumnType::Text => DataType::Utf8,
            ColumnType::Bytes => DataType::Binary,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp { tz: false } => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::Timestamp { tz: true } => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnType::List(inner) => DataType::List(Arc::new(list_item(inner))),
        }
    }

    /// An Arrow field of this type (always nullable: Postgres's NOT NULL
    /// can be dropped mid-history).
    pub fn field(&self, name: &str) -> Field {
        Field::new(name, self.data_type(), true)
    }
}

/// Field metadata on a column kept as Postgres's text whose type clients
/// parse from that text (`uuid`, `json`, `interval`, unconstrained
/// `numeric`, ...): its Postgres type OID, so a wire server can announce
/// the column as that type rather than as `text`.
pub const PG_TYPE_OID: &str = "asof.pg_type_oid";

/// Built-in types whose text a client reads as the type itself.
const TEXT_FORM_TYPES: &[u32] = &[
    18, 19, 26, 114, 142, 199, 650, 829, 869, 1042, 1043, 1083, 1183, 1186, 1187, 1231, 1266, 1270, 1560, 1562, 1700,
    2950, 2951, 3802, 3807,
];

impl ColumnType {
    /// The field of a captured column: [`ColumnType::field`], with
    /// [`PG_TYPE_OID`] on a text column of a type in its text form.
    pub fn column_field(&self, column: &Column) -> Field {
        let field = self.field(&column.name);
        if *self == ColumnType::Text && TEXT_FORM_TYPES.contains(&column.type_oid) {
            let metadata = [(PG_TYPE_OID.to_string(), column.type_oid.to_string())].into();
            return field.with_metadata(metadata);
        }
        field
    }
}

/// The element field of a list.
pub(crate) fn list_item(inner: &ColumnType) -> Field {
    Field::new_list_field(inner.data_type(), true)
}

/// `numeric(p,s)` is typed when `Decimal128` holds every value its
/// modifier allows (NaN aside); unconstrained `numeric` and the scales
/// Postgres 15 allows beyond `0..=p` stay text.
fn numeric(type_modifier: i32) -> ColumnType {
    // atttypmod = ((precision << 16) | scale) + VARHDRSZ, scale as 11 bits
    // two's complement since Postgres 15.
    let Some(m) = type_modifier.checked_sub(4).filter(|m| *m >= 0) else {
        return ColumnType::Text;
    };
    let precision = m >> 16;
    let raw_scale = m & 0x7ff;
    let scale = if raw_scale & 0x400 != 0 {
        raw_scale - 0x800
    } else {
        raw_scale
    };
    if !(1..=MAX_DECIMAL_PRECISION).contains(&precision) || !(0..=precision).contains(&scale) {
        return ColumnType::Text;
    }
    match (u8::try_from(precision), i8::try_from(scale)) {
        (Ok(precision), Ok(scale)) => ColumnType::Decimal { precision, scale },
        _ => ColumnType::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typmod(p: i32, s: i32) -> i32 {
        ((p << 16) | (s & 0x7ff)) + 4
    }

    #[test]
    fn declared_types_map_once() {
        let t = |oid, m| ColumnType::of(oid, m, Typing::Typed).data_type();
        assert_eq!(t(21, -1), DataType::Int16);
        assert_eq!(t(23, -1), DataType::Int32);
        assert_eq!(t(20, -1), DataType::Int64);
        assert_eq!(t(16, -1), DataType::Boolean);
        assert_eq!(t(700, -1), DataType::Float32);
        assert_eq!(t(701, -1), DataType::Float64);
        assert_eq!(t(1700, typmod(12, 2)), DataType::Decimal128(12, 2));
        assert_eq!(t(1700, typmod(38, 0)), DataType::Decimal128(38, 0));
        assert_eq!(t(1700, -1), DataType::Utf8, "unconstrained numeric");
        assert_eq!(t(1700, typmod(39, 2)), DataType::Utf8, "beyond Decimal128");
        assert_eq!(t(1700, typmod(5, -2)), DataType::Utf8, "negative scale");
        assert_eq!(t(1700, typmod(2, 5)), DataType::Utf8, "scale beyond precision");
        assert_eq!(t(25, -1), DataType::Utf8);
        assert_eq!(t(1043, 14), DataType::Utf8);
        assert_eq!(t(2950, -1), DataType::Utf8);
        assert_eq!(t(17, -1), DataType::Binary);
        assert_eq!(t(1082, -1), DataType::Date32);
        assert_eq!(t(1114, -1), DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!(
            t(1184, -1),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            t(1007, -1),
            DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)))
        );
        assert_eq!(t(1231, -1), DataType::Utf8, "array of unconstrained numeric");
        assert_eq!(
            t(1231, typmod(5, 1)),
            DataType::List(Arc::new(Field::new_list_field(DataType::Decimal128(5, 1), true)))
        );
        assert_eq!(
            t(1009, -1),
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
        );
        assert_eq!(t(3802, -1), DataType::Utf8, "jsonb");
        assert_eq!(t(1186, -1), DataType::Utf8, "interval");
        assert_eq!(ColumnType::of(23, -1, Typing::Text), ColumnType::Text);
    }
}
