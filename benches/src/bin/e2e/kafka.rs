//! Step 5: the log on Kafka. The same backlog as step 1, published to a
//! single local Kafka node, against `pg_recvlogical` and against capture
//! into the local store; then a follower rebuilding that backlog from the
//! topic, against the direct capture.

use std::path::Path;

use anyhow::{anyhow, Result};
use asof_benches::median;
use kafka_fixture::KafkaCluster;

use crate::ctx::Ctx;
use crate::measure::timed;
use crate::pg::{backlog, current_lsn, orders_ddl, recvlogical};
use crate::report::{report_pairs, tail_summary, walls};

pub fn run(ctx: &Ctx) -> Result<()> {
    let (cl, conn, dir) = ctx.step("5. The log on Kafka (one local broker)", "kafka")?;
    let kafka = KafkaCluster::start().map_err(|e| anyhow!("starting Kafka: {e}"))?;
    let brokers = kafka.bootstrap_servers();
    cl.execute(&orders_ddl("orders"))?;
    let (ins, upd, del) = ctx.backlog_size();
    let expected = (ins + upd + del) * 1000;

    // Per repetition: a local store, a publishing store (each with its
    // slot and an empty history), and a reference slot, all made before
    // the backlog.
    for i in 1..=ctx.reps {
        for (kind, extra) in [("local", vec![]), ("kafka", kafka_args(&brokers, i))] {
            let mut cmd = ctx.asof(&dir.join(format!("{kind}_{i}")));
            cmd.args([
                "tail",
                &conn,
                "--slot",
                &format!("{kind}_{i}"),
                "--no-snapshot",
                "--until",
                "caught-up",
            ])
            .args(&extra);
            timed(&mut cmd, &dir.join(format!("setup_{kind}_{i}.log")))?;
        }
        cl.execute(&format!(
            "SELECT pg_create_logical_replication_slot('pgrecv_{i}', 'pgoutput')"
        ))?;
    }
    let gen = backlog(&cl, ins, upd, del)?;
    let end = current_lsn(&cl)?;
    cl.execute("CHECKPOINT")?;
    println!("backlog: {expected} row changes, generated in {gen:.1} s; Kafka at {brokers}");

    let (mut refs, mut local, mut published, mut followed) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 1..=ctx.reps {
        refs.push(timed(
            &mut recvlogical(&cl, &format!("pgrecv_{i}"), &end, Path::new("/dev/null")),
            &dir.join(format!("pgrecv_{i}.log")),
        )?);
        let log = dir.join(format!("local_{i}.log"));
        local.push(timed(
            ctx.asof(&dir.join(format!("local_{i}"))).args([
                "tail",
                &conn,
                "--slot",
                &format!("local_{i}"),
                "--until",
                "caught-up",
            ]),
            &log,
        )?);
        check(&log, expected, "asof tail")?;
        let log = dir.join(format!("publish_{i}.log"));
        published.push(timed(
            ctx.asof(&dir.join(format!("kafka_{i}")))
                .args(["tail", &conn, "--slot", &format!("kafka_{i}"), "--until", "caught-up"])
                .args(kafka_args(&brokers, i)),
            &log,
        )?);
        check(&log, expected, "asof tail --kafka")?;
        followed.push(timed(
            ctx.asof(&dir.join(format!("follow_{i}")))
                .args(["follow", &brokers, &topic(i), "--until", "caught-up"]),
            &dir.join(format!("follow_{i}.log")),
        )?);
        println!(
            "  rep {i}: pg_recvlogical {:.2} s, tail {:.2} s, tail --kafka {:.2} s, follow {:.2} s",
            refs[i - 1].wall,
            local[i - 1].wall,
            published[i - 1].wall,
            followed[i - 1].wall
        );
    }
    let publish_ratio = report_pairs(
        &format!("publishing {expected} changes to Kafka"),
        "pg_recvlogical -f /dev/null",
        "asof tail --kafka --until caught-up",
        &refs,
        &published,
    );
    let local_ratio = report_pairs(
        &format!("publishing vs capturing into the local store ({expected} changes)"),
        "asof tail --until caught-up",
        "asof tail --kafka --until caught-up",
        &local,
        &published,
    );
    let follow_ratio = report_pairs(
        &format!("a follower rebuilding {expected} changes from Kafka"),
        "asof tail --until caught-up (direct capture)",
        "asof follow --until caught-up",
        &local,
        &followed,
    );
    println!(
        "\npublish/pg_recvlogical = {publish_ratio:.2} (bar: <= 1.50); publish/local capture = {local_ratio:.2}; \
         follow/direct capture = {follow_ratio:.2} (bar: <= 1.00); medians: recvlogical {:.2} s, tail {:.2} s, \
         tail --kafka {:.2} s, follow {:.2} s",
        median(&walls(&refs)),
        median(&walls(&local)),
        median(&walls(&published)),
        median(&walls(&followed))
    );
    Ok(())
}

fn topic(i: usize) -> String {
    format!("bench.asof.{i}")
}

fn kafka_args(brokers: &str, i: usize) -> Vec<String> {
    vec!["--kafka".into(), brokers.into(), "--topic".into(), topic(i)]
}

/// Warns when a capture stored another number of changes than the backlog.
fn check(log: &Path, expected: u64, what: &str) -> Result<()> {
    let (_, changes, _) = tail_summary(log)?;
    if changes != expected {
        println!("  WARNING: {what} stored {changes} changes, expected {expected}");
    }
    Ok(())
}
