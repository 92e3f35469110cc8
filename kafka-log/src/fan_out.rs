//! Per-table topics in Debezium's naming, for consumers that want one
//! table's row changes (`prefix.schema.table`, keyed by primary key).

use serde::Deserialize;

use crate::envelope::op;
use crate::record::{header, RecordKind, TopicRecord};

/// What a per-table topic receives for one record of the log: the topic,
/// and the records in order (a delete of a keyed row is followed by a
/// tombstone, as Debezium writes it, so compacted topics forget the row).
/// `None` for records that are not row changes or truncates.
pub fn fan_out(prefix: &str, record: &TopicRecord) -> Option<(String, Vec<FanOutRecord>)> {
    let kind = std::str::from_utf8(record.header(header::TYPE)?).ok()?;
    if !matches!(RecordKind::parse(kind)?, RecordKind::Change | RecordKind::Truncate) {
        return None;
    }
    let envelope: Named = serde_json::from_slice(&record.value).ok()?;
    let topic = table_topic(prefix, &envelope.source.schema, &envelope.source.table);
    let mut out = vec![FanOutRecord {
        key: record.key.clone(),
        value: Some(record.value.clone()),
    }];
    if envelope.op == op::DELETE && record.key.is_some() {
        out.push(FanOutRecord {
            key: record.key.clone(),
            value: None,
        });
    }
    Some((topic, out))
}

/// One record of a per-table topic; `value` `None` is a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FanOutRecord {
    /// The row's key as JSON (`None` for a table without one).
    pub key: Option<Vec<u8>>,
    /// The Debezium envelope.
    pub value: Option<Vec<u8>>,
}

/// `prefix.schema.table`, each character a topic name cannot hold
/// replaced by `_`, as Debezium does.
pub fn table_topic(prefix: &str, schema: &str, table: &str) -> String {
    let legal = |c: char| {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '_'
        }
    };
    [prefix, schema, table]
        .iter()
        .map(|part| part.chars().map(legal).collect::<String>())
        .collect::<Vec<_>>()
        .join(".")
}

/// Only the parts of an envelope the routing needs.
#[derive(Deserialize)]
struct Named {
    source: Source,
    op: String,
}

#[derive(Deserialize)]
struct Source {
    schema: String,
    table: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_debezium_and_replace_what_a_topic_cannot_hold() {
        assert_eq!(table_topic("shop", "public", "orders"), "shop.public.orders");
        assert_eq!(
            table_topic("shop", "Sales Q1", "line/items"),
            "shop.Sales_Q1.line_items"
        );
    }
}
