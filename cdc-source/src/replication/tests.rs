//! Tests of the replication client that need no Postgres: pure helpers,
//! and a scripted fake server on a loopback socket for the protocol flows
//! (authentication, queries, streaming, cancel safety, clean shutdown).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use changelog::Lsn;
use postgres_protocol::authentication::md5_hash;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::config::SslMode;

use super::logical::{parse_copy_data, start_replication_command};
use super::*;

const PASSWORD: &str = "pw-Very$ecret-42";

#[test]
fn quotes_identifiers_and_literals() {
    assert_eq!(quote_identifier("asof"), "\"asof\"");
    assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    assert_eq!(quote_literal("it's"), "'it''s'");
    assert_eq!(quote_literal(r"C:\x"), r"'C:\x'");
}

#[test]
fn builds_start_replication_command() {
    let command = start_replication_command(
        "asof_slot",
        "0/16B3748".parse().unwrap(),
        &[("proto_version", "1"), ("publication_names", "pub'a,\"b\"")],
    );
    assert_eq!(
        command,
        "START_REPLICATION SLOT \"asof_slot\" LOGICAL 0/16B3748 \
         (\"proto_version\" '1', \"publication_names\" 'pub''a,\"b\"')"
    );
    assert_eq!(
        start_replication_command("s", Lsn((0xAB << 32) | 0x10), &[]),
        "START_REPLICATION SLOT \"s\" LOGICAL AB/10"
    );
}

fn xlog_data(start: u64, end: u64, time: i64, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(b'w');
    b.put_u64(start);
    b.put_u64(end);
    b.put_i64(time);
    b.put_slice(payload);
    b.freeze()
}

fn keepalive(end: u64, time: i64, reply: bool) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(b'k');
    b.put_u64(end);
    b.put_i64(time);
    b.put_u8(u8::from(reply));
    b.freeze()
}

#[test]
fn parses_xlog_data_without_copying() {
    let body = xlog_data(0x10, 0x20, -5, b"Bpayload");
    let event = parse_copy_data(body.clone()).unwrap();
    let ReplicationEvent::XLogData {
        wal_start,
        wal_end,
        server_time_us,
        data,
    } = event
    else {
        panic!("not XLogData");
    };
    assert_eq!((wal_start, wal_end, server_time_us), (Lsn(0x10), Lsn(0x20), -5));
    assert_eq!(&data[..], b"Bpayload");
    assert_eq!(data.as_ptr(), body[25..].as_ptr(), "payload was copied");
    // An empty payload is well-formed.
    assert!(parse_copy_data(xlog_data(1, 2, 3, b"")).is_ok());
}

#[test]
fn parses_keepalives() {
    assert_eq!(
        parse_copy_data(keepalive(0x99, 7, true)).unwrap(),
        ReplicationEvent::Keepalive {
            wal_end: Lsn(0x99),
            server_time_us: 7,
            reply_requested: true
        }
    );
}

#[test]
fn rejects_malformed_streaming_messages() {
    let full = xlog_data(1, 2, 3, b"");
    for end in 0..full.len() {
        assert!(parse_copy_data(full.slice(..end)).is_err(), "XLogData cut at {end}");
    }
    let ka = keepalive(1, 2, false);
    for end in 0..ka.len() {
        assert!(parse_copy_data(ka.slice(..end)).is_err(), "keepalive cut at {end}");
    }
    let mut long = ka.to_vec();
    long.push(0);
    assert!(parse_copy_data(Bytes::from(long)).is_err());
    let err = parse_copy_data(Bytes::from_static(b"x")).unwrap_err();
    assert!(!err.is_transient());
}

fn server_error(code: &str) -> ServerError {
    ServerError {
        severity: "FATAL".into(),
        code: code.into(),
        message: "m".into(),
        detail: Some("d".into()),
        hint: None,
    }
}

#[test]
fn classifies_transient_errors() {
    for code in ["57P01", "57P02", "57P03", "08006", "08P01", "53300"] {
        assert!(ReplicationError::from(server_error(code)).is_transient(), "{code}");
    }
    for code in ["28P01", "28000", "42601", "42704", "55006", "42501"] {
        assert!(!ReplicationError::from(server_error(code)).is_transient(), "{code}");
    }
    assert!(ReplicationError::Closed.is_transient());
    assert!(ReplicationError::Io(std::io::ErrorKind::ConnectionReset.into()).is_transient());
    assert!(!ReplicationError::Authentication("x".into()).is_transient());
    assert!(!ReplicationError::protocol("x").is_transient());
    assert_eq!(
        ReplicationError::from(server_error("42704")).to_string(),
        "FATAL: m (SQLSTATE 42704)\nDETAIL: d"
    );
}

