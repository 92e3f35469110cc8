//! A stopping writer's flush: a short write-ahead log is left for readers
//! to replay, a long one becomes table files; readers opened afterwards
//! see the same history either way.

mod support;

use changelog::{Durability, Lsn, Store, TableId, TableName};
use support::{append_all, history, open, snapshot};

/// Bytes of the store's write-ahead log files.
fn wal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// What a reader opened now shows of `table` at each of `cuts`.
fn read_back(dir: &std::path::Path, table: TableId, cuts: &[Lsn]) -> Vec<Option<support::Rows>> {
    let reader = Store::open_read_only(dir).unwrap();
    cuts.iter().map(|&c| snapshot(&reader, table, c)).collect()
}

#[test]
fn a_short_log_stays_and_a_long_one_becomes_table_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Sync);
    let table = store.table_id_for(&TableName::new("public", "orders"));
    let deletes = vec![false, false, true];
    let txns = history(table, &vec![3; 10_000], &deletes, 100);
    let (first, rest) = txns.split_at(2);
    let cuts: Vec<Lsn> = txns.iter().step_by(37).map(|t| t.commit.commit_lsn).collect();

    // A few kilobytes of log: replaying it costs a reader less than a
    // table file per family costs the writer.
    append_all(&mut store, first);
    let early: Vec<_> = cuts.iter().map(|&c| snapshot(&store, table, c)).collect();
    let short = wal_bytes(dir.path());
    assert!(short > 0 && short < 1 << 20, "{short} bytes of log");
    assert!(!store.flush_for_readers().unwrap(), "flushed a short log");
    assert_eq!(wal_bytes(dir.path()), short, "the short log changed");
    assert_eq!(read_back(dir.path(), table, &cuts), early, "replayed from the log");

    // Past a megabyte: flushed, and the log that held it is gone.
    append_all(&mut store, rest);
    let expected: Vec<_> = cuts.iter().map(|&c| snapshot(&store, table, c)).collect();
    let long = wal_bytes(dir.path());
    assert!(long >= 1 << 20, "only {long} bytes of log");
    assert!(store.flush_for_readers().unwrap(), "a long log was left");
    assert!(wal_bytes(dir.path()) < short, "the log was kept after flushing");
    assert_eq!(read_back(dir.path(), table, &cuts), expected, "read from table files");
}
