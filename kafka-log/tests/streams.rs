//! What the encoder refuses, what the reader refuses, and how names follow
//! renames, drops and re-creations.

mod support;

use changelog::{
    ChangeRecord, CommitInfo, Coverage, Datum, Lsn, ReplicaIdentity, SchemaChange, TableId, TableName, TableSchema,
    Transaction,
};
use kafka_log::{header, EncodeError, EncodeOptions, Encoder, Reassembler, ReassemblyError, Tables, TopicRecord};
use support::fixtures::{commit, orders, row};
use support::{numbered, read_all};

const T: TableId = TableId(0);

fn define(table: TableId, schema: TableSchema) -> ChangeRecord {
    ChangeRecord::Schema {
        table,
        change: SchemaChange::Define {
            schema,
            backfill: Vec::new(),
            coverage: Coverage::default(),
        },
    }
}

fn insert(table: TableId, id: &str) -> ChangeRecord {
    ChangeRecord::Insert {
        table,
        new: row(&[Datum::text(id), Datum::Missing, Datum::Null]),
    }
}

fn txn(n: u64, records: Vec<ChangeRecord>) -> Transaction {
    let c = commit();
    Transaction {
        commit: CommitInfo {
            commit_lsn: Lsn(c.commit_lsn.0 + 0x100 * n),
            end_lsn: Lsn(c.end_lsn.0 + 0x100 * n),
            ..c
        },
        records,
    }
}

fn encoder() -> Encoder {
    Encoder::new(Tables::new(0), EncodeOptions::default())
}

/// Two transactions: the table created with a row, then two more rows.
fn two() -> (Vec<Transaction>, Vec<Vec<TopicRecord>>) {
    let txns = vec![
        txn(0, vec![define(T, orders()), insert(T, "1")]),
        txn(1, vec![insert(T, "2"), insert(T, "3")]),
    ];
    let mut e = encoder();
    let records = txns.iter().map(|t| e.encode(t).unwrap()).collect();
    (txns, records)
}

fn set_header(r: &mut TopicRecord, name: &str, value: &str) {
    for (h, v) in &mut r.headers {
        if h == name {
            *v = value.as_bytes().to_vec();
        }
    }
}

fn edit_value(r: &mut TopicRecord, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
    edit(&mut v);
    r.value = serde_json::to_vec(&v).unwrap();
}

fn read(records: Vec<TopicRecord>) -> Result<Vec<Transaction>, ReassemblyError> {
    read_all(Tables::new(0), &numbered(records))
}

#[test]
fn renames_drops_and_recreations_keep_ids_as_the_capture_does() {
    let u = TableId(1);
    let mut renamed = orders();
    renamed.name = TableName::new("shop", "orders_old");
    let txns = vec![
        txn(0, vec![define(T, orders()), insert(T, "1")]),
        // Renamed, and a new table takes the old name in the same transaction.
        txn(
            1,
            vec![
                define(T, renamed.clone()),
                insert(T, "2"),
                define(u, orders()),
                insert(u, "3"),
            ],
        ),
        txn(
            2,
            vec![
                ChangeRecord::Schema {
                    table: u,
                    change: SchemaChange::Drop,
                },
                define(TableId(2), orders()),
                ChangeRecord::Truncate {
                    tables: vec![TableId(2), T],
                },
            ],
        ),
    ];
    let mut e = encoder();
    let records: Vec<_> = txns.iter().flat_map(|t| e.encode(t).unwrap()).collect();
    let mut reader = Reassembler::new(Tables::new(0));
    let mut out = Vec::new();
    for (o, r) in numbered(records) {
        out.extend(reader.push(o, &r).unwrap());
    }
    assert_eq!(out, txns);
    let tables = reader.tables();
    assert_eq!(tables.id(&TableName::new("shop", "orders_old")), Some(T));
    assert_eq!(tables.id(&orders().name), Some(TableId(2)));
    assert_eq!(tables.name(TableId(1)), None);
    assert_eq!(tables.next_id(), TableId(3));
}

