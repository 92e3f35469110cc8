//! Step 1: catching up a backlog, against `pg_recvlogical -f /dev/null`,
//! and the bytes stored per change.

use std::path::{Path, PathBuf};

use anyhow::Result;
use asof_benches::{dir_size, median};
use changelog::{Store, StoreOptions};

use crate::ctx::Ctx;
use crate::debezium::Debezium;
use crate::measure::timed;
use crate::pg::{backlog, current_lsn, one, orders_ddl, recvlogical};
use crate::pgoutput_file::pgoutput_file_stats;
use crate::probe::store_files;
use crate::report::{mib, report_pairs, tail_summary, walls};

pub fn run(ctx: &Ctx) -> Result<()> {
    let (cl, conn, dir) = ctx.step("1. Capture of a backlog (TCP)", "capture")?;
    cl.execute(&orders_ddl("orders"))?;
    let (ins, upd, del) = ctx.backlog_size();
    let expected = (ins + upd + del) * 1000;

    // One store and slot per repetition, plus one slot per reference run and
    // one for the byte count, all created before the backlog.
    // The second set reads the backlog through the SQL decoding interface.
    let stores: Vec<PathBuf> = (1..=ctx.reps).map(|i| dir.join(format!("store_{i}"))).collect();
    let sql_stores: Vec<PathBuf> = (1..=ctx.reps).map(|i| dir.join(format!("sql_store_{i}"))).collect();
    let slot_of = |s: &Path| {
        s.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().replace("store", "asof"))
    };
    for (i, s) in stores.iter().chain(&sql_stores).enumerate() {
        let log = dir.join(format!("setup_{}.log", i + 1));
        timed(
            ctx.asof(s).args([
                "tail",
                &conn,
                "--slot",
                &slot_of(s),
                "--no-snapshot",
                "--until",
                "caught-up",
            ]),
            &log,
        )?;
    }
    for i in 1..=ctx.reps {
        cl.execute(&format!(
            "SELECT pg_create_logical_replication_slot('pgrecv_{i}', 'pgoutput')"
        ))?;
        cl.execute(&format!(
            "SELECT pg_create_logical_replication_slot('dbz_{i}', 'pgoutput')"
        ))?;
    }
    let debezium = Debezium::prepare()?;
    cl.execute("SELECT pg_create_logical_replication_slot('pgrecv_bytes', 'pgoutput')")?;
    let start = current_lsn(&cl)?;

    let gen = backlog(&cl, ins, upd, del)?;
    let end = current_lsn(&cl)?;
    cl.execute("CHECKPOINT")?;
    let wal = one(&cl, &format!("SELECT pg_wal_lsn_diff('{end}', '{start}')::bigint"))?;
    println!(
        "backlog: {} transactions, {expected} row changes ({} inserts, {} updates, {} deletes), \
         WAL {start} .. {end} ({:.1} MiB), generated in {gen:.1} s",
        ins + upd + del,
        ins * 1000,
        upd * 1000,
        del * 1000,
        mib(wal.parse()?)
    );

    let (mut refs, mut ours, mut dbz, mut via_sql) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 1..=ctx.reps {
        refs.push(timed(
            &mut recvlogical(&cl, &format!("pgrecv_{i}"), &end, Path::new("/dev/null")),
            &dir.join(format!("pgrecv_{i}.log")),
        )?);
        let log = dir.join(format!("tail_{i}.log"));
        ours.push(timed(
            ctx.asof(&stores[i - 1])
                .args(["tail", &conn, "--slot", &format!("asof_{i}"), "--until", "caught-up"]),
            &log,
        )?);
        let summary = tail_summary(&log)?;
        let sql_log = dir.join(format!("tail_sql_{i}.log"));
        via_sql.push(timed(
            ctx.asof(&sql_stores[i - 1]).args([
                "tail",
                &conn,
                "--slot",
                &format!("sql_asof_{i}"),
                "--until",
                "caught-up",
                "--sql-catch-up-above",
                "0",
            ]),
            &sql_log,
        )?);
        if tail_summary(&sql_log)?.1 != expected {
            println!(
                "  WARNING: asof (SQL catch-up) stored {} changes, expected {expected}",
                tail_summary(&sql_log)?.1
            );
        }
        dbz.push(timed(
            &mut debezium.command(&cl, &format!("dbz_{i}"), "asof", "no_data", expected),
            &dir.join(format!("debezium_{i}.log")),
        )?);
        println!(
            "  rep {i}: pg_recvlogical {:.2} s, asof tail {:.2} s ({} txns, {} changes), \
             through SQL {:.2} s, Debezium {:.2} s",
            refs[i - 1].wall,
            ours[i - 1].wall,
            summary.0,
            summary.1,
            via_sql[i - 1].wall,
            dbz[i - 1].wall
        );
        if summary.1 != expected {
            println!("  WARNING: asof stored {} changes, expected {expected}", summary.1);
        }
    }
    let ratio = report_pairs(
        &format!("capture of {expected} changes over TCP"),
        "pg_recvlogical -f /dev/null",
        "asof tail --until caught-up",
        &refs,
        &ours,
    );
    let sql_ratio = report_pairs(
        &format!("capture of {expected} changes over TCP, the backlog read through the SQL decoding interface"),
        "pg_recvlogical -f /dev/null",
        "asof tail --until caught-up --sql-catch-up-above 0",
        &refs,
        &via_sql,
    );
    println!("\nratio asof through SQL / pg_recvlogical = {sql_ratio:.2} (target: <= 0.50)");
    let dbz_ratio = report_pairs(
        &format!("capture of {expected} changes: Debezium as the reference"),
        "Debezium 3.6.1 embedded engine, JSON events, counting consumer",
        "asof tail --until caught-up",
        &dbz,
        &ours,
    );
    println!(
        "\nthroughput: pg_recvlogical {:.0} changes/s, asof {:.0} changes/s, Debezium {:.0} changes/s; \
         ratio asof/pg_recvlogical = {ratio:.2} (bar: <= 1.00), asof/Debezium = {dbz_ratio:.2}",
        expected as f64 / median(&walls(&refs)),
        expected as f64 / median(&walls(&ours)),
        expected as f64 / median(&walls(&dbz))
    );

    // Bytes: the pgoutput stream once into a file (pg_recvlogical writes each
    // message's payload followed by a newline), and the store on disk.
    let file = dir.join("pgoutput.bin");
    timed(
        &mut recvlogical(&cl, "pgrecv_bytes", &end, &file),
        &dir.join("pgrecv_bytes.log"),
    )?;
    let file_bytes = std::fs::metadata(&file)?.len();
    let stats = pgoutput_file_stats(std::fs::read(&file)?)?;
    println!("\npg_recvlogical file: {stats}");
    if stats.changes() != expected {
        println!(
            "WARNING: the pgoutput file holds {} row changes, expected {expected}",
            stats.changes()
        );
    }
    let messages = stats.messages;
    let payload = stats.payload;
    let as_left = dir_size(&stores[0])?;
    println!("store as left by tail: {}", store_files(&stores[0])?);
    {
        let store = Store::open(&stores[0], &StoreOptions::default())?;
        store.flush()?;
        store.compact_files()?;
    }
    let compacted = dir_size(&stores[0])?;
    println!("store after flush + compact_files: {}", store_files(&stores[0])?);
    let per = |b: u64| b as f64 / expected as f64;
    println!("\n### bytes per change ({expected} changes)\n");
    println!("| what | bytes | MiB | bytes/change |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| pg_recvlogical -f file (payloads + 1 newline per message) | {file_bytes} | {:.1} | {:.1} |",
        mib(file_bytes),
        per(file_bytes)
    );
    println!(
        "| pgoutput payload (XLogData payloads: file minus {messages} newlines) | {payload} | {:.1} | {:.1} |",
        mib(payload),
        per(payload)
    );
    println!(
        "| WAL of the backlog (pg_wal_lsn_diff) | {wal} | {:.1} | {:.1} |",
        mib(wal.parse()?),
        per(wal.parse()?)
    );
    println!(
        "| asof store as left by tail (du of dir) | {as_left} | {:.1} | {:.1} |",
        mib(as_left),
        per(as_left)
    );
    println!(
        "| asof store after flush + compact_files | {compacted} | {:.1} | {:.1} |",
        mib(compacted),
        per(compacted)
    );
    println!(
        "\nstorage ratio store/pgoutput payload: {:.2} as left, {:.2} compacted (bar: <= 1.00)",
        as_left as f64 / payload as f64,
        compacted as f64 / payload as f64
    );
    for s in &stores {
        std::fs::remove_dir_all(s)?;
    }
    Ok(())
}
