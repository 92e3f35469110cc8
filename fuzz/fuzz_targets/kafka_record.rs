//! The topic reader: never panics on a record anyone could have written
//! to the topic. The first byte picks the record's type and ordinal; the
//! rest up to a NUL is the `asof.exact` and `asof.truncate` headers, the
//! rest after it the value. Each input is read twice in a row, so the
//! second reading meets an open transaction.
#![no_main]
use changelog::{Column, Coverage, ReplicaIdentity, SchemaChange, TableId, TableName, TableSchema};
use kafka_log::{header, Reassembler, Tables, TopicRecord, FORMAT_VERSION};

const KINDS: [&str; 6] = ["change", "truncate", "schema", "read_start", "end", "other"];

fn tables() -> Tables {
    let column = |name: &str, is_key| Column {
        name: name.into(),
        type_oid: 25,
        type_name: "text".into(),
        type_modifier: -1,
        is_key,
    };
    let orders = SchemaChange::Define {
        schema: TableSchema {
            name: TableName::new("public", "orders"),
            relation_oid: 1,
            columns: vec![column("id", true), column("note", false)],
            replica_identity: ReplicaIdentity::Default,
        },
        backfill: Vec::new(),
        coverage: Coverage::default(),
    };
    Tables::from_latest([(TableId(0), &orders)], 1)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (extra, value) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (rest.get(..i), rest.get(i + 1..).unwrap_or_default()),
        None => (None, rest),
    };
    let kind = KINDS[usize::from(selector) % KINDS.len()];
    let mut headers = vec![
        (header::FORMAT.to_owned(), FORMAT_VERSION.as_bytes().to_vec()),
        (header::TYPE.to_owned(), kind.as_bytes().to_vec()),
        (header::COMMIT_LSN.to_owned(), b"0/10".to_vec()),
        (header::ORDINAL.to_owned(), (usize::from(selector) / KINDS.len() % 3).to_string().into_bytes()),
    ];
    if let Some(extra) = extra {
        headers.push((header::EXACT.to_owned(), extra.to_vec()));
        headers.push((header::TRUNCATE.to_owned(), extra.to_vec()));
    }
    let record = TopicRecord {
        key: None,
        value: value.to_vec(),
        headers,
    };
    let mut reader = Reassembler::new(tables());
    if reader.push(0, &record).is_ok() {
        let _ = reader.push(1, &record);
        let _ = reader.finish();
    }
});
