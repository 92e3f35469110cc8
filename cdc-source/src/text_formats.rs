//! Decoders for two PostgreSQL text formats the capture reads: `COPY ...
//! TO STDOUT` text rows (the initial copy) and composite-row text (rows
//! re-read after a table rewrite). Both yield each column's exact text
//! output, NULL kept apart from the empty string.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use changelog::Datum;

/// A malformed line; names the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {format} data at byte {offset}: {what}")]
pub struct TextFormatError {
    /// Which format.
    pub format: &'static str,
    /// Where.
    pub offset: usize,
    /// What was wrong.
    pub what: &'static str,
}

/// Decodes one line of COPY text format (without its newline) into values.
pub fn parse_copy_line(line: &[u8], out: &mut Vec<Datum>) -> Result<(), TextFormatError> {
    out.clear();
    let mut scratch = Vec::new();
    for_each_copy_field(line, &mut scratch, |field| {
        out.push(field.map_or(Datum::Null, |t| Datum::Text(t.to_vec())));
    })
}

/// Decodes one line of COPY text format (without its newline), handing
/// each field to `f` in order: `None` for NULL, else its text with escapes
/// resolved (into `scratch` when it has any, so nothing is allocated per
/// field).
pub fn for_each_copy_field(
    line: &[u8],
    scratch: &mut Vec<u8>,
    mut f: impl FnMut(Option<&[u8]>),
) -> Result<(), TextFormatError> {
    let mut start = 0;
    loop {
        let rest = line.get(start..).unwrap_or_default();
        // One scan finds the field's end or, first, a backslash in it.
        let (end, escaped) = match memchr::memchr2(b'\t', b'\\', rest) {
            Some(i) if rest.get(i) == Some(&b'\\') => {
                let tail = rest.get(i..).unwrap_or_default();
                (i + memchr::memchr(b'\t', tail).unwrap_or(tail.len()), true)
            }
            Some(i) => (i, false),
            None => (rest.len(), false),
        };
        let field = rest.get(..end).unwrap_or_default();
        if field == b"\\N" {
            f(None);
        } else if !escaped {
            f(Some(field));
        } else {
            unescape(field, scratch).map_err(|i| TextFormatError {
                format: "COPY text",
                offset: start + i,
                what: "backslash at end of field",
            })?;
            f(Some(scratch));
        }
        if end == rest.len() {
            return Ok(());
        }
        start += end + 1;
    }
}

/// Resolves a COPY text field's backslash escapes into `v` (cleared
/// first); a backslash ending the field is an error at its offset.
fn unescape(field: &[u8], v: &mut Vec<u8>) -> Result<(), usize> {
    v.clear();
    let mut i = 0;
    while let Some(&b) = field.get(i) {
        if b != b'\\' {
            v.push(b);
            i += 1;
            continue;
        }
        let Some(&e) = field.get(i + 1) else {
            return Err(i);
        };
        i += 2;
        match e {
            b'b' => v.push(0x08),
            b'f' => v.push(0x0C),
            b'n' => v.push(b'\n'),
            b'r' => v.push(b'\r'),
            b't' => v.push(b'\t'),
            b'v' => v.push(0x0B),
            b'0'..=b'7' => {
                let mut n = u32::from(e - b'0');
                for _ in 0..2 {
                    match field.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            n = n * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                v.push(u8::try_from(n & 0xFF).unwrap_or(0));
            }
            b'x' => {
                let mut n = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match field.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            n = n * 16 + d;
                            i += 1;
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    v.push(b'x');
                } else {
                    v.push(u8::try_from(n).unwrap_or(0));
                }
            }
            other => v.push(other),
        }
    }
    Ok(())
}

