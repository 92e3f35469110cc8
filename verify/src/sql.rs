//! The SQL that computes, on the source, what [`crate::fingerprint`]
//! computes from the store, over ranges of keys in the store's key order.
//!
//! Values are taken in their output-function text form (`format('%s', v)`
//! calls the type's output function, as COPY and pgoutput do; a cast to
//! text would not, e.g. `true::text` is `true` but prints as `t`). Keys
//! are ordered as the store's memcomparable encoding orders them
//! (`changelog::keys`): integer key columns (`is_integer_key_type`) as
//! integers, every other key column by its text bytes (`COLLATE "C"`),
//! composite keys column by column.

use cdc_source::catalog::{qualified, quote_ident, quote_literal};
use changelog::keys::is_integer_key_type;
use changelog::TableSchema;

/// A key as the text of each key column.
pub type KeyText = Vec<Vec<u8>>;

/// Keys from `lo` (inclusive) to `hi` (exclusive); `None` is unbounded.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyRange<'k> {
    /// Lower bound, included.
    pub lo: Option<&'k KeyText>,
    /// Upper bound, excluded.
    pub hi: Option<&'k KeyText>,
}

/// The queries for one table, in the column order the store has for it.
pub struct TableSql {
    from: String,
    /// The serialized row (see [`crate::fingerprint`]).
    row: String,
    /// Per key column: the ordering expression and whether it is an integer.
    keys: Vec<(String, bool)>,
    /// Per key column: its text form.
    key_texts: Vec<String>,
}

impl TableSql {
    /// The queries for `schema`'s table, only its rows that match
    /// `row_filter` (a publication's row filter) when given.
    pub fn new(schema: &TableSchema, row_filter: Option<&str>) -> TableSql {
        let text = |c: &str| format!("format('%s', {})", quote_ident(c));
        let row = schema
            .columns
            .iter()
            .map(|c| {
                let (col, t) = (quote_ident(&c.name), text(&c.name));
                format!("CASE WHEN {col} IS NULL THEN 'N' ELSE octet_length({t})::text || ':' || {t} END")
            })
            .chain(std::iter::once("''".to_owned()))
            .collect::<Vec<_>>()
            .join(" || ");
        let key_columns = || schema.columns.iter().filter(|c| c.is_key);
        let keys = key_columns()
            .map(|c| {
                let integer = is_integer_key_type(c.type_oid);
                let expr = if integer {
                    format!("{}::int8", quote_ident(&c.name))
                } else {
                    format!("{} COLLATE \"C\"", text(&c.name))
                };
                (expr, integer)
            })
            .collect();
        let table = qualified(&schema.name);
        TableSql {
            from: match row_filter {
                Some(filter) => format!("(SELECT * FROM {table} WHERE {filter}) AS asof_published"),
                None => table,
            },
            row,
            keys,
            key_texts: key_columns().map(|c| text(&c.name)).collect(),
        }
    }

    /// Per bucket of `range` split at `bounds` (each bound starts the next
    /// bucket): the bucket's number, its row count and fingerprint.
    pub fn buckets(&self, range: KeyRange<'_>, bounds: &[&KeyText]) -> String {
        let bucket = if bounds.is_empty() {
            "0".to_owned()
        } else {
            let arms: Vec<String> = bounds
                .iter()
                .enumerate()
                .map(|(i, b)| format!("WHEN {} THEN {i}", self.below(b)))
                .collect();
            format!("CASE {} ELSE {} END", arms.join(" "), bounds.len())
        };
        let order: Vec<String> = (0..self.keys.len()).map(|i| format!("k{i}")).collect();
        let keys: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, (e, _))| format!(", {e} AS k{i}"))
            .collect();
        format!(
            "SELECT b, count(*), md5(string_agg(h, '' ORDER BY {})) FROM \
             (SELECT {bucket} AS b, md5({}) AS h{} FROM {} WHERE {}) s GROUP BY b",
            order.join(", "),
            self.row,
            keys.concat(),
            self.from,
            self.within(range),
        )
    }

    /// The rows of `range` in key order, at most `limit`: each key
    /// column's text, then the row hash.
    pub fn rows(&self, range: KeyRange<'_>, limit: usize) -> String {
        let order: Vec<&str> = self.keys.iter().map(|(e, _)| e.as_str()).collect();
        format!(
            "SELECT {}, md5({}) FROM {} WHERE {} ORDER BY {} LIMIT {limit}",
            self.key_texts.join(", "),
            self.row,
            self.from,
            self.within(range),
            order.join(", "),
        )
    }

    /// For a table without a usable key: the row count and the fingerprint
    /// of its row hashes in byte order.
    pub fn unordered(&self) -> String {
        format!(
            "SELECT count(*), md5(string_agg(h, '' ORDER BY h COLLATE \"C\")) FROM (SELECT md5({}) AS h FROM {}) s",
            self.row, self.from
        )
    }

    /// The condition for keys inside `range`.
    fn within(&self, range: KeyRange<'_>) -> String {
        let lo = range.lo.map(|k| format!("NOT ({})", self.below(k)));
        let hi = range.hi.map(|k| self.below(k));
        let parts: Vec<String> = lo.into_iter().chain(hi).collect();
        if parts.is_empty() {
            "true".to_owned()
        } else {
            parts.join(" AND ")
        }
    }

    /// The condition for keys ordered before `bound`: lexicographic, spelt
    /// out so each column compares under its own ordering.
    fn below(&self, bound: &KeyText) -> String {
        let lits: Vec<String> = self
            .keys
            .iter()
            .zip(bound)
            .map(|((_, integer), v)| {
                let v = quote_literal(&String::from_utf8_lossy(v));
                if *integer {
                    format!("{v}::int8")
                } else {
                    format!("{v}::text COLLATE \"C\"")
                }
            })
            .collect();
        let mut alternatives = Vec::with_capacity(lits.len());
        for (i, ((expr, _), lit)) in self.keys.iter().zip(&lits).enumerate() {
            let mut terms: Vec<String> = self
                .keys
                .iter()
                .zip(&lits)
                .take(i)
                .map(|((e, _), l)| format!("{e} = {l}"))
                .collect();
            terms.push(format!("{expr} < {lit}"));
            alternatives.push(format!("({})", terms.join(" AND ")));
        }
        format!("({})", alternatives.join(" OR "))
    }
}
