//! Integration tests: each starts a real private cluster.

use std::net::TcpStream;
use std::time::Duration;

use pg_fixture::{FixtureError, PgCluster};

fn start() -> PgCluster {
    match PgCluster::start() {
        Ok(cluster) => cluster,
        Err(e) => panic!("starting the fixture failed: {e}"),
    }
}

#[test]
fn runs_sql_and_is_configured_for_logical_replication() {
    let cluster = start();
    assert_eq!(
        cluster.query_one_value("SHOW wal_level").expect("query"),
        Some("logical".to_owned())
    );
    assert_eq!(
        cluster.query_one_value("SHOW fsync").expect("query"),
        Some("off".to_owned())
    );
    assert_eq!(
        cluster.query_one_value("SHOW server_encoding").expect("query"),
        Some("UTF8".to_owned())
    );
    cluster
        .execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t VALUES (1, 'x'), (2, NULL), (3, '')",
        )
        .expect("execute");
    let rows = cluster.query_rows("SELECT id, v FROM t ORDER BY id").expect("query");
    let expected = vec![
        vec![Some("1".to_owned()), Some("x".to_owned())],
        vec![Some("2".to_owned()), None],
        vec![Some("3".to_owned()), Some(String::new())],
    ];
    assert_eq!(rows, expected, "NULL and '' must stay distinct");
    // A logical slot can be created: wal_level and max_replication_slots.
    cluster
        .execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
        .expect("create slot");
}

#[test]
fn query_one_value_rejects_other_shapes() {
    let cluster = start();
    let err = cluster.query_one_value("SELECT 1, 2").expect_err("two columns");
    assert!(
        matches!(
            err,
            FixtureError::NotOneValue {
                rows: 1,
                columns: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let err = cluster.query_one_value("SELECT 1 WHERE false").expect_err("no row");
    assert!(matches!(err, FixtureError::NotOneValue { rows: 0, .. }), "{err:?}");
    assert_eq!(cluster.query_one_value("SELECT NULL").expect("null"), None);
}

#[test]
fn sql_errors_carry_the_server_message() {
    let cluster = start();
    let err = cluster.execute("SELECT * FROM no_such_table").expect_err("must fail");
    let FixtureError::Sql { source, .. } = &err else {
        panic!("expected an SQL error, got {err:?}");
    };
    let db = source.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42P01");
}

#[test]
fn restart_keeps_data_and_port() {
    let mut cluster = start();
    let port = cluster.port();
    cluster
        .execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        .expect("execute");
    cluster.restart().expect("restart");
    assert_eq!(cluster.port(), port);
    assert_eq!(
        cluster.query_one_value("SELECT v FROM kept").expect("query"),
        Some("42".to_owned())
    );
}

#[test]
fn kill_then_restart_recovers_committed_data() {
    let mut cluster = start();
    cluster
        .execute("CREATE TABLE crash (v int); INSERT INTO crash VALUES (7)")
        .expect("execute");
    cluster.kill().expect("kill");
    assert!(!cluster.is_running());
    assert!(matches!(cluster.execute("SELECT 1"), Err(FixtureError::NotRunning)));
    cluster.restart().expect("restart after crash");
    assert!(cluster.is_running());
    assert_eq!(
        cluster.query_one_value("SELECT v FROM crash").expect("query"),
        Some("7".to_owned())
    );
}

#[test]
fn two_clusters_run_side_by_side() {
    let a = start();
    let b = start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    a.execute("CREATE TABLE only_in_a (v int)").expect("execute");
    assert_eq!(
        b.query_one_value("SELECT to_regclass('only_in_a')::text")
            .expect("query"),
        None
    );
}

#[test]
fn drop_stops_the_server_and_removes_the_directory() {
    let cluster = start();
    let port = cluster.port();
    let root = cluster.socket_dir().to_path_buf();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(cluster);
    assert!(!root.exists(), "{} still exists", root.display());
    assert!(
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_err(),
        "port {port} still accepts connections"
    );
}

#[test]
fn drop_cleans_up_during_a_panic() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let cluster = start();
        tx.send(cluster.socket_dir().to_path_buf()).expect("send");
        panic!("test failure while the cluster is alive");
    })
    .join();
    assert!(outcome.is_err());
    let root = rx.recv().expect("root");
    assert!(!root.exists(), "{} still exists", root.display());
}

#[test]
fn keep_on_drop_keeps_a_restartable_directory() {
    let cluster = PgCluster::builder().keep_on_drop(true).start().expect("start");
    cluster.execute("CREATE TABLE kept (v int)").expect("execute");
    let root = cluster.socket_dir().to_path_buf();
    let data_dir = cluster.data_dir().to_path_buf();
    drop(cluster);
    // Shut down cleanly: no server left, and the data is consistent.
    assert!(!data_dir.join("postmaster.pid").exists());
    assert!(data_dir.join("PG_VERSION").exists());
    std::fs::remove_dir_all(&root).expect("clean up");
}

