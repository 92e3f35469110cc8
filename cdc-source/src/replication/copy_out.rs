//! Reading `COPY ... TO STDOUT` on an ordinary session: the initial copy's
//! bulk reads.
//!
//! The server sends a text `COPY` as one `CopyData` message per row. A
//! general client turns each into a message object with a reference-counted
//! buffer and passes it from its connection task to the caller: about a
//! tenth of the CPU of reading a table of short rows. Here the rows of a
//! whole read buffer are handed over as slices of it, on the caller's task.

use postgres_protocol::message::backend::Message;

use super::frame::{self, Frame};
use super::startup::{self, Mode};
use super::{ReplicationClient, ReplicationError};

impl ReplicationClient {
    /// Connects an ordinary session (not a walsender) to the first host of
    /// `config`, as [`ReplicationClient::connect`] connects, for SQL and
    /// `COPY ... TO STDOUT` only: replication commands are refused by the
    /// server on it.
    pub async fn connect_sql(config: &tokio_postgres::Config) -> Result<ReplicationClient, ReplicationError> {
        let (conn, session) = startup::connect(config, Mode::Sql).await?;
        Ok(ReplicationClient {
            conn,
            session,
            desynchronized: false,
        })
    }

    /// Sends `sql`, a `COPY ... TO STDOUT`, and waits until the server
    /// starts sending its rows; then [`ReplicationClient::copy_out_next`]
    /// reads them. A statement that fails, or is not a `COPY` out, is an
    /// error once the server is ready again.
    pub async fn copy_out_start(&mut self, sql: &str) -> Result<(), ReplicationError> {
        self.send_query(sql).await?;
        let mut error = None;
        loop {
            match self.conn.read_frame().await? {
                Frame::Message(Message::CopyOutResponse(_)) if error.is_none() => return Ok(()),
                Frame::Message(Message::NoticeResponse(body)) => frame::log_notice(&body),
                Frame::Message(Message::ParameterStatus(_)) => {}
                Frame::Message(Message::ErrorResponse(body)) => {
                    error.get_or_insert(frame::server_error(&body));
                }
                Frame::Message(Message::ReadyForQuery(_)) => {
                    self.desynchronized = false;
                    return Err(error.unwrap_or_else(|| ReplicationError::protocol("the statement is not a COPY out")));
                }
                // Anything else answers a statement that is not a COPY
                // out: wait for the end of its response.
                _ => {
                    error.get_or_insert(ReplicationError::protocol("the statement is not a COPY out"));
                }
            }
        }
    }

    /// Hands the bodies of the next `CopyData` messages to `f`, in order:
    /// every one already received, or else those that arrive next. Returns
    /// `false`, with nothing handed over, once the `COPY` has ended and the
    /// session is ready for another command. A server error ends it with
    /// that error; an error from `f` ends it too, leaving the session
    /// unusable (the rest of the `COPY` is not read).
    pub async fn copy_out_next<E: From<ReplicationError>>(
        &mut self,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<bool, E> {
        let mut error = None;
        loop {
            if self.conn.take_copy_data(&mut f)? > 0 && error.is_none() {
                return Ok(true);
            }
            let Some(next) = self.conn.split_frame()? else {
                self.conn.fill().await?;
                continue;
            };
            match next {
                // `take_copy_data` hands these over first; only one after
                // an error could get here.
                Frame::CopyData(_) | Frame::CopyDone => {}
                Frame::Message(Message::CommandComplete(_)) => {}
                Frame::Message(Message::NoticeResponse(body)) => frame::log_notice(&body),
                Frame::Message(Message::ParameterStatus(_)) => {}
                Frame::Message(Message::ErrorResponse(body)) => {
                    error.get_or_insert(frame::server_error(&body));
                }
                Frame::Message(Message::ReadyForQuery(_)) => {
                    self.desynchronized = false;
                    return match error {
                        Some(e) => Err(e.into()),
                        None => Ok(false),
                    };
                }
                other => return Err(frame::unexpected(&other, "in a COPY out").into()),
            }
        }
    }
}
