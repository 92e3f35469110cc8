//! Scenarios: table shapes real databases have, replayed against a private
//! Postgres while a capture runs, and asof's answers checked against what
//! Postgres itself showed after every commit.
//!
//! A [`Scenario`] is SQL run before the capture starts (so the initial copy
//! sees it) and steps committed one at a time while it streams. After each
//! step the harness records `pg_current_wal_lsn()` and the commit's clock,
//! and COPYs every table the publication publishes, as the publication
//! publishes it: its published columns (stored generated columns are never
//! sent), its rows that pass a row filter. Once the capture has caught up
//! past the last step, the store's snapshot of each of those tables, by LSN
//! and by time, must hold the same rows, compared as multisets of row text.
//!
//! Steps run in one session; steps aside run in a second one, so that a
//! transaction can stay open across others and commit after them.
//!
//! Each scenario has a database, slot and store of its own, in a cluster
//! shared by the scenarios that run at the same time.
//!
//! ```no_run
//! use asof_tests::scenario::Scenario;
//!
//! Scenario::new("moods")
//!     .setup("CREATE TYPE mood AS ENUM ('sad'); CREATE TABLE t (id int PRIMARY KEY, m mood); INSERT INTO t VALUES (1, 'sad')")
//!     .step("ALTER TYPE mood ADD VALUE 'ok'")
//!     .step("UPDATE t SET m = 'ok'")
//!     .check();
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use cdc_source::Until;
use changelog::{CommitTime, Datum, Store, TableName};
use materializer::When;
use pg_fixture::PgCluster;
use tokio_postgres::Client;

use crate::live::Live;
use crate::{capture_options_in, connect, copy_rows, position, runtime, store_table, Notices, Observation};

/// The publication asof creates for itself when a scenario names none.
const OWN_PUBLICATION: &str = "asof";

/// How long a stopped capture's slot may stay busy before it is dropped.
const SLOT_RELEASE: Duration = Duration::from_secs(10);

/// Mismatches printed in full before the report is cut short.
const REPORTED: usize = 12;

/// SQL before the capture, steps during it, and the publication it reads.
#[derive(Clone, Debug)]
pub struct Scenario {
    name: &'static str,
    setup: Vec<&'static str>,
    steps: Vec<Step>,
    publication: Option<&'static str>,
    /// Runs in a cluster of its own.
    alone: bool,
    /// Connections the initial copy reads on (the capture's default when
    /// `None`).
    copy_connections: Option<usize>,
}

/// What a scenario's capture said, for checks beyond the rows.
#[derive(Debug)]
pub struct Replay {
    /// Every notice the capture gave.
    pub notices: Vec<String>,
}

impl Scenario {
    /// A scenario; `name` (a lowercase SQL identifier) names its database
    /// and slot.
    pub fn new(name: &'static str) -> Scenario {
        Scenario {
            name,
            setup: Vec::new(),
            steps: Vec::new(),
            publication: None,
            alone: false,
            copy_connections: None,
        }
    }

    /// SQL run before the capture starts; its rows arrive by the copy.
    pub fn setup(mut self, sql: &'static str) -> Scenario {
        self.setup.push(sql);
        self
    }

    /// One transaction committed while the capture streams.
    pub fn step(mut self, sql: &'static str) -> Scenario {
        self.steps.push(Step { sql, aside: false });
        self
    }

    /// Several steps, in order.
    pub fn steps(mut self, sql: impl IntoIterator<Item = &'static str>) -> Scenario {
        self.steps.extend(sql.into_iter().map(|sql| Step { sql, aside: false }));
        self
    }

    /// A step in a second session, which may leave a transaction open
    /// across the steps that follow, to be committed by a later step aside.
    pub fn step_aside(mut self, sql: &'static str) -> Scenario {
        self.steps.push(Step { sql, aside: true });
        self
    }

    /// Captures through `name`, a publication the setup creates, instead
    /// of asof's own.
    pub fn publication(mut self, name: &'static str) -> Scenario {
        self.publication = Some(name);
        self
    }

    /// Has the initial copy read on `n` connections.
    pub fn copy_connections(mut self, n: usize) -> Scenario {
        self.copy_connections = Some(n);
        self
    }

    /// Runs in a cluster of its own, where no other scenario writes WAL
    /// between its commits.
    pub fn alone(mut self) -> Scenario {
        self.alone = true;
        self
    }