#[test]
fn the_encoder_refuses_what_it_cannot_say_and_forgets_the_transaction() {
    let mut e = encoder();
    let short = ChangeRecord::Insert {
        table: T,
        new: row(&[Datum::text("1")]),
    };
    let err = e.encode(&txn(0, vec![define(T, orders()), short])).unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::RowShape {
                values: 1,
                columns: 3,
                ..
            }
        ),
        "{err}"
    );
    // The failed transaction's table is not known.
    let err = e.encode(&txn(0, vec![insert(T, "1")])).unwrap_err();
    assert!(matches!(err, EncodeError::UnknownTable { table: T, .. }), "{err}");

    e.encode(&txn(0, vec![define(T, orders())])).unwrap();
    let err = e.encode(&txn(1, vec![define(TableId(5), orders())])).unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::AmbiguousName {
                table: TableId(5),
                holder: T,
                ..
            }
        ),
        "{err}"
    );
    let err = e
        .encode(&txn(1, vec![ChangeRecord::Truncate { tables: Vec::new() }]))
        .unwrap_err();
    assert!(matches!(err, EncodeError::EmptyTruncate { .. }), "{err}");
    let mut twice = orders();
    twice.columns.push(twice.columns[1].clone());
    let err = e.encode(&txn(1, vec![define(T, twice)])).unwrap_err();
    assert!(
        matches!(&err, EncodeError::DuplicateColumn { column, .. } if column == "note"),
        "{err}"
    );
    let uncaptured = ChangeRecord::Schema {
        table: T,
        change: SchemaChange::Uncaptured {
            schema: TableSchema {
                replica_identity: ReplicaIdentity::Nothing,
                ..orders()
            },
            reason: "no key".into(),
        },
    };
    let err = e.encode(&txn(1, vec![uncaptured, insert(T, "1")])).unwrap_err();
    assert!(matches!(err, EncodeError::NotCaptured { table: T, .. }), "{err}");
}

#[test]
fn a_record_of_another_transaction_inside_one_is_interleaved() {
    let (_, records) = two();
    let mut stream = records[0].clone();
    stream.insert(1, records[1][0].clone());
    let err = read(stream).unwrap_err();
    assert!(
        matches!(err, ReassemblyError::Interleaved { offset: 1, open, found }
            if open == commit().commit_lsn && found == txn(1, Vec::new()).commit.commit_lsn),
        "{err}"
    );
}

