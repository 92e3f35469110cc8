//! The Debezium shape of each kind of record, pinned.

mod support;

use changelog::{ChangeRecord, Coverage, Datum, SchemaChange, TableId, Transaction};
use kafka_log::{EncodeOptions, Encoder, Tables, TopicRecord};
use serde_json::{json, Value};
use support::fixtures::{commit, orders, row};

fn encode(records: Vec<ChangeRecord>) -> Vec<TopicRecord> {
    let options = EncodeOptions {
        server: "shop".into(),
        database: "shopdb".into(),
    };
    let mut encoder = Encoder::new(Tables::new(0), options);
    encoder
        .encode(&Transaction {
            commit: commit(),
            records,
        })
        .unwrap()
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

const ORDERS: TableId = TableId(0);

fn define() -> ChangeRecord {
    ChangeRecord::Schema {
        table: ORDERS,
        change: SchemaChange::Define {
            schema: orders(),
            backfill: vec![("qty".into(), Datum::text("0"))],
            coverage: Coverage::default(),
        },
    }
}

/// The one record after the table's definition, and the end marker.
fn one(record: ChangeRecord) -> (TopicRecord, TopicRecord) {
    let mut records = encode(vec![define(), record]);
    assert_eq!(records.len(), 3);
    let end = records.pop().unwrap();
    (records.pop().unwrap(), end)
}

fn value(r: &TopicRecord) -> Value {
    serde_json::from_slice(&r.value).unwrap()
}

fn source(snapshot: &str) -> Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "connector": "asof",
        "name": "shop",
        "ts_ms": 1_795_165_200_123_i64,
        "snapshot": snapshot,
        "db": "shopdb",
        "ts_us": 1_795_165_200_123_456_i64,
        "schema": "public",
        "table": "orders",
        "txId": 571,
        "lsn": 23_803_720
    })
}

fn transaction(order: u64) -> Value {
    json!({"id": "571:23803720", "total_order": order, "data_collection_order": order})
}

fn headers(r: &TopicRecord) -> Vec<(&str, &str)> {
    r.headers.iter().map(|(h, v)| (h.as_str(), text(v))).collect()
}

