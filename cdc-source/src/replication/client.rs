//! `ReplicationClient`: a connection in command mode, running replication
//! commands and plain SQL through the simple query protocol.

use std::fmt;

use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio_postgres::fallible_iterator::FallibleIterator;

use super::frame::{self, Conn, Frame};
use super::startup::{self, Session};
use super::ReplicationError;

/// A replication connection (`replication=database`) that is not streaming.
///
/// It runs replication commands (`IDENTIFY_SYSTEM`,
/// `CREATE_REPLICATION_SLOT`, ...) and SQL, one at a time, and becomes a
/// [`LogicalStream`](super::LogicalStream) with
/// [`start_logical`](ReplicationClient::start_logical).
///
/// Between commands the connection is idle, which is what keeps a snapshot
/// exported by `CREATE_REPLICATION_SLOT` usable by other sessions: hold the
/// client, run nothing on it, until they have imported the snapshot.
pub struct ReplicationClient {
    pub(crate) conn: Conn,
    pub(crate) session: Session,
    /// Set while a command is in flight; still set afterwards means its
    /// future was dropped halfway and the response was never fully read.
    pub(crate) desynchronized: bool,
}

/// The result of [`ReplicationClient::query`]: every value in text form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResult {
    /// Column names of the (last) row-returning statement.
    pub columns: Vec<String>,
    /// The rows; `None` is SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// The command tag of the last statement, e.g. `SELECT 1`.
    pub command_tag: String,
}

impl QueryResult {
    /// The position of the named column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The value of the named column in row `row`; `None` if the row or
    /// column does not exist or the value is NULL.
    pub fn value(&self, row: usize, column: &str) -> Option<&str> {
        let index = self.column(column)?;
        self.rows.get(row)?.get(index)?.as_deref()
    }
}

impl ReplicationClient {
    /// Connects to the first host of `config` as a logical replication
    /// connection (`replication=database`).
    ///
    /// Uses host (TCP name or Unix socket directory) or hostaddr, port,
    /// user, password, dbname, application_name, options, sslmode
    /// (`disable`, `prefer`, `require`; unverified TLS like libpq's),
    /// channel_binding and connect_timeout (which bounds the whole
    /// connect, including authentication). Authentication: trust,
    /// password, md5, scram-sha-256 (with channel binding over TLS).
    pub async fn connect(config: &tokio_postgres::Config) -> Result<ReplicationClient, ReplicationError> {
        let (conn, session) = startup::connect(config, startup::Mode::Replication).await?;
        Ok(ReplicationClient {
            conn,
            session,
            desynchronized: false,
        })
    }

