//! An aligned table for people, psql style.

use std::io::{self, Write};

use changelog::DatumRef;

use super::text;

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
