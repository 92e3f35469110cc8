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
use crate::wire_types::{oid, pg_type, PgType};

/// Days from 1970-01-01 to 2000-01-01, Postgres's epoch.
pub const PG_EPOCH_DAYS: i64 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS * 86_400_000_000;

/// Whether values of `data_type` can be sent in binary.
pub fn supported(data_type: &DataType, pg: PgType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => text_form(pg).is_some(),
        // One-dimensional arrays of the scalars below.
        DataType::List(item) => {
            !matches!(item.data_type(), DataType::List(_)) && supported(item.data_type(), pg_type(item.data_type()))
        }
        DataType::Boolean
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Binary
        | DataType::Date32
        | DataType::Timestamp(TimeUnit::Microsecond, _)
        | DataType::Decimal128(..) => true,
        _ => false,
    }
}

/// How a value kept in Postgres's text form is sent in binary: a column
/// of type `numeric`, `uuid` or `jsonb` has a binary form of its own, not
/// its text's bytes.
#[derive(Clone, Copy)]
enum TextForm {
    /// Text-like types: the binary form is the text.
    Raw,
    Numeric,
    Uuid,
    /// A version byte (1), then the text.
    Jsonb,
}

fn text_form(pg: PgType) -> Option<TextForm> {
    let is = |types: &[PgType]| types.iter().any(|t| t.oid == pg.oid);
    if is(&[oid::TEXT, oid::VARCHAR, oid::BPCHAR, oid::NAME, oid::JSON, oid::XML]) {
        Some(TextForm::Raw)
    } else if is(&[oid::NUMERIC]) {
        Some(TextForm::Numeric)
    } else if is(&[oid::UUID]) {
        Some(TextForm::Uuid)
    } else if is(&[oid::JSONB]) {
        Some(TextForm::Jsonb)
    } else {
        None
    }
}

/// The error for a binary result of an unsupported type.
pub fn unsupported(data_type: &DataType, pg: PgType) -> PgError {
    let what = match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => format!("type OID {}", pg.oid),
        other => other.to_string(),
    };
    PgError::new(
        "0A000",
        format!("binary format is not supported for {what} results; ask for text"),
    )
}

