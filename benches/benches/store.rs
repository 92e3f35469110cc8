//! Criterion benchmarks of the change log store and the as-of fold.
//!
//! Run: `cargo bench -p asof-benches --bench store` (see BENCHMARKS.md).

use std::time::Duration;

use asof_benches::{fresh_store, load_orders, orders_row, orders_schema, TxnBuilder};
use changelog::{ChangeRecord, CommitTime, Durability, SchemaChange, Store, StoreOptions, TableName};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use materializer::When;

fn rows() -> u64 {
    std::env::var("ASOF_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(800_000)
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for per_txn in [1u64, 100, 1000] {
        g.throughput(Throughput::Elements(per_txn));
        g.bench_with_input(
            BenchmarkId::new("sync_changes_per_txn", per_txn),
            &per_txn,
            |bch, &n| {
                let dir = tempfile::tempdir().unwrap();
                let mut store = Store::open(
                    dir.path(),
                    &StoreOptions {
                        create_if_missing: true,
                        durability: Durability::Sync,
                        ..Default::default()
                    },
                )
                .unwrap();
                let table = store.table_id_for(&TableName::new("public", "orders"));
                let mut b = TxnBuilder::default();
                let define = ChangeRecord::Schema {
                    table,
                    change: SchemaChange::Define {
                        schema: orders_schema(),
                        backfill: vec![],
                        coverage: Default::default(),
                    },
                };
                store.append(&[b.txn(vec![define])]).unwrap();
                let mut next_id = 0u64;
                bch.iter_batched(
                    || {
                        let records = (next_id..next_id + n)
                            .map(|id| ChangeRecord::Insert {
                                table,
                                new: orders_row(id, 0),
                            })
                            .collect();
                        next_id += n;
                        b.txn(records)
                    },
                    |txn| store.append(std::slice::from_ref(&txn)).unwrap(),
                    BatchSize::SmallInput,
                );
            },
        );
    }
    g.finish();
}

fn scan(c: &mut Criterion) {
    let n = rows();
    for versions in [1u32, 20] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = fresh_store(dir.path());
        let (_, b) = load_orders(&mut store, n, versions);
        store.flush().unwrap();
        store.compact_files().unwrap();
        let cut = materializer::resolve(&store, When::Lsn(b.last_lsn()), CommitTime::now())
            .unwrap()
            .cut;
        let table = materializer::table_at(&store, &TableName::new("public", "orders"), cut).unwrap();

        let mut g = c.benchmark_group("as_of_scan");
        g.sample_size(10).measurement_time(Duration::from_secs(20));
        g.throughput(Throughput::Elements(n));
        g.bench_function(BenchmarkId::new("versions_per_key", versions), |bch| {
            bch.iter(|| {
                let mut bytes = 0usize;
                let mut count = 0u64;
                materializer::snapshot(&store, &table, cut, |row| {
                    count += 1;
                    bytes += row.len();
                    Ok::<_, materializer::QueryError>(std::ops::ControlFlow::Continue(()))
                })
                .unwrap();
                assert_eq!(count, n);
                bytes
            })
        });
        g.finish();

        // One key at a random cut: a seek into the key's versions.
        let commits = store.commits(changelog::Lsn::ZERO, b.last_lsn()).unwrap();
        let mut g = c.benchmark_group("point_get");
        g.sample_size(20).measurement_time(Duration::from_secs(5));
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        g.bench_function(BenchmarkId::new("versions_per_key", versions), |bch| {
            bch.iter(|| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let id = (seed % n).to_string();
                let at = &commits[(seed >> 20) as usize % commits.len()];
                let cut = materializer::Cut::from_commit(at);
                let key = materializer::user_key(&table, &[id.as_str()]).unwrap();
                materializer::get(&store, &table, &key, cut).unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, append, scan);
criterion_main!(benches);
