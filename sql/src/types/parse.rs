//! Parsers from Postgres's text output (in the capture's fixed settings:
//! `DateStyle = ISO`, `TimeZone = UTC`, `bytea_output = hex`) to the values
//! Arrow stores. Pure functions; none of them panics on any input.

use std::borrow::Cow;

/// Why a stored value has no value of its column's Arrow type.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unrepresentable {
    /// `infinity` or `-infinity` in a date or timestamp column.
    #[error("infinite dates and timestamps have no Arrow value")]
    Infinite,
    /// `NaN` (or an infinity) in a `numeric(p,s)` column.
    #[error("NaN has no Decimal128 value")]
    NotANumber,
    /// A multi-dimensional array, or one with explicit bounds.
    #[error("only one-dimensional arrays starting at index 1 are read as lists")]
    ArrayShape,
    /// The value is outside the Arrow type's range.
    #[error("out of range")]
    OutOfRange,
    /// The text is not what Postgres prints for the type.
    #[error("not in Postgres's text form for {0}")]
    Malformed(&'static str),
    /// Text that is not UTF-8 (a server encoding other than UTF8).
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The capture never saw the value (an unchanged TOAST value whose
    /// earlier version was not captured).
    #[error("the value was not captured")]
    Missing,
}

type Result<T> = std::result::Result<T, Unrepresentable>;

pub(crate) fn utf8(b: &[u8]) -> Result<&str> {
    std::str::from_utf8(b).map_err(|_| Unrepresentable::NotUtf8)
}

pub(crate) fn int<T: std::str::FromStr>(s: &[u8]) -> Result<T> {
    utf8(s)?.parse().map_err(|_| Unrepresentable::Malformed("an integer"))
}

pub(crate) fn boolean(s: &[u8]) -> Result<bool> {
    match s {
        b"t" | b"true" => Ok(true),
        b"f" | b"false" => Ok(false),
        _ => Err(Unrepresentable::Malformed("bool")),
    }
}

/// `float4`/`float8`, with Postgres's spellings of the special values.
pub(crate) fn float(s: &[u8]) -> Result<f64> {
    match s {
        b"NaN" => Ok(f64::NAN),
        b"Infinity" => Ok(f64::INFINITY),
        b"-Infinity" => Ok(f64::NEG_INFINITY),
        _ => utf8(s)?.parse().map_err(|_| Unrepresentable::Malformed("a float")),
    }
}

/// `float4` parsed directly as `f32`: through `f64` a decimal could round
/// twice.
pub(crate) fn float32(s: &[u8]) -> Result<f32> {
    match s {
        b"NaN" => Ok(f32::NAN),
        b"Infinity" => Ok(f32::INFINITY),
        b"-Infinity" => Ok(f32::NEG_INFINITY),
        _ => utf8(s)?.parse().map_err(|_| Unrepresentable::Malformed("a float")),
    }
}

/// A `numeric` value as an unscaled `i128` at `scale`, at most `precision`
/// digits.
pub(crate) fn decimal(s: &[u8], precision: u8, scale: i8) -> Result<i128> {
    match decimal_short(s, precision, scale) {
        Some(v) => Ok(v),
        None => decimal_general(s, precision, scale),
    }
}

/// `10^i` for every `i64` power of ten, looked up rather than computed for
/// each value.
const POW10: [i64; 19] = {
    let mut p = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// The common case in one pass: `[-]digits[.digits]` with at most `scale`
/// fraction digits and an unscaled value of at most 18 digits, which fits
/// an `i64` without a check per digit. `None` sends everything else
/// (special values, signs, bare points, longer or out-of-range values)
/// to [`decimal_general`], which decides it.
fn decimal_short(s: &[u8], precision: u8, scale: i8) -> Option<i128> {
    let scale = usize::try_from(scale).ok()?;
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let mut value: i64 = 0;
    let mut int_len = 0;
    let mut frac_len = 0;
    let mut point = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                value = value.wrapping_mul(10).wrapping_add(i64::from(b - b'0'));
                if point {
                    frac_len += 1;
                } else {
                    int_len += 1;
                }
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    // With at most 18 digits in all, the wrapping arithmetic never wrapped.
    if int_len == 0 || (point && frac_len == 0) || frac_len > scale || int_len + scale > 18 {
        return None;
    }
    let value = value * POW10.get(scale - frac_len)?;
    // Significant digits are the unscaled value's digits.
    if POW10.get(usize::from(precision)).is_some_and(|&limit| value >= limit) {
        return None;
    }
    let value = i128::from(value);
    Some(if negative { -value } else { value })
}

/// [`decimal`] for every input: special values, any length, and the
/// malformed.
fn decimal_general(s: &[u8], precision: u8, scale: i8) -> Result<i128> {
    match s {
        b"NaN" => return Err(Unrepresentable::NotANumber),
        b"Infinity" | b"-Infinity" => return Err(Unrepresentable::NotANumber),
        _ => {}
    }
    let malformed = Unrepresentable::Malformed("numeric");
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let (int, frac) = match digits.iter().position(|b| *b == b'.') {
        Some(p) => (
            digits.get(..p).unwrap_or_default(),
            digits.get(p + 1..).unwrap_or_default(),
        ),
        None => (digits, &[][..]),
    };
    let scale = usize::try_from(scale).map_err(|_| Unrepresentable::OutOfRange)?;
    if (int.is_empty() && frac.is_empty()) || !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return Err(malformed);
    }
    // Digits beyond the scale must be zeros (Postgres prints exactly
    // `scale` of them for a numeric(p,s)).
    let (kept, dropped) = frac.split_at(frac.len().min(scale));
    if dropped.iter().any(|b| *b != b'0') {
        return Err(Unrepresentable::OutOfRange);
    }
    let mut value: i128 = 0;
    let mut significant = 0usize;
    let pad = scale - kept.len();
    for b in int.iter().chain(kept).chain(std::iter::repeat_n(&b'0', pad)) {
        let d = match b {
            b'0'..=b'9' => i128::from(b - b'0'),
            _ => return Err(malformed),
        };
        if value != 0 || d != 0 {
            significant += 1;
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(d))
            .ok_or(Unrepresentable::OutOfRange)?;
    }
    if significant > usize::from(precision) {
        return Err(Unrepresentable::OutOfRange);
    }
    Ok(if negative { -value } else { value })
}

/// `bytea` in hex (`\x0a1b`) or, should a value be in it, escape format.
pub(crate) fn bytea(s: &[u8]) -> Result<Vec<u8>> {
    let malformed = Unrepresentable::Malformed("bytea");
    if let Some(hex) = s.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err(malformed);
        }
        return hex
            .chunks_exact(2)
            .map(|pair| match pair {
                [h, l] => Ok(hex_digit(*h).ok_or(malformed.clone())? << 4 | hex_digit(*l).ok_or(malformed.clone())?),
                _ => Err(malformed.clone()),
            })
            .collect();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        match s.get(i + 1..i + 4) {
            Some([b'\\', ..]) => {
                out.push(b'\\');
                i += 2;
            }
            Some(&[a, b2, c]) if [a, b2, c].iter().all(|d| (b'0'..=b'7').contains(d)) => {
                let v = u32::from(a - b'0') * 64 + u32::from(b2 - b'0') * 8 + u32::from(c - b'0');
                out.push(u8::try_from(v).map_err(|_| malformed.clone())?);
                i += 4;
            }
            _ => match s.get(i + 1) {
                Some(b'\\') => {
                    out.push(b'\\');
                    i += 2;
                }
                _ => return Err(malformed),
            },
        }
    }
    Ok(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar,
/// `year` astronomical (1 BC is year 0). Exact for every `i64` year whose
/// result fits (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Splits Postgres's ` BC` suffix off, after refusing the infinities.
fn era(s: &str) -> Result<(&str, bool)> {
    if s == "infinity" || s == "-infinity" {
        return Err(Unrepresentable::Infinite);
    }
    Ok(match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    })
}

