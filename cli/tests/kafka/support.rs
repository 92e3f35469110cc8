//! What the Kafka tests share: a workload with its observations, running
//! `asof`, and an independent reader of the topic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use changelog::{Lsn, Transaction};
use kafka_log::{Reassembler, Tables, TopicRecord};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};

pub const TOPIC: &str = "shop.asof";

/// A small deterministic generator, so a failing run can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from `ASOF_CRASH_SEED` or the clock, said on stderr.
    pub fn seeded() -> Rng {
        let seed = std::env::var("ASOF_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("seed: {seed} (replay with ASOF_CRASH_SEED={seed})");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn asof_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("asof")
}

/// `asof --store <store> <args>` started in the background, its stderr
/// kept in `<store>.log.<n>`.
pub fn spawn(store: &Path, args: &[&str]) -> Child {
    Command::new(asof_bin())
        .arg("--store")
        .arg(store)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn asof")
}

/// `asof --store <store> <args>` to completion: exit code and stderr.
pub fn run(store: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = assert_cmd::Command::new(asof_bin())
        .arg("--store")
        .arg(store)
        .args(args)
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(600))
        .output()
        .expect("run asof");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs and requires success.
pub fn run_ok(store: &Path, args: &[&str]) -> String {
    let (code, stderr) = run(store, args);
    assert_eq!(code, Some(0), "asof {args:?} failed:\n{stderr}");
    stderr
}

pub fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

/// Every transaction the topic holds complete, read `read_committed` from
/// offset 0 and put back together by the format's own reader, as any
/// consumer of the topic would.
pub fn topic_transactions(brokers: &str, topic: &str) -> Vec<Transaction> {
    let mut reader = Reassembler::new(Tables::new(0));
    let mut out = Vec::new();
    for (offset, record) in topic_records(brokers, topic) {
        if let Some(tx) = reader.push(offset, &record).expect("a well-formed topic") {
            out.push(tx);
        }
    }
    out
}

/// Every committed record of partition 0 of a topic, with its offset.
pub fn topic_records(brokers: &str, topic: &str) -> Vec<(i64, TopicRecord)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "asof-tests")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "134217728")
        .set("max.partition.fetch.bytes", "67108864")
        .set("receive.message.max.bytes", "134283264")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "no end of {topic}");
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                let record = TopicRecord {
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                    headers,
                };
                out.push((m.offset(), record));
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => panic!("reading {topic}: {e}"),
        }
    }
    out
}

/// The commit LSNs of transactions, which must rise strictly.
pub fn commit_lsns(txns: &[Transaction]) -> Vec<Lsn> {
    let lsns: Vec<Lsn> = txns.iter().map(|t| t.commit.commit_lsn).collect();
    for w in lsns.windows(2) {
        assert!(
            w[0] < w[1],
            "transactions out of order or twice: {} then {}",
            w[0],
            w[1]
        );
    }
    lsns
}
