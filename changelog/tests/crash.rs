//! Kill-and-reopen crash safety.
//!
//! The test binary re-executes itself as a writer (the `child_entry_point`
//! test, selected with `--exact` and told what to do through environment
//! variables). The writer appends a deterministic sequence of transactions
//! with `Durability::Sync` and prints each transaction's index after the
//! call that stored it returned: that is what a capture would acknowledge.
//! The parent kills it with SIGKILL at random moments, reopens the store and
//! checks that
//!
//! - nothing acknowledged is lost (the watermark covers every printed index);
//! - the store holds exactly the transactions up to its watermark, each
//!   whole and once: the same snapshots at every cut, the same log, schema
//!   history, resets, versions and commits as a naive fold of exactly those
//!   transactions, and nothing at all on disk beyond the watermark;
//! - resuming (the next writer appends the whole sequence again from the
//!   start) converges on the full sequence.
//!
//! `ASOF_CRASH_SEED=<n>` replays a kill schedule; the timing of a kill
//! relative to the writer's progress is still up to the scheduler.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use changelog::{AppendOutcome, Durability, Lsn, Store, Transaction};
use support::{chunks, differences, leftovers, open, random_cuts, spill_scenario, Gen, Reference, Rng};

const CHILD_DIR: &str = "ASOF_CRASH_CHILD";
const CHILD_ROLE: &str = "ASOF_CRASH_ROLE";
const CHILD_ARG: &str = "ASOF_CRASH_ARG";

/// Seed of the transaction sequence the writer appends.
const SEQUENCE_SEED: u64 = 0x00A5_0F0C_4A5E;
/// Steps (single appends, group appends, spills) in the sequence.
const STEPS: usize = 160;
/// Kills per run of the random-kill test.
const KILLS: usize = 30;

// ---------------------------------------------------------------------------
// The child side

/// Not a test of its own: the entry point of the writer processes the tests
/// below start. Does nothing unless started by one of them.
#[test]
fn child_entry_point() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else { return };
    let dir = Path::new(&dir);
    let arg = std::env::var(CHILD_ARG).unwrap_or_default();
    match std::env::var(CHILD_ROLE).as_deref() {
        Ok("writer") => write_sequence(dir, arg.parse().unwrap()),
        Ok("spill") => spill_and_wait(dir, arg == "ddl"),
        Ok("create") => {
            println!("@OPENING");
            drop(open(dir, Durability::Sync));
            println!("@DONE");
        }
        other => panic!("unknown child role {other:?}"),
    }
}

