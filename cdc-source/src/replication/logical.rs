//! `LogicalStream`: a connection in streaming (copy-both) mode, delivering
//! `XLogData` and keepalives and sending standby status updates on demand.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use changelog::Lsn;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use super::client::{quote_identifier, quote_literal, ReplicationClient};
use super::frame::{self, Conn, Frame};
use super::startup::Session;
use super::ReplicationError;

const XLOG_DATA_TAG: u8 = b'w';
const KEEPALIVE_TAG: u8 = b'k';
const STANDBY_STATUS_UPDATE_TAG: u8 = b'r';
/// `w`, WAL start, WAL end, server time.
const XLOG_DATA_HEADER_LEN: usize = 1 + 8 + 8 + 8;
/// `k`, WAL end, server time, reply flag.
const KEEPALIVE_LEN: usize = 1 + 8 + 8 + 1;
/// `r`, written, flushed, applied, client time, reply flag.
const STATUS_UPDATE_LEN: usize = 1 + 8 + 8 + 8 + 8 + 1;
/// 2000-01-01T00:00:00Z, the epoch of Postgres timestamps, in Unix time.
const PG_EPOCH: Duration = Duration::from_secs(946_684_800);

/// One message from the server while streaming.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicationEvent {
    /// Output of the logical decoding plugin: one `pgoutput` message.
    XLogData {
        /// The WAL position this data belongs to.
        wal_start: Lsn,
        /// The server's current end of WAL.
        wal_end: Lsn,
        /// Server clock when sent, microseconds since 2000-01-01 UTC.
        server_time_us: i64,
        /// The plugin's payload, a zero-copy view of the read buffer.
        data: Bytes,
    },
    /// Primary keepalive.
    Keepalive {
        /// The server's current end of WAL.
        wal_end: Lsn,
        /// Server clock when sent, microseconds since 2000-01-01 UTC.
        server_time_us: i64,
        /// The server wants a status update now, or it may disconnect
        /// when `wal_sender_timeout` runs out.
        reply_requested: bool,
    },
}

/// A logical replication stream, from [`ReplicationClient::start_logical`].
///
/// The stream never acknowledges anything by itself: the server learns a
/// position only through [`send_status`](LogicalStream::send_status), so
/// the caller decides exactly when a flush position is reported: after the
/// data up to it is durable, and never beyond. The caller must also answer
/// keepalives that request a reply and send a status at least every
/// `wal_sender_timeout` (60 s by default), or the server disconnects.
pub struct LogicalStream {
    conn: Conn,
    session: Session,
    /// We sent `CopyDone`.
    client_done: bool,
    /// The server sent `CopyDone`.
    server_done: bool,
    /// The highest flush position reported so far.
    flushed_sent: Lsn,
}

impl ReplicationClient {
    /// Starts streaming from `slot` with
    /// `START_REPLICATION SLOT "slot" LOGICAL X/Y ("name" 'value', ...)`.
    ///
    /// `start` is where the client wants to resume (normally the last
    /// durable commit's end LSN); the server starts at the later of it and
    /// the slot's confirmed flush position. For `pgoutput`, `options`
    /// would be e.g. `[("proto_version", "1"), ("publication_names",
    /// "asof"), ("messages", "true")]`; names and values are quoted here.
    pub async fn start_logical(
        mut self,
        slot: &str,
        start: Lsn,
        options: &[(&str, &str)],
    ) -> Result<LogicalStream, ReplicationError> {
        if self.desynchronized {
            return Err(ReplicationError::protocol(
                "an earlier command was abandoned halfway; reconnect",
            ));
        }
        let command = start_replication_command(slot, start, options);
        self.conn
            .stage(|buf| frontend::query(&command, buf))
            .map_err(|_| ReplicationError::InvalidArgument("a slot name or option contains a NUL byte".into()))?;
        self.conn.flush().await?;
        loop {
            match self.conn.read_frame().await? {
                Frame::CopyBothResponse => break,
                Frame::Message(Message::NoticeResponse(body)) => frame::log_notice(&body),
                Frame::Message(Message::ParameterStatus(_)) => {}
                Frame::Message(Message::ErrorResponse(body)) => return Err(frame::server_error(&body)),
                other => return Err(frame::unexpected(&other, "in answer to START_REPLICATION")),
            }
        }
        tracing::debug!(slot, %start, "logical replication started");
        Ok(LogicalStream {
            conn: self.conn,
            session: self.session,
            client_done: false,
            server_done: false,
            flushed_sent: Lsn::ZERO,
        })
    }
}