    /// Replays the scenario and panics, naming the step, table and rows,
    /// where asof's answer differs from what Postgres showed.
    pub fn check(self) -> Replay {
        let pg = if self.alone {
            Arc::new(start_cluster())
        } else {
            shared_cluster()
        };
        pg.create_database(self.name).expect("create database");
        for sql in &self.setup {
            pg.execute_in(self.name, sql)
                .unwrap_or_else(|e| panic!("scenario {}: setup failed: {e}\n{sql}", self.name));
        }
        let rt = runtime();
        let notices = Notices::default();
        let publication = self.publication.unwrap_or(OWN_PUBLICATION);
        let mut opts = capture_options_in(&pg, self.name, self.name, publication, Until::Forever);
        if let Some(n) = self.copy_connections {
            opts.copy_connections = n;
        }
        let live = Live::start(&rt, &pg, opts, &notices);
        let client = rt.block_on(connect(&pg, self.name));
        let aside = rt.block_on(connect(&pg, self.name));
        let mut seen = vec![rt.block_on(observe_published(&client, publication))];
        for (i, step) in self.steps.iter().enumerate() {
            let session = if step.aside { &aside } else { &client };
            rt.block_on(session.batch_execute(step.sql))
                .unwrap_or_else(|e| panic!("scenario {}: step {} failed: {e:?}\n{}", self.name, i + 1, step.sql));
            seen.push(rt.block_on(observe_published(&client, publication)));
        }
        assert!(
            seen.iter().any(|o| !o.tables.is_empty()),
            "scenario {}: {publication} publishes no table",
            self.name
        );
        let (store, _dir) = live.finish(&rt, &notices);
        drop_slot(&pg, self.name);
        let mismatches = self.mismatches(&store, &seen);
        if !mismatches.is_empty() {
            panic!("{}", self.report(&mismatches));
        }
        let notices = notices.lock().unwrap_or_else(PoisonError::into_inner).clone();
        Replay { notices }
    }

    /// Where the store's answer differs from Postgres's, by observation.
    fn mismatches(&self, store: &Store, seen: &[Observation]) -> Vec<Mismatch> {
        let mut out = Vec::new();
        for (step, o) in seen.iter().enumerate() {
            for (table, expected) in &o.tables {
                let differing = [When::Lsn(o.lsn), When::Time(o.time)].into_iter().find_map(|when| {
                    let got = store_table(store, when, table);
                    // A publication that does not publish some kinds of
                    // change (deletes, say) leaves rows Postgres removed;
                    // the table's coverage says so, and every row Postgres
                    // has must still be answered.
                    let partial = unpublished_operations(store, when, table);
                    let same = got.as_ref().is_some_and(|g| {
                        g.0 == expected.0
                            && if partial {
                                difference(&multiset(&expected.1), &multiset(&g.1), "").next().is_none()
                            } else {
                                multiset(&g.1) == multiset(&expected.1)
                            }
                    });
                    (!same).then_some((when, got))
                });
                if let Some((when, got)) = differing {
                    let cut = materializer::resolve(store, when, CommitTime::now())
                        .map_or_else(|e| e.to_string(), |r| r.cut.to_string());
                    out.push(Mismatch {
                        step,
                        cut,
                        table: table.clone(),
                        when,
                        got,
                        expected: expected.clone(),
                    });
                }
            }
        }
        out
    }

    fn report(&self, mismatches: &[Mismatch]) -> String {
        let mut text = format!(
            "scenario {}: asof's answer differs from Postgres's at {} (step, table) pairs\n",
            self.name,
            mismatches.len()
        );
        for m in mismatches.iter().take(REPORTED) {
            let step = match m.step {
                0 => "after the initial copy".to_string(),
                n => format!("after step {n}: {}", self.steps[n - 1]),
            };
            let _ = writeln!(text, "\n{step}\n  table {} as of {} (cut {}):", m.table, m.when, m.cut);
            let Some((cols, rows)) = &m.got else {
                let _ = writeln!(
                    text,
                    "  asof does not answer it; Postgres has {} rows",
                    m.expected.1.len()
                );
                continue;
            };
            if *cols != m.expected.0 {
                let _ = writeln!(text, "  columns: asof {cols:?}, postgres {:?}", m.expected.0);
            }
            let (asof, postgres) = (multiset(rows), multiset(&m.expected.1));
            for (who, row, n) in difference(&asof, &postgres, "only asof") {
                let _ = writeln!(text, "  {who} ({n}x): {row}");
            }
            for (who, row, n) in difference(&postgres, &asof, "only postgres") {
                let _ = writeln!(text, "  {who} ({n}x): {row}");
            }
        }
        if mismatches.len() > REPORTED {
            let _ = writeln!(text, "\n... and {} more", mismatches.len() - REPORTED);
        }
        text
    }
}

