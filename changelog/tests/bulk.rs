//! Bulk loading a full read: the files built and ingested must leave the
//! engine byte for byte as spilling the same `Read` records does, in every
//! family but the log, whose one marker per table must read back as the
//! same records; and a load cut short must leave no trace after reopening.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use changelog::keys::cf;
use changelog::reference::initial_schema;
use changelog::{
    BulkRows, ChangeRecord, Coverage, Datum, Durability, HistoryWalk, Lsn, RowBlock, RowImage, SchemaChange, SpillTxn,
    Store, StoreError, TableId, Transaction,
};
use proptest::prelude::*;
use support::{commit_info, engine_read_only, log_of, open, snapshot};

/// Every entry of every family, by family.
type Engine = BTreeMap<&'static str, Vec<(Vec<u8>, Vec<u8>)>>;

fn engine(path: &Path) -> Engine {
    let db = engine_read_only(path);
    cf::ALL
        .iter()
        .map(|name| {
            let it = db.iterator_cf(db.cf_handle(name).unwrap(), rocksdb::IteratorMode::Start);
            let entries = it
                .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<Result<_, _>>();
            (*name, entries.unwrap())
        })
        .collect()
}

fn define(table: TableId, kind: usize) -> ChangeRecord {
    ChangeRecord::Schema {
        table,
        change: SchemaChange::Define {
            schema: initial_schema(kind),
            backfill: Vec::new(),
            coverage: Coverage::default(),
        },
    }
}

/// A table's rows, unique by key: `kind` 0 keys by an integer, 1 by text
/// and integer, 2 by text (with zero bytes and long values).
fn rows(kind: usize) -> impl Strategy<Value = Vec<RowImage>> {
    let text = prop_oneof![
        "[a-z]{0,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
        (0usize..3).prop_map(|i| vec![b'x'; [250, 300, 70_000][i]]),
    ];
    let value = prop_oneof![3 => text.clone().prop_map(Datum::Text), 1 => Just(Datum::Null)];
    let row = (any::<i32>(), text, value.clone(), value);
    proptest::collection::vec(row, 0..300).prop_map(move |rows| {
        let mut seen = std::collections::HashSet::new();
        rows.into_iter()
            .filter_map(|(n, t, a, b)| {
                let (values, key) = match kind {
                    0 => (vec![Datum::text(n.to_string()), a, b], n.to_string().into_bytes()),
                    1 => (vec![Datum::Text(t.clone()), Datum::text((n % 5).to_string()), a], {
                        let mut k = t;
                        k.extend_from_slice(format!("/{}", n % 5).as_bytes());
                        k
                    }),
                    _ => (vec![Datum::Text(t.clone()), a], t),
                };
                seen.insert(key).then_some(RowImage(values))
            })
            .collect()
    })
}

fn fill(block: &mut RowBlock, rows: &[RowImage]) {
    block.clear();
    for r in rows {
        block.begin_row();
        for d in &r.0 {
            match d {
                Datum::Text(t) => block.push_text(t),
                _ => block.push_null(),
            }
        }
        block.end_row().unwrap();
    }
}

