//! Spilled transactions: a transaction written in chunks must be stored
//! exactly as the same transaction appended whole (same snapshots at every
//! cut, same versions of every key, same log, schema history and resets),
//! and an aborted one must leave no trace.

mod support;

use changelog::{AppendOutcome, Datum, Durability, Lsn, Store, StoredVersion, Transaction, VersionState};
use proptest::prelude::*;
use support::{
    assert_matches, dump, leftovers, model_keys, open, random_cuts, spill_scenario, spill_txn, Gen, Reference, Rng,
    ORDERS, TAGS,
};
use tempfile::TempDir;

fn store_in(dir: &TempDir) -> Store {
    open(dir.path(), Durability::Buffered)
}

/// A store holding `txns`, every one appended whole.
fn appended_whole(txns: &[Transaction]) -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_in(&dir);
    for t in txns {
        assert_eq!(
            store.append(std::slice::from_ref(t)).unwrap(),
            vec![AppendOutcome::Appended]
        );
    }
    (dir, store)
}

/// A store holding the scenario's transactions, the middle one spilled.
fn scenario_spilled(ddl: bool) -> (TempDir, Store) {
    let s = spill_scenario(ddl);
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_in(&dir);
    store.append(&s.base).unwrap();
    assert_eq!(
        spill_txn(&mut store, &s.spilled, &s.cuts).unwrap(),
        AppendOutcome::Appended
    );
    store.append(std::slice::from_ref(&s.after)).unwrap();
    (dir, store)
}

fn key(t: changelog::TableId, kind: usize, values: &[&str]) -> changelog::keys::UserKey {
    let schema = support::initial_schema(kind);
    let mut row: Vec<Datum> = values.iter().map(|v| Datum::text(*v)).collect();
    row.resize(schema.columns.len(), Datum::Null);
    changelog::keys::row_key(t, &schema, &row)
}

fn row_values(v: &StoredVersion) -> &[Datum] {
    match &v.state {
        VersionState::Row { values, .. } => values,
        VersionState::Deleted => panic!("expected a row at {}, found a deletion", v.lsn),
    }
}

fn assert_datum(got: &Datum, expected: &Datum, what: &str) {
    assert!(
        got == expected,
        "{what}: stored {}, expected {}",
        support::brief(&format!("{got:?}")),
        support::brief(&format!("{expected:?}"))
    );
}

fn check_equal_to_whole(ddl: bool) {
    let s = spill_scenario(ddl);
    let txns = s.txns(true);
    let model = Reference::of(&txns);
    let keys = model_keys(&model, txns.len());
    let (wdir, whole) = appended_whole(&txns);
    let (sdir, spilled) = scenario_spilled(ddl);
    assert_matches(&whole, &model, txns.len(), "appended whole");
    assert_matches(&spilled, &model, txns.len(), "spilled");
    assert_eq!(dump(&spilled, &keys), dump(&whole, &keys));
    drop((whole, spilled));
    let (whole, spilled) = (store_in(&wdir), store_in(&sdir));
    assert_eq!(dump(&spilled, &keys), dump(&whole, &keys), "after reopening");
    assert_matches(&spilled, &model, txns.len(), "spilled, after reopening");
}

/// Row changes only: inserts, deletes, updates with unchanged TOAST and a
/// key change, spread over three chunks and the commit.
#[test]
fn spilled_transaction_of_rows_equals_whole_append() {
    check_equal_to_whole(false);
}

/// The same with a column added in the second chunk (rows of the old shape
/// in the first) and a truncate in the third.
#[test]
fn spilled_transaction_with_schema_change_and_truncate_equals_whole_append() {
    check_equal_to_whole(true);
}

