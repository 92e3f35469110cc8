//! Filters on a table's key columns, turned into what to read instead of
//! the whole table: the rows of a few keys (`id = 5`, `id IN (1, 2)`, a
//! narrow integer range, every key column pinned) or a key range of a
//! single-column key (`id > 100`, `name BETWEEN 'a' AND 'c'`).
//!
//! The filters stay in the plan (pushed down as inexact), so a selection
//! only has to hold every row the filters keep; rows it reads beyond them
//! are filtered out as before. Keys compare as the store orders them:
//! integers numerically, text by bytes, as DataFusion compares them.

use std::collections::BTreeSet;
use std::ops::Bound;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{Between, BinaryExpr, Cast, Expr, Operator, TryCast};

/// At most this many keys are looked up one by one; more read the table.
const MAX_KEYS: usize = 4096;

/// Integer ranges at most this wide are looked up key by key.
const MAX_ENUMERATED: i128 = 1024;

/// A key column: its name and how its values are keyed.
#[derive(Clone, Debug)]
pub(crate) struct KeyColumn {
    /// The column's name.
    pub name: String,
    /// Keyed as an integer (else as its text).
    pub integer: bool,
}

/// A key value.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Value {
    Int(i64),
    Text(String),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Text(s) => s.clone(),
        }
    }
}

/// What of a table to read.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Selection {
    /// Everything.
    All,
    /// The rows of these keys: each the key columns' values in Postgres's
    /// text, in key-column order.
    Keys(Vec<Vec<String>>),
    /// The rows whose single key column lies between these values (text).
    Range(Bound<String>, Bound<String>),
}

/// What one key column is constrained to.
#[derive(Clone, Debug)]
struct Constraint {
    points: Option<BTreeSet<Value>>,
    low: Bound<Value>,
    high: Bound<Value>,
}

impl Default for Constraint {
    fn default() -> Self {
        Constraint {
            points: None,
            low: Bound::Unbounded,
            high: Bound::Unbounded,
        }
    }
}

impl Constraint {
    fn is_set(&self) -> bool {
        self.points.is_some() || self.low != Bound::Unbounded || self.high != Bound::Unbounded
    }

    fn admits(&self, v: &Value) -> bool {
        let above = match &self.low {
            Bound::Included(l) => v >= l,
            Bound::Excluded(l) => v > l,
            Bound::Unbounded => true,
        };
        let below = match &self.high {
            Bound::Included(h) => v <= h,
            Bound::Excluded(h) => v < h,
            Bound::Unbounded => true,
        };
        above && below
    }

    fn points(&mut self, values: BTreeSet<Value>) {
        self.points = Some(match self.points.take() {
            Some(p) => p.intersection(&values).cloned().collect(),
            None => values,
        });
    }

    fn low(&mut self, b: Bound<Value>) {
        if tighter_low(&b, &self.low) {
            self.low = b;
        }
    }

    fn high(&mut self, b: Bound<Value>) {
        if tighter_high(&b, &self.high) {
            self.high = b;
        }
    }
}

fn tighter_low(new: &Bound<Value>, old: &Bound<Value>) -> bool {
    match (new, old) {
        (_, Bound::Unbounded) => true,
        (Bound::Unbounded, _) => false,
        (Bound::Included(n) | Bound::Excluded(n), Bound::Included(o) | Bound::Excluded(o)) if n != o => n > o,
        (Bound::Excluded(_), Bound::Included(_)) => true,
        _ => false,
    }
}

fn tighter_high(new: &Bound<Value>, old: &Bound<Value>) -> bool {
    match (new, old) {
        (_, Bound::Unbounded) => true,
        (Bound::Unbounded, _) => false,
        (Bound::Included(n) | Bound::Excluded(n), Bound::Included(o) | Bound::Excluded(o)) if n != o => n < o,
        (Bound::Excluded(_), Bound::Included(_)) => true,
        _ => false,
    }
}

/// Whether `filter` constrains a key column in a form [`select`] uses.
///
/// A parameter (`id = $1`) counts as a value: a prepared statement is
/// planned once, before its parameters are known, and the scan reads the
/// filter again once they are bound in.
pub(crate) fn usable(filter: &Expr, keys: &[KeyColumn]) -> bool {
    let mut constraints = vec![Constraint::default(); keys.len()];
    apply(filter, keys, &mut constraints, Params::Placeholders);
    constraints.iter().any(Constraint::is_set)
}

/// What a parameter placeholder stands for while filters are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Params {
    /// Some value of the column's kind, to come: whether a filter can be
    /// used is known, not what it selects.
    Placeholders,
    /// Nothing usable: parameters are bound before the scan.
    Bound,
}

