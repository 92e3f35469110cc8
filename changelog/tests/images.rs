//! Base images: a read at a past cut from a table's image plus the log
//! since must return what the reference fold holds, whichever images exist,
//! across shape changes, resets, key changes and retention.

mod support;

use std::ops::ControlFlow;

use changelog::keys::{split_range, KeyRange};
use changelog::{AppendOutcome, Durability, HistoryWalk, Lsn, StoreError, TableId, TableName, Transaction};
use proptest::prelude::*;
use support::{
    differences, differences_as_written_and_compacted, history, open, snapshot, snapshot_in_parts, Gen, Reference,
};

/// Appends `txns`, then writes images of every table at the commits
/// `pick` selects.
fn store_with_images(
    dir: &std::path::Path,
    txns: &[Transaction],
    mut pick: impl FnMut(usize) -> bool,
) -> (changelog::Store, usize) {
    let mut store = open(dir, Durability::Buffered);
    for t in txns {
        assert_eq!(
            store.append(std::slice::from_ref(t)).unwrap(),
            vec![AppendOutcome::Appended]
        );
    }
    let tables: Vec<TableId> = store.catalog().tables().map(|(t, _)| t).collect();
    let mut written = 0;
    for (i, t) in txns.iter().enumerate() {
        if pick(i) {
            for table in &tables {
                store.write_image(*table, t.commit.commit_lsn).unwrap();
                written += 1;
            }
        }
    }
    (store, written)
}

/// Every table at every cut of `cuts` against the fold: the differences.
fn disagreements(store: &changelog::Store, model: &Reference, cuts: &[Lsn]) -> Vec<String> {
    let mut out = Vec::new();
    for (table, _) in store.catalog().tables() {
        for cut in cuts {
            let got = snapshot(store, table, *cut).map(|rows| rows.into_iter().map(|(_, v)| v).collect::<Vec<_>>());
            let want = model.snapshot(table, *cut);
            if got != want {
                out.push(format!("table {table} at {cut}: store {got:?}, fold {want:?}"));
            }
        }
    }
    out
}

