//! `asof demo`: the showcase on a private PostgreSQL.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use cdc_source::conninfo::parse_conninfo;
use cdc_source::{CaptureOptions, Until};
use clap::Parser;
use pg_fixture::PgCluster;

use crate::args::{Cli, DemoArgs};
use crate::commands::{open_writer, outln};

pub(super) const SCHEMA: &str = "
SET TimeZone = 'UTC';
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, city text);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers,
    status text NOT NULL,
    amount numeric(10,2) NOT NULL,
    note text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers VALUES (1, 'Ada', 'London'), (2, 'Grace', 'New York'), (3, 'Edsger', 'Eindhoven');
INSERT INTO orders (id, customer_id, status, amount, note)
SELECT i, 1 + i % 3, 'new', (i * 17.25)::numeric(10,2), CASE WHEN i % 4 = 0 THEN NULL ELSE 'gift wrap' END
FROM generate_series(1, 8) AS i;
";

pub(super) const PHASE_2: &str = "
BEGIN;
UPDATE orders SET status = 'paid', updated_at = now() WHERE id IN (1, 2, 3, 7);
UPDATE orders SET note = '' WHERE id = 4;
DELETE FROM orders WHERE id = 5;
INSERT INTO orders (id, customer_id, status, amount, note) VALUES (9, 2, 'new', 99.99, 'express');
COMMIT;
ALTER TABLE orders ADD COLUMN priority text NOT NULL DEFAULT 'normal';
";

pub(super) const PHASE_3: &str = "
UPDATE orders SET status = 'shipped', priority = 'high', updated_at = now() WHERE id = 7;
UPDATE orders SET amount = amount * 0.9, note = note || ' (10% off)' WHERE id = 2;
UPDATE orders SET status = 'delivered', updated_at = now() WHERE id = 7;
DELETE FROM orders WHERE status = 'new' AND id < 5;
";

pub(super) fn heading(s: &str) -> Result<()> {
    outln!("\n=== {s} ===")?;
    Ok(())
}

fn catch_up(rt: &tokio::runtime::Runtime, store_path: &Path, conninfo: &str) -> Result<()> {
    let store = open_writer(store_path)?;
    let opts = CaptureOptions {
        conninfo: parse_conninfo(conninfo).context("demo connection string")?,
        slot: "asof_demo".into(),
        publication: "asof_demo".into(),
        tables: Vec::new(),
        snapshot: true,
        until: Until::CaughtUp,
        sql_catch_up_above: Some(cdc_source::SQL_CATCH_UP_ABOVE),
        streaming: true,
        copy_connections: cdc_source::default_copy_connections(),
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let summary = rt.block_on(cdc_source::capture(store, opts, rx, |_| {}))?;
    outln!("  captured {summary}")?;
    Ok(())
}

/// The server's clock now.
pub(super) fn moment(pg: &PgCluster) -> Result<String> {
    Ok(pg
        .query_one_value("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")?
        .unwrap_or_default())
}

/// Runs `asof <shown> <hidden>` on the demo's store under a heading that
/// shows the command (and `note`), as a user would type it.
pub(super) fn show(store: &Path, shown: &[&str], hidden: &[&str], note: &str) -> Result<()> {
    heading(&format!("asof {}{note}", shown.join(" ")))?;
    let store = store.as_os_str();
    let args = ["asof".as_ref(), "--store".as_ref(), store].into_iter();
    let cli = Cli::try_parse_from(args.chain(shown.iter().chain(hidden).map(OsStr::new)))?;
    super::run(cli)
}

pub fn run(a: DemoArgs) -> Result<()> {
    if a.kafka {
        return super::demo_kafka::run(a);
    }
    let started = Instant::now();
    let scratch;
    let store_path: PathBuf = match a.keep_store {
        Some(p) => p,
        None => {
            scratch = tempfile::tempdir()?;
            scratch.path().join("store")
        }
    };
    heading("starting a private PostgreSQL")?;
    let pg = PgCluster::start().context("cannot start the demo's PostgreSQL")?;
    outln!("  {} (port {}, wal_level=logical)", pg.data_dir().display(), pg.port())?;
    pg.execute(SCHEMA)?;
    outln!("  created customers and orders, 8 orders inserted")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;

    let phases = [
        ("phase 1: initial copy", ""),
        (
            "phase 2: payments, a deletion, a new order, ALTER TABLE ADD COLUMN priority DEFAULT 'normal'",
            PHASE_2,
        ),
        (
            "phase 3: shipping order 7 twice, a discount, cleaning up unpaid orders",
            PHASE_3,
        ),
    ];
    let mut moments = Vec::new();
    for (i, (title, sql)) in phases.into_iter().enumerate() {
        heading(title)?;
        if !sql.is_empty() {
            pg.execute(sql)?;
        }
        catch_up(&rt, &store_path, &pg.conninfo())?;
        let t = moment(&pg)?;
        outln!("  t{} = {t}", i + 1)?;
        moments.push(t);
    }
    drop(rt);

    let table = ["--format", "table"];
    for (i, t) in moments.iter().enumerate() {
        let note = format!("   (t{})", i + 1);
        show(&store_path, &["snapshot", "orders", "--at", t], &table, &note)?;
    }
    show(&store_path, &["history", "orders", "7"], &table, "")?;
    let (t1, t3) = (&moments[0], &moments[2]);
    show(&store_path, &["diff", "orders", "--from", t1, "--to", t3], &table, "")?;
    show(&store_path, &["status"], &[], "")?;
    // Leave nothing behind: the slot belongs to the throwaway cluster.
    drop(pg);
    outln!(
        "\ndemo finished in {:.1} s; the private PostgreSQL is stopped and removed",
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}
