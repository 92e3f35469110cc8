//! Opening and observing a store, and comparing it with the reference fold.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::Path;

use changelog::keys::{self, UserKey};
use changelog::reference::Reference;
use changelog::{
    ChangeRecord, Datum, Durability, Lsn, ResetKind, SchemaChange, Store, StoreError, StoredVersion, TableId,
    VersionState,
};

pub fn open(dir: &Path, durability: Durability) -> Store {
    Store::open(
        dir,
        &changelog::StoreOptions {
            create_if_missing: true,
            durability,
            cache_bytes: 8 << 20,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("opening {}: {e:?}", dir.display()))
}

/// The engine opened read-only beside a writer that may still be open and
/// compacting: a file it deletes while this opens is looked for again, as
/// a reader of the store does.
pub fn engine_read_only(path: &Path) -> rocksdb::DB {
    let open = || rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), path, keys::cf::ALL, false);
    (0..50)
        .find_map(|_| {
            open()
                .inspect_err(|_| std::thread::sleep(std::time::Duration::from_millis(20)))
                .ok()
        })
        .unwrap_or_else(|| open().unwrap())
}

/// Appends `txns` one by one, each appended anew.
pub fn append_all(store: &mut Store, txns: &[changelog::Transaction]) {
    for t in txns {
        assert_eq!(
            store.append(std::slice::from_ref(t)).unwrap(),
            vec![changelog::AppendOutcome::Appended]
        );
    }
}

/// Rows of a table in key order: (encoded key, values).
pub type Rows = Vec<(Vec<u8>, Vec<Datum>)>;

/// One version of a key: its LSN and, for a row, its values and copies.
pub type KeyVersion = (Lsn, Option<(Vec<Datum>, u64)>);

/// A table's live rows at `cut`, projected to its shape at the cut, by key,
/// each copy of a row listed; `None` when the table did not exist at the cut.
pub fn snapshot(store: &Store, t: TableId, cut: Lsn) -> Option<Rows> {
    snapshot_in_parts(store, t, cut, &[keys::KeyRange::ALL]).map(|(rows, _)| rows)
}

/// [`snapshot`] read as a split read does: one plan, then each of `ranges`
/// in turn under it; with the base image the plan read through, if any.
pub fn snapshot_in_parts(store: &Store, t: TableId, cut: Lsn, ranges: &[keys::KeyRange]) -> Option<(Rows, ImageUse)> {
    let entry = store.catalog().table(t)?;
    let target = entry.history.at(cut)?;
    target.schema()?;
    let mut projections = HashMap::new();
    let mut out = Vec::new();
    let plan = store.plan_table_read(t, cut, entry.last_reset_at(cut)).unwrap();
    let mut run = false;
    for range in ranges {
        let stats = store
            .scan_planned::<StoreError>(&plan, range, |row| {
                assert!(range.contains(row.key), "{:?} outside {range:?}", row.key);
                let p = projections
                    .entry(row.schema)
                    .or_insert_with(|| entry.history.projection(row.schema, target.version));
                let mut values = Vec::new();
                p.apply(row.values, &mut values);
                let values: Vec<Datum> = values.into_iter().map(|d| d.to_datum()).collect();
                for _ in 0..row.copies {
                    out.push((row.key.to_vec(), values.clone()));
                }
                Ok(ControlFlow::Continue(()))
            })
            .unwrap();
        run |= stats.run;
    }
    Some((
        out,
        ImageUse {
            image: plan.image(),
            run,
        },
    ))
}

/// Which image a read went through, and whether with its run of versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageUse {
    pub image: Option<Lsn>,
    pub run: bool,
}

/// Everything a store exposes, for comparing two stores that should be equal.
#[derive(Debug, PartialEq)]
pub struct Dump {
    pub watermark: Option<changelog::Watermark>,
    pub commits: Vec<changelog::CommitEntry>,
    pub log: Vec<changelog::LogEntry>,
    pub schemas: Vec<changelog::SchemaVersion>,
    pub resets: Vec<(TableId, Vec<(Lsn, ResetKind)>)>,
    pub version_counts: Vec<(TableId, u64)>,
    pub versions: Vec<(Vec<u8>, Vec<StoredVersion>)>,
    pub snapshots: Vec<(Lsn, TableId, Option<Rows>)>,
}

