//! Bind parameters: the client's bytes (text or binary) as the values a
//! query's placeholders `$1`, `$2`, ... take.

use bytes::Bytes;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use crate::binary::{PG_EPOCH_DAYS, PG_EPOCH_MICROS};
use crate::error::PgError;
use crate::wire_types::{arrow_type, oid};

/// One parameter as bound.
pub struct Param<'a> {
    /// Its value; `None` is NULL.
    pub value: Option<&'a Bytes>,
    /// Binary (true) or text.
    pub binary: bool,
    /// The type the client declared (0: none).
    pub declared: u32,
    /// The type the query gives its placeholder, if it does.
    pub inferred: Option<&'a DataType>,
}

/// The value of parameter `n` (1-based, for messages).
pub fn value(n: usize, p: &Param<'_>) -> Result<ScalarValue, PgError> {
    let target = p
        .inferred
        .cloned()
        .or_else(|| arrow_type(p.declared))
        .unwrap_or(DataType::Utf8);
    let Some(bytes) = p.value else {
        return ScalarValue::try_from(&target).map_err(|e| PgError::new("42804", e.to_string()));
    };
    let raw = if p.binary {
        binary(n, p.declared, bytes)?
    } else {
        let text =
            std::str::from_utf8(bytes).map_err(|_| PgError::new("22021", format!("parameter ${n} is not UTF-8")))?;
        ScalarValue::Utf8(Some(text.to_string()))
    };
    if raw.data_type() == target {
        return Ok(raw);
    }
    raw.cast_to(&target).map_err(|_| {
        PgError::new(
            "22P02",
            format!("parameter ${n}: {} cannot be read as {target}", shown(&raw)),
        )
    })
}

fn shown(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s)) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// A binary parameter of a declared type.
fn binary(n: usize, declared: u32, b: &Bytes) -> Result<ScalarValue, PgError> {
    let bad = || PgError::new("22P03", format!("incorrect binary data format in bind parameter {n}"));
    let fixed = |len: usize| -> Result<&[u8], PgError> {
        if b.len() == len {
            Ok(&b[..])
        } else {
            Err(bad())
        }
    };
    let be =
        |len: usize| -> Result<u64, PgError> { Ok(fixed(len)?.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))) };
    Ok(match declared {
        d if d == oid::BOOL.oid => ScalarValue::Boolean(Some(be(1)? != 0)),
        d if d == oid::INT2.oid => ScalarValue::Int16(Some(be(2)? as u16 as i16)),
        d if d == oid::INT4.oid => ScalarValue::Int32(Some(be(4)? as u32 as i32)),
        d if d == oid::INT8.oid => ScalarValue::Int64(Some(be(8)? as i64)),
        d if d == oid::FLOAT4.oid => ScalarValue::Float32(Some(f32::from_bits(be(4)? as u32))),
        d if d == oid::FLOAT8.oid => ScalarValue::Float64(Some(f64::from_bits(be(8)?))),
        d if [oid::TEXT.oid, oid::VARCHAR.oid, oid::BPCHAR.oid, oid::NAME.oid, 0].contains(&d) => {
            ScalarValue::Utf8(Some(String::from_utf8(b.to_vec()).map_err(|_| bad())?))
        }
        d if d == oid::BYTEA.oid => ScalarValue::Binary(Some(b.to_vec())),
        d if d == oid::DATE.oid => {
            let days = i64::from(be(4)? as u32 as i32) + PG_EPOCH_DAYS;
            ScalarValue::Date32(Some(i32::try_from(days).map_err(|_| bad())?))
        }
        d if d == oid::TIMESTAMP.oid || d == oid::TIMESTAMPTZ.oid => {
            let micros = (be(8)? as i64).saturating_add(PG_EPOCH_MICROS);
            let tz = (d == oid::TIMESTAMPTZ.oid).then(|| "UTC".into());
            ScalarValue::TimestampMicrosecond(Some(micros), tz)
        }
        d if d == oid::UUID.oid => {
            let h: String = fixed(16)?.iter().map(|x| format!("{x:02x}")).collect();
            ScalarValue::Utf8(Some(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )))
        }
        other => {
            return Err(PgError::new(
                "0A000",
                format!("binary parameters of type oid {other} are not supported; send text"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_parameters_take_the_placeholder_type() {
        let b = Bytes::from_static(b"42");
        let p = Param {
            value: Some(&b),
            binary: false,
            declared: 0,
            inferred: Some(&DataType::Int64),
        };
        assert_eq!(value(1, &p).unwrap(), ScalarValue::Int64(Some(42)));
        let b = Bytes::from_static(&[0, 0, 0, 7]);
        let p = Param {
            value: Some(&b),
            binary: true,
            declared: oid::INT4.oid,
            inferred: Some(&DataType::Int64),
        };
        assert_eq!(value(1, &p).unwrap(), ScalarValue::Int64(Some(7)));
        let b = Bytes::from_static(b"x1");
        let p = Param {
            value: Some(&b),
            binary: false,
            declared: 0,
            inferred: Some(&DataType::Int32),
        };
        assert_eq!(value(1, &p).unwrap_err().code, "22P02");
        let p = Param {
            value: None,
            binary: false,
            declared: oid::INT8.oid,
            inferred: None,
        };
        assert_eq!(value(1, &p).unwrap(), ScalarValue::Int64(None));
    }
}