#[test]
fn counts_that_disagree_with_what_was_read_are_refused() {
    let (_, records) = two();
    let mut stream: Vec<_> = records.concat();
    edit_value(&mut stream[2], |v| v["record_count"] = 3.into());
    let err = read(stream).unwrap_err();
    assert!(
        matches!(
            err,
            ReassemblyError::CountMismatch {
                offset: 2,
                what: "records",
                stated: 3,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    let mut stream: Vec<_> = records.concat();
    edit_value(&mut stream[2], |v| v["event_count"] = 2.into());
    let err = read(stream).unwrap_err();
    assert!(
        matches!(
            err,
            ReassemblyError::CountMismatch {
                what: "data events",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unknown_types_formats_and_missing_headers_are_refused() {
    let (_, records) = two();
    let mut stream = records[0].clone();
    set_header(&mut stream[1], header::TYPE, "message");
    let err = read(stream).unwrap_err();
    assert!(
        matches!(&err, ReassemblyError::UnknownType { offset: 1, kind } if kind == "message"),
        "{err}"
    );

    let mut stream = records[0].clone();
    set_header(&mut stream[0], header::FORMAT, "2");
    let err = read(stream).unwrap_err();
    assert!(
        matches!(err, ReassemblyError::UnsupportedFormat { offset: 0, .. }),
        "{err}"
    );

    let mut stream = records[0].clone();
    stream[1].headers.retain(|(h, _)| h != header::ORDINAL);
    let err = read(stream).unwrap_err();
    assert!(
        matches!(
            err,
            ReassemblyError::MissingHeader {
                offset: 1,
                header: header::ORDINAL
            }
        ),
        "{err}"
    );

    let mut stream = records[0].clone();
    set_header(&mut stream[1], header::ORDINAL, "01");
    let err = read(stream).unwrap_err();
    assert!(matches!(err, ReassemblyError::BadHeader { offset: 1, .. }), "{err}");
}

#[test]
fn envelopes_that_contradict_their_op_or_shape_are_refused() {
    let (_, records) = two();
    let mut stream = records[0].clone();
    edit_value(&mut stream[1], |v| v["op"] = "d".into());
    let err = read(stream).unwrap_err();
    assert!(matches!(err, ReassemblyError::BadEvent { offset: 1, .. }), "{err}");

    let mut stream = records[0].clone();
    edit_value(&mut stream[1], |v| v["after"]["extra"] = "1".into());
    let err = read(stream).unwrap_err();
    assert!(matches!(err, ReassemblyError::BadRow { offset: 1, .. }), "{err}");

    let mut stream = records[0].clone();
    edit_value(&mut stream[1], |v| v["after"]["id"] = 1.into());
    let err = read(stream).unwrap_err();
    assert!(matches!(err, ReassemblyError::BadRow { offset: 1, .. }), "{err}");

    let mut stream = records[0].clone();
    stream[1].value = b"{not json".to_vec();
    let err = read(stream).unwrap_err();
    assert!(matches!(err, ReassemblyError::Malformed { offset: 1, .. }), "{err}");

    let mut stream = records[0].clone();
    edit_value(&mut stream[1], |v| v["source"]["table"] = "nope".into());
    let err = read(stream).unwrap_err();
    assert!(matches!(err, ReassemblyError::UnknownTable { offset: 1, .. }), "{err}");
}

#[test]
fn a_reader_resuming_from_a_store_checks_the_chain_of_transactions() {
    let (txns, records) = two();
    let first = txns[0].commit.commit_lsn;
    let tables = {
        let mut r = Reassembler::new(Tables::new(0));
        for (o, rec) in numbered(records[0].clone()) {
            r.push(o, &rec).unwrap();
        }
        r.finish().unwrap()
    };
    // Resuming right after the first transaction reads the second.
    let mut r = Reassembler::new(tables.clone()).after(first);
    let out: Vec<_> = numbered(records[1].clone())
        .iter()
        .filter_map(|(o, rec)| r.push(*o, rec).unwrap())
        .collect();
    assert_eq!(out, txns[1..]);
    // A transaction the store already has is refused.
    let mut r = Reassembler::new(tables.clone()).after(txns[1].commit.commit_lsn);
    let err = r.push(0, &records[1][0]).unwrap_err();
    assert!(matches!(err, ReassemblyError::NotAfterLast { offset: 0, .. }), "{err}");
    // A store that is behind what the topic says came before: transactions lost.
    let mut r = Reassembler::new(tables).after(Lsn(first.0 - 1));
    let err = numbered(records[1].clone())
        .iter()
        .find_map(|(o, rec)| r.push(*o, rec).err())
        .unwrap();
    assert!(
        matches!(err, ReassemblyError::Lost { offset: 2, previous: Some(p), .. } if p == first),
        "{err}"
    );
}

#[test]
fn a_truncate_cut_short_is_refused() {
    let u = TableId(1);
    let mut other = orders();
    other.name = TableName::new("public", "other");
    let tx = txn(
        0,
        vec![
            define(T, orders()),
            define(u, other),
            ChangeRecord::Truncate { tables: vec![T, u] },
        ],
    );
    let mut records = encoder().encode(&tx).unwrap();
    assert_eq!(read(records.clone()).unwrap(), vec![tx]);
    // Drop the second table's truncate and renumber, as a faulty writer would.
    records.remove(3);
    set_header(&mut records[3], header::ORDINAL, "3");
    let err = read(records).unwrap_err();
    assert!(
        matches!(err, ReassemblyError::TruncateIncomplete { offset: 3, .. }),
        "{err}"
    );
}

#[test]
fn a_transaction_written_in_pieces_is_the_transaction_written_whole() {
    let txns = [
        txn(0, vec![define(T, orders()), insert(T, "1"), insert(T, "2")]),
        txn(1, (3..10).map(|i| insert(T, &i.to_string())).collect()),
    ];
    let mut whole = encoder();
    let expected: Vec<TopicRecord> = txns.iter().flat_map(|t| whole.encode(t).unwrap()).collect();
    let mut pieces = encoder();
    let mut got = Vec::new();
    for t in &txns {
        let mut w = pieces.begin(t.commit);
        for chunk in t.records.chunks(2) {
            w.add(chunk).unwrap();
            got.extend(w.take());
        }
        got.extend(w.finish().unwrap());
    }
    assert_eq!(got, expected);
}

#[test]
fn a_transaction_dropped_before_its_end_leaves_the_directory_as_before() {
    let mut e = encoder();
    let first = txn(0, vec![define(T, orders()), insert(T, "1")]);
    {
        let mut w = e.begin(first.commit);
        w.add(&first.records).unwrap();
    }
    // The table the unfinished transaction defined is unknown again.
    let err = e.encode(&txn(1, vec![insert(T, "2")])).unwrap_err();
    assert!(matches!(err, EncodeError::UnknownTable { .. }), "{err:?}");
}

#[test]
fn records_taken_from_an_open_transaction_leave_its_checks_whole() {
    let txns = [txn(
        0,
        vec![define(T, orders()), insert(T, "1"), insert(T, "2"), insert(T, "3")],
    )];
    let mut e = encoder();
    let records = e.encode(&txns[0]).unwrap();
    let mut reader = Reassembler::new(Tables::new(0));
    let mut taken = Vec::new();
    let mut done = None;
    for (offset, r) in (0..).zip(&records) {
        done = reader.push(offset, r).unwrap();
        if reader.held() >= 2 {
            taken.extend(reader.take_open().unwrap().1);
        }
    }
    let done = done.expect("the end marker completes it");
    taken.extend(done.records);
    assert_eq!(taken, txns[0].records);
    assert_eq!(done.commit, txns[0].commit);

    // Taken, then started over: the count of restarts tells the reader.
    let mut reader = Reassembler::new(Tables::new(0));
    for (offset, r) in (0..).zip(&records[..3]) {
        reader.push(offset, r).unwrap();
    }
    let before = reader.restarts();
    reader.take_open().unwrap();
    let mut again = None;
    for (offset, r) in (10..).zip(&records) {
        again = reader.push(offset, r).unwrap();
    }
    assert_eq!(reader.restarts(), before + 1);
    assert_eq!(again.unwrap().records, txns[0].records);
}