/// Unchanged TOAST in a later chunk resolves against the row an earlier
/// chunk of the same transaction wrote, across a schema change and a key
/// change, in the version index and in the log.
#[test]
fn unchanged_toast_resolves_against_an_earlier_chunk() {
    for ddl in [false, true] {
        let (_dir, store) = scenario_spilled(ddl);
        let at = Lsn(0x2000);
        // Order 6: inserted in chunk 1 with note big(6), updated with the
        // note unchanged in chunk 2 and in the final records.
        let v6 = store.versions_of(&key(ORDERS, 0, &["6"])).unwrap();
        assert_eq!(v6.len(), 1, "one version per transaction: {v6:?}");
        assert_eq!(v6[0].lsn, at);
        assert_eq!(row_values(&v6[0])[1], Datum::text("done"));
        assert_datum(
            &row_values(&v6[0])[2],
            &support::big(6),
            &format!("note of order 6, ddl {ddl}"),
        );
        // Order 4 became 40 in chunk 2 (note from the stored version at
        // 1000), then 40 was updated again in chunk 3.
        let v40 = store.versions_of(&key(ORDERS, 0, &["40"])).unwrap();
        assert_eq!(v40.len(), 1);
        assert_eq!(row_values(&v40[0])[1], Datum::text("moved again"));
        assert_datum(
            &row_values(&v40[0])[2],
            &support::big(4),
            &format!("note of order 40, ddl {ddl}"),
        );
        let v4 = store.versions_of(&key(ORDERS, 0, &["4"])).unwrap();
        assert_eq!(
            v4.iter().map(|v| (v.lsn, &v.state)).collect::<Vec<_>>()[0],
            (at, &VersionState::Deleted)
        );
        // The log holds the resolved values too.
        let mut notes = Vec::new();
        store
            .for_each_log_entry::<changelog::StoreError>(at, at, |e| {
                if let changelog::ChangeRecord::Update { new, .. } = e.record {
                    notes.push(new.0[2].clone());
                }
                Ok(std::ops::ControlFlow::Continue(()))
            })
            .unwrap();
        let expected = vec![
            support::big(1),
            support::big(6),
            support::big(4),
            support::big(4),
            support::big(6),
        ];
        assert!(
            notes == expected,
            "notes in the log: {}",
            support::brief(&format!("{notes:?}"))
        );
    }
}

/// Unchanged TOAST in a later chunk resolves against an earlier chunk's row
/// also when the spilled transaction itself created the table (as a large
/// transaction that runs CREATE TABLE and then fills and updates it does):
/// the table is not in the committed catalog while the chunks are written.
#[test]
fn unchanged_toast_resolves_in_a_table_the_spilled_transaction_created() {
    use changelog::{ChangeRecord, RowImage, SchemaChange};
    let s = spill_scenario(false);
    let fresh = changelog::TableId(2);
    let created = Transaction {
        commit: support::commit_info(0x2000, 3_000, 3),
        records: vec![
            ChangeRecord::Schema {
                table: fresh,
                change: SchemaChange::Define {
                    schema: support::initial_schema(0),
                    backfill: vec![],
                    coverage: Default::default(),
                },
            },
            ChangeRecord::Insert {
                table: fresh,
                new: RowImage(vec![Datum::text("1"), Datum::text("new"), support::big(9)]),
            },
            ChangeRecord::Update {
                table: fresh,
                old: None,
                new: RowImage(vec![Datum::text("1"), Datum::text("paid"), Datum::UnchangedToast]),
            },
        ],
    };
    let mut txns = s.base.clone();
    txns.push(created.clone());
    let model = Reference::of(&txns);
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_in(&dir);
    store.append(&s.base).unwrap();
    // The table and its row in the first chunk, the update in the second.
    assert_eq!(spill_txn(&mut store, &created, &[2]).unwrap(), AppendOutcome::Appended);
    let v = store.versions_of(&key(fresh, 0, &["1"])).unwrap();
    assert_datum(
        &row_values(&v[0])[2],
        &support::big(9),
        "the unchanged note was not carried forward",
    );
    assert_matches(&store, &model, txns.len(), "spilled");
}