/// A store whose table 0 already has a history (so the read replaces
/// rows), then one transaction reading table 0 of shape `kind` in full
/// and table 1 (which counts copies) through the spill, loaded in bulk in
/// blocks of `block_rows` when `bulk`.
fn store_with_read(dir: &Path, kind: usize, read: &[RowImage], block_rows: usize, bulk: bool) {
    let (t0, t1) = (TableId(0), TableId(1));
    let mut store = open(dir, Durability::Buffered);
    let earlier: Vec<ChangeRecord> = std::iter::once(define(t0, kind))
        .chain(read.iter().step_by(3).map(|r| ChangeRecord::Insert {
            table: t0,
            new: r.clone(),
        }))
        .collect();
    store
        .append(&[Transaction {
            commit: commit_info(100, 1, 1),
            records: earlier,
        }])
        .unwrap();
    let commit = commit_info(200, 2, 2);
    let mut sp = store.begin_spill(commit.commit_lsn).unwrap();
    store.spill(&mut sp, &[ChangeRecord::ReadStart { table: t0 }]).unwrap();
    if bulk {
        let loader = store.bulk_rows(&sp, t0).unwrap();
        let mut block = RowBlock::new(loader.width());
        for part in read.chunks(block_rows.max(1)) {
            fill(&mut block, part);
            let built = loader.build(&block).unwrap();
            store.ingest_rows(&mut sp, built).unwrap();
        }
        store.finish_bulk(&mut sp, t0).unwrap();
    } else {
        let records: Vec<ChangeRecord> = read
            .iter()
            .map(|r| ChangeRecord::Read {
                table: t0,
                row: r.clone(),
            })
            .collect();
        for part in records.chunks(block_rows.max(1)) {
            store.spill(&mut sp, part).unwrap();
        }
    }
    let bag_row = |n: &str| RowImage(vec![Datum::text(n), Datum::text("s")]);
    let rest = [
        define(t1, changelog::reference::BAG),
        ChangeRecord::ReadStart { table: t1 },
        ChangeRecord::Read {
            table: t1,
            row: bag_row("1"),
        },
        ChangeRecord::Read {
            table: t1,
            row: bag_row("1"),
        },
    ];
    store.spill(&mut sp, &rest[..2]).unwrap();
    store.finish_spill(sp, &commit, &rest[2..]).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn bulk_loads_store_what_spilling_stores(
        (kind, read) in (0usize..3).prop_flat_map(|k| (Just(k), rows(k))),
        block_rows in prop_oneof![1usize..8, 8usize..400],
    ) {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        store_with_read(a.path(), kind, &read, block_rows, false);
        store_with_read(b.path(), kind, &read, block_rows, true);
        let (spilled, loaded) = (engine(a.path()), engine(b.path()));
        for name in cf::ALL.iter().filter(|n| **n != cf::LOG) {
            prop_assert!(spilled[name] == loaded[name], "family {name} differs ({} vs {} entries)",
                spilled[name].len(), loaded[name].len());
        }
        // One marker in the log instead of a record per row.
        let rows_logged = |e: &Engine| e[cf::LOG].len();
        prop_assert_eq!(rows_logged(&loaded) + read.len() - usize::from(!read.is_empty()), rows_logged(&spilled));
        // Read back, the same records at the same ordinals: the bulk rows in
        // key order, the spilled ones as given.
        let (spilled, loaded) = (
            log_of(&open(a.path(), Durability::Buffered)),
            log_of(&open(b.path(), Durability::Buffered)),
        );
        prop_assert_eq!(spilled.len(), loaded.len());
        let schema = initial_schema(kind);
        let key = |e: &changelog::LogEntry| match &e.record {
            ChangeRecord::Read { table: TableId(0), row } => Some(changelog::keys::row_key(TableId(0), &schema, &row.0)),
            _ => None,
        };
        let mut by_key = spilled.clone();
        let reads = by_key.iter().position(|e| key(e).is_some()).unwrap_or(0);
        by_key[reads..reads + read.len()].sort_by_key(key);
        for (i, e) in by_key[reads..reads + read.len()].iter_mut().enumerate() {
            e.ordinal = spilled[reads + i].ordinal;
        }
        prop_assert!(by_key == loaded, "the log reads back differently");
        prop_assert!(!b.path().join("bulk").exists() || std::fs::read_dir(b.path().join("bulk")).unwrap().next().is_none());
    }
}

