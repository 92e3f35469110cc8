//! The store writer: a dedicated thread that appends to the change log
//! while the stream keeps decoding, and reports what became durable.
//!
//! Commands are applied strictly in order. A [`Durable`] report is sent
//! only after the store call that made a position durable returned, which
//! is where every acknowledgement to the server comes from. A command the
//! writer cannot carry out stops it with an error, never silently.
//!
//! With a [`Relay`], the writer's reports go to a second thread instead,
//! with the transactions just stored, which brings its own view of the
//! store up to date, has the relay pass on everything durable so far, and
//! only then forwards the reports: the store's next writes overlap the
//! relay's work, and a report still never reaches the stream before the
//! relay's system holds what it covers. Handing over the transactions
//! spares the relay reading back what it was just given; the queue to it
//! is short, so a relay that falls behind holds the writer back rather
//! than memory growing.

use std::thread::JoinHandle;

use changelog::{AppendOutcome, ChangeRecord, CommitInfo, Lsn, SpillTxn, Store, Transaction};
use tokio::sync::mpsc;

use crate::error::{CaptureError, Result};
use crate::relay::Relay;
use crate::sink::{Durable, Sink};

/// Commands waiting for the writer. Few: a slow disk slows the stream
/// instead of memory growing.
const QUEUE: usize = 4;

/// Reports, with the transactions they cover, waiting for the relay. Few:
/// a relay that falls behind slows the writer instead of memory growing,
/// and the transactions it is handed are the ones it would read next.
const RELAY_QUEUE: usize = 2;

/// A report and the transactions it covers that were logged as given.
type Relayed = (Result<Durable>, Vec<Transaction>);

/// Where the writer's reports go: straight to the stream, or through the
/// relay's thread.
enum Reports {
    Stream(mpsc::UnboundedSender<Result<Durable>>),
    Relay(mpsc::Sender<Relayed>),
}

impl Reports {
    fn send(&self, report: Result<Durable>, appended: Vec<Transaction>) {
        // A closed end means that side stopped; its own report says why.
        match self {
            Reports::Stream(tx) => {
                let _ = tx.send(report);
            }
            Reports::Relay(tx) => {
                let _ = tx.blocking_send((report, appended));
            }
        }
    }
}

/// Work for the writer thread.
enum Command {
    Append(Vec<Transaction>),
    SpillBegin(Lsn),
    SpillChunk(Vec<ChangeRecord>),
    SpillFinish(CommitInfo, Vec<ChangeRecord>),
    NoteScanned(Lsn),
}

/// Handle to the writer thread; the store's [`Sink`].
pub struct Writer {
    commands: mpsc::Sender<Command>,
    reports: mpsc::UnboundedReceiver<Result<Durable>>,
    handle: JoinHandle<Store>,
    relay: Option<JoinHandle<Box<dyn Relay>>>,
}

impl Writer {
    /// Moves the store, and the relay that passes the log on if any, into
    /// a new writer thread.
    pub fn spawn(store: Store, relay: Option<Box<dyn Relay>>) -> Result<Writer> {
        let (commands, command_rx) = mpsc::channel(QUEUE);
        let (report_tx, reports) = mpsc::unbounded_channel();
        let (store_reports, relay) = match relay {
            None => (Reports::Stream(report_tx), None),
            Some(relay) => {
                let view = Store::open_read_only(store.path())?;
                let (tx, rx) = mpsc::channel(RELAY_QUEUE);
                let handle = std::thread::Builder::new()
                    .name("asof-relay".into())
                    .spawn(move || run_relay(view, relay, rx, report_tx))
                    .map_err(CaptureError::WriterThread)?;
                (Reports::Relay(tx), Some(handle))
            }
        };
        let handle = std::thread::Builder::new()
            .name("asof-writer".into())
            .spawn(move || run(store, command_rx, store_reports))
            .map_err(CaptureError::WriterThread)?;
        Ok(Writer {
            commands,
            reports,
            handle,
            relay,
        })
    }

    /// Stops the writer after the commands sent so far and returns the
    /// store and the relay.
    pub fn join(self) -> (Store, Option<Box<dyn Relay>>) {
        drop(self.commands);
        let store = match self.handle.join() {
            Ok(store) => store,
            Err(p) => std::panic::resume_unwind(p),
        };
        // The writer's end closed the relay thread's input.
        let relay = self.relay.map(|h| match h.join() {
            Ok(relay) => relay,
            Err(p) => std::panic::resume_unwind(p),
        });
        (store, relay)
    }

