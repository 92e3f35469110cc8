//! Errors of the capture.

use changelog::{Lsn, StoreError};

/// Why the capture stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The source is not set up so that it can be captured; the message
    /// says what to change. Not transient.
    #[error("{0}")]
    Setup(String),
    /// Continuing would leave a hole in history (slot dropped, invalidated
    /// or recreated, or the store is behind the slot). Not transient.
    #[error("{0}")]
    Gap(String),
    /// The store does not belong to this source.
    #[error("{0}")]
    WrongSource(String),
    /// Data from the server could not be understood.
    #[error("protocol error at {lsn}: {message}")]
    Protocol {
        /// Where in the stream.
        lsn: Lsn,
        /// What went wrong.
        message: String,
    },
    /// An ordinary SQL connection failed.
    #[error("database error")]
    Sql(#[from] tokio_postgres::Error),
    /// The replication connection failed.
    #[error("replication connection")]
    Replication(#[from] crate::replication::ReplicationError),
    /// The store failed.
    #[error("store")]
    Store(#[from] StoreError),
}

impl CaptureError {
    /// True when reconnecting may help (dropped connection, server restart).
    pub fn is_transient(&self) -> bool {
        match self {
            CaptureError::Sql(e) => {
                e.is_closed()
                    || e.code().is_some_and(|c| {
                        let c = c.code();
                        c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03"
                    })
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            }
            CaptureError::Replication(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Result alias for the capture.
pub type Result<T, E = CaptureError> = std::result::Result<T, E>;
