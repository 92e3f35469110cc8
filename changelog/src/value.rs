//! Column values and row images, kept in PostgreSQL's own text form.

use serde::{Deserialize, Serialize};

/// One column's value in a row image.
///
/// Values are the exact bytes of PostgreSQL's text output (what `COPY ... TO
/// STDOUT` prints, before CSV quoting), so numeric precision, timestamps,
/// arrays and json survive unchanged. The variants keep apart three things
/// that are easy to confuse: SQL NULL, a value the source did not send, and a
/// large value an UPDATE left untouched.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// The value in Postgres's text form (usually UTF-8; kept as bytes so a
    /// non-UTF-8 server encoding is not mangled).
    Text(Vec<u8>),
    /// An out-of-line (TOASTed) value that an UPDATE did not change; pgoutput
    /// does not resend it. Resolved from the previous version of the row when
    /// the change is appended, so it never reaches the version index.
    UnchangedToast,
    /// Not known: the source did not send it (e.g. a non-key column of a
    /// key-only before-image), or an unchanged TOAST value whose previous
    /// version was never captured.
    Missing,
}

impl Datum {
    /// A text value from a string.
    pub fn text(s: impl Into<String>) -> Datum {
        Datum::Text(s.into().into_bytes())
    }

    /// The value as a borrowed view.
    pub fn as_ref(&self) -> DatumRef<'_> {
        match self {
            Datum::Null => DatumRef::Null,
            Datum::Text(b) => DatumRef::Text(b),
            Datum::UnchangedToast | Datum::Missing => DatumRef::Missing,
        }
    }
}

impl std::fmt::Debug for Datum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Datum::Null => f.write_str("NULL"),
            Datum::Text(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Datum::UnchangedToast => f.write_str("<unchanged-toast>"),
            Datum::Missing => f.write_str("<missing>"),
        }
    }
}

/// A borrowed view of a stored value; what scans hand out without copying.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DatumRef<'a> {
    /// SQL NULL.
    Null,
    /// Postgres text form.
    Text(&'a [u8]),
    /// Not known (see [`Datum::Missing`]).
    Missing,
}

impl DatumRef<'_> {
    /// An owned copy.
    pub fn to_datum(self) -> Datum {
        match self {
            DatumRef::Null => Datum::Null,
            DatumRef::Text(b) => Datum::Text(b.to_vec()),
            DatumRef::Missing => Datum::Missing,
        }
    }
}

/// The values of one row, in the column order of the table's schema version
/// that was current when the row was written.
#[derive(Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct RowImage(pub Vec<Datum>);

impl RowImage {
    /// A row of text values (tests and examples).
    pub fn from_texts<S: AsRef<str>>(values: &[Option<S>]) -> RowImage {
        RowImage(
            values
                .iter()
                .map(|v| match v {
                    Some(s) => Datum::text(s.as_ref()),
                    None => Datum::Null,
                })
                .collect(),
        )
    }

    /// The values.
    pub fn values(&self) -> &[Datum] {
        &self.0
    }

    /// True when some value is an unresolved unchanged-TOAST marker.
    pub fn has_unchanged_toast(&self) -> bool {
        self.0.iter().any(|d| matches!(d, Datum::UnchangedToast))
    }
}

impl std::fmt::Debug for RowImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}
