//! A private, throwaway PostgreSQL cluster.
//!
//! `pg-fixture` gives asof's integration tests, benchmarks and the
//! `asof demo` command a real PostgreSQL server of their own: [`PgCluster`]
//! runs `initdb` into a fresh temporary directory, configures it for
//! logical replication (`wal_level=logical`, replication slots and WAL
//! senders), starts `postgres` on a free port of 127.0.0.1, and stops it
//! and deletes the directory when dropped, also when a test panics.
//!
//! Central types: [`PgCluster`] (a running cluster: connection details,
//! blocking SQL helpers, stop/kill/restart), [`PgClusterBuilder`] (extra
//! settings, durability, password authentication) and [`FixtureError`].
//!
//! It is **not** for production data. `fsync` is off unless
//! [`PgClusterBuilder::durable`] is set, authentication is `trust` unless
//! [`PgClusterBuilder::password_auth`] is set, and everything is deleted
//! on drop. A cluster held in a `static` is never dropped, so its server
//! outlives the test binary: prefer one cluster per test.
//!
//! The server binaries are found through `$ASOF_PG_BIN`, then `PATH`, then
//! the newest `/usr/lib/postgresql/*/bin`. When the process runs as root
//! (as in many containers), the cluster is owned by and the server runs as
//! the `postgres` OS user, because PostgreSQL refuses to run as root.
//!
//! ```no_run
//! use pg_fixture::PgCluster;
//!
//! let cluster = PgCluster::start()?;
//! cluster.execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, NULL)")?;
//! assert_eq!(cluster.query_one_value("SELECT v FROM t")?, None);
//! assert_eq!(cluster.query_one_value("SHOW wal_level")?.as_deref(), Some("logical"));
//! // Async code connects over TCP:
//! let config: tokio_postgres::Config = cluster.config();
//! # let _ = config;
//! # Ok::<(), pg_fixture::FixtureError>(())
//! ```

mod binaries;
mod builder;
mod client;
mod cluster;
mod conf;
mod error;
mod privileges;
mod process;

pub use binaries::BIN_DIR_ENV;
pub use builder::PgClusterBuilder;
pub use cluster::PgCluster;
pub use error::FixtureError;