fn spawn_child(role: &str, dir: &Path, arg: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_entry_point", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROLE, role)
        .env(CHILD_ARG, arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// One unit of the writer's work.
enum Step {
    /// One transaction, one `append`.
    One(Transaction),
    /// Several transactions in one `append` (group commit).
    Group(Vec<Transaction>),
    /// A spilled transaction and its chunk boundaries.
    Spill(Transaction, Vec<usize>),
}

/// The writer's sequence: single transactions with every kind of record
/// (schema changes, truncates, re-reads and drops included), group
/// commits, and spilled transactions of 10-40 row changes (inserts, updates
/// with unchanged TOAST and key changes, deletes) in up to five chunks.
fn sequence(seed: u64) -> Vec<Step> {
    let mut g = Gen::new(seed);
    let mut steps = vec![Step::One(g.txn(20, false))];
    while steps.len() < STEPS {
        match g.rng.below(100) {
            0..=54 => {
                let n = g.rng.range(1, 5);
                steps.push(Step::One(g.txn(n, true)));
            }
            55..=79 => {
                let k = g.rng.range(2, 4);
                let mut txns = Vec::new();
                for _ in 0..k {
                    let n = g.rng.range(1, 4);
                    txns.push(g.txn(n, true));
                }
                steps.push(Step::Group(txns));
            }
            _ => {
                let n = g.rng.range(10, 40);
                let txn = g.txn(n, false);
                let cuts = random_cuts(&mut g.rng, n, 4);
                steps.push(Step::Spill(txn, cuts));
            }
        }
    }
    steps
}

fn flatten(steps: &[Step]) -> Vec<Transaction> {
    steps
        .iter()
        .flat_map(|s| match s {
            Step::One(t) | Step::Spill(t, _) => vec![t.clone()],
            Step::Group(ts) => ts.clone(),
        })
        .collect()
}

/// The writer: appends the whole sequence from the start, printing
/// `@ACK <index>` for every transaction once the call that stored it (or
/// found it stored) returned, and `@CHUNK <index>` after each spilled chunk.
fn write_sequence(dir: &Path, seed: u64) {
    let steps = sequence(seed);
    let mut store = open(dir, Durability::Sync);
    let mut out = std::io::stdout().lock();
    let mut index = 0usize;
    for step in &steps {
        match step {
            Step::One(t) => {
                store.append(std::slice::from_ref(t)).unwrap();
                writeln!(out, "@ACK {index}").unwrap();
                index += 1;
            }
            Step::Group(ts) => {
                let outcomes = store.append(ts).unwrap();
                assert_eq!(outcomes.len(), ts.len());
                for _ in ts {
                    writeln!(out, "@ACK {index}").unwrap();
                    index += 1;
                }
            }
            Step::Spill(t, cuts) => {
                let parts = chunks(&t.records, cuts);
                let (last, first) = parts.split_last().unwrap();
                let mut sp = store.begin_spill(t.commit.commit_lsn).unwrap();
                for c in first {
                    store.spill(&mut sp, c).unwrap();
                    writeln!(out, "@CHUNK {index}").unwrap();
                }
                store.finish_spill(sp, &t.commit, last).unwrap();
                writeln!(out, "@ACK {index}").unwrap();
                index += 1;
            }
        }
        out.flush().unwrap();
    }
    writeln!(out, "@DONE").unwrap();
}

/// Appends the scenario's base transactions, writes every chunk of its
/// spilled transaction without finishing it, says `@PAUSED` and waits to be
/// killed.
fn spill_and_wait(dir: &Path, ddl: bool) {
    let s = spill_scenario(ddl);
    let mut store = open(dir, Durability::Sync);
    store.append(&s.base).unwrap();
    let _sp = s.spill_without_finish(&mut store);
    println!("@PAUSED");
    std::thread::sleep(Duration::from_secs(30));
    panic!("the parent never killed this writer");
}

// ---------------------------------------------------------------------------
// The parent side

/// When to kill the writer.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// This long after starting it (often while it opens the store).
    After(Duration),
    /// `delay` after it printed a line for transaction `index` or later;
    /// with `chunk`, only a `@CHUNK` line counts.
    AtLine { index: usize, chunk: bool, delay: Duration },
    /// Never: let it finish.
    Never,
}

/// What one writer run printed.
#[derive(Debug, Default)]
struct Run {
    acked: Option<usize>,
    done: bool,
    killed: bool,
}

/// The writer's own part of a line of its output (the test harness may
/// have printed something before it on the same line).
fn message(line: &str) -> &str {
    line.find('@').map_or("", |i| &line[i + 1..])
}

fn parse_index(line: &str, tag: &str) -> Option<usize> {
    message(line).strip_prefix(tag).and_then(|r| r.trim().parse().ok())
}

fn run_writer(dir: &Path, kill: Kill) -> Run {
    let mut child = spawn_child("writer", dir, &SEQUENCE_SEED.to_string());
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut run = Run::default();
    if let Kill::After(d) = kill {
        std::thread::sleep(d);
        let _ = child.kill();
        run.killed = true;
    }
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(i) = parse_index(&line, "ACK ") {
            run.acked = Some(run.acked.map_or(i, |a| a.max(i)));
        }
        run.done |= message(&line) == "DONE";
        if let Kill::AtLine { index, chunk, delay } = kill {
            let at = if chunk {
                parse_index(&line, "CHUNK ")
            } else {
                parse_index(&line, "ACK ")
            };
            if !run.killed && at.is_some_and(|i| i >= index) {
                spin(delay);
                let _ = child.kill();
                run.killed = true;
            }
        }
    }
    let status = child.wait().unwrap();
    if !run.killed || run.done {
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(run.done, "the writer failed on its own ({status}):\n{err}");
    }
    run
}

