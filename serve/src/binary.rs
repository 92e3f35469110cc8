//! Arrow values in Postgres's binary format, for the types clients ask
//! binary results of (JDBC does after a few executions of a statement).
//! Types without a binary form here answer with an error naming them.

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType,
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
            | DataType::Decimal128(..)
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
        DataType::Decimal128(_, scale) => numeric(out, array.as_primitive::<Decimal128Type>().value(row), *scale),
        other => return Err(unsupported(other)),
    }
    Ok(())
}

/// `numeric` in binary: base-10000 digits, the first one's weight, the
/// sign and the display scale.
fn numeric(out: &mut BytesMut, v: i128, scale: i8) {
    let dscale = usize::from(scale.max(0).unsigned_abs());
    let mut text = v.unsigned_abs().to_string();
    if scale < 0 {
        text.extend(std::iter::repeat_n('0', usize::from(scale.unsigned_abs())));
    }
    let padded = format!("{text:0>width$}", width = dscale + 1);
    let (int, frac) = padded.split_at(padded.len() - dscale);
    let int = int.trim_start_matches('0');
    let lead = (4 - int.len() % 4) % 4;
    let int = format!("{}{int}", "0".repeat(lead));
    let trail = (4 - frac.len() % 4) % 4;
    let frac = format!("{frac}{}", "0".repeat(trail));
    let group = |s: &str| -> Vec<i16> {
        s.as_bytes()
            .chunks(4)
            .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
            .collect()
    };
    let int_groups = group(&int);
    let mut digits = int_groups.clone();
    digits.extend(group(&frac));
    let mut weight = i16::try_from(int_groups.len()).unwrap_or(i16::MAX) - 1;
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading);
    weight -= i16::try_from(leading).unwrap_or(0);
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    out.put_i16(i16::try_from(digits.len()).unwrap_or(i16::MAX));
    out.put_i16(weight);
    out.put_u16(if v < 0 { 0x4000 } else { 0 });
    out.put_i16(i16::try_from(dscale).unwrap_or(0));
    for d in digits {
        out.put_i16(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(v: i128, scale: i8) -> Vec<i16> {
        let mut out = BytesMut::new();
        numeric(&mut out, v, scale);
        out.chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn numerics_encode_as_postgres_sends_them() {
        // 12345.67: digits 1, 2345, 6700; weight 1; scale 2.
        assert_eq!(encoded(1_234_567, 2), [3, 1, 0, 2, 1, 2345, 6700]);
        // -0.05: one digit 500 of weight -1.
        assert_eq!(encoded(-5, 2), [1, -1, 0x4000, 2, 500]);
        assert_eq!(encoded(0, 2), [0, 0, 0, 2]);
        // 10000: one digit 1 of weight 1.
        assert_eq!(encoded(10_000, 0), [1, 1, 0, 0, 1]);
        // 0.00001234 (scale 8): digits 0000|1234 after the point.
        assert_eq!(encoded(1234, 8), [1, -2, 0, 8, 1234]);
    }
}