    async fn send(&mut self, command: Command) -> Result<()> {
        if self.commands.send(command).await.is_ok() {
            return Ok(());
        }
        // The thread has stopped; its last report says why.
        match self.reports.try_recv() {
            Ok(Err(e)) => Err(e),
            _ => Err(CaptureError::WriterStopped),
        }
    }
}

impl Sink for Writer {
    async fn append(&mut self, txns: Vec<Transaction>) -> Result<()> {
        self.send(Command::Append(txns)).await
    }

    async fn begin_spill(&mut self, commit_lsn: Lsn) -> Result<()> {
        self.send(Command::SpillBegin(commit_lsn)).await
    }

    async fn spill_chunk(&mut self, records: Vec<ChangeRecord>) -> Result<()> {
        self.send(Command::SpillChunk(records)).await
    }

    async fn finish_spill(&mut self, commit: CommitInfo, records: Vec<ChangeRecord>) -> Result<()> {
        self.send(Command::SpillFinish(commit, records)).await
    }

    async fn note_scanned(&mut self, lsn: Lsn) -> Result<()> {
        self.send(Command::NoteScanned(lsn)).await
    }

    async fn durable(&mut self) -> Result<Durable> {
        self.reports.recv().await.unwrap_or(Err(CaptureError::WriterStopped))
    }
}

/// The relay's thread: for the reports that arrived, brings its view of the
/// store up to date, has the relay pass on what it holds, then forwards
/// them. An error (the writer's or the relay's) is forwarded and ends it.
fn run_relay(
    mut view: Store,
    mut relay: Box<dyn Relay>,
    mut reports: mpsc::Receiver<Relayed>,
    out: mpsc::UnboundedSender<Result<Durable>>,
) -> Box<dyn Relay> {
    while let Some((first, mut appended)) = reports.blocking_recv() {
        let mut batch = vec![first];
        while let Ok((r, more)) = reports.try_recv() {
            batch.push(r);
            appended.extend(more);
        }
        // What the reports say is durable: the relay's system must hold it
        // before they go on. Later transactions wait for their own reports,
        // so that their records come from `appended`, not the store.
        let through = batch
            .iter()
            .filter_map(|r| r.as_ref().ok()?.last_commit)
            .map(|w| w.commit_lsn)
            .max();
        let relayed = match through {
            None => Ok(()),
            Some(through) => view
                .refresh()
                .map_err(CaptureError::from)
                .and_then(|()| relay.relay(&view, through, &appended).map_err(CaptureError::Relay)),
        };
        // Freed here rather than on the stream's thread.
        drop(appended);
        if let Err(e) = relayed {
            let _ = out.send(Err(e));
            break;
        }
        for r in batch {
            let stop = r.is_err();
            let _ = out.send(r);
            if stop {
                return relay;
            }
        }
    }
    relay
}

/// The thread: applies commands until the handle is dropped or one fails.
fn run(mut store: Store, mut commands: mpsc::Receiver<Command>, reports: Reports) -> Store {
    let mut spill: Option<SpillTxn> = None;
    let relayed = matches!(reports, Reports::Relay(_));
    while let Some(command) = commands.blocking_recv() {
        match apply(&mut store, &mut spill, command) {
            Ok(Some((durable, mut appended))) => {
                if relayed {
                    appended.retain(Transaction::logged_as_given);
                } else {
                    appended.clear();
                }
                reports.send(Ok(durable), appended);
            }
            Ok(None) => {}
            Err(e) => {
                reports.send(Err(e), Vec::new());
                break;
            }
        }
    }
    // A spilled transaction cut off by a lost connection is sent again
    // from its start; remove what was written of it.
    if let Some(sp) = spill.take() {
        if let Err(e) = store.abort_spill(sp) {
            tracing::warn!("could not remove a partly written transaction: {e}");
        }
    }
    // Leave the data in table files rather than a long write-ahead log,
    // so readers opened later need not replay it.
    if let Err(e) = store.flush_for_readers() {
        tracing::warn!("could not flush the store: {e}");
    }
    // After a catch-up that overwrote its keys many times, leave `latest`
    // in one run for reads at `now`, when that is cheap beside the catch-up.
    match store.settle_latest() {
        Ok(s) => match s.merged_in {
            Some(took) => tracing::info!(
                "merged {} runs of the newest versions ({:.1} MiB) in {:.2} s",
                s.runs,
                s.bytes as f64 / f64::from(1 << 20),
                took.as_secs_f64()
            ),
            None => tracing::debug!("left the newest versions as they are: {s:?}"),
        },
        Err(e) => tracing::warn!("could not merge the newest versions: {e}"),
    }
    store
}

