//! Reading a topic's ends against a real broker.

use std::time::Duration;

use kafka_fixture::KafkaCluster;
use kafka_relay::{RelayError, Target};

/// A topic some brokers do not know yet (created a moment ago, elsewhere)
/// is asked about again rather than reported missing at once.
#[test]
fn a_topic_created_while_its_end_is_read_is_waited_for() {
    let kafka = KafkaCluster::start().expect("start Kafka");
    let target = Target {
        brokers: kafka.bootstrap_servers(),
        topic: "late.asof".into(),
    };
    let creator = {
        let target = target.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            target.ensure(Duration::from_secs(30))
        })
    };
    let end = target
        .end_offset(Duration::from_secs(30))
        .expect("the end once the topic exists");
    assert_eq!(end, 0);
    creator.join().expect("creator thread").expect("create the topic");
    assert_eq!(target.last_transaction(Duration::from_secs(30)).expect("read"), None);
}

/// A topic that never appears is reported once the time is up.
#[test]
fn a_topic_that_never_appears_is_reported_missing() {
    let kafka = KafkaCluster::start().expect("start Kafka");
    let target = Target {
        brokers: kafka.bootstrap_servers(),
        topic: "never.asof".into(),
    };
    let err = target.end_offset(Duration::from_secs(2)).expect_err("no such topic");
    assert!(matches!(err, RelayError::NoTopic { .. }), "{err:?}");
    assert!(err.to_string().contains("topic never.asof does not exist"), "{err}");
}
