//! The replication client and the pgoutput decoder against a real
//! PostgreSQL (a private cluster from `pg-fixture`): slot creation with an
//! exported snapshot, streaming and decoding, exact acknowledgement across a
//! reconnect, and authentication (SCRAM, TLS with channel binding, a wrong
//! password, a Unix socket).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use cdc_source::pgoutput::{Message, OldTuple, ReplicaIdentity, TupleValue};
use cdc_source::replication::{LogicalStream, ReplicationClient, ReplicationError, ReplicationEvent, SlotSnapshot};
use changelog::Lsn;
use pg_fixture::PgCluster;
use tokio_postgres::config::SslMode;

/// Generous: the machine is small and shared, and a stuck stream should
/// fail the test rather than hang it.
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);
const BIG_LEN: usize = 20_000;

fn pgoutput_options(publication: &str) -> Vec<(&'static str, String)> {
    vec![
        ("proto_version", "1".to_owned()),
        ("publication_names", publication.to_owned()),
        ("messages", "true".to_owned()),
    ]
}

async fn start(client: ReplicationClient, slot: &str, from: Lsn, publication: &str) -> LogicalStream {
    let options = pgoutput_options(publication);
    let options: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
    client.start_logical(slot, from, &options).await.unwrap()
}

/// Reads decoded messages until `commits` transactions have been seen,
/// answering keepalives without acknowledging anything.
async fn read_transactions(stream: &mut LogicalStream, commits: usize) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut seen = 0;
    while seen < commits {
        let event = tokio::time::timeout(EVENT_TIMEOUT, stream.next_event())
            .await
            .expect("no replication event within the timeout")
            .unwrap()
            .expect("the server ended the stream");
        match event {
            ReplicationEvent::XLogData { data, .. } => {
                let message = Message::parse(&data).unwrap();
                if matches!(message, Message::Commit(_)) {
                    seen += 1;
                }
                messages.push(message);
            }
            ReplicationEvent::Keepalive {
                reply_requested: true, ..
            } => {
                let flushed = stream.flushed_sent();
                stream.send_status(flushed, flushed, flushed, false).await.unwrap();
            }
            ReplicationEvent::Keepalive { .. } => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
    messages
}

/// Splits a message sequence into transactions, checking each is framed by
/// Begin and Commit with matching LSNs.
fn transactions(messages: Vec<Message>) -> Vec<(cdc_source::pgoutput::CommitBody, Vec<Message>)> {
    let mut out = Vec::new();
    let mut current: Option<(Lsn, Vec<Message>)> = None;
    for message in messages {
        match message {
            Message::Begin(begin) => {
                assert!(current.is_none(), "Begin inside a transaction");
                current = Some((begin.final_lsn, Vec::new()));
            }
            Message::Commit(commit) => {
                let (final_lsn, body) = current.take().expect("Commit without Begin");
                assert_eq!(commit.commit_lsn, final_lsn);
                assert!(commit.end_lsn > commit.commit_lsn);
                out.push((commit, body));
            }
            other => current.as_mut().expect("change outside a transaction").1.push(other),
        }
    }
    assert!(current.is_none(), "unterminated transaction");
    out
}

fn text(value: &TupleValue) -> &str {
    match value {
        TupleValue::Text(bytes) => std::str::from_utf8(bytes).unwrap(),
        other => panic!("expected a text value, got {other:?}"),
    }
}

fn slot_confirmed_flush(cluster: &PgCluster, slot: &str) -> Lsn {
    cluster
        .query_one_value(&format!(
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
        ))
        .unwrap()
        .expect("slot has no confirmed_flush_lsn")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_decodes_and_acknowledges_exactly() {
    let cluster = PgCluster::start().unwrap();
    cluster
        .execute(
            "CREATE TABLE items (id int PRIMARY KEY, body text, n int);
             ALTER TABLE items ALTER COLUMN body SET STORAGE EXTERNAL;
             CREATE PUBLICATION asof_pub FOR TABLE items;
             INSERT INTO items VALUES (0, 'before the slot', 0);",
        )
        .unwrap();

    let mut client = ReplicationClient::connect(&cluster.config()).await.unwrap();
    let identity = client.identify_system().await.unwrap();
    assert_eq!(identity.dbname.as_deref(), Some("postgres"));
    let slot = client
        .create_logical_slot("asof_slot", "pgoutput", SlotSnapshot::Export)
        .await
        .unwrap();
    assert_eq!(slot.slot_name, "asof_slot");
    assert!(slot.consistent_point >= identity.xlog_pos);
    let snapshot_name = slot.snapshot_name.clone().expect("no exported snapshot");

    // Committed after the consistent point: streamed, not in the snapshot.
    cluster
        .execute("INSERT INTO items VALUES (100, 'after the slot', 1)")
        .unwrap();

    // While the replication client stays idle, another session can read
    // exactly the state at the consistent point.
    let (reader, connection) = cluster.config().connect(tokio_postgres::NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    reader
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .unwrap();
    reader
        .batch_execute(&format!("SET TRANSACTION SNAPSHOT '{snapshot_name}'"))
        .await
        .unwrap();
    let ids: Vec<i32> = reader
        .query("SELECT id FROM items ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ids, vec![0]);
    reader.batch_execute("COMMIT").await.unwrap();
    drop(reader);
    connection.await.unwrap().unwrap();

    cluster
        .execute(&format!(
            "BEGIN;
             INSERT INTO items VALUES (1, 'one', 1);
             INSERT INTO items VALUES (2, repeat('x', {BIG_LEN}), 2);
             COMMIT;"
        ))
        .unwrap();
    cluster.execute("UPDATE items SET n = 20 WHERE id = 2").unwrap();
    cluster.execute("DELETE FROM items WHERE id = 1").unwrap();
    cluster
        .execute("SELECT pg_logical_emit_message(true, 'asof', 'hello')")
        .unwrap();

    let mut stream = start(client, "asof_slot", slot.consistent_point, "asof_pub").await;
    let txs = transactions(read_transactions(&mut stream, 5).await);
    assert_eq!(txs.len(), 5);

    // 1: the row inserted right after the slot, preceded by its Relation.
    let (_, changes) = &txs[0];
    let [Message::Relation(relation), Message::Insert(insert)] = changes.as_slice() else {
        panic!("unexpected first transaction {changes:?}");
    };
    assert_eq!(
        (relation.namespace.as_str(), relation.name.as_str()),
        ("public", "items")
    );
    assert_eq!(relation.replica_identity, ReplicaIdentity::Default);
    let columns: Vec<(&str, bool, u32)> = relation
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.is_key, c.type_oid))
        .collect();
    assert_eq!(columns, vec![("id", true, 23), ("body", false, 25), ("n", false, 23)]);
    assert_eq!(insert.rel_id, relation.rel_id);
    let values: Vec<&str> = insert.new.values.iter().map(text).collect();
    assert_eq!(values, vec!["100", "after the slot", "1"]);

    // 2: two inserts, one with a 20 kB value stored out of line.
    let (_, changes) = &txs[1];
    let [Message::Insert(one), Message::Insert(two)] = changes.as_slice() else {
        panic!("unexpected second transaction {changes:?}");
    };
    assert_eq!(text(&one.new.values[0]), "1");
    assert_eq!(text(&two.new.values[1]), "x".repeat(BIG_LEN));

    // 3: the update did not touch the big value, so it is not re-sent; the
    // marker says "unchanged", which is not NULL.
    let (update_commit, changes) = &txs[2];
    let [Message::Update(update)] = changes.as_slice() else {
        panic!("unexpected third transaction {changes:?}");
    };
    assert_eq!(update.old, None);
    assert_eq!(update.new.values[1], TupleValue::UnchangedToast);
    assert_eq!((text(&update.new.values[0]), text(&update.new.values[2])), ("2", "20"));

    // 4: the delete carries the key.
    let (_, changes) = &txs[3];
    let [Message::Delete(delete)] = changes.as_slice() else {
        panic!("unexpected fourth transaction {changes:?}");
    };
    let OldTuple::Key(key) = &delete.old else {
        panic!("expected a key tuple, got {:?}", delete.old);
    };
    assert_eq!(text(&key.values[0]), "1");

    // 5: a transactional logical message.
    let (_, changes) = &txs[4];
    let [Message::LogicalMessage(message)] = changes.as_slice() else {
        panic!("unexpected fifth transaction {changes:?}");
    };
    assert!(message.transactional);
    assert_eq!(
        (message.prefix.as_str(), &message.content),
        ("asof", &Bytes::from_static(b"hello"))
    );

    // Acknowledge up to the update's commit only.
    let acked = update_commit.end_lsn;
    stream.send_status(acked, acked, acked, false).await.unwrap();
    assert_eq!(stream.flushed_sent(), acked);
    // `finish` waits for the server to end the command, so by then it has
    // processed the status update sent before.
    let client = stream.finish().await.unwrap();
    client.close().await.unwrap();
    assert_eq!(slot_confirmed_flush(&cluster, "asof_slot"), acked);

    // A new session resumes strictly after the acknowledged position: the
    // delete and the message come again, nothing before them does.
    let client = ReplicationClient::connect(&cluster.config()).await.unwrap();
    let mut stream = start(client, "asof_slot", Lsn::ZERO, "asof_pub").await;
    let again = transactions(read_transactions(&mut stream, 2).await);
    assert!(again.iter().all(|(commit, _)| commit.commit_lsn >= acked));
    assert_eq!(again[0].0, txs[3].0);
    assert_eq!(again[1].0, txs[4].0);
    assert!(
        matches!(again[0].1.as_slice(), [Message::Relation(_), Message::Delete(d)] if d == delete),
        "{:?}",
        again[0].1
    );
    let client = stream.finish().await.unwrap();
    assert_eq!(
        slot_confirmed_flush(&cluster, "asof_slot"),
        acked,
        "nothing was acknowledged"
    );

    // A missing slot is a definite error, and the client knows which.
    let err = client.start_logical("no_such_slot", Lsn::ZERO, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some("42704"), "{err}");
    assert!(!err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_slot_exports_a_snapshot_and_goes_away_with_its_connection() {
    let cluster = PgCluster::start().unwrap();
    let mut client = ReplicationClient::connect(&cluster.config()).await.unwrap();
    let slot = client
        .create_temporary_logical_slot("asof_check", "pgoutput", SlotSnapshot::Export)
        .await
        .unwrap();
    assert_eq!(slot.slot_name, "asof_check");
    assert!(slot.snapshot_name.is_some(), "no exported snapshot");
    let temporary = "SELECT count(*) FILTER (WHERE temporary) FROM pg_replication_slots WHERE slot_name = 'asof_check'";
    assert_eq!(cluster.query_one_value(temporary).unwrap().as_deref(), Some("1"));
    drop(client);
    for _ in 0..100 {
        if cluster.query_one_value(temporary).unwrap().as_deref() == Some("0") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the temporary slot outlived its connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_over_the_unix_socket() {
    let cluster = PgCluster::start().unwrap();
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(cluster.socket_dir())
        .port(cluster.port())
        .user(cluster.user())
        .dbname(cluster.dbname())
        .ssl_mode(SslMode::Require); // Ignored on a socket, as libpq does.
    let mut client = ReplicationClient::connect(&config).await.unwrap();
    assert!(client.server_version().is_some());
    let rows = client.simple_query("SHOW wal_level").await.unwrap();
    assert_eq!(rows, vec![vec![Some("logical".to_owned())]]);
    client.close().await.unwrap();
}

const PASSWORD: &str = "Sup3r-s3cret-pw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_login_and_wrong_password() {
    let cluster = PgCluster::builder().password_auth(PASSWORD).start().unwrap();
    cluster
        .execute(&format!(
            "CREATE ROLE capture WITH REPLICATION LOGIN PASSWORD '{PASSWORD}-capture'"
        ))
        .unwrap();
    let mut config = cluster.config();
    config.user("capture").password(format!("{PASSWORD}-capture"));
    let mut client = ReplicationClient::connect(&config).await.unwrap();
    assert!(client.identify_system().await.is_ok());
    let rows = client
        .simple_query("SELECT usename FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Some("capture".to_owned())]]);
    client.close().await.unwrap();

    let wrong = "Wr0ng-but-s3cret";
    config.password(wrong);
    let err = ReplicationClient::connect(&config).await.unwrap_err();
    assert_eq!(err.code(), Some("28P01"), "{err}");
    assert!(!err.is_transient());
    for text in [err.to_string(), format!("{err:?}"), error_chain(&err)] {
        assert!(!text.contains(wrong) && !text.contains(PASSWORD), "password in {text}");
    }

    // No password at all is a client-side error that says so.
    let mut no_password = tokio_postgres::Config::new();
    no_password
        .host("127.0.0.1")
        .port(cluster.port())
        .user("capture")
        .dbname("postgres");
    let err = ReplicationClient::connect(&no_password).await.unwrap_err();
    assert!(matches!(err, ReplicationError::Authentication(_)), "{err:?}");
    assert!(!err.is_transient());
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

/// With TLS on, `sslmode=require` encrypts, and SCRAM binds itself to the
/// TLS session (SCRAM-SHA-256-PLUS with tls-server-end-point).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_scram_channel_binding() {
    let cluster = PgCluster::builder().password_auth(PASSWORD).start().unwrap();
    enable_tls(&cluster);

    let mut config = cluster.config();
    config
        .ssl_mode(SslMode::Require)
        .channel_binding(tokio_postgres::config::ChannelBinding::Require);
    let mut client = ReplicationClient::connect(&config).await.unwrap();
    let rows = client
        .simple_query("SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Some("true".to_owned())]]);
    client.close().await.unwrap();

    // `prefer` takes TLS too when offered.
    let mut config = cluster.config();
    config.ssl_mode(SslMode::Prefer);
    let mut client = ReplicationClient::connect(&config).await.unwrap();
    let rows = client
        .simple_query("SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Some("true".to_owned())]]);
    client.close().await.unwrap();
}

/// The SQL connections (catalog, initial copy) encrypt under `require` and
/// `prefer` when the server offers TLS, and connect in the clear under
/// `prefer` when it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_connections_take_tls_when_asked_and_offered() {
    let ssl_of = |client: tokio_postgres::Client| async move {
        let row = client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap();
        row.get::<_, bool>(0)
    };
    let connect = |cluster: &PgCluster, mode: &str| {
        let info: cdc_source::conninfo::ConnInfo = format!("{} sslmode={mode}", cluster.conninfo()).parse().unwrap();
        async move { cdc_source::sql::connect(&info).await }
    };
    let cluster = PgCluster::builder().password_auth(PASSWORD).start().unwrap();
    assert!(!ssl_of(connect(&cluster, "prefer").await.unwrap()).await);
    assert!(
        connect(&cluster, "require").await.is_err(),
        "require without TLS on the server"
    );
    enable_tls(&cluster);
    assert!(ssl_of(connect(&cluster, "require").await.unwrap()).await);
    assert!(ssl_of(connect(&cluster, "prefer").await.unwrap()).await);
    assert!(!ssl_of(connect(&cluster, "disable").await.unwrap()).await);
}

/// Writes a fresh self-signed certificate into the data directory and
/// turns `ssl` on with a reload.
fn enable_tls(cluster: &PgCluster) {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut cert = X509Builder::new().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = cert.build();

    let dir = cluster.data_dir();
    let owner = std::fs::metadata(dir).unwrap();
    let cert_path = dir.join("test-server.crt");
    let key_path = dir.join("test-server.key");
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    for path in [&cert_path, &key_path] {
        // The server runs as the data directory's owner and refuses a key
        // others can read.
        std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert_path.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", key_path.display()),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        cluster.execute(&sql).unwrap();
    }
    // The reload is asynchronous; new sessions see it once it is done.
    for _ in 0..100 {
        if cluster.query_one_value("SHOW ssl").unwrap().as_deref() == Some("on") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("ssl did not turn on; see {}", cluster.log_file().display());
}