/// Carries out one command; the report when it made something durable,
/// with the transactions it stored whole.
fn apply(
    store: &mut Store,
    spill: &mut Option<SpillTxn>,
    command: Command,
) -> Result<Option<(Durable, Vec<Transaction>)>> {
    match command {
        Command::Append(mut txns) => {
            let records = txns.iter().map(|t| t.records.len() as u64).sum();
            let n = txns.len() as u64;
            let outcomes = store.append(&txns)?;
            let mut stored = outcomes.iter().map(|o| *o == AppendOutcome::Appended);
            txns.retain(|_| stored.next().unwrap_or(false));
            Ok(Some((durable_through_watermark(store, records, n), txns)))
        }
        Command::SpillBegin(lsn) => {
            if spill.is_some() {
                return Err(CaptureError::WriterCommand(
                    "begin a spilled transaction while another is open",
                ));
            }
            *spill = Some(store.begin_spill(lsn)?);
            Ok(None)
        }
        Command::SpillChunk(records) => {
            let sp = spill.as_mut().ok_or(CaptureError::WriterCommand(
                "add to a spilled transaction that was never begun",
            ))?;
            store.spill(sp, &records)?;
            Ok(None)
        }
        Command::SpillFinish(commit, records) => {
            let sp = spill.take().ok_or(CaptureError::WriterCommand(
                "finish a spilled transaction that was never begun",
            ))?;
            let total = u64::from(sp.records()) + records.len() as u64;
            store.finish_spill(sp, &commit, &records)?;
            Ok(Some((durable_through_watermark(store, total, 1), Vec::new())))
        }
        Command::NoteScanned(lsn) => {
            store.note_scanned(lsn)?;
            let durable = Durable {
                lsn: store.scanned_through(),
                records: 0,
                txns: 0,
                last_commit: store.watermark(),
            };
            Ok(Some((durable, Vec::new())))
        }
    }
}

/// The report after transactions were stored: durable through the end of
/// the newest stored commit.
fn durable_through_watermark(store: &Store, records: u64, txns: u64) -> Durable {
    Durable {
        lsn: store.watermark().map_or(Lsn::ZERO, |w| w.end_lsn),
        records,
        txns,
        last_commit: store.watermark(),
    }
}

#[cfg(test)]
mod tests {
    use changelog::{CommitTime, StoreOptions, Xid};

    use super::*;

    /// Sends the commands to a writer on a new store; its first report.
    fn first_report(commands: Vec<Command>) -> Result<Durable> {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = StoreOptions {
            create_if_missing: true,
            ..StoreOptions::default()
        };
        let mut writer = Writer::spawn(Store::open(dir.path(), &opts).expect("store"), None).expect("thread");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let report = runtime.block_on(async {
            for command in commands {
                writer.send(command).await?;
            }
            writer.durable().await
        });
        writer.join();
        report
    }

    fn assert_refused(commands: Vec<Command>) {
        let err = first_report(commands).expect_err("must fail");
        assert!(matches!(err, CaptureError::WriterCommand(_)), "{err:?}");
    }

    #[test]
    fn spill_commands_out_of_order_stop_the_writer_loudly() {
        assert_refused(vec![Command::SpillChunk(Vec::new())]);
        let commit = CommitInfo {
            commit_lsn: Lsn(10),
            end_lsn: Lsn(11),
            commit_time: CommitTime::now(),
            xid: Xid(1),
        };
        assert_refused(vec![Command::SpillFinish(commit, Vec::new())]);
        assert_refused(vec![Command::SpillBegin(Lsn(10)), Command::SpillBegin(Lsn(20))]);
    }

    #[test]
    fn noting_a_scanned_position_reports_it_durable() {
        let report = first_report(vec![Command::NoteScanned(Lsn(100))]).expect("durable");
        let expected = Durable {
            lsn: Lsn(100),
            records: 0,
            txns: 0,
            last_commit: None,
        };
        assert_eq!(report, expected);
    }
}