pub(super) fn start_replication_command(slot: &str, start: Lsn, options: &[(&str, &str)]) -> String {
    let mut command = format!("START_REPLICATION SLOT {} LOGICAL {start}", quote_identifier(slot));
    if !options.is_empty() {
        let options: Vec<String> = options
            .iter()
            .map(|(name, value)| format!("{} {}", quote_identifier(name), quote_literal(value)))
            .collect();
        command.push_str(&format!(" ({})", options.join(", ")));
    }
    command
}

impl LogicalStream {
    /// Waits for the next message; `None` once the server has ended the
    /// stream.
    ///
    /// Cancel-safe: a partially received message stays buffered in the
    /// stream, so this can race a timer in `tokio::select!`.
    pub async fn next_event(&mut self) -> Result<Option<ReplicationEvent>, ReplicationError> {
        while !self.server_done {
            match self.conn.read_frame().await? {
                Frame::CopyData(body) => return parse_copy_data(body).map(Some),
                Frame::CopyDone => self.server_done = true,
                // A walsender shutting down (server stop) may end the copy
                // with CommandComplete without a CopyDone first.
                Frame::Message(Message::CommandComplete(_) | Message::ReadyForQuery(_)) => self.server_done = true,
                Frame::Message(Message::NoticeResponse(body)) => frame::log_notice(&body),
                Frame::Message(Message::ParameterStatus(_)) => {}
                Frame::Message(Message::ErrorResponse(body)) => return Err(frame::server_error(&body)),
                other => return Err(frame::unexpected(&other, "while streaming")),
            }
        }
        Ok(None)
    }

    /// Sends a standby status update now and flushes the socket.
    ///
    /// `flushed` is what the server may forget: the slot's confirmed flush
    /// position moves there, and a restart resumes after it. Pass only a
    /// position whose data is durable. Reported flush positions never go
    /// backwards: a lower `flushed` than already sent is raised to it
    /// (PostgreSQL before 17 would otherwise move the slot back).
    /// `written` and `applied` only feed `pg_stat_replication`.
    ///
    /// If this future is dropped before completing, the unsent part of the
    /// update stays buffered and goes out before the next one.
    pub async fn send_status(
        &mut self,
        written: Lsn,
        flushed: Lsn,
        applied: Lsn,
        reply_requested: bool,
    ) -> Result<(), ReplicationError> {
        let flushed = flushed.max(self.flushed_sent);
        let mut body = BytesMut::with_capacity(STATUS_UPDATE_LEN);
        body.put_u8(STANDBY_STATUS_UPDATE_TAG);
        body.put_u64(written.0);
        body.put_u64(flushed.0);
        body.put_u64(applied.0);
        body.put_i64(now_since_pg_epoch_us());
        body.put_u8(u8::from(reply_requested));
        frontend::CopyData::new(body.freeze())
            .map_err(ReplicationError::protocol_io)?
            .write(self.conn.write_buf());
        self.conn.flush().await?;
        self.flushed_sent = flushed;
        tracing::trace!(%written, %flushed, %applied, "sent standby status update");
        Ok(())
    }

    /// The highest flush position sent with
    /// [`send_status`](LogicalStream::send_status), `0/0` before the first.
    pub fn flushed_sent(&self) -> Lsn {
        self.flushed_sent
    }