/// Decodes a composite value's text form, `(a,,"b c","")`: an unquoted
/// empty field is NULL, `""` is the empty string, and inside quotes `""`
/// and `\x` stand for `"` and `x`.
pub fn parse_record(text: &[u8]) -> Result<Vec<Datum>, TextFormatError> {
    let err = |offset, what| TextFormatError {
        format: "record",
        offset,
        what,
    };
    let inner = text
        .strip_prefix(b"(")
        .and_then(|t| t.strip_suffix(b")"))
        .ok_or_else(|| err(0, "not enclosed in parentheses"))?;
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        // One field, up to an unquoted comma or the end.
        let mut v = Vec::new();
        let mut quoted_any = false;
        let mut in_quotes = false;
        loop {
            let Some(&b) = inner.get(i) else {
                if in_quotes {
                    return Err(err(i + 1, "unterminated quote"));
                }
                break;
            };
            match b {
                b'"' if in_quotes && inner.get(i + 1) == Some(&b'"') => {
                    v.push(b'"');
                    i += 2;
                }
                b'"' => {
                    in_quotes = !in_quotes;
                    quoted_any = true;
                    i += 1;
                }
                b'\\' => {
                    let next = *inner.get(i + 1).ok_or_else(|| err(i + 1, "backslash at end"))?;
                    v.push(next);
                    i += 2;
                }
                b',' if !in_quotes => break,
                other => {
                    v.push(other);
                    i += 1;
                }
            }
        }
        out.push(if v.is_empty() && !quoted_any {
            Datum::Null
        } else {
            Datum::Text(v)
        });
        if inner.get(i) == Some(&b',') {
            i += 1;
        } else {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> Datum {
        Datum::text(s)
    }

    #[test]
    fn copy_lines() {
        let mut out = Vec::new();
        parse_copy_line(b"1\t\\N\t\ta\\tb\\\\c\\nd\t\\101\\x41", &mut out).unwrap();
        assert_eq!(out, vec![t("1"), Datum::Null, t(""), t("a\tb\\c\nd"), t("AA")]);
        assert!(parse_copy_line(b"x\\", &mut out).is_err());
    }

    /// Writes `fields` as one COPY text line; `style` picks, per escaped
    /// byte, Postgres's own escapes or the octal and hex forms it accepts.
    fn copy_line(fields: &[Option<Vec<u8>>], style: &[u8]) -> Vec<u8> {
        let mut line = Vec::new();
        let mut k = 0;
        for (n, field) in fields.iter().enumerate() {
            if n > 0 {
                line.push(b'\t');
            }
            let Some(field) = field else {
                line.extend_from_slice(b"\\N");
                continue;
            };
            for &b in field {
                k += 1;
                let plain = !matches!(b, b'\\' | b'\t' | b'\n' | b'\r' | 0x08 | 0x0B | 0x0C);
                match style.get(k % style.len().max(1)).copied().unwrap_or(0) % 3 {
                    _ if plain => line.push(b),
                    0 => line.extend_from_slice(match b {
                        b'\\' => b"\\\\",
                        b'\t' => b"\\t",
                        b'\n' => b"\\n",
                        b'\r' => b"\\r",
                        0x08 => b"\\b",
                        0x0B => b"\\v",
                        _ => b"\\f",
                    }),
                    1 => line.extend_from_slice(format!("\\{b:03o}").as_bytes()),
                    _ => line.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                }
            }
        }
        line
    }

    proptest::proptest! {
        #[test]
        fn copy_lines_read_back_what_was_written(
            fields in proptest::collection::vec(
                proptest::option::of(proptest::collection::vec(
                    proptest::prop_oneof![proptest::num::u8::ANY, proptest::sample::select(b"\t\\N\n".to_vec())],
                    0..12,
                )),
                1..8,
            ),
            style in proptest::collection::vec(proptest::num::u8::ANY, 1..5),
        ) {
            let line = copy_line(&fields, &style);
            let mut read = Vec::new();
            let mut scratch = Vec::new();
            for_each_copy_field(&line, &mut scratch, |f| read.push(f.map(<[u8]>::to_vec))).unwrap();
            proptest::prop_assert_eq!(read, fields);
        }
    }

    #[test]
    fn records() {
        assert_eq!(
            parse_record(b"(1,,\"\",\"a \"\"b\"\"\",\"x\\\\y\")").unwrap(),
            vec![t("1"), Datum::Null, t(""), t("a \"b\""), t("x\\y")]
        );
        assert_eq!(parse_record(b"()").unwrap(), vec![Datum::Null]);
        assert!(parse_record(b"(1,\"open)").is_err());
        assert!(parse_record(b"1,2").is_err());
    }
}