/// A copied row is stored once: its `latest` entry is the commit LSN alone,
/// referring to its version, whether it was loaded in bulk or spilled; a
/// table that counts copies keeps whole entries; the key's next change
/// writes a whole entry again; and every way of reading finds the rows.
#[test]
fn a_copied_row_is_stored_once_and_read_every_way() {
    let read: Vec<RowImage> = (0..50)
        .map(|i| {
            RowImage(vec![
                Datum::text(i.to_string()),
                Datum::text(format!("row {i}")),
                Datum::Null,
            ])
        })
        .collect();
    for bulk in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        store_with_read(dir.path(), 0, &read, 16, bulk);
        let mut store = open(dir.path(), Durability::Buffered);
        let changed = RowImage(vec![Datum::text("7"), Datum::text("changed"), Datum::Null]);
        store
            .append(&[Transaction {
                commit: commit_info(300, 3, 3),
                records: vec![ChangeRecord::Update {
                    table: TableId(0),
                    old: None,
                    new: changed.clone(),
                }],
            }])
            .unwrap();
        store.flush().unwrap();
        let key7 = changelog::keys::row_key(TableId(0), &initial_schema(0), &changed.0).0;
        {
            let e = engine(dir.path());
            let table = |t: u32| move |(k, _): &&(Vec<u8>, Vec<u8>)| k.starts_with(&t.to_be_bytes());
            let (copied, counted): (Vec<_>, Vec<_>) = (
                e[cf::LATEST].iter().filter(table(0)).collect(),
                e[cf::LATEST].iter().filter(table(1)).collect(),
            );
            assert_eq!(copied.len(), read.len());
            for (k, v) in copied {
                let whole = *k == key7;
                assert_eq!(v.len() > 8, whole, "latest of {k:?} (bulk: {bulk}): {v:?}");
            }
            assert!(!counted.is_empty() && counted.iter().all(|(_, v)| v.len() > 8));
        }
        let want: Vec<Vec<Datum>> = read.iter().map(|r| r.0.clone()).collect();
        for walk in [HistoryWalk::Latest, HistoryWalk::Versions, HistoryWalk::Estimate] {
            store.set_history_walk(walk);
            let at = |cut: u64| -> Vec<Vec<Datum>> {
                snapshot(&store, TableId(0), Lsn(cut))
                    .unwrap()
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect()
            };
            let mut copied = want.clone();
            copied.sort_by_key(|r| changelog::keys::row_key(TableId(0), &initial_schema(0), r).0);
            assert_eq!(at(200), copied, "at the copy ({walk:?}, bulk: {bulk})");
            let mut now = copied.clone();
            if let Some(r) = now.iter_mut().find(|r| r[0] == Datum::text("7")) {
                *r = changed.0.clone();
            }
            assert_eq!(at(300), now, "after a change ({walk:?}, bulk: {bulk})");
        }
    }
}

/// A store where table 0 (keyed by an integer) is defined at LSN 100.
fn store_with_table(dir: &Path) -> Store {
    let mut store = open(dir, Durability::Buffered);
    store
        .append(&[Transaction {
            commit: commit_info(100, 1, 1),
            records: vec![define(TableId(0), 0)],
        }])
        .unwrap();
    store
}

/// A re-read of table 0 begun at LSN 200, and a block of `rows` rows for
/// it, ready to build.
fn start_load(store: &mut Store, rows: usize) -> (SpillTxn, BulkRows, RowBlock) {
    let mut sp = store.begin_spill(Lsn(200)).unwrap();
    store
        .spill(&mut sp, &[ChangeRecord::ReadStart { table: TableId(0) }])
        .unwrap();
    let loader = store.bulk_rows(&sp, TableId(0)).unwrap();
    let mut block = RowBlock::new(3);
    let images: Vec<RowImage> = (0..rows)
        .map(|i| RowImage(vec![Datum::text(i.to_string()), Datum::text("s"), Datum::Null]))
        .collect();
    fill(&mut block, &images);
    (sp, loader, block)
}

#[test]
fn a_load_cut_short_leaves_nothing_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        drop(store_with_table(dir.path()));
        engine(dir.path())
    };
    {
        let mut store = open(dir.path(), Durability::Buffered);
        let (mut sp, loader, block) = start_load(&mut store, 1000);
        let built = loader.build(&block).unwrap();
        store.ingest_rows(&mut sp, built).unwrap();
        // A second block built and never ingested, as a crash leaves it.
        std::mem::forget(loader.build(&block).unwrap());
        // The process ends here: no finish, no abort.
        std::mem::forget(sp);
    }
    let store = open(dir.path(), Durability::Buffered);
    assert_eq!(store.watermark().unwrap().commit_lsn, Lsn(100));
    drop(store);
    let after = engine(dir.path());
    for name in cf::ALL.iter().filter(|n| **n != cf::META) {
        assert!(
            before[name] == after[name],
            "family {name} holds what the cut-short load wrote"
        );
    }
    assert!(!dir.path().join("bulk").exists(), "half-built files are left behind");
}