/// Scans of every table at every cut: how many read from an image, and
/// how many of those with its run of versions.
fn image_reads(store: &changelog::Store, cuts: &[Lsn]) -> (usize, usize) {
    let (mut from_image, mut runs) = (0, 0);
    for (table, entry) in store.catalog().tables() {
        for cut in cuts {
            let dead_before = entry.last_reset_at(*cut);
            let stats = store
                .scan_as_of::<StoreError>(table, *cut, dead_before, |_| Ok(ControlFlow::Continue(())))
                .unwrap();
            from_image += usize::from(stats.image.is_some());
            runs += usize::from(stats.run);
        }
    }
    (from_image, runs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random transactions over four tables, with truncates, re-reads,
    /// added and dropped columns, key changes and unchanged TOAST; images
    /// of every table at random commits.
    #[test]
    fn reads_through_images_match_the_fold(seed in any::<u64>(), len in 20usize..70, every in 2usize..9) {
        let mut g = Gen::new(seed);
        let txns: Vec<Transaction> = (0..len).map(|i| g.txn(1 + i % 11, i > 0 && i % 4 == 0)).collect();
        let model = Reference::of(&txns);
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_images(dir.path(), &txns, |i| i % every == every / 2);
        let found = differences_as_written_and_compacted(&store, &model, txns.len());
        prop_assert!(found.is_empty(), "{}", found.join("\n"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The same transactions and images, every read at a past cut forced
    /// through the newest usable image, once overlaid with its run of
    /// versions wherever one reaches the cut and once with the log since
    /// it (read in pieces on every core), and split into parts that share
    /// one plan: the parts joined are the fold's rows, a cut at an image
    /// reads it, and a cut between two images of a table whose keys allow
    /// it reads the run.
    #[test]
    fn split_reads_forced_through_images_match_the_fold(
        seed in any::<u64>(),
        len in 20usize..70,
        every in 2usize..9,
        parts in 1usize..5,
    ) {
        let mut g = Gen::new(seed);
        let txns: Vec<Transaction> = (0..len).map(|i| g.txn(1 + i % 11, i > 0 && i % 4 == 0)).collect();
        let model = Reference::of(&txns);
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = store_with_images(dir.path(), &txns, |i| i % every == every / 2);
        let cuts: Vec<Lsn> = txns.iter().map(|t| t.commit.commit_lsn).collect();
        let top = cuts.last().copied().unwrap_or(Lsn::ZERO);
        let tables: Vec<TableId> = store.catalog().tables().map(|(t, _)| t).collect();
        for walk in [HistoryWalk::Image, HistoryWalk::ImageLog] {
            store.set_history_walk(walk);
            for table in &tables {
                let table = *table;
                let latest = snapshot(&store, table, top).unwrap_or_default();
                let ranges = match (latest.first(), latest.last()) {
                    (Some((first, _)), Some((last, _))) => split_range(first, last, parts),
                    _ => vec![KeyRange::ALL],
                };
                let images = store.images(table).unwrap();
                for cut in &cuts {
                    let got = snapshot_in_parts(&store, table, *cut, &ranges);
                    if let Some((_, used)) = &got {
                        let counts_copies = store
                            .catalog()
                            .table(table)
                            .and_then(|e| e.history.at(*cut))
                            .and_then(|v| v.schema())
                            .is_some_and(|s| s.counts_copies());
                        if *cut < top && !counts_copies && images.iter().any(|i| i.at == *cut) {
                            prop_assert_eq!(used.image, Some(*cut), "table {} at its image", table);
                        }
                        let run = used.image.and_then(|at| store.image_run(table, at).unwrap());
                        let reaches = run.is_some_and(|r| *cut <= r.end);
                        prop_assert_eq!(
                            used.run,
                            walk == HistoryWalk::Image && reaches,
                            "table {} at {}: {:?} {:?}", table, cut, used, run
                        );
                    }
                    let got = got.map(|(rows, _)| rows.into_iter().map(|(_, v)| v).collect::<Vec<_>>());
                    prop_assert_eq!(got, model.snapshot(table, *cut), "table {} at {} in {:?} ({:?})", table, cut, ranges, walk);
                }
            }
        }
    }
}

/// Every key updated in each round (some deleted and back), an image at
/// the end of each round: cuts at and soon after an image, where every key
/// changes again later, read from the image; and retention drops the old
/// images.
#[test]
fn past_cuts_read_from_images_and_retention_drops_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Buffered);
    let table = store.table_id_for(&TableName::new("public", "orders"));
    let (keys, per_txn) = (400, 100);
    let deletes: Vec<bool> = (0..37).map(|i| i % 9 == 0).collect();
    let txns = history(table, &vec![12; keys], &deletes, per_txn);
    let model = Reference::of(&txns);
    for t in &txns {
        assert_eq!(
            store.append(std::slice::from_ref(t)).unwrap(),
            vec![AppendOutcome::Appended]
        );
    }
    // The schema record, then `keys` records a round.
    let round_ends: Vec<usize> = (1..12).map(|r| (1 + r * keys) / per_txn - 1).collect();
    let mut runs_written = Vec::new();
    for &i in &round_ends {
        runs_written.push(store.write_image(table, txns[i].commit.commit_lsn).unwrap().run);
    }
    let cuts: Vec<Lsn> = txns.iter().map(|t| t.commit.commit_lsn).collect();
    assert!(differences(&store, &model, txns.len()).is_empty());
    let (read, runs) = image_reads(&store, &cuts);
    assert!(
        read >= round_ends.len(),
        "only {read} of {} scans read from an image",
        cuts.len()
    );
    // Each image but the last is followed by the run of versions up to the
    // next one: a version of every key (some deletions among them), each
    // key's history deeper than a walk steps through before it seeks.
    for pair in round_ends.windows(2) {
        let (from, end) = (cuts[pair[0]], cuts[pair[1]]);
        let run = store.image_run(table, from).unwrap().expect("a run after each image");
        assert_eq!((run.from, run.end), (from, end));
        assert_eq!(run.versions, keys as u64, "{run:?}");
    }
    // Each image but the first reports the run it ended, as stored.
    assert_eq!(runs_written[0], None);
    for (w, pair) in runs_written[1..].iter().zip(round_ends.windows(2)) {
        assert_eq!(*w, store.image_run(table, cuts[pair[0]]).unwrap());
    }
    assert_eq!(store.image_run(table, cuts[*round_ends.last().unwrap()]).unwrap(), None);
    // Late in a round every key changed since the image: the run is read.
    assert!(runs > 0, "no scan read a run ({read} read an image)");

    // Retention at the sixth image: images before it go with the log.
    let horizon = cuts[round_ends[5]];
    store.compact(horizon).unwrap();
    let images = store.images(table).unwrap();
    assert!(
        !images.is_empty() && images.iter().all(|i| i.at >= horizon),
        "{images:?}"
    );
    let kept = cuts.iter().position(|c| *c == horizon).unwrap();
    let found = disagreements(&store, &model, &cuts[kept..]);
    assert!(found.is_empty(), "after retention: {}", found.join("\n"));
    assert!(image_reads(&store, &cuts[kept..]).1 > 0);
    for &i in &round_ends[..5] {
        assert_eq!(
            store.image_run(table, cuts[i]).unwrap(),
            None,
            "the run after {}",
            cuts[i]
        );
    }

    // Writing an image again is a no-op; one before the horizon is refused.
    // It reports the run into it while the image before it is kept.
    let again = store.write_image(table, images[0].at).unwrap();
    assert_eq!((again.image, again.run), (images[0], None));
    let again = store.write_image(table, images[1].at).unwrap();
    assert_eq!(again.image, images[1]);
    assert_eq!(again.run.map(|r| (r.from, r.end)), Some((images[0].at, images[1].at)));
    assert!(matches!(
        store.write_image(table, cuts[1]),
        Err(StoreError::NoCommitAt { .. })
    ));
}

/// A store made before the `images` family existed is read as it is, and
/// gets the family the first time it is opened for writing.
#[test]
fn a_store_without_images_is_read_and_gains_them_when_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gen::new(3);
    let txns: Vec<Transaction> = (0..20).map(|i| g.txn(1 + i % 5, false)).collect();
    let model = Reference::of(&txns);
    {
        let (store, _) = store_with_images(dir.path(), &txns, |_| false);
        drop(store);
    }
    // Remove the family, as a store of an earlier version lacks it.
    {
        let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).unwrap();
        let mut db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), &names).unwrap();
        db.drop_cf(changelog::keys::cf::IMAGES).unwrap();
    }
    let reader = changelog::Store::open_read_only(dir.path()).unwrap();
    assert!(differences(&reader, &model, txns.len()).is_empty());
    let (table, _) = reader.catalog().tables().next().unwrap();
    assert!(reader.images(table).unwrap().is_empty());
    drop(reader);
    let mut writer = open(dir.path(), Durability::Buffered);
    let at = txns[10].commit.commit_lsn;
    assert_eq!(writer.write_image(table, at).unwrap().image.at, at);
    assert!(differences(&writer, &model, txns.len()).is_empty());
}