    /// Ends the stream cleanly and returns the connection to command mode.
    ///
    /// Sends `CopyDone`, discards data still in flight (it was not
    /// acknowledged, so the server sends it again next time), and waits
    /// for the server to finish the command.
    pub async fn finish(mut self) -> Result<ReplicationClient, ReplicationError> {
        if !self.client_done {
            frontend::copy_done(self.conn.write_buf());
            self.conn.flush().await?;
            self.client_done = true;
        }
        loop {
            match self.conn.read_frame().await? {
                Frame::CopyData(_) => {}
                Frame::CopyDone => self.server_done = true,
                Frame::Message(Message::CommandComplete(_) | Message::ParameterStatus(_)) => {}
                Frame::Message(Message::NoticeResponse(body)) => frame::log_notice(&body),
                Frame::Message(Message::ErrorResponse(body)) => return Err(frame::server_error(&body)),
                Frame::Message(Message::ReadyForQuery(_)) if self.server_done => break,
                other => return Err(frame::unexpected(&other, "while ending the stream")),
            }
        }
        Ok(ReplicationClient {
            conn: self.conn,
            session: self.session,
            desynchronized: false,
        })
    }
}

impl fmt::Debug for LogicalStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogicalStream")
            .field("backend_pid", &self.session.backend_pid)
            .field("flushed_sent", &self.flushed_sent)
            .field("server_done", &self.server_done)
            .finish_non_exhaustive()
    }
}

/// Decodes the body of a `CopyData` message received while streaming.
pub(super) fn parse_copy_data(body: Bytes) -> Result<ReplicationEvent, ReplicationError> {
    match body.first() {
        Some(&XLOG_DATA_TAG) => {
            let (Some(wal_start), Some(wal_end), Some(server_time_us)) =
                (be_u64(&body, 1), be_u64(&body, 9), be_i64(&body, 17))
            else {
                return Err(ReplicationError::protocol(format!(
                    "XLogData message of {} bytes is shorter than its {XLOG_DATA_HEADER_LEN}-byte header",
                    body.len()
                )));
            };
            Ok(ReplicationEvent::XLogData {
                wal_start: Lsn(wal_start),
                wal_end: Lsn(wal_end),
                server_time_us,
                // In range: the header fields above were read.
                data: body.slice(XLOG_DATA_HEADER_LEN..),
            })
        }
        Some(&KEEPALIVE_TAG) => {
            let (Some(wal_end), Some(server_time_us), Some(&reply), KEEPALIVE_LEN) =
                (be_u64(&body, 1), be_i64(&body, 9), body.get(17), body.len())
            else {
                return Err(ReplicationError::protocol(format!(
                    "keepalive message has {} bytes, not {KEEPALIVE_LEN}",
                    body.len()
                )));
            };
            Ok(ReplicationEvent::Keepalive {
                wal_end: Lsn(wal_end),
                server_time_us,
                reply_requested: reply != 0,
            })
        }
        Some(&tag) => Err(ReplicationError::protocol(format!(
            "unknown streaming message type {tag:#04x}"
        ))),
        None => Err(ReplicationError::protocol("empty CopyData message while streaming")),
    }
}

fn be_u64(buf: &[u8], at: usize) -> Option<u64> {
    buf.get(at..)?.first_chunk::<8>().map(|b| u64::from_be_bytes(*b))
}

fn be_i64(buf: &[u8], at: usize) -> Option<i64> {
    buf.get(at..)?.first_chunk::<8>().map(|b| i64::from_be_bytes(*b))
}

/// The client clock for status updates, in the server's timestamp unit.
fn now_since_pg_epoch_us() -> i64 {
    let since_pg_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(PG_EPOCH);
    i64::try_from(since_pg_epoch.as_micros()).unwrap_or(i64::MAX)
}