#[test]
fn duplicate_keys_and_tables_without_a_unique_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Buffered);
    let records = [define(TableId(0), 0), define(TableId(1), changelog::reference::BAG)];
    store
        .append(&[Transaction {
            commit: commit_info(100, 1, 1),
            records: records.to_vec(),
        }])
        .unwrap();
    let sp = store.begin_spill(Lsn(200)).unwrap();
    assert!(!BulkRows::accepts(&initial_schema(changelog::reference::BAG)));
    assert!(matches!(
        store.bulk_rows(&sp, TableId(1)),
        Err(StoreError::NoUniqueKey { .. })
    ));
    let loader = store.bulk_rows(&sp, TableId(0)).unwrap();
    let mut block = RowBlock::new(3);
    let row = RowImage(vec![Datum::text("7"), Datum::text("s"), Datum::Null]);
    fill(&mut block, &[row.clone(), row]);
    assert!(matches!(loader.build(&block), Err(StoreError::DuplicateKey { .. })));
    block.clear();
    block.begin_row();
    block.push_text(b"1");
    assert_eq!(block.end_row(), Err(1));
    assert!(block.is_empty());
}

#[test]
fn a_file_that_fails_to_land_takes_the_rest_of_its_block_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_table(dir.path());
    let (mut sp, loader, block) = start_load(&mut store, 100);
    let built = loader.build(&block).unwrap();
    // The block's second file goes missing: the first lands, and the
    // error must take the rest with it.
    let bulk = dir.path().join("bulk");
    let files = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&bulk)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let latest = files().into_iter().find(|n| n.ends_with("-latest.sst")).unwrap();
    std::fs::remove_file(bulk.join(latest)).unwrap();
    assert!(store.ingest_rows(&mut sp, built).is_err());
    assert_eq!(
        files(),
        Vec::<String>::new(),
        "files of the failed block are left behind"
    );
}

#[test]
fn a_table_loaded_in_bulk_cannot_change_again_in_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_table(dir.path());
    let (mut sp, loader, block) = start_load(&mut store, 10);
    let built = loader.build(&block).unwrap();
    store.ingest_rows(&mut sp, built).unwrap();
    let again = [ChangeRecord::Insert {
        table: TableId(0),
        new: RowImage(vec![Datum::text("99"), Datum::text("s"), Datum::Null]),
    }];
    assert!(matches!(
        store.spill(&mut sp, &again),
        Err(StoreError::BulkLoadedTableChanged { table: TableId(0) })
    ));
    let reset = [ChangeRecord::Truncate {
        tables: vec![TableId(0)],
    }];
    assert!(matches!(
        store.finish_spill(sp, &commit_info(200, 2, 2), &reset),
        Err(StoreError::BulkLoadedTableChanged { table: TableId(0) })
    ));
}

/// The format number the engine holds.
fn format_on_disk(path: &Path) -> u32 {
    let db = engine_read_only(path);
    let v = db.get_cf(db.cf_handle(cf::META).unwrap(), b"format").unwrap().unwrap();
    u32::from_be_bytes(v.try_into().unwrap())
}

#[test]
fn a_store_of_the_format_before_bulk_markers_is_read_and_a_writer_marks_it() {
    let dir = tempfile::tempdir().unwrap();
    let read: Vec<RowImage> = (0..50)
        .map(|i| RowImage(vec![Datum::text(i.to_string()), Datum::text("s"), Datum::Null]))
        .collect();
    store_with_read(dir.path(), 0, &read, 1000, false);
    assert_eq!(format_on_disk(dir.path()), changelog::FORMAT_VERSION);
    {
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), cf::ALL).unwrap();
        db.put_cf(
            db.cf_handle(cf::META).unwrap(),
            b"format",
            changelog::OLDEST_FORMAT.to_be_bytes(),
        )
        .unwrap();
    }
    let reader = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(log_of(&reader).len(), 1 + read.len().div_ceil(3) + 1 + read.len() + 4);
    drop(reader);
    assert_eq!(
        format_on_disk(dir.path()),
        changelog::OLDEST_FORMAT,
        "a reader changed the format"
    );
    drop(open(dir.path(), Durability::Buffered));
    assert_eq!(format_on_disk(dir.path()), changelog::FORMAT_VERSION);
}

