//! Buffered, cancel-safe framing of backend messages on one connection.
//!
//! Reads go into one large buffer; complete messages are split off it
//! without copying, so a burst of small `CopyData` messages costs one
//! `read` system call per buffer fill rather than one per message, and a
//! `CopyData` body is handed out as a `Bytes` view of the buffer.
//!
//! All partially received data lives in [`Conn`], never in a future's
//! locals: dropping a pending [`Conn::read_frame`] (e.g. when the other
//! branch of a `tokio::select!` wins) loses nothing. Writes are staged in a
//! buffer that [`Conn::flush`] drains; a cancelled flush leaves the unsent
//! tail in that buffer for the next one, so a message is never cut short.

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::message::backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::{ReplicationError, ServerError};
use super::transport::Transport;

/// Bytes reserved for each buffer fill.
const READ_CHUNK: usize = 256 * 1024;
/// Below this much free space, the next read first reserves a new chunk
/// (so reads are never tiny).
const MIN_READ_SPACE: usize = 16 * 1024;
/// The largest message accepted. A server message is built in memory
/// limited to 1 GiB (`MaxAllocSize`); the margin covers framing headers.
/// The bound keeps a corrupt length from reserving gigabytes.
const MAX_MESSAGE_LEN: usize = (1 << 30) + 1024;
/// Tag (1 byte) and length (4 bytes) before every backend message body.
const HEADER_LEN: usize = 5;

/// `CopyBothResponse`, which `postgres-protocol`'s parser does not know.
const COPY_BOTH_RESPONSE_TAG: u8 = b'W';

/// One backend message.
pub(crate) enum Frame {
    /// `CopyData`: the body, a zero-copy view of the read buffer.
    CopyData(Bytes),
    /// `CopyDone`.
    CopyDone,
    /// `CopyBothResponse`: the server entered streaming (copy-both) mode.
    CopyBothResponse,
    /// Any other message, parsed by `postgres-protocol`.
    Message(backend::Message),
}

