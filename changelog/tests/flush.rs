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

/// The engine flushes families on its own once the log passes its limit; a
/// family whose flush ends after a newer log file began, and which is not
/// written again, used to keep the older file, and every change logged after
/// it, alive through the writer's own flush.
#[test]
fn a_flush_leaves_no_log_behind_the_engine_s_own_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(
        dir.path(),
        &changelog::StoreOptions {
            create_if_missing: true,
            durability: Durability::Buffered,
            cache_bytes: 8 << 20,
            wal_limit_bytes: 64 << 10,
        },
    )
    .unwrap();
    let table = store.table_id_for(&TableName::new("public", "orders"));
    let txns = history(table, &vec![4; 20_000], &[false, false, true], 50);
    let mut left = Vec::new();
    for chunk in txns.chunks(txns.len().div_ceil(40)) {
        append_all(&mut store, chunk);
        store.flush().unwrap();
        left.push(wal_bytes(dir.path()));
    }
    // At most the one value the flush writes back, in a file the engine may
    // not have deleted yet: never the changes.
    assert!(
        left.iter().all(|&b| b < 1 << 10),
        "log bytes left after each flush: {left:?}"
    );
    let cuts: Vec<Lsn> = txns.iter().step_by(101).map(|t| t.commit.commit_lsn).collect();
    let expected: Vec<_> = cuts.iter().map(|&c| snapshot(&store, table, c)).collect();
    assert_eq!(read_back(dir.path(), table, &cuts), expected);
}

/// Appends `txns` as a long catch-up leaves them: all but the last
/// `last` transactions merged into one run of table files, those in a
/// newer run over it (fewer files than make the engine merge them itself).
fn append_in_two_runs(store: &mut Store, txns: &[changelog::Transaction], last: usize) {
    let (older, newer) = txns.split_at(txns.len() - last);
    append_all(store, older);
    store.flush().unwrap();
    store.compact_files().unwrap();
    append_all(store, newer);
    store.flush().unwrap();
}

/// A writer that overwrote every key many times leaves the newest versions
/// in one run; reads see the same before and after.
#[test]
fn a_stopping_writer_merges_the_newest_versions_after_many_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Buffered);
    let table = store.table_id_for(&TableName::new("public", "orders"));
    // 20 rounds over 4,000 keys; the last round is the newer run.
    let txns = history(table, &vec![20; 4_000], &[false], 200);
    append_in_two_runs(&mut store, &txns, 20);
    let now = txns.last().unwrap().commit.commit_lsn;
    let before = snapshot(&store, table, now);
    let settled = store.settle_latest().unwrap();
    assert_eq!(settled.runs, 2, "{settled:?}");
    assert!(settled.bytes * 20 <= settled.written, "{settled:?}");
    assert!(settled.merged_in.is_some(), "{settled:?}");
    let after = store.settle_latest().unwrap();
    assert_eq!((after.runs, after.merged_in), (1, None), "{after:?}");
    assert_eq!(snapshot(&store, table, now), before);
    drop(store);
    assert_eq!(read_back(dir.path(), table, &[now]), vec![before]);
}

/// A writer that wrote each key about once leaves `latest` to the engine:
/// merging it would cost a large share of what it wrote.
#[test]
fn a_stopping_writer_leaves_the_newest_versions_after_one_write_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Buffered);
    let table = store.table_id_for(&TableName::new("public", "orders"));
    let txns = history(table, &vec![1; 20_000], &[false], 200);
    append_in_two_runs(&mut store, &txns, 50);
    let settled = store.settle_latest().unwrap();
    assert_eq!(settled.runs, 2, "{settled:?}");
    assert!(settled.bytes * 20 > settled.written, "{settled:?}");
    assert_eq!(settled.merged_in, None, "{settled:?}");
    // A reader's handle never merges.
    drop(store);
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert!(reader.settle_latest().is_err());
}
