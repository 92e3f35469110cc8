//! What can stop a verification before it reaches a verdict. A verdict of
//! "not equal" is not an error: it is a [`crate::Report`].

use std::time::Duration;

use cdc_source::replication::ReplicationError;
use cdc_source::CaptureError;
use changelog::{Lsn, StoreError};
use materializer::QueryError;

/// Why a verification could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The SQL connection to the source failed.
    #[error("cannot connect to the source")]
    Connect(#[source] CaptureError),
    /// The replication connection (the temporary slot) failed.
    #[error("cannot fix the source's position with a temporary replication slot")]
    Replication(#[from] ReplicationError),
    /// The server created the slot but exported no snapshot.
    #[error("the source exported no snapshot for the temporary slot")]
    NoSnapshot,
    /// A query on the source failed.
    #[error("query on the source failed")]
    Sql(#[from] tokio_postgres::Error),
    /// The store could not be read.
    #[error("cannot read the store")]
    Store(#[from] StoreError),
    /// The store could not answer at the source's position.
    #[error("cannot read the store at {lsn}")]
    Query {
        /// The cut asked for.
        lsn: Lsn,
        /// Why not.
        #[source]
        source: QueryError,
    },
    /// The store never caught up with the position the source was read at.
    #[error(
        "the store did not reach the source's position {wanted} within {}s (it is complete through {reached}); \
         is `asof tail` running?",
        waited.as_secs()
    )]
    StoreBehind {
        /// The source's position.
        wanted: Lsn,
        /// How far the store got.
        reached: Lsn,
        /// How long it was given.
        waited: Duration,
    },
}