/// A table changed between two cuts when one of its versions, a reset of
/// it or a new shape lies between them; other tables' changes do not count.
#[test]
fn a_table_changes_between_cuts_by_its_own_versions_and_resets() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Buffered);
    let busy = store.table_id_for(&TableName::new("public", "busy"));
    let idle = store.table_id_for(&TableName::new("public", "idle"));
    let mut txns = history(idle, &[1; 20], &[false], 30);
    txns.extend(history(busy, &[3; 20], &[false], 10));
    txns.push(Transaction {
        commit: txns[0].commit,
        records: vec![changelog::ChangeRecord::Truncate { tables: vec![idle] }],
    });
    for (i, t) in txns.iter_mut().enumerate() {
        t.commit = support::commit_info(
            0x0100_0000 + 0x100 * i as u64,
            1_700_000_000_000_000 + i as i64,
            700 + i as u32,
        );
        assert_eq!(
            store.append(std::slice::from_ref(t)).unwrap(),
            vec![AppendOutcome::Appended]
        );
    }
    let cut = |i: usize| txns[i].commit.commit_lsn;
    let (copied, last) = (cut(0), txns.len() - 1);
    assert!(store.changed_between(busy, copied, cut(1)).unwrap());
    assert!(store.changed_between(busy, cut(3), cut(last - 1)).unwrap());
    assert!(!store.changed_between(busy, cut(last - 1), cut(last)).unwrap());
    assert!(!store.changed_between(idle, copied, cut(last - 1)).unwrap());
    assert!(store.changed_between(idle, copied, cut(last)).unwrap(), "the truncate");
    assert!(store.changed_between(idle, Lsn::ZERO, copied).unwrap(), "its rows");
}
