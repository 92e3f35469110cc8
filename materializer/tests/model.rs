//! Model-based property tests: the indexed store and the materializer must
//! answer exactly what the naive reference fold answers, for random
//! histories over several tables, at every cut, before and after
//! compaction, and across reopening the store.

use std::collections::BTreeSet;

use std::ops::ControlFlow;

use changelog::reference::{column, initial_schema, key_image, key_values, Reference, BAG};
use changelog::{
    keys, ChangeRecord, CommitInfo, CommitTime, Datum, Durability, Lsn, RowImage, SchemaChange, Store, StoreOptions,
    TableId, TableSchema, Transaction, Xid,
};
use materializer::reference;
use materializer::{HistoryOp, QueryError, When};
use proptest::prelude::*;

/// Abstract operations; turned into valid records against the model state.
#[derive(Clone, Debug)]
enum Op {
    Insert {
        table: usize,
        key: usize,
        vals: Vec<Val>,
    },
    Update {
        table: usize,
        pick: usize,
        vals: Vec<Val>,
        toast: bool,
        new_key: Option<usize>,
    },
    Delete {
        table: usize,
        pick: usize,
    },
    Truncate {
        tables: Vec<usize>,
    },
    AddColumn {
        table: usize,
        default: Option<Val>,
    },
    DropColumn {
        table: usize,
        pick: usize,
    },
    Reread {
        table: usize,
        change: usize,
    },
    DropTable {
        table: usize,
    },
    Commit {
        time_step: i64,
    },
}

#[derive(Clone, Debug)]
enum Val {
    Null,
    Empty,
    Text(String),
    Big(u8),
}

impl Val {
    fn datum(&self) -> Datum {
        match self {
            Val::Null => Datum::Null,
            Val::Empty => Datum::Text(Vec::new()),
            Val::Text(s) => Datum::text(s.clone()),
            Val::Big(n) => Datum::Text(vec![b'a' + n % 26; 3000]),
        }
    }
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        2 => Just(Val::Null),
        2 => Just(Val::Empty),
        5 => "[a-c\\\\,\"\\n ]{1,4}".prop_map(Val::Text),
        1 => any::<u8>().prop_map(Val::Big),
    ]
}

/// Table kinds: `orders`, `lines`, `tags` and `bag` (no primary key,
/// `REPLICA IDENTITY FULL`: identical rows are counted).
const TABLES: usize = 4;

fn op() -> impl Strategy<Value = Op> {
    let vals = || proptest::collection::vec(val(), 6);
    prop_oneof![
        10 => (0..TABLES, 0..40usize, vals()).prop_map(|(table, key, vals)| Op::Insert { table, key, vals }),
        8 => (0..TABLES, any::<usize>(), vals(), any::<bool>(), proptest::option::weighted(0.15, 0..40usize))
            .prop_map(|(table, pick, vals, toast, new_key)| Op::Update { table, pick, vals, toast, new_key }),
        4 => (0..TABLES, any::<usize>()).prop_map(|(table, pick)| Op::Delete { table, pick }),
        1 => proptest::collection::vec(0..TABLES, 1..3).prop_map(|tables| Op::Truncate { tables }),
        1 => (0..TABLES, proptest::option::of(val())).prop_map(|(table, default)| Op::AddColumn { table, default }),
        1 => (0..TABLES, any::<usize>()).prop_map(|(table, pick)| Op::DropColumn { table, pick }),
        1 => (0..TABLES, any::<usize>()).prop_map(|(table, change)| Op::Reread { table, change }),
        1 => (0..TABLES).prop_map(|table| Op::DropTable { table }),
        6 => (-3_000_000i64..10_000_000).prop_map(|time_step| Op::Commit { time_step }),
    ]
}

struct Gen {
    model: Reference,
    ids: [TableId; TABLES],
    next_id: u32,
    next_lsn: u64,
    time: i64,
    txns: Vec<Transaction>,
    pending: Vec<ChangeRecord>,
    /// Current schemas as the generator sees them (pending included).
    schemas: [Option<TableSchema>; TABLES],
    col_seq: usize,
}

impl Gen {
    fn new() -> Self {
        let mut g = Gen {
            model: Reference::new(),
            ids: [TableId(0), TableId(1), TableId(2), TableId(3)],
            next_id: 4,
            next_lsn: 0x1000,
            time: 1_700_000_000_000_000,
            txns: Vec::new(),
            pending: Vec::new(),
            schemas: [None, None, None, None],
            col_seq: 0,
        };
        for t in 0..TABLES {
            g.define(t, initial_schema(t), Vec::new());
        }
        g
    }

