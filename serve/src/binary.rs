//! Arrow values in Postgres's binary format, for the types clients ask
//! binary results of (JDBC does after a few executions of a statement).
//! Types without a binary form here answer with an error naming them.

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};

use crate::error::PgError;

/// Days from 1970-01-01 to 2000-01-01, Postgres's epoch.
pub const PG_EPOCH_DAYS: i64 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS * 86_400_000_000;

/// Whether values of `data_type` can be sent in binary.
pub fn supported(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::Date32
            | DataType::Timestamp(TimeUnit::Microsecond, _)
    )
}

/// The error for a binary result of an unsupported type.
pub fn unsupported(data_type: &DataType) -> PgError {
    PgError::new(
        "0A000",
        format!("binary format is not supported for {data_type} results; ask for text"),
    )
}

/// Appends `array[row]` (not NULL) in binary.
pub fn write_value(array: &dyn Array, row: usize, out: &mut BytesMut) -> Result<(), PgError> {
    match array.data_type() {
        DataType::Boolean => out.put_u8(u8::from(array.as_boolean().value(row))),
        DataType::Int16 => out.put_i16(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => out.put_i32(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => out.put_i64(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => out.put_f32(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => out.put_f64(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => out.put_slice(array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => out.put_slice(array.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => out.put_slice(array.as_string_view().value(row).as_bytes()),
        DataType::Binary => out.put_slice(array.as_binary::<i32>().value(row)),
        DataType::Date32 => {
            let days = i64::from(array.as_primitive::<Date32Type>().value(row)) - PG_EPOCH_DAYS;
            out.put_i32(i32::try_from(days).map_err(|_| PgError::new("22008", "date out of range"))?);
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            out.put_i64(micros.saturating_sub(PG_EPOCH_MICROS));
        }
        other => return Err(unsupported(other)),
    }
    Ok(())
}