pub fn log_of(store: &Store) -> Vec<changelog::LogEntry> {
    let mut log = Vec::new();
    store
        .for_each_log_entry::<StoreError>(Lsn::ZERO, Lsn::MAX, |e| {
            log.push(e);
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
    log
}

/// Dumps `store`; `keys` are the keys whose versions to list.
pub fn dump(store: &Store, keys: &BTreeSet<Vec<u8>>) -> Dump {
    let commits = store.commits(Lsn::ZERO, Lsn::MAX).unwrap();
    let tables: Vec<TableId> = store.catalog().tables().map(|(t, _)| t).collect();
    let mut snapshots = Vec::new();
    for c in &commits {
        for t in &tables {
            snapshots.push((c.commit_lsn, *t, snapshot(store, *t, c.commit_lsn)));
        }
    }
    Dump {
        watermark: store.watermark(),
        log: log_of(store),
        schemas: store
            .catalog()
            .tables()
            .flat_map(|(_, e)| e.history.versions().to_vec())
            .collect(),
        resets: store.catalog().tables().map(|(t, e)| (t, e.resets.clone())).collect(),
        version_counts: tables.iter().map(|t| (*t, store.count_versions(*t).unwrap())).collect(),
        versions: keys
            .iter()
            .map(|k| (k.clone(), store.versions_of(&UserKey(k.clone())).unwrap()))
            .collect(),
        snapshots,
        commits,
    }
}

/// Every key the first `k` transactions of `model` wrote.
pub fn model_keys(model: &Reference, k: usize) -> BTreeSet<Vec<u8>> {
    model.steps[..k]
        .iter()
        .flat_map(|s| s.written.values().flatten().cloned())
        .collect()
}

/// Shortens a message: runs of one repeated character (the large values)
/// become `c…×n`, and the whole is cut at 1500 characters.
pub fn brief(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && chars[j] == chars[i] {
            j += 1;
        }
        if j - i > 8 {
            out.push_str(&format!("{}…×{}", chars[i], j - i));
        } else {
            out.extend(&chars[i..j]);
        }
        i = j;
    }
    if out.chars().count() > 1500 {
        out = out.chars().take(1500).collect::<String>() + " …";
    }
    out
}

/// Compares the store with the fold of exactly its first `k` transactions;
/// returns every difference found (empty when they agree).
pub fn differences(store: &Store, model: &Reference, k: usize) -> Vec<String> {
    compare(store, model, k, true)
}

/// [`differences`] as written, then again after the engine flushed and
/// compacted its files (where seeks and steps cross block boundaries).
pub fn differences_as_written_and_compacted(store: &Store, model: &Reference, k: usize) -> Vec<String> {
    let mut found = differences(store, model, k);
    if found.is_empty() {
        store.flush().unwrap();
        store.compact_files().unwrap();
        found = differences(store, model, k)
            .into_iter()
            .map(|d| format!("after compaction: {d}"))
            .collect();
    }
    found
}

/// [`differences`] in what readers can see: everything but the raw count
/// of version entries, which includes a spilled transaction in flight.
pub fn visible_differences(store: &Store, model: &Reference, k: usize) -> Vec<String> {
    compare(store, model, k, false)
}

fn compare(store: &Store, model: &Reference, k: usize, count_entries: bool) -> Vec<String> {
    let mut errs = Vec::new();
    let steps = &model.steps[..k];
    let mut diff = |what: String| {
        if errs.len() < 20 {
            errs.push(brief(&what));
        }
    };

    // The watermark names the last transaction, and the commit index holds
    // exactly the transactions up to it.
    let expected_mark = steps
        .last()
        .map(|s| (s.commit.commit_lsn, s.commit.end_lsn, s.mono_time, s.commit.xid));
    let got_mark = store
        .watermark()
        .map(|w| (w.commit_lsn, w.end_lsn, w.commit_time, w.xid));
    if got_mark != expected_mark {
        diff(format!("watermark {got_mark:?}, expected {expected_mark:?}"));
    }
    let commits: Vec<_> = store
        .commits(Lsn::ZERO, Lsn::MAX)
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                c.commit_lsn,
                c.end_lsn,
                c.commit_time,
                c.reported_time,
                c.xid,
                c.records,
            )
        })
        .collect();
    let expected: Vec<_> = steps
        .iter()
        .map(|s| {
            (
                s.commit.commit_lsn,
                s.commit.end_lsn,
                s.mono_time,
                s.commit.commit_time,
                s.commit.xid,
                s.records,
            )
        })
        .collect();
    if commits != expected {
        diff(format!(
            "commits differ: {} stored, {} expected",
            commits.len(),
            expected.len()
        ));
    }

    // The log: every record once, in order, unchanged TOAST resolved.
    let log: Vec<(Lsn, u32, ChangeRecord)> = log_of(store)
        .into_iter()
        .map(|e| (e.commit_lsn, e.ordinal, e.record))
        .collect();
    let expected: Vec<(Lsn, u32, ChangeRecord)> = steps
        .iter()
        .flat_map(|s| {
            s.log
                .iter()
                .enumerate()
                .map(|(i, r)| (s.commit.commit_lsn, i as u32, r.clone()))
        })
        .collect();
    if log != expected {
        let first = log
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(log.len().min(expected.len()));
        diff(format!(
            "log differs at entry {first} ({} stored, {} expected): stored {:?}, expected {:?}",
            log.len(),
            expected.len(),
            log.get(first),
            expected.get(first)
        ));
    }

    // The catalog: schema history and resets, nothing beyond the watermark.
    let mut ids = model.table_ids(k);
    ids.extend(store.catalog().tables().map(|(t, _)| t));
    for t in &ids {
        let got: Vec<(u32, Lsn, SchemaChange)> = store
            .catalog()
            .table(*t)
            .map(|e| {
                e.history
                    .versions()
                    .iter()
                    .map(|v| (v.version.0, v.valid_from, v.change.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let expected: Vec<(u32, Lsn, SchemaChange)> = steps
            .iter()
            .flat_map(|s| {
                s.schema_changes
                    .iter()
                    .filter(|(tt, _)| tt == t)
                    .map(|(_, c)| (s.commit.commit_lsn, c.clone()))
            })
            .enumerate()
            .map(|(i, (l, c))| (i as u32, l, c))
            .collect();
        if got != expected {
            let got_lsns: Vec<_> = got.iter().map(|(n, l, _)| (n, l)).collect();
            let exp_lsns: Vec<_> = expected.iter().map(|(n, l, _)| (n, l)).collect();
            diff(format!(
                "schema history of {t}: stored {got_lsns:?}, expected {exp_lsns:?}"
            ));
        }
        let got = store.catalog().table(*t).map(|e| e.resets.clone()).unwrap_or_default();
        let expected: Vec<(Lsn, ResetKind)> = steps
            .iter()
            .filter_map(|s| s.resets.get(t).map(|k| (s.commit.commit_lsn, *k)))
            .collect();
        if got != expected {
            diff(format!("resets of {t}: stored {got:?}, expected {expected:?}"));
        }
        // Version entries: one per key a transaction left written.
        let got = store.count_versions(*t).unwrap();
        let expected: u64 = steps
            .iter()
            .map(|s| s.written.get(t).map_or(0, |w| w.len() as u64))
            .sum();
        if count_entries && got != expected {
            diff(format!("{t} has {got} version entries, expected {expected}"));
        }
    }

    // Every version of every key: a row exactly when the key is live after
    // the transaction, with the values the fold has then.
    for key in model_keys(model, k) {
        let t = UserKey(key.clone()).table().unwrap();
        let got = store.versions_of(&UserKey(key.clone())).unwrap();
        let expected: Vec<KeyVersion> = steps
            .iter()
            .rev()
            .filter(|s| s.written.get(&t).is_some_and(|w| w.contains(&key)))
            .map(|s| {
                let ts = s.state.tables.get(&t);
                let row = ts.and_then(|ts| ts.rows.get(&key)).cloned();
                (
                    s.commit.commit_lsn,
                    row.map(|r| (r, ts.map_or(0, |ts| ts.copies_of(&key)))),
                )
            })
            .collect();
        let got: Vec<KeyVersion> = got
            .into_iter()
            .map(|v| {
                let row = match v.state {
                    VersionState::Deleted => None,
                    VersionState::Row { schema, copies, values } => {
                        // Project to the table's shape at the end of the
                        // writing transaction, as the fold keeps it.
                        let entry = store.catalog().table(t).unwrap();
                        let target = entry.history.at(v.lsn).unwrap().version;
                        let refs: Vec<_> = values.iter().map(Datum::as_ref).collect();
                        let p = entry.history.projection(schema, target);
                        let mut out = Vec::new();
                        p.apply(&refs, &mut out);
                        Some((out.into_iter().map(|d| d.to_datum()).collect(), copies))
                    }
                };
                (v.lsn, row)
            })
            .collect();
        if got != expected {
            diff(format!(
                "versions of key {key:?} in {t}: stored {got:?}, expected {expected:?}"
            ));
        }
    }

    // Snapshots at every cut.
    for s in steps {
        let cut = s.commit.commit_lsn;
        let got: BTreeSet<TableId> = store.catalog().tables_at(cut).into_iter().map(|(t, _)| t).collect();
        let expected: BTreeSet<TableId> = s
            .state
            .tables
            .iter()
            .filter(|(_, ts)| ts.schema.is_some())
            .map(|(t, _)| *t)
            .collect();
        if got != expected {
            diff(format!("tables at {cut}: stored {got:?}, expected {expected:?}"));
        }
        for t in &ids {
            let got = snapshot(store, *t, cut);
            let expected = s.state.tables.get(t).filter(|ts| ts.schema.is_some()).map(|ts| {
                ts.rows
                    .iter()
                    .flat_map(|(k, v)| std::iter::repeat_n((k.clone(), v.clone()), ts.copies_of(k) as usize))
                    .collect::<Vec<_>>()
            });
            if got != expected {
                diff(format!(
                    "snapshot of {t} at {cut}: stored {got:?}, expected {expected:?}"
                ));
            }
        }
    }
    errs
}

/// Panics with every difference between the store and the fold of its
/// first `k` transactions.
pub fn assert_matches(store: &Store, model: &Reference, k: usize, context: &str) {
    let errs = differences(store, model, k);
    assert!(
        errs.is_empty(),
        "{context}: the store differs from the fold of its first {k} transactions:\n  {}",
        errs.join("\n  ")
    );
}

/// Entries on disk that belong to no committed transaction: anything in
/// the log, version, commit, time or reset families beyond the watermark,
/// schema versions or resets beyond it in the catalog, and an in-flight
/// marker. Reads the engine directly (read-only), so nothing the store's
/// own reads filter out can hide.
pub fn leftovers(dir: &Path, store_catalog: &changelog::Catalog, watermark: Option<Lsn>) -> Vec<String> {
    use changelog::keys::cf;
    let top = watermark.unwrap_or(Lsn::ZERO);
    let mut out = Vec::new();
    for (t, e) in store_catalog.tables() {
        for v in e.history.versions() {
            if v.valid_from > top {
                out.push(format!(
                    "schema version {} of {t} at {} (watermark {top})",
                    v.version.0, v.valid_from
                ));
            }
        }
        for (l, k) in &e.resets {
            if *l > top {
                out.push(format!("{k:?} reset of {t} at {l} (watermark {top})"));
            }
        }
    }
    let db = engine_read_only(dir);
    let mut count_beyond = |name: &'static str, lsn_of: &dyn Fn(&[u8]) -> Lsn| {
        let mut n = 0;
        for item in db.iterator_cf(db.cf_handle(name).unwrap(), rocksdb::IteratorMode::Start) {
            let (k, _) = item.unwrap();
            if lsn_of(&k) > top {
                n += 1;
            }
        }
        if n > 0 {
            out.push(format!("{n} entries in `{name}` beyond the watermark {top}"));
        }
    };
    count_beyond(cf::LOG, &|k| keys::decode_log_key(k).unwrap().0);
    count_beyond(cf::VERSIONS, &|k| keys::split_version_key(k).unwrap().1);
    count_beyond(cf::COMMITS, &|k| keys::decode_lsn(k).unwrap());
    count_beyond(cf::TIMES, &|k| keys::decode_time_key(k).unwrap().1);
    count_beyond(cf::RESETS, &|k| keys::decode_reset_key(k).unwrap().1);
    if db
        .get_cf(db.cf_handle(cf::META).unwrap(), keys::meta::INFLIGHT)
        .unwrap()
        .is_some()
    {
        out.push("an in-flight spill marker is still in `meta`".into());
    }
    out
}
