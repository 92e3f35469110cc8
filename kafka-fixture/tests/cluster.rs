//! Integration tests: each starts a real private Kafka cluster and talks
//! to it with librdkafka, as a user of the fixture would.

use std::time::{Duration, Instant};

use kafka_fixture::{KafkaCluster, KafkaFixtureError};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Generous: the machine may be busy, and a killed broker is only fenced
/// after the broker session timeout.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

fn start(brokers: usize) -> KafkaCluster {
    let started = Instant::now();
    match KafkaCluster::builder().brokers(brokers).start() {
        Ok(cluster) => {
            eprintln!(
                "{brokers}-node cluster ready in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            cluster
        }
        Err(e) => panic!("starting the fixture failed: {e}"),
    }
}

fn create_topic(cluster: &KafkaCluster, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .expect("admin client");
    let replicas = i32::try_from(cluster.replication_factor()).expect("replicas");
    let new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(replicas));
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = runtime
        .block_on(admin.create_topics([&new_topic], &options))
        .expect("create topics");
    for result in results {
        result.expect("topic created");
    }
}

fn transactional_producer(cluster: &KafkaCluster, id: &str) -> BaseProducer {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("transactional.id", id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    producer.init_transactions(CLIENT_TIMEOUT).expect("init transactions");
    producer
}

/// Sends `values` to partition 0 of `topic` inside one transaction, which
/// is then committed or aborted.
fn transaction(producer: &BaseProducer, topic: &str, values: &[&str], commit: bool) {
    producer.begin_transaction().expect("begin");
    for value in values {
        let record: BaseRecord<'_, (), str> = BaseRecord::to(topic).partition(0).payload(value);
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    // Delivery reports come through poll; flush waits for them.
    producer.flush(CLIENT_TIMEOUT).expect("flush");
    if commit {
        producer.commit_transaction(CLIENT_TIMEOUT).expect("commit");
    } else {
        producer.abort_transaction(CLIENT_TIMEOUT).expect("abort");
    }
}

/// Every payload of partition 0 of `topic`, from the beginning to the end
/// the isolation level lets the consumer see.
fn read_all(cluster: &KafkaCluster, topic: &str, isolation: &str) -> Vec<String> {
    // The partition is assigned, not subscribed: the group is never joined,
    // so there is no rebalance to wait for, and nothing to leave on drop.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "kafka-fixture-tests")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut values = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no end of partition after {values:?}");
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Ok(message)) => {
                let payload = message.payload_view::<str>().and_then(Result::ok).unwrap_or_default();
                values.push(payload.to_owned());
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
        }
    }
    // Assigned, not subscribed: closing leaves no group to wait for.
    drop(consumer);
    values
}

#[test]
fn read_committed_consumers_see_only_committed_transactions() {
    let mut cluster = start(1);
    assert_eq!(cluster.node_ids(), vec![1]);
    assert_eq!(
        cluster.bootstrap_servers(),
        cluster.broker_addr(1).expect("node 1").to_string()
    );
    let err = cluster.kill(7).expect_err("no node 7");
    assert!(
        matches!(&err, KafkaFixtureError::UnknownBroker { node: 7, ids } if ids == &[1]),
        "{err}"
    );
    create_topic(&cluster, "changes");
    let producer = transactional_producer(&cluster, "single-node");

    transaction(&producer, "changes", &["aborted-1", "aborted-2"], false);
    transaction(&producer, "changes", &["committed-1", "committed-2"], true);

    assert_eq!(
        read_all(&cluster, "changes", "read_committed"),
        vec!["committed-1", "committed-2"]
    );
    // The aborted records were written; only the isolation level hides them.
    assert_eq!(
        read_all(&cluster, "changes", "read_uncommitted"),
        vec!["aborted-1", "aborted-2", "committed-1", "committed-2"]
    );

    // A clean stop and start keeps the data and the ports.
    drop(producer);
    let restarted = Instant::now();
    cluster.restart(1).expect("restart");
    eprintln!("1-node cluster restarted in {:.1} s", restarted.elapsed().as_secs_f64());
    assert_eq!(
        read_all(&cluster, "changes", "read_committed"),
        vec!["committed-1", "committed-2"]
    );
}