/// A truncate in a later chunk removes what earlier chunks of the same
/// transaction wrote to that table, not only older rows.
#[test]
fn truncate_in_a_later_chunk_undoes_earlier_chunks() {
    let (_dir, store) = scenario_spilled(true);
    let tags: Vec<Vec<Datum>> = support::snapshot(&store, TAGS, Lsn(0x2000))
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(tags, vec![vec![Datum::text("d"), Datum::text("4")]]);
    assert_eq!(
        store.versions_of(&key(TAGS, 2, &["c"])).unwrap(),
        vec![],
        "chunk 1's row survived the truncate"
    );
    // a and b at 1000, d at 2000, e and f at 3000.
    assert_eq!(store.count_versions(TAGS).unwrap(), 5);
}

fn abort_and_continue(ddl: bool) {
    let s = spill_scenario(ddl);
    let txns = s.txns(false);
    let model = Reference::of(&txns);
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_in(&dir);
    store.append(&s.base).unwrap();
    let sp = s.spill_without_finish(&mut store);
    store.abort_spill(sp).unwrap();
    store.append(std::slice::from_ref(&s.after)).unwrap();
    assert_matches(&store, &model, txns.len(), "after the abort");
    drop(store);
    let store = store_in(&dir);
    let problems = leftovers(dir.path(), store.catalog(), store.watermark().map(|w| w.commit_lsn));
    assert!(
        problems.is_empty(),
        "after the abort and reopening:\n  {}",
        problems.join("\n  ")
    );
    assert_matches(&store, &model, txns.len(), "after the abort and reopening");
}

/// `abort_spill` of row changes leaves nothing, before and after reopening.
#[test]
fn abort_spill_of_rows_leaves_no_trace() {
    abort_and_continue(false);
}

/// `abort_spill` after chunks that added a column and truncated a table
/// leaves no schema version and no reset behind, before and after
/// reopening, and later transactions read as if it never happened.
#[test]
fn abort_spill_with_schema_change_and_truncate_leaves_no_trace() {
    abort_and_continue(true);
}

/// After an abort, the transaction delivered again from the start stores
/// exactly as if appended whole.
#[test]
fn aborted_spill_delivered_again_equals_whole_append() {
    for ddl in [false, true] {
        let s = spill_scenario(ddl);
        let txns = s.txns(true);
        let model = Reference::of(&txns);
        let keys = model_keys(&model, txns.len());
        let (_wdir, whole) = appended_whole(&txns);
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        store.append(&s.base).unwrap();
        let sp = s.spill_without_finish(&mut store);
        store.abort_spill(sp).unwrap();
        assert_eq!(
            spill_txn(&mut store, &s.spilled, &s.cuts).unwrap(),
            AppendOutcome::Appended
        );
        store.append(std::slice::from_ref(&s.after)).unwrap();
        assert_eq!(dump(&store, &keys), dump(&whole, &keys), "ddl {ddl}");
        drop(store);
        let store = store_in(&dir);
        assert_eq!(dump(&store, &keys), dump(&whole, &keys), "ddl {ddl}, after reopening");
    }
}

/// A spilled transaction at or below the watermark is already stored: its
/// chunks are ignored and it reports so.
#[test]
fn spill_at_or_below_the_watermark_is_already_stored() {
    let s = spill_scenario(true);
    let txns = s.txns(true);
    let model = Reference::of(&txns);
    let (_dir, mut store) = appended_whole(&txns);
    assert_eq!(
        spill_txn(&mut store, &s.spilled, &s.cuts).unwrap(),
        AppendOutcome::AlreadyStored
    );
    assert_matches(&store, &model, txns.len(), "after re-delivering a stored spill");
}

