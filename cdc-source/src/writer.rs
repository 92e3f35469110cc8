//! The store writer: a dedicated thread that appends to the change log
//! while the stream keeps decoding, and reports what became durable.
//!
//! Commands are applied strictly in order. `Durable` is reported only after
//! the store call that made a position durable returned, which is the one
//! place acknowledgements to the server come from.

use std::thread::JoinHandle;

use changelog::{ChangeRecord, CommitInfo, Lsn, SpillTxn, Store, StoreError, Transaction};
use tokio::sync::mpsc;

/// Work for the writer.
pub enum WriterCmd {
    /// Append whole transactions (one batch, one fsync).
    Append(Vec<Transaction>),
    /// Start a spilled transaction at this commit LSN.
    SpillBegin(Lsn),
    /// One chunk of the spilled transaction.
    SpillChunk(Vec<ChangeRecord>),
    /// The spilled transaction's last records and commit.
    SpillFinish(CommitInfo, Vec<ChangeRecord>),
    /// The source confirmed nothing captured lies before this position.
    NoteScanned(Lsn),
}

/// What the writer reports.
pub enum WriterEvent {
    /// Everything up to this end LSN is durable and may be acknowledged;
    /// `changes` row changes were written by the command.
    Durable {
        /// Position to acknowledge.
        lsn: Lsn,
        /// Records the command stored.
        records: u64,
        /// Transactions the command stored.
        txns: u64,
    },
    /// A store call failed; the writer stopped.
    Failed(StoreError),
}

/// Handle to the writer thread.
pub struct Writer {
    /// Commands (bounded: a slow disk slows the stream instead of memory growing).
    pub tx: mpsc::Sender<WriterCmd>,
    /// Reports.
    pub rx: mpsc::UnboundedReceiver<WriterEvent>,
    handle: JoinHandle<Store>,
}

impl Writer {
    /// Moves the store into a new writer thread.
    pub fn spawn(store: Store) -> std::io::Result<Writer> {
        let (tx, mut cmd_rx) = mpsc::channel::<WriterCmd>(4);
        let (ev_tx, rx) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new().name("asof-writer".into()).spawn(move || {
            let mut store = store;
            let mut spill: Option<SpillTxn> = None;
            while let Some(cmd) = cmd_rx.blocking_recv() {
                let result = apply(&mut store, &mut spill, cmd);
                match result {
                    Ok(Some(ev)) => {
                        let _ = ev_tx.send(ev);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = ev_tx.send(WriterEvent::Failed(e));
                        break;
                    }
                }
            }
            // A spilled transaction cut off by a lost connection is sent
            // again from its start; remove what was written of it.
            if let Some(sp) = spill.take() {
                if let Err(e) = store.abort_spill(sp) {
                    tracing::warn!("could not remove a partly written transaction: {e}");
                }
            }
            // Leave the data in table files rather than the write-ahead log,
            // so readers opened later need not replay it.
            if let Err(e) = store.flush() {
                tracing::warn!("could not flush the store: {e}");
            }
            store
        })?;
        Ok(Writer { tx, rx, handle })
    }

    /// Stops the writer after the commands sent so far and returns the store.
    pub fn join(self) -> Store {
        drop(self.tx);
        match self.handle.join() {
            Ok(store) => store,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

fn apply(store: &mut Store, spill: &mut Option<SpillTxn>, cmd: WriterCmd) -> Result<Option<WriterEvent>, StoreError> {
    match cmd {
        WriterCmd::Append(txns) => {
            let records: u64 = txns.iter().map(|t| t.records.len() as u64).sum();
            let n = txns.len() as u64;
            store.append(&txns)?;
            let lsn = store.watermark().map_or(Lsn::ZERO, |w| w.end_lsn);
            Ok(Some(WriterEvent::Durable { lsn, records, txns: n }))
        }
        WriterCmd::SpillBegin(lsn) => {
            *spill = Some(store.begin_spill(lsn)?);
            Ok(None)
        }
        WriterCmd::SpillChunk(records) => {
            if let Some(sp) = spill.as_mut() {
                store.spill(sp, &records)?;
            }
            Ok(None)
        }
        WriterCmd::SpillFinish(commit, records) => {
            let Some(sp) = spill.take() else { return Ok(None) };
            let total = u64::from(sp.records()) + records.len() as u64;
            store.finish_spill(sp, &commit, &records)?;
            let lsn = store.watermark().map_or(Lsn::ZERO, |w| w.end_lsn);
            Ok(Some(WriterEvent::Durable {
                lsn,
                records: total,
                txns: 1,
            }))
        }
        WriterCmd::NoteScanned(lsn) => {
            store.note_scanned(lsn)?;
            Ok(Some(WriterEvent::Durable {
                lsn: store.scanned_through(),
                records: 0,
                txns: 0,
            }))
        }
    }
}
