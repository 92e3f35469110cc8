//! CSV as `COPY ... TO STDOUT (FORMAT csv, HEADER)` writes it.

use std::io::{self, Write};

use changelog::DatumRef;

/// Writes one CSV field as COPY does: NULL is an empty unquoted field, an
/// empty string is `""`, and a value is quoted when it holds the delimiter,
/// a quote, CR or LF, or, in a one-column row, is exactly `\.` (which would
/// otherwise read as end-of-data).
pub fn write_csv_field(out: &mut impl Write, d: DatumRef<'_>, single_column: bool) -> io::Result<()> {
    match d {
        DatumRef::Null | DatumRef::Missing => Ok(()),
        DatumRef::Text(b) => {
            let needs = b.is_empty()
                || (single_column && b == b"\\.")
                || b.iter().any(|c| matches!(c, b',' | b'"' | b'\n' | b'\r'));
            if !needs {
                return out.write_all(b);
            }
            out.write_all(b"\"")?;
            let mut rest = b;
            while let Some(i) = rest.iter().position(|c| *c == b'"') {
                let (head, tail) = rest.split_at(i + 1);
                out.write_all(head)?;
                out.write_all(b"\"")?;
                rest = tail;
            }
            out.write_all(rest)?;
            out.write_all(b"\"")
        }
    }
}

/// Writes a CSV record.
pub fn write_csv_record(out: &mut impl Write, values: &[DatumRef<'_>]) -> io::Result<()> {
    let single = values.len() == 1;
    for (i, d) in values.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_csv_field(out, *d, single)?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(d: DatumRef<'_>) -> String {
        let mut v = Vec::new();
        write_csv_field(&mut v, d, true).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn csv_follows_copy() {
        assert_eq!(csv(DatumRef::Null), "");
        assert_eq!(csv(DatumRef::Text(b"")), "\"\"");
        assert_eq!(csv(DatumRef::Text(b"plain")), "plain");
        assert_eq!(csv(DatumRef::Text(b"a,b")), "\"a,b\"");
        assert_eq!(csv(DatumRef::Text(b"say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(csv(DatumRef::Text(b"two\nlines")), "\"two\nlines\"");
        assert_eq!(csv(DatumRef::Text(b"\\.")), "\"\\.\"");
        assert_eq!(csv(DatumRef::Text(b" padded ")), " padded ");
        let mut v = Vec::new();
        write_csv_record(&mut v, &[DatumRef::Text(b"\\."), DatumRef::Null]).unwrap();
        assert_eq!(v, b"\\.,\n");
    }
}