    fn define(&mut self, t: usize, schema: TableSchema, backfill: Vec<(String, Datum)>) {
        self.pending.push(ChangeRecord::Schema {
            table: self.ids[t],
            change: SchemaChange::Define {
                schema: schema.clone(),
                backfill,
                coverage: Default::default(),
            },
        });
        self.schemas[t] = Some(schema);
    }

    /// Rows of table `t` as they stand inside the open transaction.
    fn live_rows(&self, t: usize) -> Vec<Vec<Datum>> {
        let mut m = self.model.clone();
        m.apply(&self.open_txn());
        let lsn = m.last_lsn().unwrap_or(Lsn::ZERO);
        m.snapshot(self.ids[t], lsn).unwrap_or_default()
    }

    fn open_txn(&self) -> Transaction {
        Transaction {
            commit: CommitInfo {
                commit_lsn: Lsn(self.next_lsn),
                end_lsn: Lsn(self.next_lsn + 8),
                commit_time: CommitTime::from_unix_micros(self.time),
                xid: Xid(0),
            },
            records: self.pending.clone(),
        }
    }

    fn row(&self, t: usize, key: &[Datum], vals: &[Val]) -> Option<RowImage> {
        let schema = self.schemas[t].as_ref()?;
        let mut key = key.iter();
        let mut vals = vals.iter().cycle();
        Some(RowImage(
            schema
                .columns
                .iter()
                .map(|c| {
                    if c.is_key {
                        key.next().cloned().unwrap_or(Datum::Null)
                    } else {
                        vals.next().map_or(Datum::Null, Val::datum)
                    }
                })
                .collect(),
        ))
    }

    fn counts_copies(&self, t: usize) -> bool {
        self.schemas[t].as_ref().is_some_and(TableSchema::counts_copies)
    }

    /// Reads every row of table `t` afresh, as the DDL capture does after
    /// a change to a table keyed by all its columns.
    fn reread(&mut self, t: usize) {
        let rows = self.live_rows(t);
        self.pending.push(ChangeRecord::ReadStart { table: self.ids[t] });
        for r in rows {
            self.pending.push(ChangeRecord::Read {
                table: self.ids[t],
                row: RowImage(r),
            });
        }
    }