    /// A parameter the server reported (`server_version`,
    /// `integer_datetimes`, `TimeZone`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.session.parameters.get(name).map(String::as_str)
    }

    /// The server's version string, e.g. `15.8 (Debian 15.8-1)`.
    pub fn server_version(&self) -> Option<&str> {
        self.parameter("server_version")
    }

    /// The process id of the walsender serving this connection (as in
    /// `pg_stat_replication.pid`).
    pub fn backend_pid(&self) -> Option<i32> {
        self.session.backend_pid
    }

    /// Runs one command through the simple query protocol and returns its
    /// rows in text form.
    ///
    /// Meant for one statement at a time; with several, the rows of all
    /// are returned under the column names of the last. `COPY` is refused.
    /// A server error is returned after the server is ready again, so the
    /// client stays usable. Not cancel-safe: if the future is dropped
    /// before it completes, later commands fail and the client must be
    /// replaced.
    pub async fn query(&mut self, sql: &str) -> Result<QueryResult, ReplicationError> {
        self.send_query(sql).await?;
        let mut result = QueryResult::default();
        let mut error = None;
        loop {
            match self.conn.read_frame().await? {
                Frame::Message(Message::RowDescription(body)) => {
                    result.columns = body
                        .fields()
                        .map(|f| Ok(f.name().to_owned()))
                        .collect()
                        .map_err(ReplicationError::protocol_io)?;
                }
                Frame::Message(Message::DataRow(body)) => {
                    let buffer = body.buffer();
                    let row: Vec<Option<String>> = body
                        .ranges()
                        .map_err(ReplicationError::protocol_io)
                        .map(|range| {
                            range
                                .map(|range| {
                                    buffer
                                        .get(range)
                                        .and_then(|raw| std::str::from_utf8(raw).ok())
                                        .map(str::to_owned)
                                        .ok_or_else(|| ReplicationError::protocol("malformed DataRow value"))
                                })
                                .transpose()
                        })
                        .collect()?;
                    result.rows.push(row);
                }
                Frame::Message(Message::CommandComplete(body)) => {
                    result.command_tag = body.tag().map_err(ReplicationError::protocol_io)?.to_owned();
                }
                Frame::Message(Message::EmptyQueryResponse) => {}
                Frame::Message(Message::NoticeResponse(body)) => frame::log_notice(&body),
                Frame::Message(Message::ParameterStatus(_)) => {}
                Frame::Message(Message::ErrorResponse(body)) => {
                    error.get_or_insert(frame::server_error(&body));
                }
                Frame::Message(Message::CopyInResponse(_)) => {
                    // The server answers with an ErrorResponse.
                    self.conn
                        .stage(|buf| frontend::copy_fail("COPY is not supported on this connection", buf))
                        .map_err(ReplicationError::protocol_io)?;
                    self.conn.flush().await?;
                }
                Frame::Message(Message::CopyOutResponse(_)) => {
                    error.get_or_insert(ReplicationError::protocol("COPY is not supported on this connection"));
                }
                Frame::CopyData(_) | Frame::CopyDone => {}
                Frame::CopyBothResponse => {
                    // End the stream at once; START_REPLICATION belongs to
                    // `start_logical`.
                    frontend::copy_done(self.conn.write_buf());
                    self.conn.flush().await?;
                    error.get_or_insert(ReplicationError::protocol("use start_logical to stream, not query"));
                }
                Frame::Message(Message::ReadyForQuery(_)) => {
                    self.desynchronized = false;
                    return match error {
                        Some(e) => Err(e),
                        None => Ok(result),
                    };
                }
                other => return Err(frame::unexpected(&other, "in a query response")),
            }
        }
    }

    /// Sends `sql` through the simple query protocol; the command is in
    /// flight until its response was read to `ReadyForQuery`.
    pub(crate) async fn send_query(&mut self, sql: &str) -> Result<(), ReplicationError> {
        if self.desynchronized {
            return Err(ReplicationError::protocol(
                "an earlier command was abandoned halfway; reconnect",
            ));
        }
        self.conn
            .stage(|buf| frontend::query(sql, buf))
            .map_err(|_| ReplicationError::InvalidArgument("the query contains a NUL byte".into()))?;
        self.desynchronized = true;
        self.conn.flush().await
    }

    /// Runs one command and returns its rows, each value in text form
    /// (`None` is NULL). See [`query`](ReplicationClient::query).
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, ReplicationError> {
        self.query(sql).await.map(|r| r.rows)
    }

    /// Ends the session politely (`Terminate`) and closes the socket.
    pub async fn close(mut self) -> Result<(), ReplicationError> {
        frontend::terminate(self.conn.write_buf());
        self.conn.flush().await?;
        self.conn.shutdown().await;
        Ok(())
    }
}

impl fmt::Debug for ReplicationClient {
    // Deliberately small: no configuration (and so never a password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicationClient")
            .field("backend_pid", &self.session.backend_pid)
            .field("server_version", &self.server_version())
            .finish_non_exhaustive()
    }
}

/// Quotes an identifier (slot, plugin or option name) for a replication
/// command: `"name"`, with embedded quotes doubled.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for a replication command or SQL (with
/// `standard_conforming_strings`, the default): `'value'`, with embedded
/// quotes doubled. Backslashes are not special.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
