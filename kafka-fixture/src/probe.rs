//! The readiness probe: one Kafka `Metadata` request, spoken directly.
//!
//! A broker answers `Metadata` with the brokers it knows to be alive
//! (registered and unfenced). When every running node lists every running
//! node, each has joined the quorum, caught up with the metadata log and
//! accepts client requests: the cluster is ready. Speaking the protocol
//! directly keeps a Kafka client library out of the fixture's dependencies
//! and costs no JVM start, unlike Kafka's command-line tools.
//!
//! Only version 4 of the request is used (non-flexible encoding, still
//! served by Kafka 4), asking for no topics.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::NodeId;

const API_KEY_METADATA: i16 = 3;
const METADATA_VERSION: i16 = 4;
const CORRELATION_ID: i32 = 1;
const CLIENT_ID: &str = "kafka-fixture";
/// Larger answers are not a metadata response for no topics.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Asks the broker at `addr` which brokers are alive, by node id.
pub(crate) fn alive_brokers(addr: SocketAddr, timeout: Duration) -> std::io::Result<Vec<NodeId>> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(&metadata_request())?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size))
        .ok()
        .filter(|&n| n <= MAX_RESPONSE_BYTES)
        .ok_or_else(|| malformed("response size out of range"))?;
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body)?;
    parse_metadata_response(&body)
}

/// A size-prefixed request: header v1 (api key, version, correlation id,
/// client id), then `topics` as an empty array (no topics, just brokers)
/// and `allow_auto_topic_creation = false`.
fn metadata_request() -> Vec<u8> {
    let mut message = Vec::new();
    message.extend_from_slice(&API_KEY_METADATA.to_be_bytes());
    message.extend_from_slice(&METADATA_VERSION.to_be_bytes());
    message.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    // The client id is a short constant, so its length fits an i16.
    message.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    message.extend_from_slice(CLIENT_ID.as_bytes());
    message.extend_from_slice(&0i32.to_be_bytes());
    message.push(0);
    let mut framed = Vec::with_capacity(message.len() + 4);
    // A few dozen bytes: the length fits an i32.
    framed.extend_from_slice(&(message.len() as i32).to_be_bytes());
    framed.extend_from_slice(&message);
    framed
}

/// Reads the broker ids out of a Metadata v4 response (without its size
/// prefix): header (correlation id), throttle time, then the brokers array
/// of (node id, host, port, rack). The rest is not needed.
fn parse_metadata_response(body: &[u8]) -> std::io::Result<Vec<NodeId>> {
    let mut reader = Reader { rest: body };
    if reader.i32()? != CORRELATION_ID {
        return Err(malformed("unexpected correlation id"));
    }
    let _throttle_time_ms = reader.i32()?;
    let count = usize::try_from(reader.i32()?).map_err(|_| malformed("negative broker count"))?;
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(reader.i32()?);
        reader.skip_string()?;
        let _port = reader.i32()?;
        reader.skip_string()?;
    }
    Ok(ids)
}

/// A cursor over a response; every read checks the length first.
struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> std::io::Result<&[u8]> {
        if n > self.rest.len() {
            return Err(malformed("response ends early"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn i32(&mut self) -> std::io::Result<i32> {
        let bytes: [u8; 4] = self.take(4)?.try_into().map_err(|_| malformed("short i32"))?;
        Ok(i32::from_be_bytes(bytes))
    }

    fn i16(&mut self) -> std::io::Result<i16> {
        let bytes: [u8; 2] = self.take(2)?.try_into().map_err(|_| malformed("short i16"))?;
        Ok(i16::from_be_bytes(bytes))
    }

    /// A (nullable) string: i16 length, -1 for null, then the bytes.
    fn skip_string(&mut self) -> std::io::Result<()> {
        let len = self.i16()?;
        if let Ok(len) = usize::try_from(len) {
            self.take(len)?;
        }
        Ok(())
    }
}

fn malformed(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("malformed Metadata response: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as i16).to_be_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn response(brokers: &[(i32, &str, i32)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&CORRELATION_ID.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&(brokers.len() as i32).to_be_bytes());
        for (id, host, port) in brokers {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend(string(host));
            out.extend_from_slice(&port.to_be_bytes());
            out.extend_from_slice(&(-1i16).to_be_bytes());
        }
        out.extend(string("cluster"));
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out
    }

    #[test]
    fn reads_broker_ids() {
        let body = response(&[(1, "127.0.0.1", 9092), (3, "127.0.0.1", 9094)]);
        assert_eq!(parse_metadata_response(&body).expect("parse"), vec![1, 3]);
    }

    #[test]
    fn truncated_responses_are_errors_not_panics() {
        let body = response(&[(1, "127.0.0.1", 9092)]);
        for len in 0..20 {
            let prefix = body.get(..len).expect("prefix");
            assert!(parse_metadata_response(prefix).is_err(), "prefix of {len} bytes");
        }
        let mut huge = response(&[]);
        huge.splice(8..12, i32::MAX.to_be_bytes());
        assert!(parse_metadata_response(&huge).is_err());
    }

    #[test]
    fn request_is_size_prefixed() {
        let request = metadata_request();
        let size = i32::from_be_bytes(request.get(..4).expect("size").try_into().expect("4 bytes"));
        assert_eq!(usize::try_from(size).expect("size"), request.len() - 4);
        assert_eq!(request.get(4..6), Some(&API_KEY_METADATA.to_be_bytes()[..]));
    }
}