/// What to read for rows that pass every filter.
pub(crate) fn select(filters: &[Expr], keys: &[KeyColumn]) -> Selection {
    if keys.is_empty() {
        return Selection::All;
    }
    let mut constraints = vec![Constraint::default(); keys.len()];
    for f in filters {
        apply(f, keys, &mut constraints, Params::Bound);
    }
    if let [(only, key)] = &constraints.iter().zip(keys).collect::<Vec<_>>()[..] {
        if key.integer && only.points.is_none() {
            if let Some(points) = enumerate(only) {
                return keys_of(vec![points]);
            }
        }
    }
    if constraints.iter().all(|c| c.points.is_some()) {
        let sets: Vec<Vec<Value>> = constraints
            .iter()
            .map(|c| c.points.iter().flatten().filter(|v| c.admits(v)).cloned().collect())
            .collect();
        let count = sets.iter().try_fold(1usize, |n, s| n.checked_mul(s.len()));
        if count.is_some_and(|n| n <= MAX_KEYS) {
            return keys_of(sets);
        }
    }
    match &constraints[..] {
        [only] if only.low != Bound::Unbounded || only.high != Bound::Unbounded => {
            Selection::Range(only.low.as_ref().map(Value::text), only.high.as_ref().map(Value::text))
        }
        _ => Selection::All,
    }
}

/// The values of a narrow integer range, one by one.
fn enumerate(c: &Constraint) -> Option<BTreeSet<Value>> {
    let low = match &c.low {
        Bound::Included(Value::Int(v)) => i128::from(*v),
        Bound::Excluded(Value::Int(v)) => i128::from(*v) + 1,
        _ => return None,
    };
    let high = match &c.high {
        Bound::Included(Value::Int(v)) => i128::from(*v),
        Bound::Excluded(Value::Int(v)) => i128::from(*v) - 1,
        _ => return None,
    };
    if high - low >= MAX_ENUMERATED {
        return None;
    }
    Some(
        (low..=high)
            .filter_map(|v| i64::try_from(v).ok())
            .map(Value::Int)
            .collect(),
    )
}

/// Every combination of the key columns' values.
fn keys_of(sets: Vec<impl IntoIterator<Item = Value>>) -> Selection {
    let mut keys: Vec<Vec<String>> = vec![Vec::new()];
    for set in sets {
        let values: Vec<Value> = set.into_iter().collect();
        keys = keys
            .into_iter()
            .flat_map(|k| {
                values.iter().map(move |v| {
                    let mut k = k.clone();
                    k.push(v.text());
                    k
                })
            })
            .collect();
    }
    Selection::Keys(keys)
}

/// Narrows `constraints` by what `filter` says of key columns; parts it
/// cannot read leave them as they are.
fn apply(filter: &Expr, keys: &[KeyColumn], constraints: &mut [Constraint], params: Params) {
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            apply(left, keys, constraints, params);
            apply(right, keys, constraints, params);
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (column, value, op) = match (key_of(left, keys), key_of(right, keys)) {
                (Some(i), None) => (i, right, *op),
                (None, Some(i)) => match op.swap() {
                    Some(swapped) => (i, left, swapped),
                    None => return,
                },
                _ => return,
            };
            let Some(v) = literal(value, &keys[column], params) else {
                return;
            };
            let c = &mut constraints[column];
            match op {
                Operator::Eq => c.points(BTreeSet::from([v])),
                Operator::Lt => c.high(Bound::Excluded(v)),
                Operator::LtEq => c.high(Bound::Included(v)),
                Operator::Gt => c.low(Bound::Excluded(v)),
                Operator::GtEq => c.low(Bound::Included(v)),
                _ => {}
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let Some(i) = key_of(expr, keys) else { return };
            let values: Option<BTreeSet<Value>> = list.iter().map(|e| literal(e, &keys[i], params)).collect();
            if let Some(values) = values {
                constraints[i].points(values);
            }
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => {
            let Some(i) = key_of(expr, keys) else { return };
            if let (Some(l), Some(h)) = (literal(low, &keys[i], params), literal(high, &keys[i], params)) {
                constraints[i].low(Bound::Included(l));
                constraints[i].high(Bound::Included(h));
            }
        }
        _ => {}
    }
}

/// The key column `e` is, possibly under an integer cast of an integer key.
fn key_of(e: &Expr, keys: &[KeyColumn]) -> Option<usize> {
    match e {
        Expr::Column(c) => keys.iter().position(|k| k.name == c.name),
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) if field.data_type().is_integer() => {
            key_of(expr, keys).filter(|i| keys[*i].integer)
        }
        _ => None,
    }
}