/// `YYYY-MM-DD` (four or more year digits) as astronomical year, month, day.
fn ymd(s: &str, bc: bool) -> Result<(i64, u32, u32)> {
    let malformed = Unrepresentable::Malformed("date");
    let mut parts = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed);
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(y) && all_digits(m) && all_digits(d)) {
        return Err(malformed);
    }
    let year: i64 = y.parse().map_err(|_| malformed.clone())?;
    let month: u32 = m.parse().map_err(|_| malformed.clone())?;
    let day: u32 = d.parse().map_err(|_| malformed.clone())?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || (bc && year == 0) {
        return Err(malformed);
    }
    Ok((if bc { 1 - year } else { year }, month, day))
}

/// `date` as days since 1970-01-01.
pub(crate) fn date(s: &[u8]) -> Result<i32> {
    let (s, bc) = era(utf8(s)?)?;
    let (y, m, d) = ymd(s, bc)?;
    i32::try_from(days_from_civil(y, m, d)).map_err(|_| Unrepresentable::OutOfRange)
}

const MICROS_PER_SECOND: i128 = 1_000_000;
const MICROS_PER_DAY: i128 = 86_400 * MICROS_PER_SECOND;

/// `timestamp` / `timestamptz` as microseconds since 1970-01-01 UTC.
pub(crate) fn timestamp(s: &[u8], tz: bool) -> Result<i64> {
    match timestamp_iso(s, tz) {
        Some(v) => Ok(v),
        None => timestamp_general(s, tz),
    }
}

