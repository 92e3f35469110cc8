//! Waiting for the store to hold everything committed before the source's
//! position, while a `tail` (another process) writes it.

use std::time::{Duration, Instant};

use changelog::{Lsn, Store};

use crate::error::VerifyError;

/// How often a read-only store catches up with its writer while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Returns once the store is complete through `lsn` (every transaction
/// committed before it is stored), refreshing a read-only store; fails
/// with [`VerifyError::StoreBehind`] after `timeout`.
pub async fn until_store_reaches(store: &mut Store, lsn: Lsn, timeout: Duration) -> Result<(), VerifyError> {
    let start = Instant::now();
    loop {
        store.refresh()?;
        if store.scanned_through() >= lsn {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(VerifyError::StoreBehind {
                wanted: lsn,
                reached: store.scanned_through(),
                waited: timeout,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