    fn key_of_row(&self, t: usize, row: &[Datum]) -> Vec<Datum> {
        let schema = self.schemas[t].as_ref().map(|s| s.columns.clone()).unwrap_or_default();
        schema
            .iter()
            .zip(row)
            .filter(|(c, _)| c.is_key)
            .map(|(_, d)| d.clone())
            .collect()
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Insert { table, key, vals } => {
                let k = key_values(*table, *key);
                // Skip duplicates: Postgres would refuse them, unless the
                // table has no key but the whole row.
                if !self.counts_copies(*table) && self.live_rows(*table).iter().any(|r| self.key_of_row(*table, r) == k)
                {
                    return;
                }
                if let Some(new) = self.row(*table, &k, vals) {
                    self.pending.push(ChangeRecord::Insert {
                        table: self.ids[*table],
                        new,
                    });
                }
            }
            Op::Update {
                table,
                pick,
                vals,
                toast,
                new_key,
            } => {
                let rows = self.live_rows(*table);
                if rows.is_empty() {
                    return;
                }
                let old_row = &rows[pick % rows.len()];
                let old_key = self.key_of_row(*table, old_row);
                let mut key = old_key.clone();
                let mut old = None;
                if self.counts_copies(*table) {
                    // REPLICA IDENTITY FULL: the whole old row, always.
                    old = Some(RowImage(old_row.clone()));
                    if let Some(nk) = new_key {
                        key = key_values(*table, *nk);
                    }
                } else if let Some(nk) = new_key {
                    let k = key_values(*table, *nk);
                    if k != old_key && rows.iter().any(|r| self.key_of_row(*table, r) == k) {
                        return;
                    }
                    if k != old_key {
                        old = Some(key_image(self.schemas[*table].as_ref().unwrap(), old_row));
                        key = k;
                    }
                }
                let Some(mut new) = self.row(*table, &key, vals) else {
                    return;
                };
                if *toast {
                    // The last non-key column is sent as "unchanged TOAST".
                    let schema = self.schemas[*table].as_ref().unwrap();
                    if let Some(i) = schema.columns.iter().rposition(|c| !c.is_key) {
                        new.0[i] = Datum::UnchangedToast;
                    }
                }
                self.pending.push(ChangeRecord::Update {
                    table: self.ids[*table],
                    old,
                    new,
                });
            }
            Op::Delete { table, pick } => {
                let rows = self.live_rows(*table);
                if rows.is_empty() {
                    return;
                }
                let old = key_image(self.schemas[*table].as_ref().unwrap(), &rows[pick % rows.len()]);
                self.pending.push(ChangeRecord::Delete {
                    table: self.ids[*table],
                    old,
                });
            }
            Op::Truncate { tables } => {
                let ids: Vec<TableId> = tables
                    .iter()
                    .filter(|t| self.schemas[**t].is_some())
                    .map(|t| self.ids[*t])
                    .collect();
                if !ids.is_empty() {
                    self.pending.push(ChangeRecord::Truncate { tables: ids });
                }
            }
            Op::AddColumn { table, default } => {
                let Some(mut schema) = self.schemas[*table].clone() else {
                    return;
                };
                self.col_seq += 1;
                let name = format!("c{}", self.col_seq % 4);
                if schema.column_index(&name).is_some() {
                    return;
                }
                let counted = schema.counts_copies();
                schema.columns.push(column(&name, 25, counted));
                let backfill = default.iter().map(|d| (name.clone(), d.datum())).collect();
                self.define(*table, schema, backfill);
                if counted {
                    self.reread(*table);
                }
            }
            Op::DropColumn { table, pick } => {
                let Some(mut schema) = self.schemas[*table].clone() else {
                    return;
                };
                let counted = schema.counts_copies();
                let non_key: Vec<usize> = schema
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !c.is_key || counted)
                    .map(|(i, _)| i)
                    .collect();
                if non_key.len() < 2 {
                    return;
                }
                schema.columns.remove(non_key[pick % non_key.len()]);
                self.define(*table, schema, Vec::new());
                if counted {
                    self.reread(*table);
                }
            }
            Op::Reread { table, change } => {
                if self.schemas[*table].is_none() {
                    return;
                }
                let rows = self.live_rows(*table);
                self.pending.push(ChangeRecord::ReadStart {
                    table: self.ids[*table],
                });
                for (i, r) in rows.into_iter().enumerate() {
                    // Drop one row and alter another, as a rewrite might.
                    if rows_skip(i, *change) {
                        continue;
                    }
                    let mut r = r;
                    if i == change % 5 {
                        if let Some(last) = r.last_mut() {
                            if !self.schemas[*table].as_ref().unwrap().columns.last().unwrap().is_key {
                                *last = Datum::text("rewritten");
                            }
                        }
                    }
                    self.pending.push(ChangeRecord::Read {
                        table: self.ids[*table],
                        row: RowImage(r),
                    });
                }
            }
            Op::DropTable { table } => {
                if self.schemas[*table].is_none() {
                    return;
                }
                self.pending.push(ChangeRecord::Schema {
                    table: self.ids[*table],
                    change: SchemaChange::Drop,
                });
                // The name comes back later as a new table with a new id.
                self.ids[*table] = TableId(self.next_id);
                self.next_id += 1;
                let schema = initial_schema(*table);
                self.define(*table, schema, Vec::new());
            }
            Op::Commit { time_step } => self.commit(*time_step),
        }
    }

    fn commit(&mut self, time_step: i64) {
        if self.pending.is_empty() {
            return;
        }
        let txn = self.open_txn();
        self.model.apply(&txn);
        self.txns.push(txn);
        self.pending.clear();
        self.next_lsn += 0x100;
        // Clocks may step back; the store must keep times monotonic.
        self.time += time_step;
    }
}