/// SQL committed (or left open, aside) at one point of the scenario.
#[derive(Clone, Debug)]
struct Step {
    sql: &'static str,
    /// Run in the second session.
    aside: bool,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.aside {
            f.write_str("(aside) ")?;
        }
        f.write_str(self.sql)
    }
}

/// One table at one observation where the store disagrees.
struct Mismatch {
    step: usize,
    /// The commit the store resolved `when` to, or why it could not.
    cut: String,
    table: String,
    when: When,
    got: Option<(Vec<String>, Vec<Vec<Datum>>)>,
    expected: (Vec<String>, Vec<Vec<Datum>>),
}

/// Whether the table's coverage at `when` says the publication leaves out
/// some kinds of change.
fn unpublished_operations(store: &Store, when: When, table: &str) -> bool {
    let Ok(r) = materializer::resolve(store, when, CommitTime::now()) else {
        return false;
    };
    materializer::table_at(store, &TableName::parse(table), r.cut)
        .is_ok_and(|t| !t.coverage.unpublished_operations.is_empty())
}

/// Rows as a multiset of their text: each row's values, with the count of
/// rows that print the same.
fn multiset(rows: &[Vec<Datum>]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for row in rows {
        let text: Vec<String> = row.iter().map(|d| format!("{d:?}")).collect();
        *out.entry(text.join(" | ")).or_insert(0) += 1;
    }
    out
}

/// Rows `a` holds more often than `b`, with how many more.
fn difference<'a>(
    a: &'a BTreeMap<String, usize>,
    b: &'a BTreeMap<String, usize>,
    who: &'a str,
) -> impl Iterator<Item = (&'a str, &'a str, usize)> + 'a {
    a.iter().filter_map(move |(row, n)| {
        let extra = n.saturating_sub(b.get(row).copied().unwrap_or(0));
        (extra > 0).then_some((who, row.as_str(), extra))
    })
}

/// What Postgres shows now for every table `publication` publishes, as it
/// publishes it: quoted qualified names, published columns and rows.
async fn observe_published(client: &Client, publication: &str) -> Observation {
    let (lsn, time) = position(client).await;
    let published = client
        .query(
            "SELECT quote_ident(p.schemaname) || '.' || quote_ident(p.tablename), p.rowfilter, \
                    array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 \
                          AND NOT a.attisdropped AND a.attgenerated = '' \
                          AND (p.attnames IS NULL OR a.attname = ANY (p.attnames)) ORDER BY a.attnum), \
                    c.relkind = 'p' \
             FROM pg_publication_tables p \
             JOIN pg_namespace n ON n.nspname = p.schemaname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
             WHERE p.pubname = $1",
            &[&publication],
        )
        .await
        .expect("published tables");
    let mut tables = BTreeMap::new();
    for row in published {
        let (table, filter, cols, partitioned): (String, Option<String>, Vec<String>, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let list: Vec<String> = cols.iter().map(|c| cdc_source::catalog::quote_ident(c)).collect();
        let filter = filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
        // A table's own rows: an inheritance child's are published as its
        // own table's; a partitioned table's are its partitions'.
        let only = if partitioned { "" } else { "ONLY " };
        let query = format!("SELECT {} FROM {only}{table}{filter}", list.join(", "));
        let rows = copy_rows(client, &query, cols.len()).await;
        tables.insert(table, (cols, rows));
    }
    Observation { lsn, time, tables }
}

/// The cluster every scenario running now shares; it stops when the last
/// of them is done (a cluster in a `static` would outlive the tests).
fn shared_cluster() -> Arc<PgCluster> {
    static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pg) = shared.upgrade() {
        return pg;
    }
    let pg = Arc::new(start_cluster());
    *shared = Arc::downgrade(&pg);
    pg
}

/// A cluster with room for the slots of many scenarios.
fn start_cluster() -> PgCluster {
    PgCluster::builder()
        .setting("max_replication_slots", "64")
        .setting("max_wal_senders", "64")
        .start()
        .expect("postgres")
}

/// Drops a finished scenario's slot, so that the shared cluster keeps no
/// WAL for it; the stopped capture's sender may take a moment to leave.
fn drop_slot(pg: &PgCluster, slot: &str) {
    let sql = format!(
        "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots \
         WHERE slot_name = '{slot}' AND NOT active"
    );
    let start = Instant::now();
    while pg.query_one_value(&sql).ok().flatten().as_deref() != Some("1") && start.elapsed() < SLOT_RELEASE {
        std::thread::sleep(Duration::from_millis(50));
    }
}