// ---- a scripted fake server ----

/// The server side of one connection, reading frontend messages and
/// writing backend messages built by hand.
struct FakeServer {
    socket: TcpStream,
}

impl FakeServer {
    /// Reads the startup packet, answering an `SSLRequest` with `N` first.
    async fn read_startup(&mut self) -> Vec<(String, String)> {
        loop {
            let len = self.socket.read_i32().await.unwrap();
            let mut body = vec![0; usize::try_from(len - 4).unwrap()];
            self.socket.read_exact(&mut body).await.unwrap();
            let code = i32::from_be_bytes(body[..4].try_into().unwrap());
            if code == 80_877_103 {
                self.socket.write_all(b"N").await.unwrap();
                continue;
            }
            assert_eq!(code, 196_608, "protocol 3.0");
            let strings: Vec<String> = body[4..]
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8(s.to_vec()).unwrap())
                .collect();
            return strings.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect();
        }
    }

    async fn read_message(&mut self) -> (u8, Vec<u8>) {
        let tag = self.socket.read_u8().await.unwrap();
        let len = self.socket.read_i32().await.unwrap();
        let mut body = vec![0; usize::try_from(len - 4).unwrap()];
        self.socket.read_exact(&mut body).await.unwrap();
        (tag, body)
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
    }

    async fn ready(&mut self) {
        self.send(&message(b'Z', b"I")).await;
    }
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&i32::try_from(body.len() + 4).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn auth(code: i32, extra: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(extra);
    message(b'R', &body)
}

fn error_response(code: &str, text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', text)] {
        body.push(kind);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    message(b'E', &body)
}

fn parameter_status(name: &str, value: &str) -> Vec<u8> {
    message(b'S', format!("{name}\0{value}\0").as_bytes())
}

fn row_description(names: &[&str]) -> Vec<u8> {
    let mut body = i16::try_from(names.len()).unwrap().to_be_bytes().to_vec();
    for name in names {
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
    message(b'T', &body)
}

fn data_row(values: &[Option<&str>]) -> Vec<u8> {
    let mut body = i16::try_from(values.len()).unwrap().to_be_bytes().to_vec();
    for value in values {
        match value {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                body.extend_from_slice(&i32::try_from(v.len()).unwrap().to_be_bytes());
                body.extend_from_slice(v.as_bytes());
            }
        }
    }
    message(b'D', &body)
}

fn copy_data(body: &[u8]) -> Vec<u8> {
    message(b'd', body)
}

/// Starts a fake server running `script` for one connection, and a config
/// pointing at it.
async fn fake<F, Fut>(ssl_mode: SslMode, script: F) -> (tokio_postgres::Config, tokio::task::JoinHandle<()>)
where
    F: FnOnce(FakeServer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        script(FakeServer { socket }).await;
    });
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user("alice")
        .password(PASSWORD)
        .dbname("shop")
        .application_name("asof-test")
        .ssl_mode(ssl_mode)
        .connect_timeout(Duration::from_secs(10));
    (config, handle)
}

/// Trust authentication and an idle session.
async fn accept_trust(server: &mut FakeServer) {
    server.read_startup().await;
    server.send(&auth(0, &[])).await;
    server.send(&parameter_status("server_version", "15.99")).await;
    server.ready().await;
}

