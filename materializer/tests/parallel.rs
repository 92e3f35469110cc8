//! A table read on several threads: the bytes come out in key order, and an
//! error on either side stops the read and comes back, without hanging.

use std::ops::ControlFlow;

use changelog::reference::initial_schema;
use changelog::{
    ChangeRecord, CommitInfo, CommitTime, Datum, Durability, Lsn, RowImage, SchemaChange, Store, StoreOptions,
    TableName, Transaction, Xid,
};
use materializer::{Cut, QueryError};

const ROWS: usize = 20_000;

fn store_with_orders(dir: &std::path::Path) -> (Store, Cut) {
    let mut store = Store::open(
        dir,
        &StoreOptions {
            create_if_missing: true,
            durability: Durability::Buffered,
            cache_bytes: 8 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let table = store.table_id_for(&TableName::new("public", "orders"));
    let mut records = vec![ChangeRecord::Schema {
        table,
        change: SchemaChange::Define {
            schema: initial_schema(0),
            backfill: Vec::new(),
            coverage: Default::default(),
        },
    }];
    records.extend((0..ROWS).map(|i| ChangeRecord::Insert {
        table,
        new: RowImage(vec![
            Datum::text(i.to_string()),
            Datum::text("new"),
            Datum::text(format!("order {i}")),
        ]),
    }));
    let commit = CommitInfo {
        commit_lsn: Lsn(0x100),
        end_lsn: Lsn(0x108),
        commit_time: CommitTime::from_unix_micros(1_700_000_000_000_000),
        xid: Xid(1),
    };
    store.append(&[Transaction { commit, records }]).unwrap();
    let entry = store.commit(commit.commit_lsn).unwrap().unwrap();
    (store, Cut::from_commit(&entry))
}

fn line(row: &[changelog::DatumRef<'_>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{:?}\n", row.iter().map(|d| d.to_datum()).collect::<Vec<_>>()).as_bytes());
}

#[derive(Debug, PartialEq)]
enum Stop {
    Query(String),
    Render,
    Emit,
}

impl From<QueryError> for Stop {
    fn from(e: QueryError) -> Self {
        Stop::Query(e.to_string())
    }
}

#[test]
fn every_worker_count_gives_the_serial_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cut) = store_with_orders(dir.path());
    let table = materializer::table_at(&store, &TableName::new("public", "orders"), cut).unwrap();
    let mut serial = Vec::new();
    materializer::snapshot(&store, &table, cut, |row| {
        line(row, &mut serial);
        Ok::<_, QueryError>(ControlFlow::Continue(()))
    })
    .unwrap();
    assert_eq!(serial.iter().filter(|b| **b == b'\n').count(), ROWS);
    for workers in 1..5 {
        let mut out = Vec::new();
        materializer::snapshot_rendered(
            &store,
            &table,
            cut,
            workers,
            |row, buf| {
                line(row, buf);
                Ok::<_, Stop>(())
            },
            |bytes| {
                out.extend_from_slice(bytes);
                Ok(())
            },
        )
        .unwrap();
        assert!(out == serial, "{workers} workers");
    }
}

#[test]
fn a_render_error_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cut) = store_with_orders(dir.path());
    let table = materializer::table_at(&store, &TableName::new("public", "orders"), cut).unwrap();
    let err = materializer::snapshot_rendered(
        &store,
        &table,
        cut,
        2,
        |row, buf| match row.first() {
            Some(changelog::DatumRef::Text(b"15000")) => Err(Stop::Render),
            _ => {
                line(row, buf);
                Ok(())
            }
        },
        |_| Ok(()),
    );
    assert_eq!(err, Err(Stop::Render));
}

#[test]
fn an_output_error_stops_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cut) = store_with_orders(dir.path());
    let table = materializer::table_at(&store, &TableName::new("public", "orders"), cut).unwrap();
    let err = materializer::snapshot_rendered(
        &store,
        &table,
        cut,
        3,
        |row, buf| {
            line(row, buf);
            Ok(())
        },
        |_| Err(Stop::Emit),
    );
    assert_eq!(err, Err(Stop::Emit));
}
