//! Whole-table reads at past cuts over histories of mixed depth: a scan
//! reaches a key's visible version by stepping or by seeking, depending on
//! how far ahead it is, through `latest` or through `versions` alone, and
//! must return what the reference fold holds at every cut whichever way it
//! went.

mod support;

use std::ops::ControlFlow;

use changelog::{AppendOutcome, Durability, HistoryWalk, Lsn, StoreError, TableName, Transaction};
use proptest::prelude::*;
use support::{differences_as_written_and_compacted, history, open, snapshot, Gen, Reference};

/// Versions a key gets: mostly shallow, some deep (past the stepping
/// limit), in runs so a scan meets many deep keys in a row.
fn depths() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(
        prop_oneof![
            4 => 0u32..3,
            2 => 3u32..12,
            1 => 12u32..40,
        ],
        1..60,
    )
    .prop_flat_map(|runs| {
        let n = runs.len();
        (Just(runs), prop::collection::vec(1usize..30, n))
    })
    .prop_map(|(runs, lens)| {
        runs.into_iter()
            .zip(lens)
            .flat_map(|(d, len)| std::iter::repeat_n(d, len))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn scans_at_every_cut_match_the_fold(
        depths in depths(),
        deletes in prop::collection::vec(prop::bool::weighted(0.1), 1..20),
        per_txn in 1usize..200,
        parts in 1usize..6,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), Durability::Buffered);
        let table = store.table_id_for(&TableName::new("public", "orders"));
        let txns = history(table, &depths, &deletes, per_txn);
        let model = Reference::of(&txns);
        for t in &txns {
            prop_assert_eq!(store.append(std::slice::from_ref(t)).unwrap(), vec![AppendOutcome::Appended]);
        }
        // Each cut twice: as written (memtables) and after compaction into
        // files, where seeks and steps cross block boundaries.
        for pass in 0..2 {
            if pass == 1 {
                store.flush().unwrap();
                store.compact_files().unwrap();
            }
            // Splitting goes by RocksDB's estimate of the keys, which counts
            // every overwrite still in a memtable: only compacted files
            // estimate this small table as the few keys it has.
            if pass == 1 {
                prop_assert_eq!(store.split_table(table, parts).unwrap().len(), 1, "too few keys to split");
            }
            // Ranges as a split of a large table would cut them.
            let latest = snapshot(&store, table, model.last_lsn().unwrap_or(Lsn::ZERO)).unwrap_or_default();
            let ranges = match (latest.first(), latest.last()) {
                (Some((first, _)), Some((last, _))) => changelog::keys::split_range(first, last, parts),
                _ => vec![changelog::keys::KeyRange::ALL],
            };
            prop_assert!(!ranges.is_empty() && ranges.len() <= parts);
            for walk in [HistoryWalk::Latest, HistoryWalk::Versions, HistoryWalk::Estimate] {
                store.set_history_walk(walk);
                for cut in model.lsns().into_iter().chain([Lsn::ZERO]) {
                    let whole = snapshot(&store, table, cut);
                    let got = whole.clone().map(|rows| rows.into_iter().map(|(_, v)| v).collect::<Vec<_>>());
                    prop_assert_eq!(got, model.snapshot(table, cut), "at {} (pass {}, {:?})", cut, pass, walk);
                    // The parts of a split, read one after the other, are the whole.
                    let mut joined = Vec::new();
                    for r in &ranges {
                        let stats = store
                            .scan_range_as_of::<StoreError>(table, r, cut, None, |row| {
                                assert!(r.contains(row.key), "{:?} outside {:?}", row.key, r);
                                joined.push(row.key.to_vec());
                                Ok(ControlFlow::Continue(()))
                            })
                            .unwrap();
                        match walk {
                            HistoryWalk::Latest => prop_assert!(!stats.through_versions),
                            HistoryWalk::Versions => prop_assert_eq!(stats.through_versions, store.watermark().is_some()),
                            HistoryWalk::Estimate | HistoryWalk::Image | HistoryWalk::ImageLog => {}
                        }
                    }
                    let keys: Vec<Vec<u8>> = whole.unwrap_or_default().into_iter().map(|(k, _)| k).collect();
                    prop_assert_eq!(joined, keys, "parts at {} ({:?})", cut, walk);
                }
            }
            store.set_history_walk(HistoryWalk::Estimate);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random records with schema changes: among them columns added to a
    /// table keyed by all its columns, whose keys under the new shape
    /// extend keys under the old one.
    #[test]
    fn scans_across_shape_changes_match_the_fold(seed in any::<u64>(), len in 20usize..80) {
        let mut g = Gen::new(seed);
        let txns: Vec<Transaction> = (0..len).map(|i| g.txn(1 + i % 13, i > 0)).collect();
        let model = Reference::of(&txns);
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path(), Durability::Buffered);
        for t in &txns {
            prop_assert_eq!(store.append(std::slice::from_ref(t)).unwrap(), vec![AppendOutcome::Appended]);
        }
        for walk in [HistoryWalk::Latest, HistoryWalk::Versions, HistoryWalk::Estimate] {
            store.set_history_walk(walk);
            let found = differences_as_written_and_compacted(&store, &model, txns.len());
            prop_assert!(found.is_empty(), "{:?}: {}", walk, found.join("\n"));
        }
    }
}

/// Every other key changed after the cut: the keys a read samples to
/// choose its walk are spread evenly, and must not all land on keys that
/// did not change (sequential ids split evenly are all even).
#[test]
fn sampled_keys_see_every_other_key_changed_after_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Buffered);
    let table = store.table_id_for(&TableName::new("public", "orders"));
    let keys = 4096;
    let depths: Vec<u32> = (0..keys).map(|id| 1 + (id % 2)).collect();
    // The definition and every insert in the first transaction, the
    // updates of the odd ids in the second.
    let txns = history(table, &depths, &[false], 1 + keys as usize);
    assert_eq!(txns.len(), 2);
    for t in &txns {
        assert_eq!(
            store.append(std::slice::from_ref(t)).unwrap(),
            vec![AppendOutcome::Appended]
        );
    }
    store.flush().unwrap();
    store.compact_files().unwrap();
    let cut = txns[0].commit.commit_lsn;
    let mut rows = 0;
    let stats = store
        .scan_as_of::<StoreError>(table, cut, None, |_| {
            rows += 1;
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
    assert_eq!(rows, keys);
    // Half the keys changed once after the cut: one family read, not two.
    assert!(stats.through_versions, "{stats:?}");
}