/// Two keyed tables read in one transaction, as the initial copy reads
/// them on several connections: both shapes and read starts first, then
/// blocks of either table in any order, then each table ended.
fn store_with_two_reads(dir: &Path, a: &[RowImage], b: &[RowImage], block_rows: usize, order: &[bool], bulk: bool) {
    let (ta, tb) = (TableId(0), TableId(1));
    let mut store = open(dir, Durability::Buffered);
    let commit = commit_info(200, 2, 2);
    let mut sp = store.begin_spill(commit.commit_lsn).unwrap();
    let starts = [
        define(ta, 0),
        ChangeRecord::ReadStart { table: ta },
        define(tb, 2),
        ChangeRecord::ReadStart { table: tb },
    ];
    store.spill(&mut sp, &starts).unwrap();
    let reads = |t: TableId, rows: &[RowImage]| -> Vec<ChangeRecord> {
        rows.iter()
            .map(|r| ChangeRecord::Read {
                table: t,
                row: r.clone(),
            })
            .collect()
    };
    if !bulk {
        store.spill(&mut sp, &reads(ta, a)).unwrap();
        store.spill(&mut sp, &reads(tb, b)).unwrap();
        store.finish_spill(sp, &commit, &[]).unwrap();
        return;
    }
    let loaders = [store.bulk_rows(&sp, ta).unwrap(), store.bulk_rows(&sp, tb).unwrap()];
    let mut parts = [a.chunks(block_rows).rev(), b.chunks(block_rows).rev()];
    let mut ended = [false; 2];
    let mut left = [a.len().div_ceil(block_rows), b.len().div_ceil(block_rows)];
    let mut k = 0;
    while left != [0, 0] {
        let mut i = usize::from(order[k % order.len()]);
        k += 1;
        if left[i] == 0 {
            // The first table to run out is ended while the other loads.
            if !ended[i] {
                store.finish_bulk(&mut sp, TableId(i as u32)).unwrap();
                ended[i] = true;
            }
            i = 1 - i;
        }
        let part = parts[i].next().unwrap();
        left[i] -= 1;
        let mut block = RowBlock::new(loaders[i].width());
        fill(&mut block, part);
        store.ingest_rows(&mut sp, loaders[i].build(&block).unwrap()).unwrap();
    }
    // The table not ended is ended by the commit.
    store.finish_spill(sp, &commit, &[]).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn interleaved_loads_of_two_tables_store_what_spilling_stores(
        a in rows(0),
        b in rows(2),
        block_rows in 1usize..60,
        order in proptest::collection::vec(any::<bool>(), 1..6),
    ) {
        let (x, y) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        store_with_two_reads(x.path(), &a, &b, block_rows, &order, false);
        store_with_two_reads(y.path(), &a, &b, block_rows, &order, true);
        let (spilled, loaded) = (engine(x.path()), engine(y.path()));
        for name in cf::ALL.iter().filter(|n| **n != cf::LOG) {
            prop_assert!(spilled[name] == loaded[name], "family {name} differs");
        }
        // Each table's rows read back from the log, in key order, after
        // its read start; the ordinals number every record once.
        let (spilled, loaded) = (
            log_of(&open(x.path(), Durability::Buffered)),
            log_of(&open(y.path(), Durability::Buffered)),
        );
        prop_assert_eq!(spilled.len(), loaded.len());
        let ordinals: Vec<u32> = loaded.iter().map(|e| e.ordinal).collect();
        prop_assert_eq!(ordinals, (0..loaded.len() as u32).collect::<Vec<_>>());
        for (t, kind) in [(TableId(0), 0), (TableId(1), 2)] {
            let schema = initial_schema(kind);
            let rows_of = |log: &[changelog::LogEntry]| -> Vec<RowImage> {
                log.iter()
                    .filter_map(|e| match &e.record {
                        ChangeRecord::Read { table, row } if *table == t => Some(row.clone()),
                        _ => None,
                    })
                    .collect()
            };
            let mut want = rows_of(&spilled);
            want.sort_by_key(|r| changelog::keys::row_key(t, &schema, &r.0));
            prop_assert_eq!(rows_of(&loaded), want);
            let start = loaded.iter().position(|e| e.record == ChangeRecord::ReadStart { table: t });
            let first_read = loaded.iter().position(|e| matches!(&e.record, ChangeRecord::Read { table, .. } if *table == t));
            prop_assert!(first_read.is_none() || start < first_read);
        }
    }
}