/// What the capture's settings make Postgres print for nearly every value,
/// read at fixed positions: `YYYY-MM-DD HH:MM:SS`, up to six fraction
/// digits after a point, and with time zone an offset of whole hours
/// (`+00`). `None` sends everything else (other years, eras, longer
/// offsets, infinities, the malformed) to [`timestamp_general`], which
/// gives the same answer wherever both do.
fn timestamp_iso(s: &[u8], tz: bool) -> Option<i64> {
    let digits = |from: usize, to: usize| -> Option<i64> {
        s.get(from..to)?
            .iter()
            .try_fold(0i64, |v, b| b.is_ascii_digit().then(|| v * 10 + i64::from(b - b'0')))
    };
    let punctuation = [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')];
    if punctuation.iter().any(|(at, c)| s.get(*at) != Some(c)) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut at = 19;
    let mut micros = 0;
    if s.get(at) == Some(&b'.') {
        let end = at + 1 + s.get(at + 1..)?.iter().take_while(|b| b.is_ascii_digit()).count();
        let n = end - (at + 1);
        if n == 0 || n > 6 {
            return None;
        }
        micros = digits(at + 1, end)? * 10i64.pow(u32::try_from(6 - n).ok()?);
        at = end;
    }
    let offset = if tz {
        let sign = match s.get(at)? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        if s.len() != at + 3 {
            return None;
        }
        sign * digits(at + 1, at + 3)? * 3600
    } else if s.len() == at {
        0
    } else {
        return None;
    };
    // A four-digit year keeps every term far inside an i64.
    let days = days_from_civil(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?);
    Some(days * 86_400_000_000 + ((hour * 60 + minute) * 60 + second - offset) * 1_000_000 + micros)
}

/// [`timestamp`] for every input.
fn timestamp_general(s: &[u8], tz: bool) -> Result<i64> {
    let malformed = Unrepresentable::Malformed(if tz { "timestamptz" } else { "timestamp" });
    let (s, bc) = era(utf8(s)?)?;
    let (date, rest) = s.split_once(' ').ok_or(malformed.clone())?;
    let (y, m, d) = ymd(date, bc)?;
    // The clock, then (with time zone) an offset starting at a sign.
    let (clock, offset) = if tz {
        let at = rest.find(['+', '-']).ok_or(malformed.clone())?;
        let (clock, offset) = rest.split_at(at);
        (clock, offset_seconds(offset).ok_or(malformed.clone())?)
    } else {
        (rest, 0)
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, frac),
        None => (clock, ""),
    };
    let mut fields = hms.split(':');
    let (Some(h), Some(mi), Some(sec), None) = (fields.next(), fields.next(), fields.next(), fields.next()) else {
        return Err(malformed);
    };
    let num = |p: &str| -> Option<i128> {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let (Some(h), Some(mi), Some(sec)) = (num(h), num(mi), num(sec)) else {
        return Err(malformed);
    };
    if frac.len() > 6 || (!frac.is_empty() && num(frac).is_none()) {
        return Err(malformed);
    }
    let micros = match frac {
        "" => 0,
        f => num(&format!("{f:0<6}")).ok_or(malformed.clone())?,
    };
    let total = i128::from(days_from_civil(y, m, d)) * MICROS_PER_DAY
        + ((h * 60 + mi) * 60 + sec - i128::from(offset)) * MICROS_PER_SECOND
        + micros;
    i64::try_from(total).map_err(|_| Unrepresentable::OutOfRange)
}

/// `+HH`, `+HH:MM` or `+HH:MM:SS` (or `-`) as seconds east of UTC.
fn offset_seconds(s: &str) -> Option<i64> {
    let (sign, rest) = match s.split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let mut secs = 0i64;
    let mut parts = 0;
    for (i, p) in rest.split(':').enumerate() {
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) || i > 2 {
            return None;
        }
        secs = secs * 60 + p.parse::<i64>().ok()?;
        parts = i + 1;
    }
    for _ in parts..3 {
        secs *= 60;
    }
    Some(sign * secs)
}