#[test]
fn insert_is_a_debezium_create() {
    let (r, _) = one(ChangeRecord::Insert {
        table: ORDERS,
        new: row(&[Datum::text("1"), Datum::text("hello"), Datum::Null]),
    });
    assert_eq!(r.key.as_deref().map(text), Some(r#"{"id":"1"}"#));
    assert_eq!(
        headers(&r),
        [
            ("asof.format", "1"),
            ("asof.type", "change"),
            ("asof.commit_lsn", "0/16B3748"),
            ("asof.ordinal", "1"),
        ]
    );
    // Byte for byte: Debezium's field order, columns in table order.
    let expected = format!(
        concat!(
            r#"{{"before":null,"after":{{"id":"1","note":"hello","qty":null}},"#,
            r#""source":{{"version":"{}","connector":"asof","name":"shop","ts_ms":1795165200123,"#,
            r#""snapshot":"false","db":"shopdb","ts_us":1795165200123456,"schema":"public","table":"orders","#,
            r#""txId":571,"lsn":23803720}},"op":"c","ts_ms":1795165200123,"#,
            r#""transaction":{{"id":"571:23803720","total_order":1,"data_collection_order":1}}}}"#
        ),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(text(&r.value), expected);
}

#[test]
fn update_without_old_image_has_null_before() {
    let (r, _) = one(ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: row(&[Datum::text("1"), Datum::text("bye"), Datum::text("3")]),
    });
    assert_eq!(r.key.as_deref().map(text), Some(r#"{"id":"1"}"#));
    assert_eq!(
        value(&r),
        json!({
            "before": null,
            "after": {"id": "1", "note": "bye", "qty": "3"},
            "source": source("false"),
            "op": "u",
            "ts_ms": 1_795_165_200_123_i64,
            "transaction": transaction(1)
        })
    );
}

#[test]
fn delete_of_a_key_only_image_leaves_unknown_columns_out() {
    let (r, _) = one(ChangeRecord::Delete {
        table: ORDERS,
        old: row(&[Datum::text("2"), Datum::Missing, Datum::Null]),
    });
    assert_eq!(r.key.as_deref().map(text), Some(r#"{"id":"2"}"#));
    assert_eq!(
        value(&r),
        json!({
            "before": {"id": "2", "qty": null},
            "after": null,
            "source": source("false"),
            "op": "d",
            "ts_ms": 1_795_165_200_123_i64,
            "transaction": transaction(1)
        })
    );
    assert_eq!(r.header("asof.exact"), None);
}

#[test]
fn truncate_is_one_debezium_truncate_per_table() {
    let (r, _) = one(ChangeRecord::Truncate { tables: vec![ORDERS] });
    assert_eq!(r.key, None);
    assert_eq!(r.header("asof.type"), Some(b"truncate".as_slice()));
    assert_eq!(r.header("asof.truncate"), Some(b"0/1".as_slice()));
    assert_eq!(
        value(&r),
        json!({
            "before": null,
            "after": null,
            "source": source("false"),
            "op": "t",
            "ts_ms": 1_795_165_200_123_i64,
            "transaction": transaction(1)
        })
    );
}

#[test]
fn values_json_cannot_say_travel_in_the_exact_header() {
    let (r, _) = one(ChangeRecord::Update {
        table: ORDERS,
        old: Some(row(&[Datum::text("1"), Datum::Missing, Datum::Missing])),
        new: row(&[Datum::text("2"), Datum::Text(vec![0xff, b'a']), Datum::UnchangedToast]),
    });
    assert_eq!(
        r.header("asof.exact").map(text),
        Some(r#"{"after":{"note":{"bytes":"ff61"},"qty":"unchanged_toast"}}"#)
    );
    let v = value(&r);
    assert_eq!(v["before"], json!({"id": "1"}));
    assert_eq!(
        v["after"],
        json!({"id": "2", "note": "\u{fffd}a", "qty": "__debezium_unavailable_value"})
    );
}

#[test]
fn a_read_is_a_snapshot_row_after_its_start() {
    let mut records = encode(vec![
        define(),
        ChangeRecord::ReadStart { table: ORDERS },
        ChangeRecord::Read {
            table: ORDERS,
            row: row(&[Datum::text("7"), Datum::text(""), Datum::text("1")]),
        },
    ]);
    let read = records.remove(2);
    let start = records.remove(1);
    assert_eq!(start.header("asof.type"), Some(b"read_start".as_slice()));
    assert_eq!(value(&start), json!({"table": {"schema": "public", "name": "orders"}}));
    let v = value(&read);
    assert_eq!(v["op"], "r");
    assert_eq!(v["source"], source("true"));
    assert_eq!(v["after"], json!({"id": "7", "note": "", "qty": "1"}));
}

#[test]
fn schema_change_and_end_marker() {
    let (r, end) = one(ChangeRecord::Insert {
        table: ORDERS,
        new: row(&[Datum::text("1"), Datum::text("x"), Datum::text("2")]),
    });
    let schema = encode(vec![define()]).remove(0);
    assert_eq!(schema.key, None);
    assert_eq!(schema.header("asof.type"), Some(b"schema".as_slice()));
    let column = |name: &str, oid: u32, ty: &str, key: bool| json!({"name": name, "type_oid": oid, "type_name": ty, "type_modifier": -1, "is_key": key});
    assert_eq!(
        value(&schema),
        json!({
            "table": {"schema": "public", "name": "orders"},
            "change": "define",
            "shape": {
                "name": {"schema": "public", "name": "orders"},
                "relation_oid": 16_385,
                "columns": [
                    column("id", 23, "int4", true),
                    column("note", 25, "text", false),
                    column("qty", 23, "int4", false)
                ],
                "replica_identity": "Default"
            },
            "backfill": [{"column": "qty", "value": {"text": "0"}}],
            "coverage": {
                "omitted": [],
                "row_filter": null,
                "partition_truncates_unseen": false,
                "unpublished_operations": []
            }
        })
    );
    assert_eq!(r.header("asof.ordinal"), Some(b"1".as_slice()));
    assert_eq!(end.key, None);
    assert_eq!(end.header("asof.type"), Some(b"end".as_slice()));
    assert_eq!(end.header("asof.ordinal"), Some(b"2".as_slice()));
    assert_eq!(
        value(&end),
        json!({
            "status": "END",
            "id": "571:23803720",
            "ts_ms": 1_795_165_200_123_i64,
            "event_count": 1,
            "data_collections": [{"data_collection": "public.orders", "event_count": 1}],
            "commit_lsn": "0/16B3748",
            "end_lsn": "0/16B3778",
            "commit_time_us": 1_795_165_200_123_456_i64,
            "xid": 571,
            "record_count": 2,
            "previous_commit_lsn": null
        })
    );
}
