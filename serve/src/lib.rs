//! `asof-serve`: the point-in-time SQL of `asof sql` over the PostgreSQL
//! wire protocol, so psql, psycopg, JDBC and other Postgres clients query
//! a table as it was at any captured moment.
//!
//! A session reads at `now` (the latest captured state, following the log
//! as it grows) until `SET asof.at = 'WHEN'` fixes a moment (any moment
//! `asof` accepts: a timestamp, `lsn:X/Y`, `-1h`, `now`); `SHOW asof.at`
//! tells the cut it resolved to and `RESET asof.at` returns to `now`.
//! Queries run on [`asof_sql::Engine`]; results go out in Postgres's text
//! format with the types of `wire_types`, or in binary for the scalar
//! types clients ask binary of. The simple and extended query protocols
//! are spoken, with SCRAM-SHA-256 passwords and TLS.
//!
//! What it is not for: it is read-only (statements that would change
//! something are refused with SQLSTATE 25006), it is not Postgres (its
//! `pg_catalog`, from [`asof_sql::pg_catalog`], describes the captured
//! tables and has no indexes, constraints or functions beyond what
//! clients' introspection needs), and it does not capture (`asof tail`
//! does, beside it).

mod binary;
mod cancel;
mod connection;
mod error;
mod params;
mod protocol;
mod scram;
mod server;
mod session;
mod statement;
mod stores;
mod text;
mod wire_types;

pub use error::{PgError, ServeError};
pub use server::{Access, Config, Server};
pub use session::{ASOF_AT, SERVER_VERSION};
