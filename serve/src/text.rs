//! Arrow values in Postgres's text output format, byte for byte what
//! Postgres prints (with `DateStyle` ISO, `TimeZone` UTC,
//! `extra_float_digits` 1 and `bytea_output` hex, the settings the server
//! announces), so a client reads them as it reads Postgres's own.

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Appends the text of `array[row]` to `out`; false when it is NULL (and
/// nothing was appended).
pub fn write_value(array: &dyn Array, row: usize, out: &mut BytesMut) -> Result<bool, ArrowError> {
    if array.is_null(row) {
        return Ok(false);
    }
    match array.data_type() {
        DataType::Boolean => out.put_u8(if array.as_boolean().value(row) { b't' } else { b'f' }),
        DataType::Int8 => integer(out, array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => integer(out, array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => integer(out, array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => integer(out, array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => integer(out, array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => integer(out, array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => integer(out, array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => integer(out, array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float16 => float(out, f64::from(array.as_primitive::<Float16Type>().value(row)), 6),
        DataType::Float32 => float32(out, array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => float(out, array.as_primitive::<Float64Type>().value(row), 15),
        DataType::Decimal128(_, scale) => decimal(out, array.as_primitive::<Decimal128Type>().value(row), *scale),
        DataType::Utf8 => out.put_slice(array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => out.put_slice(array.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => out.put_slice(array.as_string_view().value(row).as_bytes()),
        DataType::Binary => bytea(out, array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => bytea(out, array.as_binary::<i64>().value(row)),
        DataType::BinaryView => bytea(out, array.as_binary_view().value(row)),
        DataType::FixedSizeBinary(_) => bytea(out, array.as_fixed_size_binary().value(row)),
        DataType::Date32 => date(out, i64::from(array.as_primitive::<Date32Type>().value(row))),
        DataType::Date64 => date(
            out,
            array.as_primitive::<Date64Type>().value(row).div_euclid(86_400_000),
        ),
        DataType::Timestamp(unit, tz) => {
            let micros = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(row)
                    .saturating_mul(1_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(row)
                    .saturating_mul(1_000),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
                TimeUnit::Nanosecond => array
                    .as_primitive::<TimestampNanosecondType>()
                    .value(row)
                    .div_euclid(1_000),
            };
            timestamp(out, micros, tz.is_some());
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            elements(out, list.value(row).as_ref())?;
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            elements(out, list.value(row).as_ref())?;
        }
        _ => {
            // No Postgres counterpart: sent as text, as Arrow shows it.
            let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
            out.put_slice(formatter.value(row).to_string().as_bytes());
        }
    }
    Ok(true)
}

fn integer(out: &mut BytesMut, v: impl itoa::Integer) {
    out.put_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// An array literal: `{1,2,NULL}`, elements quoted where Postgres quotes
/// them.
fn elements(out: &mut BytesMut, values: &dyn Array) -> Result<(), ArrowError> {
    out.put_u8(b'{');
    let mut element = BytesMut::new();
    for i in 0..values.len() {
        if i > 0 {
            out.put_u8(b',');
        }
        element.clear();
        if !write_value(values, i, &mut element)? {
            out.put_slice(b"NULL");
            continue;
        }
        if needs_quotes(&element) {
            out.put_u8(b'"');
            for b in element.iter() {
                if *b == b'"' || *b == b'\\' {
                    out.put_u8(b'\\');
                }
                out.put_u8(*b);
            }
            out.put_u8(b'"');
        } else {
            out.put_slice(&element);
        }
    }
    out.put_u8(b'}');
    Ok(())
}

/// Whether Postgres's `array_out` quotes an element.
fn needs_quotes(element: &[u8]) -> bool {
    element.is_empty()
        || element.eq_ignore_ascii_case(b"NULL")
        || element
            .iter()
            .any(|b| matches!(b, b'{' | b'}' | b',' | b'"' | b'\\') || b.is_ascii_whitespace())
}

fn bytea(out: &mut BytesMut, v: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_slice(b"\\x");
    for b in v {
        out.put_u8(HEX[usize::from(b >> 4)]);
        out.put_u8(HEX[usize::from(b & 0xf)]);
    }
}

/// `numeric` with exactly `scale` digits after the point.
fn decimal(out: &mut BytesMut, v: i128, scale: i8) {
    if v < 0 {
        out.put_u8(b'-');
    }
    let digits = v.unsigned_abs().to_string();
    if scale <= 0 {
        out.put_slice(digits.as_bytes());
        if v != 0 {
            for _ in 0..scale.unsigned_abs() {
                out.put_u8(b'0');
            }
        }
        return;
    }
    let scale = usize::from(scale.unsigned_abs());
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    out.put_slice(int.as_bytes());
    out.put_u8(b'.');
    out.put_slice(frac.as_bytes());
}

fn float32(out: &mut BytesMut, v: f32) {
    if v.is_finite() {
        shortest(out, &format!("{v:e}"), 6);
    } else {
        float(out, f64::from(v), 6);
    }
}

/// `float8` (`fixed_below` 15) or `float4` (6): the shortest digits that
/// read back exactly, in fixed notation for decimal exponents in
/// `-4..fixed_below` and scientific otherwise, as Postgres prints them.
fn float(out: &mut BytesMut, v: f64, fixed_below: i32) {
    if v.is_nan() {
        out.put_slice(b"NaN");
    } else if v.is_infinite() {
        out.put_slice(if v > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        shortest(out, &format!("{v:e}"), fixed_below);
    }
}

/// Lays out Rust's shortest scientific form (`-1.25e-7`).
fn shortest(out: &mut BytesMut, sci: &str, fixed_below: i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.put_u8(b'-');
    }
    if digits == "0" {
        out.put_u8(b'0');
        return;
    }
    if (-4..fixed_below).contains(&exp) {
        if exp < 0 {
            out.put_slice(b"0.");
            for _ in 0..(-exp - 1) {
                out.put_u8(b'0');
            }
            out.put_slice(digits.as_bytes());
        } else {
            let int_len = usize::try_from(exp).unwrap_or(0) + 1;
            if digits.len() <= int_len {
                out.put_slice(digits.as_bytes());
                for _ in digits.len()..int_len {
                    out.put_u8(b'0');
                }
            } else {
                out.put_slice(&digits.as_bytes()[..int_len]);
                out.put_u8(b'.');
                out.put_slice(&digits.as_bytes()[int_len..]);
            }
        }
    } else {
        out.put_slice(&digits.as_bytes()[..1]);
        if digits.len() > 1 {
            out.put_u8(b'.');
            out.put_slice(&digits.as_bytes()[1..]);
        }
        out.put_slice(format!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs()).as_bytes());
    }
}

/// Year, month and day of a day number (days since 1970-01-01), in the
/// proleptic Gregorian calendar with a year 0 (1 BC).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD`, and whether it is BC (Postgres prints year 0 as 1 BC).
fn write_date(out: &mut BytesMut, days: i64) -> bool {
    let (year, month, day) = civil_from_days(days);
    let (year, bc) = if year <= 0 { (1 - year, true) } else { (year, false) };
    out.put_slice(format!("{year:04}-{month:02}-{day:02}").as_bytes());
    bc
}

fn date(out: &mut BytesMut, days: i64) {
    if write_date(out, days) {
        out.put_slice(b" BC");
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, `+00` for `timestamptz` (always shown
/// in UTC), ` BC` last.
fn timestamp(out: &mut BytesMut, micros: i64, tz: bool) {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let of_day = micros.rem_euclid(MICROS_PER_DAY);
    let bc = write_date(out, days);
    let (secs, frac) = (of_day / 1_000_000, of_day % 1_000_000);
    out.put_slice(format!(" {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60).as_bytes());
    if frac != 0 {
        let f = format!("{frac:06}");
        out.put_u8(b'.');
        out.put_slice(f.trim_end_matches('0').as_bytes());
    }
    if tz {
        out.put_slice(b"+00");
    }
    if bc {
        out.put_slice(b" BC");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, BinaryArray, Date32Array, Decimal128Array, Float32Array, Float64Array, ListArray, StringArray,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    fn texts(array: ArrayRef) -> Vec<Option<String>> {
        (0..array.len())
            .map(|i| {
                let mut out = BytesMut::new();
                write_value(array.as_ref(), i, &mut out)
                    .unwrap()
                    .then(|| String::from_utf8(out.to_vec()).unwrap())
            })
            .collect()
    }

    fn one(array: ArrayRef) -> String {
        texts(array).remove(0).unwrap()
    }

    #[test]
    fn floats_print_as_postgres_prints_them() {
        let cases: &[(f64, &str)] = &[
            (0.1, "0.1"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (123456789012345.0, "123456789012345"),
            (1e15, "1e+15"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (1e100, "1e+100"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (100.0, "100"),
            (1.0 / 3.0, "0.3333333333333333"),
        ];
        for (v, want) in cases {
            assert_eq!(one(Arc::new(Float64Array::from(vec![*v]))), *want, "{v}");
        }
        let cases: &[(f32, &str)] = &[(1.5, "1.5"), (1e6, "1e+06"), (123456.0, "123456"), (0.1, "0.1")];
        for (v, want) in cases {
            assert_eq!(one(Arc::new(Float32Array::from(vec![*v]))), *want, "{v}");
        }
    }

    #[test]
    fn numerics_keep_their_scale() {
        let a = Decimal128Array::from(vec![1250, -50, 0, 7])
            .with_precision_and_scale(10, 2)
            .unwrap();
        assert_eq!(
            texts(Arc::new(a)),
            ["12.50", "-0.50", "0.00", "0.07"].map(|s| Some(s.to_string()))
        );
    }

    #[test]
    fn dates_and_timestamps_in_iso_with_bc() {
        assert_eq!(one(Arc::new(Date32Array::from(vec![0]))), "1970-01-01");
        // 0001-01-01 BC is year 0: 719528 days before 1970-01-01.
        assert_eq!(one(Arc::new(Date32Array::from(vec![-719_528]))), "0001-01-01 BC");
        let ts = TimestampMicrosecondArray::from(vec![1_500_000, -1]);
        assert_eq!(
            texts(Arc::new(ts.clone())),
            ["1970-01-01 00:00:01.5", "1969-12-31 23:59:59.999999"].map(|s| Some(s.to_string()))
        );
        assert_eq!(one(Arc::new(ts.with_timezone("UTC"))), "1970-01-01 00:00:01.5+00");
    }

    #[test]
    fn bytea_in_hex_and_arrays_quoted() {
        assert_eq!(one(Arc::new(BinaryArray::from_vec(vec![&[0x01, 0xab][..]]))), "\\x01ab");
        let ints = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), None, Some(3)])]);
        assert_eq!(one(Arc::new(ints)), "{1,NULL,3}");
        let strings = StringArray::from(vec![Some("a b"), Some(""), Some("null"), Some("q\"\\"), Some("x")]);
        let offsets = datafusion::arrow::buffer::OffsetBuffer::new(vec![0, 5].into());
        let field = Arc::new(datafusion::arrow::datatypes::Field::new_list_field(
            DataType::Utf8,
            true,
        ));
        let list = ListArray::new(field, offsets, Arc::new(strings), None);
        assert_eq!(one(Arc::new(list)), r#"{"a b","","null","q\"\\",x}"#);
    }
}
