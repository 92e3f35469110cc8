//! The private PostgreSQL of a step and the workloads run on it.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use pg_fixture::PgCluster;

/// A cluster configured so a large backlog causes no checkpoint, with a
/// slot for every run of five repetitions of step 1 (three per repetition).
pub fn cluster() -> Result<PgCluster> {
    let c = PgCluster::builder()
        .setting("max_wal_size", "4GB")
        .setting("checkpoint_timeout", "1h")
        .setting("max_replication_slots", "40")
        .start()
        .context("starting a private PostgreSQL cluster")?;
    let v = c.query_one_value("SHOW server_version")?.unwrap_or_default();
    println!("PostgreSQL {v} at {}", c.conninfo());
    Ok(c)
}

pub fn one(c: &PgCluster, sql: &str) -> Result<String> {
    c.query_one_value(sql)?.ok_or_else(|| anyhow!("NULL from {sql}"))
}

pub fn current_lsn(c: &PgCluster) -> Result<String> {
    one(c, "SELECT pg_current_wal_lsn()::text")
}

pub fn psql(c: &PgCluster, sql: &str) -> Command {
    let mut cmd = Command::new(c.pg_bin("psql"));
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(c.conninfo())
        .arg("-c")
        .arg(sql);
    cmd
}

/// The benchmark tables' shape: 6 columns, like `orders` in the criterion benches.
pub fn orders_ddl(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (id bigint PRIMARY KEY, customer int NOT NULL, status text NOT NULL, \
         amount numeric(12,2) NOT NULL, note text, created timestamptz NOT NULL)"
    )
}

/// Inserts ids `from..=to` into `name`.
pub fn insert_sql(name: &str, from: &str, to: &str) -> String {
    format!(
        "INSERT INTO {name} SELECT g, (g % 10007)::int, (ARRAY['new','paid','shipped','delivered'])[1 + (g % 4)::int], \
         round(((g * 7) % 100000) + (g % 100) / 100.0, 2), 'order ' || g || ' revision 0', \
         timestamptz '2026-11-01 00:00:00+00' + g * interval '1 second' FROM generate_series({from}, {to}) g"
    )
}

/// The capture workload: `ins` transactions of 1,000 inserts, then `upd` of
/// 1,000 updates, then `del` of 1,000 deletes on `orders`. Returns seconds.
pub fn backlog(cl: &PgCluster, ins: u64, upd: u64, del: u64) -> Result<f64> {
    let t = Instant::now();
    for (n, body) in [
        (ins, insert_sql("orders", "i::bigint * 1000 + 1", "(i + 1)::bigint * 1000")),
        (upd, "UPDATE orders SET status = 'paid', amount = amount + 1, note = note || ' updated' \
               WHERE id BETWEEN i::bigint * 1000 + 1 AND (i + 1)::bigint * 1000"
            .to_string()),
        (del, format!("DELETE FROM orders WHERE id BETWEEN {upd}000 + i::bigint * 1000 + 1 AND {upd}000 + (i + 1)::bigint * 1000")),
    ] {
        cl.execute(&format!("DO $$ BEGIN FOR i IN 0..{} LOOP {body}; COMMIT; END LOOP; END $$", n - 1))?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// `pg_recvlogical` reading `slot` from its start up to `end` into `file`,
/// with the options `asof tail` uses (pgoutput version 1, publication `asof`).
pub fn recvlogical(cl: &PgCluster, slot: &str, end: &str, file: &Path) -> Command {
    let mut cmd = Command::new(cl.pg_bin("pg_recvlogical"));
    cmd.args(["-d", &cl.conninfo(), "--slot", slot, "--start", "--endpos", end])
        .arg("-f")
        .arg(file)
        .args(["-o", "proto_version=1", "-o", "publication_names=asof", "--no-loop"]);
    cmd
}

/// The reference read of the initial-snapshot steps.
pub const SNAP_COPY: &str = "COPY snap TO STDOUT (FORMAT binary)";

/// The initial-snapshot steps' table: `snap` with `rows` rows, vacuumed
/// and analyzed.
pub fn snap_table(cl: &PgCluster, rows: u64) -> Result<()> {
    cl.execute(&orders_ddl("snap"))?;
    cl.execute(&insert_sql("snap", "1", &rows.to_string()))?;
    cl.execute("VACUUM ANALYZE snap")?;
    Ok(())
}