/// The elements of a one-dimensional array in Postgres's text form
/// (`{1,NULL,"a b"}`), unquoted; `None` for NULL.
pub fn parse_array(s: &[u8]) -> Result<Vec<Option<Cow<'_, [u8]>>>> {
    let malformed = Unrepresentable::Malformed("an array");
    if s.first() == Some(&b'[') {
        return Err(Unrepresentable::ArrayShape);
    }
    let inner = s
        .strip_prefix(b"{")
        .and_then(|r| r.strip_suffix(b"}"))
        .ok_or(malformed.clone())?;
    let mut out = Vec::new();
    if inner.is_empty() {
        return Ok(out);
    }
    let mut i = 0;
    loop {
        match inner.get(i) {
            Some(b'{') => return Err(Unrepresentable::ArrayShape),
            Some(b'"') => {
                let mut value = Vec::new();
                i += 1;
                loop {
                    match inner.get(i) {
                        Some(b'\\') => {
                            value.push(*inner.get(i + 1).ok_or(malformed.clone())?);
                            i += 2;
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b) => {
                            value.push(*b);
                            i += 1;
                        }
                        None => return Err(malformed),
                    }
                }
                out.push(Some(Cow::Owned(value)));
            }
            _ => {
                let end = inner
                    .get(i..)
                    .and_then(|r| r.iter().position(|b| *b == b','))
                    .map_or(inner.len(), |p| i + p);
                let token = inner.get(i..end).ok_or(malformed.clone())?;
                if token.is_empty() || token.contains(&b'{') || token.contains(&b'"') {
                    return Err(malformed);
                }
                out.push((!token.eq_ignore_ascii_case(b"NULL")).then_some(Cow::Borrowed(token)));
                i = end;
            }
        }
        match inner.get(i) {
            None => return Ok(out),
            Some(b',') => i += 1,
            Some(_) => return Err(malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn special_floats() {
        assert!(float(b"NaN").is_ok_and(f64::is_nan));
        assert_eq!(float(b"Infinity"), Ok(f64::INFINITY));
        assert_eq!(float(b"-Infinity"), Ok(f64::NEG_INFINITY));
        assert_eq!(float(b"1e-310"), Ok(1e-310));
        assert_eq!(float32(b"3.4028235e+38"), Ok(f32::MAX));
        assert_eq!(float(b"one"), Err(Unrepresentable::Malformed("a float")));
    }

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(decimal(b"12.50", 5, 2), Ok(1250));
        assert_eq!(decimal(b"-0.01", 5, 2), Ok(-1));
        assert_eq!(decimal(b"7", 5, 2), Ok(700));
        assert_eq!(decimal(b"0.00", 5, 2), Ok(0));
        assert_eq!(decimal(b"NaN", 5, 2), Err(Unrepresentable::NotANumber));
        assert_eq!(decimal(b"1.234", 5, 2), Err(Unrepresentable::OutOfRange));
        assert_eq!(decimal(b"1234.5", 5, 2), Err(Unrepresentable::OutOfRange));
        let max = "9".repeat(38);
        assert_eq!(decimal(max.as_bytes(), 38, 0), Ok(10i128.pow(38) - 1));
        assert_eq!(decimal(b"1.2.3", 5, 2), Err(Unrepresentable::Malformed("numeric")));
    }

    #[test]
    fn bytea_both_forms() {
        assert_eq!(bytea(b"\\x00ff10"), Ok(vec![0, 255, 16]));
        assert_eq!(bytea(b"\\x"), Ok(vec![]));
        assert_eq!(bytea(b"a\\000\\\\b"), Ok(vec![b'a', 0, b'\\', b'b']));
        assert!(bytea(b"\\x0").is_err());
    }

    #[test]
    fn dates_and_timestamps() {
        assert_eq!(date(b"1970-01-01"), Ok(0));
        assert_eq!(date(b"2000-03-01"), Ok(11_017));
        // 1 BC is astronomical year 0, a leap year.
        assert_eq!(date(b"0001-01-01 BC"), Ok(days_from_civil(0, 1, 1) as i32));
        assert_eq!(date(b"0001-12-31 BC").map(|d| d + 1), date(b"0001-01-01"));
        assert_eq!(date(b"infinity"), Err(Unrepresentable::Infinite));
        assert_eq!(date(b"-infinity"), Err(Unrepresentable::Infinite));
        assert_eq!(date(b"5874897-12-31"), Ok(2_145_042_905));
        assert_eq!(timestamp(b"1970-01-01 00:00:01.5", false), Ok(1_500_000));
        assert_eq!(timestamp(b"1970-01-01 00:00:00+00", true), Ok(0));
        assert_eq!(timestamp(b"1970-01-01 01:00:00+01", true), Ok(0));
        assert_eq!(timestamp(b"1970-01-01 00:00:00-00:30", true), Ok(1_800_000_000));
        assert_eq!(timestamp(b"1969-12-31 23:59:59.999999", false), Ok(-1));
        assert_eq!(
            timestamp(b"0044-03-15 12:00:00+00 BC", true),
            timestamp(b"0044-03-15 12:00:00 BC", false)
        );
        assert_eq!(timestamp(b"infinity", true), Err(Unrepresentable::Infinite));
        // The usual shapes take the reading at fixed positions.
        assert_eq!(
            timestamp_iso(b"2026-11-29 10:00:00.25+00", true),
            Some(1_795_946_400_250_000)
        );
        assert_eq!(
            timestamp_iso(b"2026-11-29 10:00:00", false),
            Some(1_795_946_400_000_000)
        );
        assert!(timestamp(b"1970-01-01", false).is_err());
    }

    #[test]
    fn arrays() {
        let texts = |s: &[u8]| {
            parse_array(s).map(|v| {
                v.into_iter()
                    .map(|e| e.map(|c| String::from_utf8_lossy(&c).into_owned()))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(texts(b"{}"), Ok(vec![]));
        assert_eq!(texts(b"{1,NULL,3}"), Ok(vec![Some("1".into()), None, Some("3".into())]));
        assert_eq!(
            texts(br#"{"a b","NULL","q\"x\\y",""}"#),
            Ok(vec![
                Some("a b".into()),
                Some("NULL".into()),
                Some("q\"x\\y".into()),
                Some("".into())
            ])
        );
        assert_eq!(texts(b"{{1,2},{3,4}}"), Err(Unrepresentable::ArrayShape));
        assert_eq!(texts(b"[0:1]={1,2}"), Err(Unrepresentable::ArrayShape));
        assert!(texts(b"{1,").is_err());
        assert!(texts(b"{\"a}").is_err());
    }

    /// Postgres's ISO text of a date, from astronomical year, month, day.
    fn pg_date(y: i64, m: u8, d: u8) -> String {
        if y <= 0 {
            format!("{:04}-{m:02}-{d:02} BC", 1 - y)
        } else {
            format!("{y:04}-{m:02}-{d:02}")
        }
    }

    proptest! {
        /// Numerics agree with a reference that works on the digits as a
        /// string: the value padded or cut to the scale, its significant
        /// digits counted after the leading zeros.
        #[test]
        fn decimals_match_a_reference_on_the_digits(
            negative in any::<bool>(),
            int in "[0-9]{0,24}",
            frac in proptest::option::of("[0-9]{0,12}"),
            precision in 1u8..=38,
            scale in 0i8..=12,
        ) {
            let text = format!("{}{int}{}", if negative { "-" } else { "" }, frac.as_ref().map(|f| format!(".{f}")).unwrap_or_default());
            let frac = frac.unwrap_or_default();
            let s = usize::try_from(scale).unwrap();
            let expected = if int.is_empty() && frac.is_empty() {
                Err(Unrepresentable::Malformed("numeric"))
            } else if frac.chars().skip(s).any(|c| c != '0') {
                Err(Unrepresentable::OutOfRange)
            } else {
                let kept: String = frac.chars().take(s).collect();
                let digits = format!("{int}{kept}{}", "0".repeat(s - kept.len()));
                let significant = digits.trim_start_matches('0').len();
                if significant > usize::from(precision) {
                    Err(Unrepresentable::OutOfRange)
                } else {
                    let v: i128 = if significant == 0 { 0 } else { digits.trim_start_matches('0').parse().unwrap() };
                    Ok(if negative { -v } else { v })
                }
            };
            prop_assert_eq!(decimal(text.as_bytes(), precision, scale), expected.clone());
            // The general parser alone, for the values the one-pass parser takes.
            prop_assert_eq!(decimal_general(text.as_bytes(), precision, scale), expected);
        }

        /// Dates agree with the `time` crate's calendar over its whole
        /// range (years -9999..=9999), BC included.
        #[test]
        fn dates_match_an_independent_calendar(jd in -1_930_999i32..=5_373_484) {
            let d = time::Date::from_julian_day(jd).unwrap();
            let text = pg_date(i64::from(d.year()), u8::from(d.month()), d.day());
            prop_assert_eq!(date(text.as_bytes()), Ok(jd - 2_440_588));
        }

        #[test]
        fn timestamps_match_an_independent_calendar(
            jd in -1_930_999i32..=5_373_484,
            secs in 0u32..86_400,
            micros in 0u32..1_000_000,
            offset_minutes in -900i64..=900,
        ) {
            let d = time::Date::from_julian_day(jd).unwrap();
            let day = pg_date(i64::from(d.year()), u8::from(d.month()), d.day());
            let (date_part, bc) = match day.strip_suffix(" BC") {
                Some(p) => (p.to_string(), " BC"),
                None => (day.clone(), ""),
            };
            let clock = format!("{:02}:{:02}:{:02}.{micros:06}", secs / 3600, secs / 60 % 60, secs % 60);
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let off = format!("{sign}{:02}:{:02}", offset_minutes.abs() / 60, offset_minutes.abs() % 60);
            let local = i64::from(jd - 2_440_588) * 86_400_000_000 + i64::from(secs) * 1_000_000 + i64::from(micros);
            let plain = format!("{date_part} {clock}{bc}");
            prop_assert_eq!(timestamp(plain.as_bytes(), false), Ok(local));
            let with_tz = format!("{date_part} {clock}{off}{bc}");
            prop_assert_eq!(timestamp(with_tz.as_bytes(), true), Ok(local - offset_minutes * 60_000_000));
        }

        /// Wherever the reading at fixed positions answers, the general
        /// reading gives the same answer: over Postgres's shape with
        /// fields out of range, fractions of 0 to 7 digits, offsets of
        /// each length, eras, and a byte replaced anywhere.
        #[test]
        fn timestamps_read_at_fixed_positions_agree_with_the_general_reading(
            (y, mo, d) in (0u32..10_000, 0u32..14, 0u32..33),
            (h, mi, sec) in (0u32..30, 0u32..62, 0u32..62),
            fraction in proptest::option::of("[0-9]{0,7}"),
            offset in prop_oneof![
                2 => Just(String::new()),
                3 => "[+-][0-9]{2}",
                1 => "[+-][0-9]{2}:[0-9]{2}",
                1 => "[+-][0-9]{1,3}",
            ],
            era in prop_oneof![4 => Just(""), 1 => Just(" BC")],
            tz in any::<bool>(),
            replace in proptest::option::weighted(0.3, (0usize..36, any::<u8>())),
        ) {
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            let mut text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{sec:02}{fraction}{offset}{era}").into_bytes();
            if let Some((at, b)) = replace {
                if let Some(c) = text.get_mut(at) {
                    *c = b;
                }
            }
            if let Some(fast) = timestamp_iso(&text, tz) {
                prop_assert_eq!(timestamp_general(&text, tz), Ok(fast));
            }
        }

        #[test]
        fn floats_round_trip(x in any::<f64>()) {
            let text = if x.is_nan() { "NaN".to_string() } else if x.is_infinite() {
                if x > 0.0 { "Infinity".into() } else { "-Infinity".into() }
            } else { format!("{x:?}") };
            let back = float(text.as_bytes()).unwrap();
            prop_assert!(back.to_bits() == x.to_bits() || (x.is_nan() && back.is_nan()));
        }

        #[test]
        fn decimals_round_trip(v in -(10i128.pow(18) - 1)..10i128.pow(18), scale in 0i8..=18) {
            let s = usize::try_from(scale).unwrap();
            let digits = format!("{:0>width$}", v.unsigned_abs(), width = s + 1);
            let (int, frac) = digits.split_at(digits.len() - s);
            let text = format!("{}{int}{}{frac}", if v < 0 { "-" } else { "" }, if s > 0 { "." } else { "" });
            prop_assert_eq!(decimal(text.as_bytes(), 38, scale), Ok(v));
        }

        #[test]
        fn bytea_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            prop_assert_eq!(bytea(format!("\\x{hex}").as_bytes()), Ok(bytes));
        }

        #[test]
        fn arrays_round_trip(items in proptest::collection::vec(proptest::option::of("[a-z \"\\\\,{}]{0,6}"), 0..6)) {
            // Quote every element as Postgres does when it must.
            let text = format!("{{{}}}", items.iter().map(|e| match e {
                None => "NULL".to_string(),
                Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
            }).collect::<Vec<_>>().join(","));
            let parsed: Vec<Option<String>> = parse_array(text.as_bytes()).unwrap().into_iter()
                .map(|e| e.map(|c| String::from_utf8(c.into_owned()).unwrap())).collect();
            prop_assert_eq!(parsed, items);
        }

        #[test]
        fn parsers_never_panic(s in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = (date(&s), timestamp(&s, true), timestamp(&s, false), decimal(&s, 10, 3));
            let _ = (bytea(&s), parse_array(&s), float(&s), float32(&s), boolean(&s), int::<i64>(&s));
        }
    }
}
