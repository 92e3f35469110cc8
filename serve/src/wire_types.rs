//! The Postgres type a result column is sent as, by its Arrow type: the
//! reverse of `asof_sql::types`, for the wire.
//!
//! | Arrow | Postgres |
//! | --- | --- |
//! | `Int16`, `Int32`, `Int64` (and `Int8`, `UInt8` as `int2`, `UInt16` as `int4`, `UInt32` as `int8`) | `int2`, `int4`, `int8` |
//! | `Float32`, `Float64` | `float4`, `float8` |
//! | `Decimal128`, `Decimal256`, `UInt64` | `numeric` |
//! | `Boolean` | `bool` |
//! | `Utf8`, `LargeUtf8`, `Utf8View` | `text` |
//! | `Binary`, `LargeBinary`, `BinaryView` | `bytea` |
//! | `Date32` | `date` |
//! | `Timestamp` without / with a time zone | `timestamp` / `timestamptz` |
//! | `List` of one of the above | its array type |
//! | anything else | `text`, Arrow's display of the value |

use asof_sql::types::PG_TYPE_OID;
use datafusion::arrow::datatypes::{DataType, Field};

/// A Postgres type as a result column's description names it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PgType {
    /// `pg_type.oid`.
    pub oid: u32,
    /// `pg_type.typlen`: the fixed size, or -1.
    pub size: i16,
}

impl PgType {
    /// The built-in type `oid`, its size as the catalog lists it.
    const fn new(oid: u32) -> PgType {
        PgType {
            oid,
            size: asof_sql::pg_catalog::len_of(oid),
        }
    }
}

/// The types used here; their OIDs are fixed in every Postgres release,
/// and their sizes come from the catalog's list of built-in types.
#[allow(missing_docs)]
pub mod oid {
    use super::PgType;
    pub const BOOL: PgType = PgType::new(16);
    pub const BYTEA: PgType = PgType::new(17);
    pub const NAME: PgType = PgType::new(19);
    pub const JSON: PgType = PgType::new(114);
    pub const XML: PgType = PgType::new(142);
    pub const INT8: PgType = PgType::new(20);
    pub const INT2: PgType = PgType::new(21);
    pub const INT4: PgType = PgType::new(23);
    pub const TEXT: PgType = PgType::new(25);
    pub const FLOAT4: PgType = PgType::new(700);
    pub const FLOAT8: PgType = PgType::new(701);
    pub const BPCHAR: PgType = PgType::new(1042);
    pub const VARCHAR: PgType = PgType::new(1043);
    pub const DATE: PgType = PgType::new(1082);
    pub const TIMESTAMP: PgType = PgType::new(1114);
    pub const TIMESTAMPTZ: PgType = PgType::new(1184);
    pub const NUMERIC: PgType = PgType::new(1700);
    pub const UUID: PgType = PgType::new(2950);
    pub const JSONB: PgType = PgType::new(3802);
    pub const BOOL_ARRAY: PgType = PgType::new(1000);
    pub const BYTEA_ARRAY: PgType = PgType::new(1001);
    pub const INT2_ARRAY: PgType = PgType::new(1005);
    pub const INT4_ARRAY: PgType = PgType::new(1007);
    pub const TEXT_ARRAY: PgType = PgType::new(1009);
    pub const INT8_ARRAY: PgType = PgType::new(1016);
    pub const FLOAT4_ARRAY: PgType = PgType::new(1021);
    pub const FLOAT8_ARRAY: PgType = PgType::new(1022);
    pub const TIMESTAMP_ARRAY: PgType = PgType::new(1115);
    pub const DATE_ARRAY: PgType = PgType::new(1182);
    pub const TIMESTAMPTZ_ARRAY: PgType = PgType::new(1185);
    pub const NUMERIC_ARRAY: PgType = PgType::new(1231);
}

use oid as Type;

/// The Postgres type a result column is sent as: the captured column's
/// own type when it is kept in Postgres's text form (`uuid`, `jsonb`, ...),
/// else by its Arrow type.
pub fn pg_type_of(field: &Field) -> PgType {
    if let Some(oid) = field.metadata().get(PG_TYPE_OID).and_then(|o| o.parse::<u32>().ok()) {
        return PgType {
            oid,
            size: asof_sql::pg_catalog::typlen(oid),
        };
    }
    pg_type(field.data_type())
}

/// The Postgres type values of `data_type` are sent as.
pub fn pg_type(data_type: &DataType) -> PgType {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) => array_of(item.data_type()),
        other => scalar(other),
    }
}

fn scalar(data_type: &DataType) -> PgType {
    match data_type {
        DataType::Int8 | DataType::UInt8 | DataType::Int16 => Type::INT2,
        DataType::UInt16 | DataType::Int32 => Type::INT4,
        DataType::UInt32 | DataType::Int64 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Boolean => Type::BOOL,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => Type::BYTEA,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        _ => Type::TEXT,
    }
}

/// The array type of a list of `item`; a list of something without an
/// array type is sent as text.
fn array_of(item: &DataType) -> PgType {
    match scalar(item) {
        Type::INT2 => Type::INT2_ARRAY,
        Type::INT4 => Type::INT4_ARRAY,
        Type::INT8 => Type::INT8_ARRAY,
        Type::NUMERIC => Type::NUMERIC_ARRAY,
        Type::FLOAT4 => Type::FLOAT4_ARRAY,
        Type::FLOAT8 => Type::FLOAT8_ARRAY,
        Type::BOOL => Type::BOOL_ARRAY,
        Type::BYTEA => Type::BYTEA_ARRAY,
        Type::DATE => Type::DATE_ARRAY,
        Type::TIMESTAMP => Type::TIMESTAMP_ARRAY,
        Type::TIMESTAMPTZ => Type::TIMESTAMPTZ_ARRAY,
        _ => Type::TEXT_ARRAY,
    }
}

/// The Arrow type a parameter the client declared as `pg` is read as, for
/// the types a query can compare with; `None` leaves it to the query.
pub fn arrow_type(pg_oid: u32) -> Option<DataType> {
    let is = |t: PgType| t.oid == pg_oid;
    Some(match () {
        () if is(Type::INT2) => DataType::Int16,
        () if is(Type::INT4) => DataType::Int32,
        () if is(Type::INT8) => DataType::Int64,
        () if is(Type::FLOAT4) => DataType::Float32,
        () if is(Type::FLOAT8) => DataType::Float64,
        () if is(Type::BOOL) => DataType::Boolean,
        () if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME, Type::UUID]
            .iter()
            .any(|t| is(*t)) =>
        {
            DataType::Utf8
        }
        () if is(Type::BYTEA) => DataType::Binary,
        () if is(Type::DATE) => DataType::Date32,
        () => return None,
    })
}