#[test]
fn three_nodes_commit_with_a_broker_down_and_take_it_back() {
    let mut cluster = start(3);
    assert_eq!(cluster.node_ids(), vec![1, 2, 3]);
    assert_eq!((cluster.replication_factor(), cluster.min_insync_replicas()), (3, 2));
    create_topic(&cluster, "changes");
    // The first transaction creates the transaction state log, which needs
    // all three replicas up.
    let producer = transactional_producer(&cluster, "three-nodes");
    transaction(&producer, "changes", &["before"], true);

    // Kill the partition's leader: the commit must wait for a new leader
    // and an ISR of the two others.
    let metadata = producer
        .client()
        .fetch_metadata(Some("changes"), CLIENT_TIMEOUT)
        .expect("metadata");
    let leader = metadata
        .topics()
        .first()
        .and_then(|topic| topic.partitions().first())
        .map(|partition| partition.leader())
        .expect("a leader");
    let killed = Instant::now();
    cluster.kill(leader).expect("kill");
    assert!(!cluster.is_running(leader).expect("known node"));
    transaction(&producer, "changes", &["while-down-1", "while-down-2"], true);
    eprintln!(
        "committed {:.1} s after killing broker {leader}",
        killed.elapsed().as_secs_f64()
    );

    let restarted = Instant::now();
    cluster.restart(leader).expect("restart");
    eprintln!("broker {leader} back in {:.1} s", restarted.elapsed().as_secs_f64());
    assert!(cluster.is_running(leader).expect("known node"));
    transaction(&producer, "changes", &["after"], true);
    drop(producer);

    assert_eq!(
        read_all(&cluster, "changes", "read_committed"),
        vec!["before", "while-down-1", "while-down-2", "after"]
    );
}

#[test]
fn missing_jars_name_the_setup_script() {
    let empty = tempfile::tempdir().expect("temp dir");
    let err = KafkaCluster::builder()
        .libs_dir(empty.path())
        .start()
        .expect_err("no jars");
    assert!(matches!(err, KafkaFixtureError::LibsNotFound { .. }), "{err}");
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
}

#[test]
fn a_node_that_cannot_start_is_an_error_with_its_log() {
    let err = KafkaCluster::builder()
        .jvm_option("-Xmx1m")
        .start()
        .expect_err("no JVM runs in 1 MB");
    let KafkaFixtureError::StartFailed {
        node, reason, log_tail, ..
    } = &err
    else {
        panic!("expected StartFailed, got {err}");
    };
    assert_eq!(*node, 1);
    assert!(reason.contains("exited"), "{err}");
    assert!(log_tail.contains("heap"), "{err}");
}

/// The `liblz4-java*` files under `dir` (a few levels deep).
fn lz4_natives(dir: &std::path::Path, depth: usize) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with("liblz4-java") {
            found.push(path);
        } else if depth > 0 && path.is_dir() {
            found.extend(lz4_natives(&path, depth - 1));
        }
    }
    found
}

#[test]
fn a_killed_node_leaves_its_unpacked_libraries_in_its_own_directory() {
    let mut cluster = start(1);
    create_topic(&cluster, "compressed");
    // LZ4 batches make the broker load lz4-java, which unpacks its native
    // library into the JVM's temporary directory.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    for i in 0..100 {
        let value = format!("record {i} {}", "x".repeat(200));
        producer
            .send(BaseRecord::<(), _>::to("compressed").payload(&value))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    producer.flush(CLIENT_TIMEOUT).expect("flush");
    drop(producer);
    assert_eq!(read_all(&cluster, "compressed", "read_committed").len(), 100);
    cluster.kill(1).expect("kill");
    // A killed JVM removes nothing: the library stays where it was put,
    // which must be the node's directory (removed with the cluster), not
    // the machine's /tmp.
    let kept = lz4_natives(cluster.dir(), 3);
    assert!(
        !kept.is_empty() && kept.iter().all(|p| p.parent().is_some_and(|d| d.ends_with("tmp"))),
        "lz4-java's library under {}: {kept:?}",
        cluster.dir().display()
    );
}