#[tokio::test]
async fn md5_login_and_query() {
    let (config, server) = fake(SslMode::Prefer, |mut s| async move {
        let params = s.read_startup().await;
        for expected in [
            ("user", "alice"),
            ("database", "shop"),
            ("replication", "database"),
            ("application_name", "asof-test"),
        ] {
            assert!(
                params.iter().any(|(k, v)| (k.as_str(), v.as_str()) == expected),
                "{expected:?} missing from {params:?}"
            );
        }
        s.send(&auth(5, &[1, 2, 3, 4])).await;
        let (tag, body) = s.read_message().await;
        assert_eq!(tag, b'p');
        let expected = md5_hash(b"alice", PASSWORD.as_bytes(), [1, 2, 3, 4]);
        assert_eq!(&body[..body.len() - 1], expected.as_bytes());
        s.send(&auth(0, &[])).await;
        s.send(&parameter_status("server_version", "15.99")).await;
        s.send(&message(b'K', &[0, 0, 0, 42, 0, 0, 0, 7])).await;
        s.ready().await;

        let (tag, body) = s.read_message().await;
        assert_eq!((tag, body.as_slice()), (b'Q', &b"IDENTIFY_SYSTEM\0"[..]));
        let mut reply = row_description(&["systemid", "timeline", "xlogpos", "dbname"]);
        reply.extend(data_row(&[
            Some("7300000000000000001"),
            Some("1"),
            Some("0/16B3748"),
            None,
        ]));
        reply.extend(message(b'C', b"IDENTIFY_SYSTEM\0"));
        reply.extend(message(b'Z', b"I"));
        s.send(&reply).await;

        // A failing command leaves the connection usable, and a query the
        // client refused (NUL byte) left nothing half-written behind.
        let (tag, body) = s.read_message().await;
        assert_eq!((tag, body.as_slice()), (b'Q', &b"SELEC\0"[..]));
        s.send(&error_response("42601", "syntax error")).await;
        s.ready().await;
        let (tag, _) = s.read_message().await;
        assert_eq!(tag, b'Q');
        s.send(&message(b'I', b"")).await;
        s.ready().await;
    })
    .await;

    let mut client = ReplicationClient::connect(&config).await.unwrap();
    assert_eq!(client.server_version(), Some("15.99"));
    assert_eq!(client.backend_pid(), Some(42));
    let identity = client.identify_system().await.unwrap();
    assert_eq!(identity.system_id, "7300000000000000001");
    assert_eq!(identity.timeline, 1);
    assert_eq!(identity.xlog_pos, Lsn(0x16B3748));
    assert_eq!(identity.dbname, None);
    let err = client.query("SELECT 'a\0b'").await.unwrap_err();
    assert!(matches!(err, ReplicationError::InvalidArgument(_)), "{err:?}");
    let err = client.query("SELEC").await.unwrap_err();
    assert_eq!(err.code(), Some("42601"));
    assert!(client.simple_query("").await.unwrap().is_empty());
    server.await.unwrap();
}

#[tokio::test]
async fn rejected_password_is_permanent_and_secret() {
    let (config, server) = fake(SslMode::Disable, |mut s| async move {
        s.read_startup().await;
        s.send(&auth(3, &[])).await;
        let (tag, _) = s.read_message().await;
        assert_eq!(tag, b'p');
        s.send(&error_response(
            "28P01",
            "password authentication failed for user \"alice\"",
        ))
        .await;
    })
    .await;
    let err = ReplicationClient::connect(&config).await.unwrap_err();
    assert_eq!(err.code(), Some("28P01"));
    assert!(!err.is_transient());
    for text in [err.to_string(), format!("{err:?}"), format!("{config:?}")] {
        assert!(!text.contains(PASSWORD), "password leaked: {text}");
    }
    server.await.unwrap();
}

#[tokio::test]
async fn missing_password_is_a_clear_error() {
    let (mut config, server) = fake(SslMode::Disable, |mut s| async move {
        s.read_startup().await;
        s.send(&auth(3, &[])).await;
    })
    .await;
    config = {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1")
            .port(config.get_ports()[0])
            .user("alice")
            .ssl_mode(SslMode::Disable);
        c
    };
    let err = ReplicationClient::connect(&config).await.unwrap_err();
    assert!(matches!(err, ReplicationError::Authentication(_)), "{err:?}");
    assert!(!err.is_transient());
    server.await.unwrap();
}

#[tokio::test]
async fn require_tls_fails_when_refused() {
    let (config, server) = fake(SslMode::Require, |mut s| async move {
        let len = s.socket.read_i32().await.unwrap();
        let code = s.socket.read_i32().await.unwrap();
        assert_eq!((len, code), (8, 80_877_103));
        s.send(b"N").await;
    })
    .await;
    let err = ReplicationClient::connect(&config).await.unwrap_err();
    assert!(matches!(err, ReplicationError::TlsRefused), "{err:?}");
    assert!(!err.is_transient());
    server.await.unwrap();
}