fn rows_skip(i: usize, change: usize) -> bool {
    i == change % 7 + 1
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        &StoreOptions {
            create_if_missing: true,
            durability: Durability::Buffered,
            cache_bytes: 8 << 20,
            ..Default::default()
        },
    )
    .unwrap()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn snapshot_rows(store: &Store, id: TableId, cut: materializer::Cut) -> Option<Vec<Vec<Datum>>> {
    let name = store.catalog().table(id)?.history.at(cut.lsn)?.schema()?.name.clone();
    let t = materializer::table_at(store, &name, cut).ok()?;
    if t.id != id {
        return None;
    }
    let mut rows: Vec<Vec<Datum>> = Vec::new();
    materializer::snapshot(store, &t, cut, |r| {
        rows.push(r.iter().map(|d| d.to_datum()).collect());
        Ok::<_, QueryError>(ControlFlow::Continue(()))
    })
    .unwrap();
    // Read on several threads and rendered, the same rows in the same order.
    let render = |row: &[Datum], out: &mut Vec<u8>| out.extend_from_slice(format!("{row:?}\n").as_bytes());
    let mut serial = Vec::new();
    rows.iter().for_each(|r| render(r, &mut serial));
    let mut parallel = Vec::new();
    let workers = 1 + (cut.lsn.0 % 3) as usize;
    materializer::snapshot_rendered(
        store,
        &t,
        cut,
        workers,
        |r, out| {
            render(&r.iter().map(|d| d.to_datum()).collect::<Vec<_>>(), out);
            Ok::<_, QueryError>(())
        },
        |bytes| {
            parallel.extend_from_slice(bytes);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&parallel),
        String::from_utf8_lossy(&serial),
        "{workers} workers at {cut:?}"
    );
    Some(rows)
}

/// A key range reads exactly the rows of the snapshot `rows` whose keys
/// lie in it, bounds taken from the snapshot's own keys (and the ends).
fn check_ranges(store: &Store, id: TableId, cut: materializer::Cut, rows: &[Vec<Datum>]) -> Result<(), TestCaseError> {
    use std::ops::{Bound, RangeBounds};
    let Some(name) = store
        .catalog()
        .table(id)
        .and_then(|e| e.history.at(cut.lsn))
        .and_then(|v| v.schema())
        .map(|s| s.name.clone())
    else {
        return Ok(());
    };
    let t = materializer::table_at(store, &name, cut).unwrap();
    let keys: Vec<changelog::keys::UserKey> = rows
        .iter()
        .map(|r| changelog::keys::row_key(t.id, t.schema, r))
        .collect();
    let n = keys.len();
    let at = |i: usize| keys.get(i.min(n.saturating_sub(1))).cloned();
    let mut ranges = vec![(Bound::Unbounded, Bound::Unbounded)];
    for (a, b) in [(0, n / 2), (n / 3, n), (n / 2, n / 2), (1, 2)] {
        if let (Some(lo), Some(hi)) = (at(a), at(b)) {
            ranges.push((Bound::Included(lo.clone()), Bound::Included(hi.clone())));
            ranges.push((Bound::Excluded(lo.clone()), Bound::Excluded(hi.clone())));
            ranges.push((Bound::Included(lo), Bound::Unbounded));
            ranges.push((Bound::Unbounded, Bound::Excluded(hi)));
        }
    }
    for range in ranges {
        let mut got: Vec<Vec<Datum>> = Vec::new();
        let key_range = changelog::keys::KeyRange::from_bounds(range.0.clone(), range.1.clone());
        materializer::snapshot_range(store, &t, &key_range, cut, |r| {
            got.push(r.iter().map(|d| d.to_datum()).collect());
            Ok::<_, QueryError>(ControlFlow::Continue(()))
        })
        .unwrap();
        let expected: Vec<Vec<Datum>> = rows
            .iter()
            .zip(&keys)
            .filter(|(_, k)| range.contains(*k))
            .map(|(r, _)| r.clone())
            .collect();
        prop_assert_eq!(&got, &expected, "range {:?} of {} at {}", range, id, cut.lsn);
    }
    Ok(())
}

