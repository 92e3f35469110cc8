//! `asof demo --kafka`: the log on a private 3-broker Kafka cluster. A
//! publishing `asof tail` runs while the partition's leader is killed and
//! brought back, and a follower rebuilds the store from the topic and
//! answers as the capture's own store does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use changelog::{Lsn, Store};
use kafka_fixture::KafkaCluster;
use kafka_relay::Target;
use pg_fixture::PgCluster;

use super::demo::{heading, moment, show, PHASE_2, PHASE_3, SCHEMA};
use crate::args::DemoArgs;
use crate::commands::outln;

const TOPIC: &str = "demo.asof";

pub fn run(a: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let scratch = tempfile::tempdir()?;
    let dirs = match &a.keep_store {
        Some(d) => d.clone(),
        None => scratch.path().to_path_buf(),
    };
    let (publisher_store, follower_store) = (dirs.join("publisher"), dirs.join("follower"));
    heading("starting a private PostgreSQL and a 3-broker Kafka cluster")?;
    let pg = PgCluster::start().context("cannot start the demo's PostgreSQL")?;
    pg.execute(SCHEMA)?;
    let mut kafka = KafkaCluster::builder()
        .brokers(3)
        .start()
        .context("cannot start the demo's Kafka (run scripts/setup.sh to fetch it)")?;
    let brokers = kafka.bootstrap_servers();
    outln!("  PostgreSQL on port {}, Kafka at {brokers}", pg.port())?;
    outln!("  topic {TOPIC}: one partition, 3 replicas, min.insync.replicas=2")?;

    let conninfo = pg.conninfo();
    let tail = [
        "tail",
        conninfo.as_str(),
        "--kafka",
        brokers.as_str(),
        "--topic",
        TOPIC,
        "--fan-out",
        "demo",
    ];
    heading(&format!(
        "asof tail '{conninfo}' --kafka {brokers} --topic {TOPIC} --fan-out demo"
    ))?;
    let mut publisher = Background::start(&publisher_store, &tail, &dirs.join("tail.log"))?;
    let mut moments = Vec::new();
    let target = Target {
        brokers: brokers.clone(),
        topic: TOPIC.into(),
    };
    let phases = [
        ("phase 1: initial copy", ""),
        ("phase 2", PHASE_2),
        ("phase 3", PHASE_3),
    ];
    for (i, (title, sql)) in phases.into_iter().enumerate() {
        heading(title)?;
        if i == 2 {
            let leader = target.leader(Duration::from_secs(30))?;
            kafka.kill(leader)?;
            outln!("  killed broker {leader}, the partition's leader; publishing goes on with two")?;
        }
        let before = lsn(&pg)?;
        if !sql.is_empty() {
            pg.execute(sql)?;
        }
        // The follower sees each phase once the topic holds it.
        follow_until_past(
            &follower_store,
            &brokers,
            if i == 0 { Lsn::ZERO } else { before },
            &mut publisher,
        )?;
        let t = moment(&pg)?;
        outln!("  t{} = {t}; the follower holds it", i + 1)?;
        moments.push(t);
        if i == 2 {
            let down = kafka
                .node_ids()
                .into_iter()
                .find(|n| !kafka.is_running(*n).unwrap_or(true));
            if let Some(n) = down {
                kafka.restart(n)?;
                outln!("  broker {n} is back")?;
            }
        }
    }
    publisher.stop()?;

    let table = ["--format", "table"];
    for (i, t) in moments.iter().enumerate() {
        let note = format!("   (t{}, from the follower)", i + 1);
        show(&follower_store, &["snapshot", "orders", "--at", t], &table, &note)?;
    }
    show(
        &follower_store,
        &["history", "orders", "7"],
        &table,
        "   (from the follower)",
    )?;
    show(&follower_store, &["status"], &[], "   (the follower)")?;
    let same = same_commits(&publisher_store, &follower_store)?;
    outln!("\nthe follower holds the same {same} transactions as the capture's store, each once")?;
    drop(kafka);
    drop(pg);
    outln!(
        "demo finished in {:.1} s; the private PostgreSQL and Kafka are stopped and removed",
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

fn lsn(pg: &PgCluster) -> Result<Lsn> {
    let s = pg
        .query_one_value("SELECT pg_current_wal_lsn()::text")?
        .unwrap_or_default();
    Ok(s.parse()?)
}

/// Runs `asof follow --until caught-up` until the follower holds a
/// transaction committed after `after`.
fn follow_until_past(store: &Path, brokers: &str, after: Lsn, publisher: &mut Background) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        publisher.check()?;
        let out = Command::new(std::env::current_exe()?)
            .arg("--store")
            .arg(store)
            .args(["follow", brokers, TOPIC, "--until", "caught-up"])
            .output()?;
        if !out.status.success() {
            bail!("follow failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let reached = Store::open_read_only(store)?.watermark().map(|w| w.commit_lsn);
        if reached.is_some_and(|l| l > after) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the topic did not receive the transactions after {after}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Commits of both stores, which must be the same; how many.
fn same_commits(a: &Path, b: &Path) -> Result<usize> {
    let commits = |p: &Path| -> Result<Vec<_>> { Ok(Store::open_read_only(p)?.commits(Lsn::ZERO, Lsn::MAX)?) };
    let (x, y) = (commits(a)?, commits(b)?);
    if x != y {
        bail!("the follower's transactions differ from the capture's");
    }
    Ok(x.len())
}

/// `asof` running in the background, stopped on drop.
struct Background(Child, PathBuf);

impl Background {
    fn start(store: &Path, args: &[&str], log: &Path) -> Result<Background> {
        let child = Command::new(std::env::current_exe()?)
            .arg("--store")
            .arg(store)
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()?;
        Ok(Background(child, log.to_path_buf()))
    }

    /// Fails with the process's last words if it has stopped.
    fn check(&mut self) -> Result<()> {
        if let Some(status) = self.0.try_wait()? {
            let log = std::fs::read_to_string(&self.1).unwrap_or_default();
            let last = log.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
            bail!("asof tail stopped ({status}): {last}");
        }
        Ok(())
    }

    /// SIGTERM: finish the transaction in hand, then exit.
    fn stop(mut self) -> Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()?;
        self.0.wait()?;
        Ok(())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
