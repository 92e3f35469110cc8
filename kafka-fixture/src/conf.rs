//! What the fixture writes into each node's `server.properties`.

use std::fmt::Write as _;
use std::path::Path;

use crate::{KafkaFixtureError, NodeId};

/// The only address the nodes listen on.
pub(crate) const HOST: &str = "127.0.0.1";

/// The two ports of a combined broker+controller node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodePorts {
    /// Clients and other brokers (`PLAINTEXT`).
    pub(crate) broker: u16,
    /// The KRaft quorum (`CONTROLLER`).
    pub(crate) controller: u16,
}

/// How internal and default topics are replicated in a cluster of a given
/// size: on up to three nodes, with one replica allowed to be down, so that
/// a test can kill a broker of a three-node cluster and still write with
/// `acks=all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replication {
    pub(crate) factor: usize,
    pub(crate) min_insync: usize,
}

impl Replication {
    pub(crate) fn for_brokers(brokers: usize) -> Replication {
        let factor = brokers.clamp(1, 3);
        Replication {
            factor,
            min_insync: factor.saturating_sub(1).max(1),
        }
    }
}

/// Settings for a cluster that lives a few seconds on a small machine.
const SMALL_AND_QUICK: [(&str, &str); 14] = [
    // Internal topics are created on first use, inside a test's time: few
    // partitions make that quick (the defaults are 50).
    ("offsets.topic.num.partitions", "4"),
    ("transaction.state.log.num.partitions", "4"),
    ("share.coordinator.state.topic.num.partitions", "4"),
    // A consumer group's first member would wait 3 s for others.
    ("group.initial.rebalance.delay.ms", "0"),
    // A killed broker is fenced, and its partitions move, after this long
    // without a heartbeat (default 9 s).
    ("broker.heartbeat.interval.ms", "500"),
    ("broker.session.timeout.ms", "4000"),
    // Few threads and small buffers: several nodes share 2 cores and small
    // heaps (the log cleaner's default buffer alone is 128 MB).
    ("num.network.threads", "2"),
    ("num.io.threads", "2"),
    ("background.threads", "2"),
    ("num.recovery.threads.per.data.dir", "1"),
    ("group.coordinator.threads", "1"),
    ("share.coordinator.threads", "1"),
    ("log.cleaner.threads", "1"),
    ("log.cleaner.dedupe.buffer.size", "8388608"),
];

/// Everything one node's `server.properties` holds.
pub(crate) struct NodeConf<'a> {
    pub(crate) node: NodeId,
    pub(crate) ports: NodePorts,
    /// `controller.quorum.voters`: every node, `id@host:port`.
    pub(crate) voters: &'a str,
    pub(crate) data_dir: &'a Path,
    pub(crate) replication: Replication,
    /// Written last, so they override the fixture's own choices.
    pub(crate) extra: &'a [(String, String)],
}

/// Rejects names that could not be a property key; values are escaped on
/// write so they need no check here.
pub(crate) fn validate_setting_name(name: &str) -> Result<(), KafkaFixtureError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(KafkaFixtureError::InvalidSetting { name: name.to_owned() })
    }
}

/// `controller.quorum.voters` for nodes with these ids and ports: a static
/// quorum, so that formatting a node's storage needs no ports and a start
/// can be retried on other ports.
pub(crate) fn voters(nodes: &[(NodeId, NodePorts)]) -> String {
    let voters: Vec<String> = nodes
        .iter()
        .map(|(node, ports)| format!("{node}@{HOST}:{}", ports.controller))
        .collect();
    voters.join(",")
}

/// The text of a node's `server.properties`.
pub(crate) fn server_properties(conf: &NodeConf<'_>) -> String {
    let NodePorts { broker, controller } = conf.ports;
    let factor = conf.replication.factor.to_string();
    let min_insync = conf.replication.min_insync.to_string();
    let fixed: Vec<(&str, String)> = vec![
        // One JVM is both broker and controller: half the processes.
        ("process.roles", "broker,controller".to_owned()),
        ("node.id", conf.node.to_string()),
        ("controller.quorum.voters", conf.voters.to_owned()),
        (
            "listeners",
            format!("PLAINTEXT://{HOST}:{broker},CONTROLLER://{HOST}:{controller}"),
        ),
        ("advertised.listeners", format!("PLAINTEXT://{HOST}:{broker}")),
        ("controller.listener.names", "CONTROLLER".to_owned()),
        ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_owned(),
        ),
        ("log.dirs", conf.data_dir.display().to_string()),
        ("num.partitions", "1".to_owned()),
        ("default.replication.factor", factor.clone()),
        ("min.insync.replicas", min_insync.clone()),
        ("offsets.topic.replication.factor", factor.clone()),
        ("transaction.state.log.replication.factor", factor.clone()),
        ("transaction.state.log.min.isr", min_insync.clone()),
        ("share.coordinator.state.topic.replication.factor", factor),
        ("share.coordinator.state.topic.min.isr", min_insync),
    ];
    let mut text = String::from("# Written by kafka-fixture (a throwaway test cluster).\n");
    let tuning = SMALL_AND_QUICK.iter().map(|&(k, v)| (k, v.to_owned()));
    let extra = conf.extra.iter().map(|(k, v)| (k.as_str(), v.clone()));
    for (name, value) in fixed.into_iter().chain(tuning).chain(extra) {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{name}={}", escape_value(&value));
    }
    text
}

/// Escapes a value for `java.util.Properties`: backslashes, line breaks,
/// and leading blanks (which the loader would skip).
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ' ' | '\t' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_nodes_survive_one_down() {
        assert_eq!(
            Replication::for_brokers(1),
            Replication {
                factor: 1,
                min_insync: 1
            }
        );
        assert_eq!(
            Replication::for_brokers(3),
            Replication {
                factor: 3,
                min_insync: 2
            }
        );
        assert_eq!(Replication::for_brokers(5).factor, 3);
    }

    #[test]
    fn voters_list_every_controller() {
        let ports = |b, c| NodePorts {
            broker: b,
            controller: c,
        };
        assert_eq!(
            voters(&[(1, ports(10, 11)), (2, ports(20, 21))]),
            "1@127.0.0.1:11,2@127.0.0.1:21"
        );
    }

    #[test]
    fn extra_settings_come_last_and_values_are_escaped() {
        let extra = [("num.partitions".to_owned(), " a\\b\nc".to_owned())];
        let text = server_properties(&NodeConf {
            node: 2,
            ports: NodePorts {
                broker: 9092,
                controller: 9093,
            },
            voters: "2@127.0.0.1:9093",
            data_dir: Path::new("/tmp/x/data"),
            replication: Replication::for_brokers(1),
            extra: &extra,
        });
        let fixed = text.find("num.partitions=1").expect("fixed");
        let user = text.find("num.partitions=\\ a\\\\b\\nc").expect("extra");
        assert!(fixed < user, "{text}");
        assert!(text.contains("node.id=2\n"));
        assert!(text.contains("listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n"));
        assert!(text.contains("log.dirs=/tmp/x/data\n"));
    }

    #[test]
    fn setting_names_are_checked() {
        assert!(validate_setting_name("log.retention.ms").is_ok());
        assert!(validate_setting_name("").is_err());
        assert!(validate_setting_name("a=b\nnode.id").is_err());
    }
}
