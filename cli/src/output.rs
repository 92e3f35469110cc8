//! Output formats: CSV exactly as PostgreSQL's COPY prints it, JSON lines,
//! and an aligned table for people.

use std::io::{self, Write};

use changelog::DatumRef;

/// How rows are printed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading (the default on a terminal).
    Table,
    /// `COPY ... TO STDOUT (FORMAT csv, HEADER)`, byte for byte.
    Csv,
    /// One JSON object per line; values are Postgres text, NULL is null.
    Jsonl,
}

impl Format {
    /// The explicit choice, else `table` on a terminal and `csv` otherwise.
    pub fn resolve(choice: Option<Format>) -> Format {
        use std::io::IsTerminal;
        choice.unwrap_or(if io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Csv
        })
    }
}

/// Text of a value for display (lossy only for non-UTF-8 bytes).
pub fn text(d: DatumRef<'_>) -> std::borrow::Cow<'_, str> {
    match d {
        DatumRef::Text(b) => String::from_utf8_lossy(b),
        DatumRef::Null => "".into(),
        DatumRef::Missing => "".into(),
    }
}

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

/// A JSON value for a datum: Postgres text as a string, NULL as null.
pub fn json_value(d: DatumRef<'_>) -> serde_json::Value {
    match d {
        DatumRef::Text(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        DatumRef::Null => serde_json::Value::Null,
        DatumRef::Missing => serde_json::Value::String("<unavailable>".into()),
    }
}

/// A JSON object of column name to value.
pub fn json_row<'a>(
    columns: &[String],
    values: impl IntoIterator<Item = DatumRef<'a>>,
) -> serde_json::Map<String, serde_json::Value> {
    columns
        .iter()
        .cloned()
        .zip(values.into_iter().map(json_value))
        .collect()
}

/// A value as one table cell: control characters (newline, tab, ...) are
/// shown escaped so that every row stays on one line.
fn cell(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Collects rows and prints them aligned, psql style.
#[derive(Default)]
pub struct TableWriter {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl TableWriter {
    /// A table with these column names.
    pub fn new(header: Vec<String>) -> Self {
        TableWriter {
            header,
            rows: Vec::new(),
        }
    }

    /// Adds a row; NULL shows as an empty cell, like psql.
    pub fn push<'a>(&mut self, values: impl IntoIterator<Item = DatumRef<'a>>) {
        self.rows.push(values.into_iter().map(|d| cell(&text(d))).collect());
    }

    /// Adds a row of display strings.
    pub fn push_strings(&mut self, values: Vec<String>) {
        self.rows.push(values.iter().map(|v| cell(v)).collect());
    }

    /// Prints the table and a row count.
    pub fn finish(self, out: &mut impl Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, v) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(v.chars().count());
                }
            }
        }
        let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
                .collect();
            writeln!(out, " {}", parts.join(" | ").trim_end())
        };
        line(out, &self.header)?;
        let sep: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(out, "-{}-", sep.join("-+-"))?;
        for r in &self.rows {
            line(out, r)?;
        }
        let n = self.rows.len();
        writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })
    }
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