#[test]
fn missing_binaries_give_a_clear_error() {
    let empty = tempfile::tempdir().expect("temp dir");
    let err = PgCluster::builder()
        .bin_dir(empty.path())
        .start()
        .expect_err("must fail");
    assert!(matches!(err, FixtureError::BinariesNotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("PostgreSQL server binaries (initdb, postgres) not found"),
        "{message}"
    );
    assert!(message.contains("apt-get install postgresql"), "{message}");
    assert!(message.contains("ASOF_PG_BIN"), "{message}");
}

#[test]
fn builder_settings_and_durability_apply() {
    let cluster = PgCluster::builder()
        .setting("max_wal_size", "1GB")
        .setting("cluster_name", "it's \\ quoted")
        .durable(true)
        .start()
        .expect("start");
    assert_eq!(
        cluster.query_one_value("SHOW max_wal_size").expect("query"),
        Some("1GB".to_owned())
    );
    assert_eq!(
        cluster.query_one_value("SHOW fsync").expect("query"),
        Some("on".to_owned())
    );
    let name = cluster.query_one_value("SHOW cluster_name").expect("query");
    assert_eq!(name.as_deref(), Some("it's \\ quoted"));
}

#[test]
fn a_server_that_cannot_start_reports_its_log() {
    let parent = tempfile::tempdir().expect("temp dir");
    let err = PgCluster::builder()
        .parent_dir(parent.path())
        .setting("shared_buffers", "plenty")
        .start()
        .expect_err("must fail");
    let FixtureError::StartFailed { reason, log_tail, .. } = &err else {
        panic!("expected StartFailed, got {err:?}");
    };
    assert!(reason.contains("exited"), "{reason}");
    assert!(log_tail.contains("shared_buffers"), "{log_tail}");
    assert!(err.to_string().contains(log_tail.as_str()));
    // Nothing is left behind.
    let left: Vec<_> = std::fs::read_dir(parent.path()).expect("read dir").collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn invalid_setting_names_are_rejected_before_initdb() {
    let err = PgCluster::builder()
        .setting("fsync = on\nwal_level", "minimal")
        .start()
        .expect_err("must fail");
    assert!(matches!(err, FixtureError::InvalidSetting { .. }), "{err:?}");
}

#[test]
fn create_database_and_run_sql_in_it() {
    let cluster = start();
    cluster.create_database("shop floor").expect("create");
    cluster
        .execute_in("shop floor", "CREATE TABLE orders (id int)")
        .expect("execute");
    assert_eq!(
        cluster
            .query_one_value_in("shop floor", "SELECT current_database()")
            .expect("query"),
        Some("shop floor".to_owned())
    );
    assert_eq!(
        cluster
            .query_rows_in("shop floor", "SELECT count(*) FROM orders")
            .expect("query"),
        vec![vec![Some("0".to_owned())]]
    );
}

#[test]
fn connection_strings_describe_the_cluster() {
    let cluster = start();
    assert_eq!(cluster.host(), "127.0.0.1");
    assert_eq!(cluster.user(), "postgres");
    assert_eq!(cluster.dbname(), "postgres");
    assert_eq!(
        cluster.conninfo(),
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", cluster.port())
    );
    assert_eq!(
        cluster.uri(),
        format!("postgresql://postgres@127.0.0.1:{}/postgres", cluster.port())
    );
    assert!(cluster.pg_bin("pg_recvlogical").exists());
    assert!(cluster.data_dir().join("PG_VERSION").exists());
    assert!(cluster.log_file().exists());
}

#[tokio::test]
async fn usable_from_inside_a_tokio_runtime() {
    // The blocking helpers must not panic inside a runtime.
    let cluster = start();
    cluster.execute("CREATE TABLE a (v int)").expect("execute");

    let (client, connection) = cluster
        .config()
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect over TCP");
    let driver = tokio::spawn(connection);
    let row = client.query_one("SELECT count(*) FROM a", &[]).await.expect("query");
    assert_eq!(row.get::<_, i64>(0), 0);
    drop(client);
    driver.await.expect("join").expect("connection");

    // Both string forms parse and point at the same server.
    for s in [cluster.conninfo(), cluster.uri()] {
        let config: tokio_postgres::Config = s.parse().expect("parse");
        assert_eq!(config.get_ports(), &[cluster.port()]);
    }
}

#[tokio::test]
async fn password_auth_requires_the_password_on_tcp() {
    let cluster = PgCluster::builder()
        .password_auth("s3cret 'q' \\ @/")
        .start()
        .expect("start");
    // The socket stays trusted, so the helpers work.
    assert_eq!(
        cluster.query_one_value("SELECT 1").expect("query"),
        Some("1".to_owned())
    );

    for s in [cluster.conninfo(), cluster.uri()] {
        let config: tokio_postgres::Config = s.parse().expect("parse");
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect with {s}: {e}"));
        tokio::spawn(connection);
        client.simple_query("SELECT 1").await.expect("query");
    }

    let mut wrong = cluster.config();
    wrong.password("wrong");
    let err = wrong
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("wrong password must fail");
    let code = err.as_db_error().map(|db| db.code().code().to_owned());
    assert_eq!(code.as_deref(), Some("28P01"), "{err}");
}
