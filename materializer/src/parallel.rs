//! A table as of a cut, read on several threads and handed on in key order.
//!
//! The table is split into key ranges ([`changelog::Store::split_table`]);
//! worker threads take the ranges in order and render each range's rows
//! into chunks of bytes, and the calling thread receives the chunks range
//! after range, so the output is exactly [`crate::snapshot`]'s. Each range
//! has a bounded queue of chunks: a worker ahead of the output waits rather
//! than holding the table in memory, and since the ranges are taken in
//! order, the range being output always belongs to a worker that is not
//! waiting on a later one.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use changelog::keys::KeyRange;
use changelog::{DatumRef, Store};

use crate::cut::Cut;
use crate::error::QueryError;
use crate::snapshot::{plan_snapshot, snapshot_part, SnapshotPlan};
use crate::table::TableAt;

/// Ranges per worker: enough that the last range of the table is short, so
/// the workers finish close together.
const RANGES_PER_WORKER: usize = 8;

/// A worker hands over its bytes in chunks of about this size.
const CHUNK_BYTES: usize = 256 << 10;

/// Chunks a range may queue ahead of the output (so at most about
/// `CHUNKS_AHEAD * CHUNK_BYTES` per worker wait in memory).
const CHUNKS_AHEAD: usize = 16;

/// Streams the rows of `table` at `cut` through `render` on up to
/// `workers` threads, and the rendered bytes through `emit` on this thread,
/// in key order. `render` appends one row (each copy of a row is rendered
/// once per copy, as [`crate::snapshot`] hands it) to the buffer. An error
/// of either stops the read and is returned.
pub fn snapshot_rendered<E>(
    store: &Store,
    table: &TableAt<'_>,
    cut: Cut,
    workers: usize,
    render: impl Fn(&[DatumRef<'_>], &mut Vec<u8>) -> Result<(), E> + Sync,
    mut emit: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<QueryError> + Send,
{
    let workers = workers.max(1);
    let ranges = store
        .split_table(table.id, workers * RANGES_PER_WORKER)
        .map_err(|e| E::from(QueryError::from(e)))?;
    // Planned once: the parts share what the plan reads.
    let plan = plan_snapshot(store, table, cut)?;
    let (senders, receivers): (Vec<_>, Vec<_>) = ranges
        .iter()
        .map(|_| sync_channel::<Result<Vec<u8>, E>>(CHUNKS_AHEAD))
        .map(|(tx, rx)| (Mutex::new(Some(tx)), rx))
        .unzip();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers.min(ranges.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(range), Some(slot)) = (ranges.get(i), senders.get(i)) else {
                    return;
                };
                let Some(tx) = slot.lock().ok().and_then(|mut held| held.take()) else {
                    return;
                };
                if !read_range(store, table, &plan, range, &render, &tx) {
                    return;
                }
            });
        }
        drain_in_order(receivers, &mut emit)
    })
}

/// Renders the rows of `range` into chunks sent to `tx`. Returns false
/// when reading should stop: an error (sent on to the output), or an
/// output that stopped listening.
fn read_range<E: From<QueryError>>(
    store: &Store,
    table: &TableAt<'_>,
    plan: &SnapshotPlan,
    range: &KeyRange,
    render: &impl Fn(&[DatumRef<'_>], &mut Vec<u8>) -> Result<(), E>,
    tx: &SyncSender<Result<Vec<u8>, E>>,
) -> bool {
    let fresh = || Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
    let mut buf = fresh();
    let mut listening = true;
    let read = snapshot_part(store, table, plan, range, |row| -> Result<_, E> {
        render(row, &mut buf)?;
        if buf.len() >= CHUNK_BYTES {
            listening = tx.send(Ok(std::mem::replace(&mut buf, fresh()))).is_ok();
        }
        Ok(if listening {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        })
    });
    match read {
        Err(e) => {
            // The output stops at this range's turn.
            let _ = tx.send(Err(e));
            false
        }
        Ok(_) if !listening => false,
        Ok(_) => buf.is_empty() || tx.send(Ok(buf)).is_ok(),
    }
}

/// Hands every range's chunks to `emit`, range after range.
fn drain_in_order<E>(
    receivers: Vec<Receiver<Result<Vec<u8>, E>>>,
    emit: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    for rx in receivers {
        for chunk in rx.iter() {
            emit(&chunk?)?;
        }
    }
    Ok(())
}
