//! How librdkafka's own reports reach the user: failures come back to the
//! caller as errors, once, so the client's log and error callbacks only
//! trace; the end of a partition is not an error at all.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};

/// The context of every client asof creates.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::debug!("librdkafka {facility}: {message}")
            }
            _ => tracing::trace!("librdkafka {facility}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let end = matches!(error, KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF);
        if !end {
            tracing::debug!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for Quiet {}

impl ProducerContext for Quiet {
    type DeliveryOpaque = ();

    // A failed delivery fails the Kafka transaction's commit, which is
    // where it is handled.
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}