/// Checks every answer the store gives at every cut against the model.
fn check_all(
    store: &Store,
    model: &Reference,
    txns: &[Transaction],
    horizon: Option<Lsn>,
) -> Result<(), TestCaseError> {
    let now = CommitTime::from_unix_micros(i64::MAX / 2);
    let lsns = model.lsns();
    let all_ids: BTreeSet<TableId> = store.catalog().tables().map(|(t, _)| t).collect();
    for (i, lsn) in lsns.iter().enumerate() {
        let resolved = materializer::resolve(store, When::Lsn(*lsn), now);
        if horizon.is_some_and(|h| *lsn < h) {
            prop_assert!(
                matches!(resolved, Err(QueryError::BeforeHorizon { .. })),
                "cut {lsn} before horizon must be refused"
            );
            continue;
        }
        let cut = resolved.unwrap().cut;
        prop_assert_eq!(cut.lsn, *lsn);
        // An LSN between commits resolves to the earlier commit.
        let mid = materializer::resolve(store, When::Lsn(Lsn(lsn.0 + 0x80)), now)
            .unwrap()
            .cut;
        prop_assert_eq!(mid.lsn, *lsn);
        let mut expected_tables = model.tables_at(*lsn);
        expected_tables.sort();
        let mut got_tables: Vec<TableId> = materializer::tables_at(store, cut).into_iter().map(|t| t.id).collect();
        got_tables.sort();
        prop_assert_eq!(&got_tables, &expected_tables, "tables at {}", lsn);
        for id in &all_ids {
            let expected = model.snapshot(*id, *lsn);
            let got = snapshot_rows(store, *id, cut);
            prop_assert_eq!(&got, &expected, "snapshot of {} at {}", id, lsn);
            if let Some(rows) = &got {
                check_ranges(store, *id, cut, rows)?;
            }
            // Point look-ups agree with the scan for every key ever used.
            if let Some(t) = store
                .catalog()
                .table(*id)
                .and_then(|e| e.history.at(*lsn))
                .and_then(|v| v.schema())
                .map(|s| s.name.clone())
            {
                let table = materializer::table_at(store, &t, cut).unwrap();
                for k in 0..40 {
                    let kv = key_values(idx_of(&table), k);
                    let texts: Vec<String> = kv
                        .iter()
                        .map(|d| match d {
                            Datum::Text(b) => String::from_utf8(b.clone()).unwrap(),
                            _ => String::new(),
                        })
                        .collect();
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    let Ok(key) = materializer::user_key(&table, &refs) else {
                        continue;
                    };
                    let got = materializer::get(store, &table, &key, cut)
                        .unwrap()
                        .map(|f| (f.row, f.copies));
                    let expected = model
                        .get(*id, &key.0, *lsn)
                        .map(|r| (r, model.copies(*id, &key.0, *lsn)));
                    prop_assert_eq!(got, expected, "get {:?} in {} at {}", refs, id, lsn);
                }
            }
        }
        // Diffs from this cut to a few later ones.
        for later in lsns.iter().skip(i).step_by(3) {
            let to = materializer::resolve(store, When::Lsn(*later), now).unwrap().cut;
            for id in &all_ids {
                let Some(to_name) = store
                    .catalog()
                    .table(*id)
                    .and_then(|e| e.history.at(*later))
                    .and_then(|v| v.schema())
                    .map(|s| s.name.clone())
                else {
                    continue;
                };
                let to_t = materializer::table_at(store, &to_name, to).unwrap();
                if to_t.id != *id {
                    continue;
                }
                let from_t = materializer::table_at(store, &to_name, cut)
                    .ok()
                    .filter(|t| t.id == *id);
                if from_t.is_none() && model.snapshot(*id, *lsn).is_some() {
                    continue;
                }
                let mut got = Vec::new();
                materializer::diff(store, from_t.as_ref(), &to_t, cut, to, |e| {
                    got.push((e.kind, e.copies, e.before, e.after));
                    Ok::<_, QueryError>(ControlFlow::Continue(()))
                })
                .unwrap();
                let expected = reference::diff(model, *id, *lsn, *later);
                prop_assert_eq!(got, expected, "diff of {} from {} to {}", id, lsn, later);
            }
        }
    }
    // Histories of every key ever written.
    for txn in txns {
        for rec in &txn.records {
            let (t, row) = match rec {
                ChangeRecord::Insert { table, new } | ChangeRecord::Read { table, row: new } => (*table, new),
                _ => continue,
            };
            let Some(entry) = store.catalog().table(t) else {
                continue;
            };
            let Some(schema) = entry.history.at(txn.commit.commit_lsn).and_then(|v| v.schema()) else {
                continue;
            };
            let key = keys::row_key(t, schema, &row.0);
            let last_cut = materializer::resolve(store, When::Now, now).unwrap().cut;
            let Some(name) = entry
                .history
                .latest()
                .and_then(|v| v.schema())
                .or(Some(schema))
                .map(|s| s.name.clone())
            else {
                continue;
            };
            let table = match materializer::table_at(store, &name, last_cut) {
                Ok(tb) if tb.id == t => tb,
                // Dropped since: look it up at the transaction's own cut.
                _ => match materializer::resolve(store, When::Lsn(txn.commit.commit_lsn), now) {
                    Ok(r) => match materializer::table_at(store, &schema.name, r.cut) {
                        Ok(tb) if tb.id == t => tb,
                        _ => continue,
                    },
                    Err(_) => continue,
                },
            };
            let got: Vec<reference::ModelHistory> = materializer::history(store, &table, &key)
                .unwrap()
                .into_iter()
                .map(|h| (h.cut.lsn, h.op, h.row, h.copies))
                .collect();
            let mut expected = reference::history(model, t, &key.0);
            if let Some(h) = horizon {
                let base = model.get(t, &key.0, h);
                expected.retain(|(l, _, _, _)| *l > h);
                if let Some(row) = base {
                    expected.insert(0, (h, HistoryOp::Base, Some(row), model.copies(t, &key.0, h)));
                }
            }
            prop_assert_eq!(got, expected, "history of {:?} in {}", key, t);
        }
    }
    Ok(())
}