pub(crate) struct Conn {
    stream: Transport,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl Conn {
    pub(crate) fn new(stream: Transport) -> Self {
        Conn {
            stream,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
        }
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.stream
    }

    /// Appends one outgoing message to the write buffer (sent by
    /// [`Conn::flush`]) with an infallible writer.
    pub(crate) fn write_buf(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Appends one outgoing message with a writer that can fail, e.g. on a
    /// NUL byte in a string. `postgres-protocol`'s writers emit the tag and
    /// length before they fail, so a failed message is removed again rather
    /// than sent half-written.
    pub(crate) fn stage<E>(&mut self, write: impl FnOnce(&mut BytesMut) -> Result<(), E>) -> Result<(), E> {
        let before = self.wbuf.len();
        let result = write(&mut self.wbuf);
        if result.is_err() {
            self.wbuf.truncate(before);
        }
        result
    }

    /// Sends everything staged in the write buffer and flushes the socket
    /// (and the TLS layer).
    pub(crate) async fn flush(&mut self) -> Result<(), ReplicationError> {
        self.stream.write_all_buf(&mut self.wbuf).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Waits for the next complete message. Cancel-safe.
    pub(crate) async fn read_frame(&mut self) -> Result<Frame, ReplicationError> {
        loop {
            if let Some(frame) = self.split_frame()? {
                return Ok(frame);
            }
            self.fill().await?;
        }
    }

    /// Reads what the socket has into the read buffer. Cancel-safe:
    /// `read_buf` puts bytes directly in `rbuf`.
    pub(crate) async fn fill(&mut self) -> Result<(), ReplicationError> {
        if self.rbuf.capacity() - self.rbuf.len() < MIN_READ_SPACE {
            self.rbuf.reserve(READ_CHUNK);
        }
        if self.stream.read_buf(&mut self.rbuf).await? == 0 {
            return Err(ReplicationError::Closed);
        }
        Ok(())
    }

    /// Hands the bodies of the complete `CopyData` messages at the front of
    /// the read buffer to `f`, in order, as slices of the buffer, and drops
    /// them from it; how many. Stops at a message of another kind or at an
    /// incomplete one (for which it makes room). Unlike
    /// [`Conn::read_frame`], nothing is allocated or counted per message,
    /// which is what a `COPY` of many short rows needs.
    pub(crate) fn take_copy_data<E: From<ReplicationError>>(
        &mut self,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let (mut at, mut taken) = (0, 0);
        let mut short_by = 0;
        let mut failed = None;
        while let Some(&[tag, l0, l1, l2, l3]) = self.rbuf.get(at..).and_then(|b| b.first_chunk::<HEADER_LEN>()) {
            if tag != backend::COPY_DATA_TAG {
                break;
            }
            let total = match message_total(tag, [l0, l1, l2, l3]) {
                Ok(total) => total,
                Err(e) => {
                    failed = Some(E::from(e));
                    break;
                }
            };
            let Some(body) = self.rbuf.get(at + HEADER_LEN..at + total) else {
                short_by = at + total - self.rbuf.len();
                break;
            };
            let result = f(body);
            at += total;
            taken += 1;
            if let Err(e) = result {
                failed = Some(e);
                break;
            }
        }
        self.rbuf.advance(at);
        if short_by > 0 {
            self.rbuf.reserve(short_by);
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(taken),
        }
    }

    /// Splits one complete message off the read buffer, if there is one.
    pub(crate) fn split_frame(&mut self) -> Result<Option<Frame>, ReplicationError> {
        let Some(&[tag, l0, l1, l2, l3]) = self.rbuf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let total = message_total(tag, [l0, l1, l2, l3])?;
        if self.rbuf.len() < total {
            self.rbuf.reserve(total - self.rbuf.len());
            return Ok(None);
        }
        let frame = match tag {
            backend::COPY_DATA_TAG => {
                let mut frame = self.rbuf.split_to(total);
                frame.advance(HEADER_LEN);
                Frame::CopyData(frame.freeze())
            }
            backend::COPY_DONE_TAG => {
                self.rbuf.advance(total);
                Frame::CopyDone
            }
            COPY_BOTH_RESPONSE_TAG => {
                // The per-column formats say nothing useful for replication.
                self.rbuf.advance(total);
                Frame::CopyBothResponse
            }
            _ => match backend::Message::parse(&mut self.rbuf) {
                Ok(Some(message)) => Frame::Message(message),
                Ok(None) => {
                    return Err(ReplicationError::protocol(
                        "backend message parser wanted more bytes than the header announced",
                    ))
                }
                Err(e) => return Err(ReplicationError::protocol_io(e)),
            },
        };
        Ok(Some(frame))
    }

    /// Shuts the write side down; errors are irrelevant at that point.
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// Turns an `ErrorResponse` into the error it reports.
/// A message's whole length, its tag included, from the length field of
/// its header; an error when that is impossible or over the bound.
fn message_total(tag: u8, length: [u8; 4]) -> Result<usize, ReplicationError> {
    let len = u32::from_be_bytes(length);
    usize::try_from(len)
        .ok()
        .filter(|&len| len >= 4)
        .and_then(|len| len.checked_add(1))
        .filter(|&total| total <= MAX_MESSAGE_LEN)
        .ok_or_else(|| {
            ReplicationError::protocol(format!(
                "backend message {:?} has invalid length {len}",
                char::from(tag)
            ))
        })
}

pub(crate) fn server_error(body: &backend::ErrorResponseBody) -> ReplicationError {
    match ServerError::from_fields(body.fields()) {
        Ok(e) => e.into(),
        Err(e) => e,
    }
}

/// Logs a `NoticeResponse` (e.g. a `WARNING` about a slot) at a level
/// matching its severity.
pub(crate) fn log_notice(body: &backend::NoticeResponseBody) {
    match ServerError::from_fields(body.fields()) {
        Ok(n) if n.severity == "WARNING" => {
            tracing::warn!(code = %n.code, "server: {}", n.message)
        }
        Ok(n) => tracing::debug!(code = %n.code, severity = %n.severity, "server: {}", n.message),
        Err(e) => tracing::warn!("unreadable notice from server: {e}"),
    }
}

/// The message kind, for "unexpected message" errors.
pub(crate) fn describe(frame: &Frame) -> &'static str {
    use backend::Message as M;
    match frame {
        Frame::CopyData(_) => "CopyData",
        Frame::CopyDone => "CopyDone",
        Frame::CopyBothResponse => "CopyBothResponse",
        Frame::Message(m) => match m {
            M::AuthenticationOk
            | M::AuthenticationCleartextPassword
            | M::AuthenticationMd5Password(_)
            | M::AuthenticationSasl(_)
            | M::AuthenticationSaslContinue(_)
            | M::AuthenticationSaslFinal(_)
            | M::AuthenticationGss
            | M::AuthenticationGssContinue(_)
            | M::AuthenticationKerberosV5
            | M::AuthenticationScmCredential
            | M::AuthenticationSspi => "an authentication request",
            M::BackendKeyData(_) => "BackendKeyData",
            M::CommandComplete(_) => "CommandComplete",
            M::CopyInResponse(_) => "CopyInResponse",
            M::CopyOutResponse(_) => "CopyOutResponse",
            M::DataRow(_) => "DataRow",
            M::EmptyQueryResponse => "EmptyQueryResponse",
            M::ErrorResponse(_) => "ErrorResponse",
            M::NoticeResponse(_) => "NoticeResponse",
            M::NotificationResponse(_) => "NotificationResponse",
            M::ParameterStatus(_) => "ParameterStatus",
            M::ReadyForQuery(_) => "ReadyForQuery",
            M::RowDescription(_) => "RowDescription",
            _ => "an extended-query message",
        },
    }
}

/// An "unexpected message" protocol error.
pub(crate) fn unexpected(frame: &Frame, context: &str) -> ReplicationError {
    ReplicationError::protocol(format!("unexpected {} {context}", describe(frame)))
}