/// The watermark never moves back: a spilled transaction whose commit LSN
/// the watermark passed while it was open (another append came in between)
/// must not set the watermark back to its own LSN, which would make the
/// transaction that came in between look not yet stored and store it twice.
#[test]
fn finish_spill_never_moves_the_watermark_back() {
    let s = spill_scenario(false);
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_in(&dir);
    store.append(&s.base).unwrap();
    let sp = s.spill_without_finish(&mut store);
    store.append(std::slice::from_ref(&s.after)).unwrap();
    let last = s.spilled.records.len();
    let from = *s.cuts.last().unwrap();
    let finished = store.finish_spill(sp, &s.spilled.commit, &s.spilled.records[from..last]);
    let mark = store.watermark().unwrap().commit_lsn;
    let again = store.append(std::slice::from_ref(&s.after));
    assert_eq!(
        mark, s.after.commit.commit_lsn,
        "finish_spill returned {finished:?} and moved the watermark back"
    );
    assert_eq!(
        again.unwrap(),
        vec![AppendOutcome::AlreadyStored],
        "the transaction at 3000 was stored twice"
    );
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Random histories (every kind of record), with random transactions
    /// spilled in random chunks, some of them aborted after a few chunks and
    /// delivered again: the store equals the one where every transaction was
    /// appended whole, and both equal the fold.
    #[test]
    fn random_chunking_equals_whole_append(seed in any::<u64>(), n in 2usize..24, plan in any::<u64>()) {
        let mut g = Gen::new(seed);
        let mut txns = vec![g.txn(8, false)];
        for _ in 1..n {
            let len = g.rng.range(1, 16);
            txns.push(g.txn(len, true));
        }
        let model = Reference::of(&txns);
        let keys = model_keys(&model, txns.len());
        let (_wdir, whole) = appended_whole(&txns);
        let expected = dump(&whole, &keys);
        drop(whole);

        let mut rng = Rng::new(plan);
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        for t in &txns {
            if rng.chance(50) {
                let cuts = random_cuts(&mut rng, t.records.len(), 5);
                if rng.chance(25) {
                    let parts = support::chunks(&t.records, &cuts);
                    let mut sp = store.begin_spill(t.commit.commit_lsn).unwrap();
                    for c in &parts[..rng.below(parts.len())] {
                        store.spill(&mut sp, c).unwrap();
                    }
                    store.abort_spill(sp).unwrap();
                }
                prop_assert_eq!(spill_txn(&mut store, t, &cuts).unwrap(), AppendOutcome::Appended);
            } else {
                prop_assert_eq!(store.append(std::slice::from_ref(t)).unwrap(), vec![AppendOutcome::Appended]);
            }
        }
        let errs = support::differences(&store, &model, txns.len());
        prop_assert!(errs.is_empty(), "spilled store differs from the fold:\n  {}", errs.join("\n  "));
        prop_assert_eq!(&dump(&store, &keys), &expected);
        drop(store);
        let store = store_in(&dir);
        prop_assert_eq!(&dump(&store, &keys), &expected, "after reopening");
    }
}

/// `Transaction::logged_as_given` says exactly when the log holds the
/// records as they were appended: the rule a relay relies on to pass on
/// what it was handed instead of reading the log back.
#[test]
fn the_log_holds_records_as_given_exactly_when_they_say_so() {
    let (mut given, mut resolved) = (0, 0);
    for seed in 0..32 {
        let mut gen = Gen::new(seed);
        let txns: Vec<Transaction> = (0..12).map(|i| gen.txn(1 + i % 5, i % 4 == 0)).collect();
        let (_dir, store) = appended_whole(&txns);
        for t in &txns {
            let lsn = t.commit.commit_lsn;
            let mut logged = Vec::new();
            store
                .for_each_log_entry(lsn, lsn, |e| {
                    logged.push(e.record);
                    Ok::<_, changelog::StoreError>(std::ops::ControlFlow::Continue(()))
                })
                .unwrap();
            assert_eq!(logged == t.records, t.logged_as_given(), "seed {seed} at {lsn}");
            if t.logged_as_given() {
                given += 1;
            } else {
                resolved += 1;
            }
        }
    }
    assert!(given > 0 && resolved > 0, "{given} as given, {resolved} resolved");
}