fn idx_of(table: &materializer::TableAt<'_>) -> usize {
    match table.schema.name.name.as_str() {
        "orders" => 0,
        "lines" => 1,
        "bag" => BAG,
        _ => 2,
    }
}

fn build(ops: &[Op]) -> Gen {
    let mut g = Gen::new();
    for op in ops {
        g.apply(op);
    }
    g.commit(1);
    g
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    /// Every snapshot, get, history and diff at every cut equals the fold.
    #[test]
    fn store_matches_reference_fold(ops in proptest::collection::vec(op(), 1..60), reopen_every in 1usize..6) {
        let g = build(&ops);
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        for (i, txn) in g.txns.iter().enumerate() {
            prop_assert_eq!(store.append(std::slice::from_ref(txn)).unwrap(), vec![changelog::AppendOutcome::Appended]);
            if i % reopen_every == 0 {
                drop(store);
                store = open(dir.path());
            }
        }
        check_all(&store, &g.model, &g.txns, None)?;
        // Re-delivery of everything is recognised and changes nothing.
        let again = store.append(&g.txns).unwrap();
        prop_assert!(again.iter().all(|o| *o == changelog::AppendOutcome::AlreadyStored));
        drop(store);
        let store = Store::open_read_only(dir.path()).unwrap();
        check_all(&store, &g.model, &g.txns, None)?;
    }

    /// Timestamps resolve to the last commit at or before them, with commit
    /// times made monotonic even when the source clock stepped back.
    #[test]
    fn timestamps_resolve_to_last_commit(ops in proptest::collection::vec(op(), 1..40), probes in proptest::collection::vec(-5_000_000i64..60_000_000, 1..20)) {
        let g = build(&ops);
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        store.append(&g.txns).unwrap();
        let mut mono = Vec::new();
        let mut last = CommitTime::MIN;
        for t in &g.txns {
            last = last.max(t.commit.commit_time);
            mono.push((last, t.commit.commit_lsn));
        }
        let start = g.txns[0].commit.commit_time.unix_micros();
        for p in probes {
            let t = CommitTime::from_unix_micros(start + p);
            let expected = mono.iter().rev().find(|(ct, _)| *ct <= t).map(|(_, l)| *l);
            let got = materializer::resolve(&store, When::Time(t), CommitTime::from_unix_micros(0));
            match expected {
                Some(l) => prop_assert_eq!(got.unwrap().cut.lsn, l),
                None => {
                    let is_before = matches!(got, Err(QueryError::BeforeHistory { .. }));
                    prop_assert!(is_before);
                }
            }
        }
    }

    /// After compaction every answer at or after the horizon is unchanged
    /// and earlier cuts are refused.
    #[test]
    fn compaction_keeps_answers_after_horizon(ops in proptest::collection::vec(op(), 1..60), pick in any::<usize>()) {
        let g = build(&ops);
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        store.append(&g.txns).unwrap();
        let lsns = g.model.lsns();
        let h = lsns[pick % lsns.len()];
        store.compact(h).unwrap();
        check_all(&store, &g.model, &g.txns, Some(h))?;
        drop(store);
        let store = open(dir.path());
        check_all(&store, &g.model, &g.txns, Some(h))?;
    }
}
