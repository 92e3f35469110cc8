//! Blocking SQL helpers over the cluster's Unix socket.
//!
//! Each call runs a private current-thread tokio runtime on its own scoped
//! thread. That makes the helpers callable from plain `#[test]`s and from
//! inside a tokio runtime alike (`block_on` on a runtime thread would
//! panic), at the cost of a thread and a connection per call, which is
//! nothing next to a test's Postgres round trips. They use the simple query
//! protocol, so every value comes back in Postgres's own text form and NULL
//! stays distinct from the empty string.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use tokio_postgres::{Config, NoTls, SimpleQueryMessage};

use crate::FixtureError;

/// Rows as text, `None` for NULL.
pub(crate) type Rows = Vec<Vec<Option<String>>>;

/// Column count and rows of a query.
pub(crate) struct QueryOutput {
    pub(crate) columns: usize,
    pub(crate) rows: Rows,
}

/// A connection configuration for the cluster's socket: always trusted, so
/// it works whatever TCP authentication was chosen.
pub(crate) fn socket_config(socket_dir: &Path, port: u16, user: &str, dbname: &str) -> Config {
    let mut config = Config::new();
    config
        .host_path(socket_dir)
        .port(port)
        .user(user)
        .dbname(dbname)
        .application_name("pg-fixture")
        .connect_timeout(Duration::from_secs(5));
    config
}

/// Runs `make()`'s future to completion on a private runtime on a new
/// thread and returns its output.
pub(crate) fn run_on_private_runtime<T, F, Fut>(make: F) -> Result<T, FixtureError>
where
    T: Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = T>,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| FixtureError::io("starting a helper tokio runtime", e))?;
                Ok(runtime.block_on(make()))
            })
            .join()
            .map_err(|_| FixtureError::HelperPanicked)?
    })
}

/// Runs `sql` (one or more statements) and discards any rows.
pub(crate) fn execute(config: &Config, sql: &str) -> Result<(), FixtureError> {
    run_on_private_runtime(|| async {
        let client = connect(config).await?;
        client.batch_execute(sql).await.map_err(|source| FixtureError::Sql {
            sql: sql.to_owned(),
            source,
        })
    })?
}

/// Runs `sql` and returns the rows of all its statements, in order.
pub(crate) fn query(config: &Config, sql: &str) -> Result<QueryOutput, FixtureError> {
    run_on_private_runtime(|| async {
        let client = connect(config).await?;
        let messages = client.simple_query(sql).await.map_err(|source| FixtureError::Sql {
            sql: sql.to_owned(),
            source,
        })?;
        let mut output = QueryOutput {
            columns: 0,
            rows: Vec::new(),
        };
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(columns) => output.columns = columns.len(),
                SimpleQueryMessage::Row(row) => output
                    .rows
                    .push((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect()),
                _ => {}
            }
        }
        Ok(output)
    })?
}

/// Connects and drives the connection in the background of the private
/// runtime; the task ends when the returned client is dropped.
async fn connect(config: &Config) -> Result<tokio_postgres::Client, FixtureError> {
    let (client, connection) = config.connect(NoTls).await.map_err(|source| FixtureError::Connect {
        dbname: config.get_dbname().unwrap_or_default().to_owned(),
        source,
    })?;
    // A connection error also fails the pending query, which reports it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Tries once to connect; used to poll for readiness.
pub(crate) async fn try_connect(config: &Config) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    drop(client);
    // With the client gone the connection sends Terminate and finishes.
    connection.await
}

/// Quotes an SQL identifier ("my db" -> "\"my db\"").
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal, safe whatever `standard_conforming_strings`
/// says because backslashes use the `E''` form.
pub(crate) fn quote_literal(value: &str) -> String {
    if value.contains('\\') {
        format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("shop"), "\"shop\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b'"), r"E'a\\b'''");
    }

    #[test]
    fn private_runtime_works_inside_a_runtime() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let value = outer.block_on(async {
            run_on_private_runtime(|| async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                7
            })
        });
        assert_eq!(value.expect("ran"), 7);
    }
}