#[tokio::test]
async fn closed_connection_is_transient() {
    let (config, server) = fake(SslMode::Disable, |mut s| async move {
        s.read_startup().await;
    })
    .await;
    let err = ReplicationClient::connect(&config).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn start_replication_error_is_reported() {
    let (config, server) = fake(SslMode::Disable, |mut s| async move {
        accept_trust(&mut s).await;
        s.read_message().await;
        s.send(&error_response("42704", "replication slot \"nope\" does not exist"))
            .await;
        s.ready().await;
    })
    .await;
    let client = ReplicationClient::connect(&config).await.unwrap();
    let err = client.start_logical("nope", Lsn::ZERO, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("42704"));
    assert!(!err.is_transient());
    server.await.unwrap();
}

/// The server streams many messages in odd-sized pieces with pauses while
/// the client races every `next_event` against a short timer: no message
/// may be lost, duplicated or corrupted by the cancellations.
#[tokio::test]
async fn streaming_survives_cancellation_and_ends_cleanly() {
    const COUNT: u64 = 300;
    let (config, server) = fake(SslMode::Disable, |mut s| async move {
        accept_trust(&mut s).await;
        let (tag, body) = s.read_message().await;
        assert_eq!(tag, b'Q');
        assert!(body.starts_with(b"START_REPLICATION SLOT \"slot\" LOGICAL 0/100 ("));
        s.send(&message(b'W', &[0, 0, 0])).await;

        let mut wire = Vec::new();
        for i in 0..COUNT {
            let payload = vec![u8::try_from(i % 251).unwrap(); usize::try_from(i % 40).unwrap()];
            wire.extend(copy_data(&xlog_data(0x100 + i, 0x1000, 0, &payload)));
        }
        wire.extend(copy_data(&keepalive(0x1000, 0, true)));
        let mut rest = &wire[..];
        let mut step = 1;
        while !rest.is_empty() {
            let n = step.min(rest.len());
            s.send(&rest[..n]).await;
            rest = &rest[n..];
            step = step % 97 + 13;
            if step % 3 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }

        // The status update the client sends for the keepalive.
        let (tag, body) = s.read_message().await;
        assert_eq!(tag, b'd');
        let mut b = &body[..];
        assert_eq!(b.get_u8(), b'r');
        assert_eq!((b.get_u64(), b.get_u64(), b.get_u64()), (0x1000, 0x900, 0x1000));
        b.get_i64();
        assert_eq!((b.get_u8(), b.remaining()), (0, 0));
        // A lower flush position is not sent: it would move the slot back.
        let (_, body) = s.read_message().await;
        assert_eq!(u64::from_be_bytes(body[9..17].try_into().unwrap()), 0x900);

        // Clean end: in-flight data, then CopyDone, CommandComplete, ready.
        let (tag, _) = s.read_message().await;
        assert_eq!(tag, b'c');
        let mut tail = copy_data(&xlog_data(0x2000, 0x2000, 0, b"late"));
        tail.extend(message(b'c', b""));
        tail.extend(message(b'C', b"START_STREAMING\0"));
        tail.extend(message(b'Z', b"I"));
        s.send(&tail).await;
        // Back in command mode.
        let (tag, _) = s.read_message().await;
        assert_eq!(tag, b'Q');
        s.send(&message(b'C', b"SELECT 0\0")).await;
        s.ready().await;
    })
    .await;

    let client = ReplicationClient::connect(&config).await.unwrap();
    let mut stream = client
        .start_logical("slot", Lsn(0x100), &[("proto_version", "1")])
        .await
        .unwrap();
    let mut received = 0;
    let mut timeouts = 0;
    loop {
        let event = tokio::select! {
            event = stream.next_event() => event.unwrap().unwrap(),
            () = tokio::time::sleep(Duration::from_micros(300)) => {
                timeouts += 1;
                continue;
            }
        };
        match event {
            ReplicationEvent::XLogData { wal_start, data, .. } => {
                assert_eq!(wal_start, Lsn(0x100 + received));
                let expected = vec![u8::try_from(received % 251).unwrap(); usize::try_from(received % 40).unwrap()];
                assert_eq!(&data[..], &expected[..]);
                received += 1;
            }
            ReplicationEvent::Keepalive {
                wal_end,
                reply_requested,
                ..
            } => {
                assert!(reply_requested);
                assert_eq!(received, COUNT);
                stream.send_status(wal_end, Lsn(0x900), wal_end, false).await.unwrap();
                break;
            }
        }
    }
    assert!(timeouts > 0, "the test never cancelled a read");
    stream
        .send_status(Lsn(0x1000), Lsn(0x10), Lsn(0x1000), false)
        .await
        .unwrap();
    assert_eq!(stream.flushed_sent(), Lsn(0x900));
    let mut client = stream.finish().await.unwrap();
    assert_eq!(client.query("SELECT").await.unwrap().command_tag, "SELECT 0");
    server.await.unwrap();
}

#[tokio::test]
async fn server_error_while_streaming_is_typed() {
    let (config, server) = fake(SslMode::Disable, |mut s| async move {
        accept_trust(&mut s).await;
        s.read_message().await;
        s.send(&message(b'W', &[0, 0, 0])).await;
        s.send(&error_response(
            "57P01",
            "terminating connection due to administrator command",
        ))
        .await;
    })
    .await;
    let client = ReplicationClient::connect(&config).await.unwrap();
    let mut stream = client.start_logical("slot", Lsn::ZERO, &[]).await.unwrap();
    let err = stream.next_event().await.unwrap_err();
    assert_eq!(err.code(), Some("57P01"));
    assert!(err.is_transient());
    server.await.unwrap();
}

#[tokio::test]
async fn oversized_frame_length_is_rejected() {
    let (config, server) = fake(SslMode::Disable, |mut s| async move {
        accept_trust(&mut s).await;
        s.read_message().await;
        s.send(&message(b'W', &[0, 0, 0])).await;
        s.send(&[b'd', 0x7f, 0xff, 0xff, 0xff]).await;
        // Keep the socket open so the error is the length, not EOF.
        tokio::time::sleep(Duration::from_millis(200)).await;
    })
    .await;
    let client = ReplicationClient::connect(&config).await.unwrap();
    let mut stream = client.start_logical("slot", Lsn::ZERO, &[]).await.unwrap();
    let err = stream.next_event().await.unwrap_err();
    assert!(matches!(err, ReplicationError::Protocol(_)), "{err:?}");
    server.await.unwrap();
}

/// An ordinary session (no `replication` parameter) reads a `COPY` out:
/// rows split across socket writes and packed several to a write arrive
/// whole and in order; a server error in the middle ends it once the server
/// is ready, and the session stays usable; a statement that is not a
/// `COPY` out is refused the same way.
#[tokio::test]
async fn copy_out_hands_over_every_row_in_order() {
    let rows: Vec<Vec<u8>> = (0..3000).map(|i| format!("{i}\trow {i}\n").into_bytes()).collect();
    let sent = rows.clone();
    let (config, server) = fake(SslMode::Disable, |mut s| async move {
        let params = s.read_startup().await;
        assert!(!params.iter().any(|(k, _)| k == "replication"), "{params:?}");
        s.send(&auth(0, &[])).await;
        s.ready().await;

        let (tag, body) = s.read_message().await;
        assert_eq!((tag, body.as_slice()), (b'Q', &b"COPY t TO STDOUT\0"[..]));
        let mut stream = message(b'H', &[0, 0, 2, 0, 0, 0, 0]);
        for row in &sent {
            stream.extend(copy_data(row));
        }
        stream.extend(message(b'c', b""));
        stream.extend(message(b'C', b"COPY 3000\0"));
        stream.extend(message(b'Z', b"I"));
        // Uneven writes: messages cut anywhere, headers included.
        for piece in stream.chunks(997) {
            s.send(piece).await;
            tokio::task::yield_now().await;
        }

        let (tag, _) = s.read_message().await;
        assert_eq!(tag, b'Q');
        let mut reply = message(b'H', &[0, 0, 2, 0, 0, 0, 0]);
        reply.extend(copy_data(b"1\ta\n"));
        reply.extend(error_response("40001", "canceling statement due to conflict"));
        reply.extend(message(b'Z', b"I"));
        s.send(&reply).await;

        let (tag, _) = s.read_message().await;
        assert_eq!(tag, b'Q');
        let mut reply = row_description(&["x"]);
        reply.extend(data_row(&[Some("1")]));
        reply.extend(message(b'C', b"SELECT 1\0"));
        reply.extend(message(b'Z', b"I"));
        s.send(&reply).await;

        let (tag, _) = s.read_message().await;
        assert_eq!(tag, b'Q');
        s.send(&message(b'I', b"")).await;
        s.ready().await;
    })
    .await;

    let mut client = ReplicationClient::connect_sql(&config).await.unwrap();
    client.copy_out_start("COPY t TO STDOUT").await.unwrap();
    let mut got = Vec::new();
    let mut calls = 0;
    while client
        .copy_out_next(|row| {
            got.push(row.to_vec());
            Ok::<_, ReplicationError>(())
        })
        .await
        .unwrap()
    {
        calls += 1;
    }
    assert_eq!(got, rows);
    assert!(
        calls < rows.len(),
        "one call per row: rows were not handed over a buffer at a time"
    );

    client.copy_out_start("COPY u TO STDOUT").await.unwrap();
    let mut partial = Vec::new();
    let err = loop {
        match client
            .copy_out_next(|row| {
                partial.push(row.to_vec());
                Ok::<_, ReplicationError>(())
            })
            .await
        {
            Ok(true) => {}
            Ok(false) => panic!("the error was lost"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), Some("40001"), "{err}");
    assert_eq!(partial, vec![b"1\ta\n".to_vec()]);

    let refused = client.copy_out_start("SELECT 1").await.unwrap_err();
    assert!(refused.to_string().contains("not a COPY out"), "{refused}");
    // Still in step with the server.
    client.simple_query("").await.unwrap();
    server.await.unwrap();
}