/// A non-NULL literal as a value of the key column's kind (a placeholder
/// as any value of that kind when `params` says so).
fn literal(e: &Expr, key: &KeyColumn, params: Params) -> Option<Value> {
    if let (Expr::Placeholder(_), Params::Placeholders) = (e, params) {
        return Some(if key.integer {
            Value::Int(0)
        } else {
            Value::Text(String::new())
        });
    }
    let Expr::Literal(v, _) = e else { return None };
    if key.integer {
        let wide = match v {
            ScalarValue::Int8(Some(x)) => i64::from(*x),
            ScalarValue::Int16(Some(x)) => i64::from(*x),
            ScalarValue::Int32(Some(x)) => i64::from(*x),
            ScalarValue::Int64(Some(x)) => *x,
            ScalarValue::UInt8(Some(x)) => i64::from(*x),
            ScalarValue::UInt16(Some(x)) => i64::from(*x),
            ScalarValue::UInt32(Some(x)) => i64::from(*x),
            ScalarValue::UInt64(Some(x)) => i64::try_from(*x).ok()?,
            _ => return None,
        };
        return Some(Value::Int(wide));
    }
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            Some(Value::Text(s.clone()))
        }
        _ => None,
    }
}

/// Whether a column of this Arrow type is keyed as an integer.
pub(crate) fn integer_type(t: &DataType) -> bool {
    matches!(t, DataType::Int16 | DataType::Int32 | DataType::Int64)
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    fn keys(names: &[(&str, bool)]) -> Vec<KeyColumn> {
        names
            .iter()
            .map(|(n, integer)| KeyColumn {
                name: (*n).into(),
                integer: *integer,
            })
            .collect()
    }

    fn texts(v: &[&[&str]]) -> Selection {
        Selection::Keys(v.iter().map(|k| k.iter().map(|s| (*s).to_string()).collect()).collect())
    }

    #[test]
    fn key_filters_select_keys_or_ranges() {
        let id = keys(&[("id", true)]);
        assert_eq!(select(&[col("id").eq(lit(5i64))], &id), texts(&[&["5"]]));
        assert_eq!(select(&[lit(5i32).eq(col("id"))], &id), texts(&[&["5"]]));
        assert_eq!(
            select(&[col("id").in_list(vec![lit(3i64), lit(1i64)], false)], &id),
            texts(&[&["1"], &["3"]])
        );
        assert_eq!(
            select(&[col("id").between(lit(2i64), lit(4i64))], &id),
            texts(&[&["2"], &["3"], &["4"]])
        );
        assert_eq!(
            select(&[col("id").gt(lit(2i64)).and(col("id").lt_eq(lit(4i64)))], &id),
            texts(&[&["3"], &["4"]])
        );
        assert_eq!(
            select(&[col("id").gt(lit(2i64))], &id),
            Selection::Range(Bound::Excluded("2".into()), Bound::Unbounded)
        );
        assert_eq!(
            select(&[col("id").eq(lit(2i64)), col("id").eq(lit(3i64))], &id),
            Selection::Keys(vec![])
        );
        assert_eq!(select(&[col("id").in_list(vec![lit(3i64)], true)], &id), Selection::All);
        assert_eq!(select(&[col("other").eq(lit(3i64))], &id), Selection::All);
        assert_eq!(
            select(&[col("id").eq(lit("3"))], &id),
            Selection::All,
            "text for an integer key"
        );
        let pair = keys(&[("a", false), ("b", true)]);
        assert_eq!(
            select(
                &[
                    col("a").eq(lit("x")),
                    col("b").in_list(vec![lit(1i64), lit(2i64)], false)
                ],
                &pair
            ),
            texts(&[&["x", "1"], &["x", "2"]])
        );
        assert_eq!(
            select(&[col("a").eq(lit("x"))], &pair),
            Selection::All,
            "part of the key"
        );
        assert!(!usable(&col("a").like(lit("x%")), &pair));
        assert!(usable(&col("b").gt(lit(1i64)).and(col("z").eq(lit(1i64))), &pair));
    }

    #[test]
    fn parameters_are_usable_before_they_are_bound_and_select_nothing_unbound() {
        let id = keys(&[("id", true)]);
        let param = || datafusion::logical_expr::placeholder("$1");
        assert!(usable(&col("id").eq(param()), &id));
        assert!(usable(&col("id").in_list(vec![param(), lit(2i64)], false), &id));
        assert!(!usable(&col("other").eq(param()), &id));
        // Unbound at the scan, a parameter selects nothing of the key.
        assert_eq!(select(&[col("id").eq(param())], &id), Selection::All);
    }
}
