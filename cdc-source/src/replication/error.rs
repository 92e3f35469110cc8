//! Errors of the replication connection, and which of them are worth a retry.

use std::fmt;
use std::io;

use postgres_protocol::message::backend::ErrorFields;
use tokio_postgres::error::SqlState;
use tokio_postgres::fallible_iterator::FallibleIterator;

/// An error reported by the server (`ErrorResponse`), with the fields a user
/// needs to act on it.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerError {
    /// `ERROR`, `FATAL` or `PANIC` (the non-localized form when the server
    /// sends it).
    pub severity: String,
    /// The five-character SQLSTATE code, e.g. `42704`.
    pub code: String,
    /// The primary message.
    pub message: String,
    /// Optional detail.
    pub detail: Option<String>,
    /// Optional hint on how to fix it.
    pub hint: Option<String>,
}

impl ServerError {
    pub(crate) fn from_fields(mut fields: ErrorFields<'_>) -> Result<ServerError, ReplicationError> {
        let mut error = ServerError {
            severity: String::new(),
            code: String::new(),
            message: String::new(),
            detail: None,
            hint: None,
        };
        let mut localized_severity = None;
        while let Some(field) = fields.next().map_err(ReplicationError::protocol_io)? {
            let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
            match field.type_() {
                b'V' => error.severity = value,
                b'S' => localized_severity = Some(value),
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => error.detail = Some(value),
                b'H' => error.hint = Some(value),
                _ => {}
            }
        }
        if error.severity.is_empty() {
            error.severity = localized_severity.unwrap_or_default();
        }
        Ok(error)
    }

    /// Whether retrying on a new connection may succeed, by the same rule
    /// as the capture's SQL connection (`crate::transient`): connection
    /// exceptions, shutdowns, "cannot connect now" and too many connections
    /// are; authentication, syntax, a missing slot (`42704`), a slot in use
    /// by another process (`55006`) or permissions need a person.
    pub fn is_transient(&self) -> bool {
        crate::transient::sqlstate_is_transient(&self.sqlstate())
    }

    /// The SQLSTATE as `tokio_postgres` names it.
    pub fn sqlstate(&self) -> SqlState {
        SqlState::from_code(&self.code)
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (SQLSTATE {})", self.severity, self.message, self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, "\nDETAIL: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nHINT: {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerError")
            .field("severity", &self.severity)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("detail", &self.detail)
            .field("hint", &self.hint)
            .finish()
    }
}

impl std::error::Error for ServerError {}

/// Anything that can go wrong on a replication connection.
///
/// Callers should ask [`ReplicationError::is_transient`] rather than match:
/// transient errors are answered by reconnecting and resuming from the last
/// acknowledged position; the others stop capture with the message shown.
/// No variant ever holds the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    /// The connection settings cannot be used (no host, no user, an
    /// unsupported TLS mode, a NUL byte in a name, ...).
    #[error("invalid replication connection settings: {0}")]
    Config(String),

    /// An argument cannot be sent to the server (e.g. it contains a NUL
    /// byte).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The TCP or Unix-socket connection could not be opened.
    #[error("could not connect to the server at {target}")]
    Connect {
        /// `host:port` or the socket path.
        target: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// Connecting (including TLS and authentication) took longer than the
    /// configured connect timeout.
    #[error("connecting to the server at {target} timed out")]
    ConnectTimeout {
        /// `host:port` or the socket path.
        target: String,
    },

    /// `sslmode=require` but the server does not accept TLS.
    #[error("the server does not accept TLS connections, but sslmode=require")]
    TlsRefused,

    /// The TLS library or handshake failed.
    #[error("TLS negotiation failed")]
    Tls(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// Authentication could not be completed on the client side: the server
    /// asked for a password and none is configured, asked for an unsupported
    /// method, or failed the SCRAM server proof. (A rejected password is a
    /// [`ReplicationError::Server`] error with SQLSTATE `28P01`.)
    #[error("authentication failed: {0}")]
    Authentication(String),

    /// The server reported an error.
    #[error("{0}")]
    Server(Box<ServerError>),

    /// Reading or writing the socket failed.
    #[error("I/O error on the replication connection")]
    Io(#[from] io::Error),

    /// The server closed the connection.
    #[error("the server closed the replication connection unexpectedly")]
    Closed,

    /// The server sent something this client does not understand.
    #[error("replication protocol error: {0}")]
    Protocol(String),
}

impl ReplicationError {
    /// Whether reconnecting and retrying may succeed without a person
    /// changing anything: network and I/O failures, a closed connection,
    /// timeouts, and the server errors listed at
    /// [`ServerError::is_transient`].
    pub fn is_transient(&self) -> bool {
        match self {
            ReplicationError::Connect { .. }
            | ReplicationError::ConnectTimeout { .. }
            | ReplicationError::Io(_)
            | ReplicationError::Closed => true,
            ReplicationError::Server(e) => e.is_transient(),
            ReplicationError::Tls(e) => is_tls_io_error(e.as_ref()),
            ReplicationError::Config(_)
            | ReplicationError::InvalidArgument(_)
            | ReplicationError::TlsRefused
            | ReplicationError::Authentication(_)
            | ReplicationError::Protocol(_) => false,
        }
    }

    /// The server's error, when the server reported one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            ReplicationError::Server(e) => Some(e),
            _ => None,
        }
    }

    /// The SQLSTATE code, when the server reported an error.
    pub fn code(&self) -> Option<&str> {
        self.server_error().map(|e| e.code.as_str())
    }

    pub(crate) fn protocol(what: impl Into<String>) -> Self {
        ReplicationError::Protocol(what.into())
    }

    /// A malformed message reported by `postgres-protocol`'s parser, which
    /// uses `io::Error` for that; it is not an I/O failure.
    pub(crate) fn protocol_io(e: io::Error) -> Self {
        ReplicationError::Protocol(e.to_string())
    }
}

impl From<ServerError> for ReplicationError {
    fn from(e: ServerError) -> Self {
        ReplicationError::Server(Box::new(e))
    }
}

/// A TLS handshake that failed because the network failed is worth a
/// retry; one that failed on certificates or protocol versions is not.
fn is_tls_io_error(e: &(dyn std::error::Error + 'static)) -> bool {
    match e.downcast_ref::<openssl::ssl::Error>() {
        Some(ssl) => ssl.io_error().is_some(),
        None => e.downcast_ref::<io::Error>().is_some(),
    }
}
