//! A reader of the store as it stands: it answers from the moment it was
//! opened while the writer goes on and compacts away the files it opened,
//! and it refuses to follow the writer.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use changelog::{Durability, Lsn, Store, StoreError, TableName};
use support::{append_all, history, open, snapshot};

fn table_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sst"))
        .collect()
}

#[test]
fn a_fixed_reader_keeps_its_moment_while_the_writer_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Sync);
    let table = store.table_id_for(&TableName::new("public", "orders"));
    let txns = history(table, &vec![4; 3_000], &[false, false, true], 50);
    let (first, rest) = txns.split_at(txns.len() / 2);
    append_all(&mut store, first);
    store.flush().unwrap();
    // The newest moment first: what the reader calls `now`.
    let cuts: Vec<Lsn> = std::iter::once(Lsn::MAX)
        .chain(first.iter().step_by(23).map(|t| t.commit.commit_lsn))
        .collect();
    let seen: Vec<_> = cuts.iter().map(|&c| snapshot(&store, table, c)).collect();
    let watermark = store.watermark();

    let mut fixed = Store::open_fixed(dir.path()).unwrap();
    let opened_with = table_files(dir.path());
    append_all(&mut store, rest);
    store.flush().unwrap();
    store.compact_files().unwrap();
    let gone = opened_with.difference(&table_files(dir.path())).count();
    assert!(gone > 0, "compaction deleted none of the files the reader opened");

    let read: Vec<_> = cuts.iter().map(|&c| snapshot(&fixed, table, c)).collect();
    assert_eq!(read, seen, "the fixed reader's answers changed under the writer");
    assert_eq!(fixed.watermark(), watermark);
    assert_ne!(fixed.watermark(), store.watermark(), "the writer did not move on");
    assert!(matches!(fixed.refresh(), Err(StoreError::Fixed)));

    // A reader opened now sees everything; so does one that follows.
    let now = snapshot(&store, table, Lsn::MAX);
    assert_ne!(now, seen[0]);
    assert_eq!(snapshot(&Store::open_fixed(dir.path()).unwrap(), table, Lsn::MAX), now);
    assert_eq!(
        snapshot(&Store::open_read_only(dir.path()).unwrap(), table, Lsn::MAX),
        now
    );
}

#[test]
fn a_fixed_reader_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Sync);
    let table = store.table_id_for(&TableName::new("public", "orders"));
    let txns = history(table, &[1; 10], &[false], 5);
    append_all(&mut store, &txns[..1]);
    drop(store);
    let mut fixed = Store::open_fixed(dir.path()).unwrap();
    assert!(matches!(fixed.append(&txns[1..]), Err(StoreError::ReadOnly)));
    assert!(matches!(
        Store::open_fixed(dir.path().join("absent")),
        Err(StoreError::NotFound { .. })
    ));
}
