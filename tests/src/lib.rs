//! Support for asof's end-to-end tests: a captured Postgres workload and
//! what Postgres itself showed after each commit, a capture running beside
//! the test ([`live`]), and declarative scenarios checked at every commit
//! ([`scenario`]).
//!
//! Not a library for users.

pub mod live;
pub mod scenario;

use std::collections::BTreeMap;

use cdc_source::conninfo::parse_conninfo;
use cdc_source::text_formats::parse_copy_line;
use cdc_source::{CaptureEvent, CaptureOptions, Until};
use changelog::{CommitTime, Datum, Lsn, Store, StoreOptions, TableName};
use futures_util::{pin_mut, TryStreamExt};
use materializer::When;
use pg_fixture::PgCluster;
use tokio_postgres::{Client, NoTls};

/// What Postgres showed right after one commit.
#[derive(Clone, Debug)]
pub struct Observation {
    /// The position right after the commit (see [`position`]).
    pub lsn: Lsn,
    /// `clock_timestamp()` after the commit.
    pub time: CommitTime,
    /// Each table's column names and rows (COPY text values, key order).
    pub tables: BTreeMap<String, (Vec<String>, Vec<Vec<Datum>>)>,
}

/// Connects to a database of the cluster, in the capture's fixed output
/// settings, so its COPY prints values as the capture stores them.
pub async fn connect(pg: &PgCluster, db: &str) -> Client {
    let mut cfg = pg.config();
    cfg.dbname(db);
    let (client, conn) = cfg.connect(NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
        .batch_execute(&cdc_source::output::set_statements())
        .await
        .expect("output settings");
    client
}

/// The conninfo string for a database of the cluster.
pub fn conninfo(pg: &PgCluster, db: &str) -> String {
    format!(
        "host={} port={} user={} dbname={db} sslmode=disable",
        pg.host(),
        pg.port(),
        pg.user()
    )
}

/// Reads what Postgres shows now for `tables` (name, ORDER BY clause).
pub async fn observe(client: &Client, tables: &[(&str, &str)]) -> Observation {
    let (lsn, time) = position(client).await;
    let mut out = BTreeMap::new();
    for (t, order) in tables {
        // An array, not a joined string: column names may contain commas.
        let cols: Vec<String> = client
            .query_one(
                "SELECT coalesce(array_agg(attname::text ORDER BY attnum), '{}') FROM pg_attribute \
                 WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped",
                &[&t],
            )
            .await
            .expect("columns")
            .get(0);
        let rows = copy_rows(client, &format!("SELECT * FROM {t} ORDER BY {order}"), cols.len()).await;
        out.insert((*t).to_string(), (cols, rows));
    }
    Observation { lsn, time, tables: out }
}

/// Where the server is now: the LSN just before `pg_current_wal_lsn()`, and
/// `clock_timestamp()`, both at or after the session's last commit. The
/// current position is where the next record starts, which may be another
/// transaction's commit; a cut includes every commit whose record starts at
/// or before it, so the moment right after a commit is one byte earlier.
pub async fn position(client: &Client) -> (Lsn, CommitTime) {
    let row = client
        .query_one(
            "SELECT (pg_current_wal_lsn() - 1)::text, (extract(epoch from clock_timestamp()) * 1000000)::int8",
            &[],
        )
        .await
        .expect("position");
    let lsn: String = row.get(0);
    (lsn.parse().expect("lsn"), CommitTime::from_unix_micros(row.get(1)))
}

/// The rows of `query` as Postgres's COPY prints them, each with `width`
/// values.
pub async fn copy_rows(client: &Client, query: &str, width: usize) -> Vec<Vec<Datum>> {
    let stream = client
        .copy_out(&format!("COPY ({query}) TO STDOUT"))
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    pin_mut!(stream);
    let mut data = Vec::new();
    while let Some(chunk) = stream.try_next().await.expect("copy data") {
        data.extend_from_slice(&chunk);
    }
    // Every row ends in a newline; a row of no columns, or of one empty
    // text, is an empty line.
    let Some(data) = data.strip_suffix(b"\n") else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        let mut values = Vec::new();
        if width > 0 {
            parse_copy_line(line, &mut values).expect("copy line");
        }
        rows.push(values);
    }
    rows
}

/// Opens (creating) a store for writing.
pub fn open_store(path: &std::path::Path) -> Store {
    Store::open(
        path,
        &StoreOptions {
            create_if_missing: true,
            ..StoreOptions::default()
        },
    )
    .expect("open store")
}

/// A table's column names and rows as of a moment, from the store.
pub fn store_table(store: &Store, when: When, table: &str) -> Option<(Vec<String>, Vec<Vec<Datum>>)> {
    let r = materializer::resolve(store, when, CommitTime::now()).expect("resolve");
    let t = materializer::table_at(store, &TableName::parse(table), r.cut).ok()?;
    let cols = t.schema.column_names().map(String::from).collect();
    let mut rows = Vec::new();
    materializer::snapshot(store, &t, r.cut, |row| {
        rows.push(row.iter().map(|d| d.to_datum()).collect());
        Ok::<_, materializer::QueryError>(std::ops::ControlFlow::Continue(()))
    })
    .expect("snapshot");
    Some((cols, rows))
}

/// Asserts the store answers, at every observation's LSN and time,
/// exactly what Postgres showed then.
pub fn assert_matches(store: &Store, observations: &[Observation]) {
    for (i, o) in observations.iter().enumerate() {
        for when in [When::Lsn(o.lsn), When::Time(o.time)] {
            for (t, expected) in &o.tables {
                let got = store_table(store, when, t);
                let expected = Some(expected.clone());
                if got != expected {
                    let (g, e) = (format!("{got:?}"), format!("{expected:?}"));
                    panic!(
                        "table {t} at observation {i} ({when}, {}):\n store:    {g}\n postgres: {e}",
                        o.lsn
                    );
                }
            }
        }
    }
}

/// A runtime for a capture run from a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Capture options for the fixture's `postgres` database, with the initial
/// copy.
pub fn capture_options(pg: &PgCluster, slot: &str, publication: &str, until: Until) -> CaptureOptions {
    capture_options_in(pg, "postgres", slot, publication, until)
}

/// Capture options for a database of the cluster, with the initial copy.
pub fn capture_options_in(pg: &PgCluster, db: &str, slot: &str, publication: &str, until: Until) -> CaptureOptions {
    CaptureOptions {
        conninfo: parse_conninfo(&conninfo(pg, db)).expect("conninfo"),
        slot: slot.into(),
        publication: publication.into(),
        tables: Vec::new(),
        snapshot: true,
        until,
        sql_catch_up_above: Some(cdc_source::SQL_CATCH_UP_ABOVE),
        streaming: true,
        copy_connections: cdc_source::default_copy_connections(),
    }
}

/// The notices a capture gave, shared with the test.
pub type Notices = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A capture callback that keeps (and prints) every notice.
pub fn collect(notices: &Notices) -> impl FnMut(CaptureEvent) + Send + 'static {
    let notices = notices.clone();
    move |e| {
        if let CaptureEvent::Notice(n) = e {
            eprintln!("capture: {n}");
            notices.lock().expect("notices").push(n);
        }
    }
}