/// Appends `array[row]` (not NULL), of a column sent as `pg`, in binary.
pub fn write_value(array: &dyn Array, row: usize, pg: PgType, out: &mut BytesMut) -> Result<(), PgError> {
    let text = match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Some(array.as_string_view().value(row)),
        _ => None,
    };
    if let Some(text) = text {
        return match text_form(pg) {
            Some(TextForm::Raw) => {
                out.put_slice(text.as_bytes());
                Ok(())
            }
            Some(TextForm::Numeric) => numeric_text(out, text),
            Some(TextForm::Uuid) => uuid(out, text),
            Some(TextForm::Jsonb) => {
                out.put_u8(1);
                out.put_slice(text.as_bytes());
                Ok(())
            }
            None => Err(unsupported(array.data_type(), pg)),
        };
    }
    match array.data_type() {
        DataType::Boolean => out.put_u8(u8::from(array.as_boolean().value(row))),
        DataType::Int16 => out.put_i16(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => out.put_i32(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => out.put_i64(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => out.put_f32(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => out.put_f64(array.as_primitive::<Float64Type>().value(row)),
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
        DataType::List(item) => {
            let values = array.as_list::<i32>().value(row);
            one_dimensional(out, values.as_ref(), pg_type(item.data_type()))?;
        }
        other => return Err(unsupported(other, pg)),
    }
    Ok(())
}

/// An array in binary: dimensions (0 when empty, else 1), whether any
/// element is NULL, the element type, the length and lower bound (1), then
/// each element as a length (-1 for NULL) and its binary form.
fn one_dimensional(out: &mut BytesMut, values: &dyn Array, element: PgType) -> Result<(), PgError> {
    let len = i32::try_from(values.len()).map_err(|_| PgError::new("54000", "array too large"))?;
    out.put_i32(i32::from(len > 0));
    out.put_i32(i32::from(values.null_count() > 0));
    out.put_u32(element.oid);
    if len > 0 {
        out.put_i32(len);
        out.put_i32(1);
    }
    for i in 0..values.len() {
        if values.is_null(i) {
            out.put_i32(-1);
            continue;
        }
        let at = out.len();
        out.put_i32(0);
        write_value(values, i, element, out)?;
        let n = i32::try_from(out.len() - at - 4).map_err(|_| PgError::new("54000", "array element too large"))?;
        out[at..at + 4].copy_from_slice(&n.to_be_bytes());
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
    numeric_digits(out, v < 0, int, frac);
}

/// Sign words of the special `numeric` values (Postgres 14+).
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_POS_INF: u16 = 0xD000;
const NUMERIC_NEG_INF: u16 = 0xF000;

/// A `numeric` in Postgres's text form (`-12.50`, `NaN`, `Infinity`), in
/// binary.
fn numeric_text(out: &mut BytesMut, text: &str) -> Result<(), PgError> {
    let special = match text {
        "NaN" => Some(NUMERIC_NAN),
        "Infinity" => Some(NUMERIC_POS_INF),
        "-Infinity" => Some(NUMERIC_NEG_INF),
        _ => None,
    };
    if let Some(sign) = special {
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(sign);
        out.put_i16(0);
        return Ok(());
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let decimal = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !decimal(int) || !decimal(frac) {
        return Err(PgError::new("22P02", format!("invalid numeric value: \"{text}\"")));
    }
    numeric_digits(out, negative, int, frac);
    Ok(())
}

/// Writes the decimal `int.frac` (ASCII digits) as a binary `numeric`
/// whose display scale is `frac`'s length.
fn numeric_digits(out: &mut BytesMut, negative: bool, int: &str, frac: &str) {
    let dscale = frac.len();
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
    out.put_u16(if negative && !digits.is_empty() { 0x4000 } else { 0 });
    out.put_i16(i16::try_from(dscale).unwrap_or(0));
    for d in digits {
        out.put_i16(d);
    }
}

/// A `uuid` in its text form, as its 16 bytes.
fn uuid(out: &mut BytesMut, text: &str) -> Result<(), PgError> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    let nibble = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let bytes: Option<Vec<u8>> = hex
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect();
    match bytes {
        Some(b) if b.len() == 16 => {
            out.put_slice(&b);
            Ok(())
        }
        _ => Err(PgError::new("22P02", format!("invalid uuid value: \"{text}\""))),
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

    fn encoded_text(text: &str) -> Vec<u16> {
        let mut out = BytesMut::new();
        numeric_text(&mut out, text).expect("a numeric");
        out.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn numerics_in_text_form_encode_as_the_same_decimals_do() {
        for (v, scale, text) in [
            (1_234_567i128, 2i8, "12345.67"),
            (-5, 2, "-0.05"),
            (0, 2, "0.00"),
            (10_000, 0, "10000"),
            (1234, 8, "0.00001234"),
            (-15_000, 4, "-1.5000"),
        ] {
            let want: Vec<u16> = encoded(v, scale).into_iter().map(|w| w as u16).collect();
            assert_eq!(encoded_text(text), want, "{text}");
        }
        // Wider than any Arrow decimal.
        assert_eq!(
            encoded_text("12345678901234567890123456789012345678901.5"),
            [12, 10, 0, 1, 1, 2345, 6789, 123, 4567, 8901, 2345, 6789, 123, 4567, 8901, 5000]
        );
        assert_eq!(encoded_text("NaN"), [0, 0, 0xC000, 0]);
        assert_eq!(encoded_text("-Infinity"), [0, 0, 0xF000, 0]);
        assert!(numeric_text(&mut BytesMut::new(), "1e5").is_err());
    }

    #[test]
    fn uuids_in_text_form_are_sixteen_bytes() {
        let mut out = BytesMut::new();
        uuid(&mut out, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").expect("a uuid");
        assert_eq!(out[..], hex_bytes("a0eebc999c0b4ef8bb6d6bb9bd380a11"));
        assert!(uuid(&mut BytesMut::new(), "a0eebc99").is_err());
    }

    #[test]
    fn arrays_are_one_dimension_with_nulls_marked() {
        use datafusion::arrow::array::ListArray;
        use datafusion::arrow::datatypes::Int32Type;
        let list =
            ListArray::from_iter_primitive::<Int32Type, _, _>([Some(vec![Some(1), None, Some(3)]), Some(vec![])]);
        let pg = pg_type(list.data_type());
        assert!(supported(list.data_type(), pg));
        let mut out = BytesMut::new();
        write_value(&list, 0, pg, &mut out).expect("binary");
        let words: Vec<i32> = out
            .chunks(4)
            .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // 1 dimension, has NULLs, int4; 3 elements from 1; 4:1, NULL, 4:3.
        assert_eq!(words, [1, 1, 23, 3, 1, 4, 1, -1, 4, 3]);
        let mut out = BytesMut::new();
        write_value(&list, 1, pg, &mut out).expect("binary");
        assert_eq!(out[..], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23]);
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }
}