/// Waits `d` without giving up the CPU for long, so short delays are short.
fn spin(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// Reopens the store after a crash and compares it with the fold of the
/// transactions up to its watermark; returns how many transactions it
/// holds, or the problems found.
fn check_after_crash(dir: &Path, model: &Reference) -> Result<usize, Vec<String>> {
    let store = open(dir, Durability::Sync);
    let mark = store.watermark().map(|w| w.commit_lsn);
    let k = match mark {
        None => 0,
        Some(l) => match model.index_of(l) {
            Some(i) => i + 1,
            None => return Err(vec![format!("the watermark {l} is no transaction of the sequence")]),
        },
    };
    let mut problems = differences(&store, model, k);
    let catalog = store.catalog().clone();
    drop(store);
    problems.extend(leftovers(dir, &catalog, mark));
    if problems.is_empty() {
        Ok(k)
    } else {
        Err(problems)
    }
}

fn schedule_seed() -> u64 {
    std::env::var("ASOF_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0001)
}

/// Kills the writer at random moments (while it opens the store, right
/// after an acknowledgement, inside group commits, between the chunks of a
/// spilled transaction), and checks the store after every kill.
#[test]
fn kill_at_random_moments_loses_nothing_and_doubles_nothing() {
    let seed = schedule_seed();
    println!("kill schedule seed {seed} (replay with ASOF_CRASH_SEED={seed})");
    let steps = sequence(SEQUENCE_SEED);
    let txns = flatten(&steps);
    let model = Reference::of(&txns);
    let total = txns.len();
    let spills: Vec<usize> = {
        let mut i = 0;
        let mut out = Vec::new();
        for s in &steps {
            match s {
                Step::Spill(..) => {
                    out.push(i);
                    i += 1;
                }
                Step::One(_) => i += 1,
                Step::Group(ts) => i += ts.len(),
            }
        }
        out
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(seed);
    let mut stored = 0usize;
    let mut acked: Option<usize> = None;
    // Each kill aims a little past what is stored, so the kills spread over
    // the whole sequence rather than all landing after its end.
    let span = (total / KILLS).max(1);
    let mut kills = Vec::new();
    for round in 0..KILLS {
        let target = stored + rng.below(span);
        let kill = match rng.below(8) {
            0 => Kill::After(Duration::from_millis(rng.below(80) as u64)),
            1 | 2 => match spills.iter().find(|i| **i >= target) {
                Some(i) => Kill::AtLine {
                    index: *i,
                    chunk: true,
                    delay: Duration::from_micros(rng.below(400) as u64),
                },
                None => Kill::AtLine {
                    index: target,
                    chunk: false,
                    delay: Duration::ZERO,
                },
            },
            _ => Kill::AtLine {
                index: target,
                chunk: false,
                delay: Duration::from_micros(rng.below(6_000) as u64),
            },
        };
        let run = run_writer(dir.path(), kill);
        acked = acked.max(run.acked);
        let k = check_after_crash(dir.path(), &model).unwrap_or_else(|p| {
            panic!(
                "seed {seed}, round {round} ({kill:?}, {} stored before): the reopened store is wrong:\n  {}",
                stored,
                p.join("\n  ")
            )
        });
        if let Some(a) = acked {
            assert!(
                k > a,
                "seed {seed}, round {round} ({kill:?}): transaction {a} was acknowledged but the store holds only {k}"
            );
        }
        assert!(
            k >= stored,
            "seed {seed}, round {round}: the store went back from {stored} to {k} transactions"
        );
        kills.push((kill, stored, k));
        stored = k;
    }
    // Resuming converges on the whole sequence.
    let run = run_writer(dir.path(), Kill::Never);
    assert!(run.done && run.acked == Some(total - 1));
    let k = check_after_crash(dir.path(), &model)
        .unwrap_or_else(|p| panic!("seed {seed}: after the last run:\n  {}", p.join("\n  ")));
    assert_eq!(k, total, "seed {seed}: the last run did not store the whole sequence");
    // Appending everything again changes nothing.
    let mut store = open(dir.path(), Durability::Sync);
    let outcomes = store.append(&txns).unwrap();
    assert!(outcomes.iter().all(|o| *o == AppendOutcome::AlreadyStored));
    support::assert_matches(&store, &model, total, "after re-appending everything");
    println!(
        "{} transactions; kills (plan, stored before, stored after): {kills:?}",
        total
    );
}

/// What a spilled transaction interrupted before its commit must leave:
/// exactly the base transactions, nothing of its own on disk or in the
/// catalog; and the same transaction delivered again afterwards (as the
/// source does after a restart) must store exactly as if nothing happened.
fn check_interrupted_spill(dir: &Path, ddl: bool) -> Vec<String> {
    let s = spill_scenario(ddl);
    let before = Reference::of(&s.base);
    let whole = Reference::of(&s.txns(true));
    let mut problems = Vec::new();
    let mut store = open(dir, Durability::Sync);
    problems.extend(
        differences(&store, &before, s.base.len())
            .into_iter()
            .map(|p| format!("after reopening: {p}")),
    );
    let catalog = store.catalog().clone();
    let mark = store.watermark().map(|w| w.commit_lsn);
    drop(store);
    problems.extend(
        leftovers(dir, &catalog, mark)
            .into_iter()
            .map(|p| format!("after reopening: {p}")),
    );

    store = open(dir, Durability::Sync);
    match support::spill_txn(&mut store, &s.spilled, &s.cuts) {
        Ok(AppendOutcome::Appended) => {}
        other => problems.push(format!("delivering the spilled transaction again: {other:?}")),
    }
    if let Err(e) = store.append(std::slice::from_ref(&s.after)) {
        problems.push(format!("appending the next transaction: {e:?}"));
    }
    problems.extend(
        differences(&store, &whole, whole.steps.len())
            .into_iter()
            .map(|p| format!("after re-delivery: {p}")),
    );
    drop(store);
    let store = open(dir, Durability::Sync);
    problems.extend(
        differences(&store, &whole, whole.steps.len())
            .into_iter()
            .map(|p| format!("after re-delivery and reopening: {p}")),
    );
    problems
}

fn drop_spill_in_process(ddl: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let s = spill_scenario(ddl);
    let mut store = open(dir.path(), Durability::Sync);
    store.append(&s.base).unwrap();
    let sp = s.spill_without_finish(&mut store);
    // Readers see nothing of it while it is in flight.
    let mut problems: Vec<String> = support::visible_differences(&store, &Reference::of(&s.base), s.base.len())
        .into_iter()
        .map(|p| format!("while in flight: {p}"))
        .collect();
    drop(sp);
    drop(store);
    problems.extend(check_interrupted_spill(dir.path(), ddl));
    problems
}

fn kill_spill_child(ddl: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let s = spill_scenario(ddl);
    let mut child = spawn_child("spill", dir.path(), if ddl { "ddl" } else { "rows" });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut problems = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(l)) if message(&l) == "PAUSED" => break,
            Some(Ok(_)) => {}
            _ => {
                let mut err = String::new();
                child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("the spilling writer died early:\n{err}");
            }
        }
    }
    // A reader beside the writer sees nothing of the open transaction.
    let reader = Store::open_read_only(dir.path()).unwrap();
    problems.extend(
        support::visible_differences(&reader, &Reference::of(&s.base), s.base.len())
            .into_iter()
            .map(|p| format!("reader while in flight: {p}")),
    );
    drop(reader);
    child.kill().unwrap();
    child.wait().unwrap();
    problems.extend(check_interrupted_spill(dir.path(), ddl));
    problems
}

