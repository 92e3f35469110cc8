//! Small identifiers: transaction ids, table ids and table names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A PostgreSQL transaction id as sent by logical decoding (32 bits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Xid(pub u32);

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xid {}", self.0)
    }
}

/// The store's own stable id for a table, assigned the first time the table
/// (by schema-qualified name) is seen.
///
/// Not the Postgres OID: an OID can be reused after a drop and means nothing
/// outside its cluster, while this id is what the store's keys are built on.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableId(pub u32);

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

debug_as_display!(TableId);

/// A schema-qualified table name, e.g. `public.orders`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableName {
    /// The schema (namespace), e.g. `public`.
    pub schema: String,
    /// The table's own name.
    pub name: String,
}

impl TableName {
    /// A name from its two parts.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Parses `schema.name`, or a bare `name` in `public`, as psql reads a
    /// name: unquoted letters fold to lower case (`Orders` is `orders`);
    /// double quotes keep case and dots (`"My Schema"."Order"`).
    pub fn parse(s: &str) -> Self {
        let (schema, name) = split_qualified(s);
        TableName {
            schema: schema.unwrap_or_else(|| "public".to_owned()),
            name,
        }
    }
}

/// Splits `a.b` respecting double-quoted identifiers.
fn split_qualified(s: &str) -> (Option<String>, String) {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            // Postgres folds only ASCII letters of unquoted identifiers.
            c if !quoted => cur.push(c.to_ascii_lowercase()),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    if parts.len() >= 2 {
        let name = parts.pop().unwrap_or_default();
        (Some(parts.join(".")), name)
    } else {
        (None, parts.pop().unwrap_or_default())
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

debug_as_display!(TableName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(TableName::parse("orders"), TableName::new("public", "orders"));
        assert_eq!(TableName::parse("shop.orders"), TableName::new("shop", "orders"));
        assert_eq!(
            TableName::parse("\"My.Schema\".\"Or\"\"der\""),
            TableName::new("My.Schema", "Or\"der")
        );
        assert_eq!(TableName::parse("Shop.Orders"), TableName::new("shop", "orders"));
        assert_eq!(TableName::parse("\"Shop\".ÄOrders"), TableName::new("Shop", "Äorders"));
    }
}