/// A spilled transaction of row changes whose writer dropped it without
/// finishing is invisible while in flight, gone after reopening, and stores
/// exactly once when delivered again.
#[test]
fn dropped_spill_of_rows_is_gone_after_reopen() {
    let p = drop_spill_in_process(false);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// The same for a writer killed between chunks.
#[test]
fn killed_spill_of_rows_is_gone_after_reopen() {
    let p = kill_spill_child(false);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// A dropped spilled transaction that changed a table's schema and truncated
/// a table in its chunks must leave neither behind: no schema version and no
/// reset at its LSN, and delivering it again must work.
#[test]
fn dropped_spill_with_schema_change_and_truncate_is_gone_after_reopen() {
    let p = drop_spill_in_process(true);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// The same for a writer killed between chunks.
#[test]
fn killed_spill_with_schema_change_and_truncate_is_gone_after_reopen() {
    let p = kill_spill_child(true);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

/// Compaction records its horizon first and then deletes history in
/// several unsynced batches. A crash can therefore leave any prefix of
/// those deletions; every such prefix must answer as the finished
/// compaction does, and compacting again must finish the job.
///
/// Batches end only between keys, so a crash leaves some keys compacted
/// and others not; this builds that state with the engine directly (key 1,
/// deleted before the horizon, already gone; key 2 untouched).
#[test]
fn interrupted_compaction_never_resurrects_a_deleted_row() {
    use changelog::keys::{self, cf};
    use changelog::{ChangeRecord, Datum, RowImage, SchemaChange};
    let dir = tempfile::tempdir().unwrap();
    let orders = support::initial_schema(0);
    let row = |id: &str| RowImage(vec![Datum::text(id), Datum::text("x"), Datum::text("y")]);
    let t = support::ORDERS;
    let txns = vec![
        Transaction {
            commit: support::commit_info(0x1000, 1, 1),
            records: vec![
                ChangeRecord::Schema {
                    table: t,
                    change: SchemaChange::Define {
                        schema: orders.clone(),
                        backfill: vec![],
                        coverage: Default::default(),
                    },
                },
                ChangeRecord::Insert {
                    table: t,
                    new: row("1"),
                },
                ChangeRecord::Insert {
                    table: t,
                    new: row("2"),
                },
            ],
        },
        Transaction {
            commit: support::commit_info(0x1100, 2, 2),
            records: vec![ChangeRecord::Delete {
                table: t,
                old: support::key_image(&orders, &row("1").0),
            }],
        },
        Transaction {
            commit: support::commit_info(0x1200, 3, 3),
            records: vec![ChangeRecord::Insert {
                table: t,
                new: row("3"),
            }],
        },
    ];
    let model = Reference::of(&txns);
    let horizon = Lsn(0x1200);
    {
        let mut store = open(dir.path(), Durability::Sync);
        store.append(&txns).unwrap();
    }
    {
        // The horizon is durable and compaction wrote its first batch, which
        // (batches end only between keys) removed all of key 1's versions at
        // or before the horizon; the crash came before the next batch.
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), cf::ALL).unwrap();
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        db.put_cf_opt(
            db.cf_handle(cf::META).unwrap(),
            keys::meta::HORIZON,
            keys::encode_lsn(horizon),
            &wo,
        )
        .unwrap();
        let k1 = keys::row_key(t, &orders, &row("1").0);
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_cf(db.cf_handle(cf::VERSIONS).unwrap(), k1.at(Lsn(0x1100)).0);
        batch.delete_cf(db.cf_handle(cf::VERSIONS).unwrap(), k1.at(Lsn(0x1000)).0);
        db.write_opt(batch, &wo).unwrap();
    }
    let mut store = open(dir.path(), Durability::Sync);
    let expected: Vec<_> = model.steps[2].state.tables[&t]
        .rows
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let after_crash = support::snapshot(&store, t, horizon);
    // Compacting again at the same horizon must complete what was cut short.
    store.compact(horizon).unwrap();
    let after_resume = support::snapshot(&store, t, horizon);
    assert_eq!(
        after_crash.as_ref(),
        Some(&expected),
        "an interrupted compaction changed the answer at the horizon"
    );
    assert_eq!(
        after_resume.as_ref(),
        Some(&expected),
        "compacting again did not finish the interrupted compaction"
    );
}

/// Kills a process while it creates a new store, at moments spread over
/// the creation: afterwards the directory holds no store or a whole one,
/// and opening it with creation allowed always succeeds.
#[test]
fn a_store_killed_while_being_created_opens_afterwards() {
    let mut rng = Rng::new(schedule_seed());
    let root = tempfile::tempdir().unwrap();
    let mut created = 0;
    for round in 0..60 {
        let dir = root.path().join(format!("store-{round}"));
        let mut child = spawn_child("create", &dir, "");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while message(&line) != "OPENING" {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "the child ended before opening"
            );
            line.truncate(line.trim_end().len());
        }
        spin(Duration::from_micros(rng.next_u64() % 100_000));
        let _ = child.kill();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        child.wait().unwrap();
        created += usize::from(rest.contains("@DONE"));
        let store = open(&dir, Durability::Sync);
        assert!(store.watermark().is_none(), "round {round}");
        drop(store);
        let staged: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".creating"))
            .collect();
        assert!(staged.is_empty(), "round {round}: {staged:?} left behind");
    }
    println!("{created} of 60 creations finished before the kill");
}
