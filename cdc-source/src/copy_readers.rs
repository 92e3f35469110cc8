//! The initial copy's readers: connections that each import the slot's
//! exported snapshot and read pieces of tables (whole tables, or ranges of
//! a large table's pages), parsing the COPY text as it arrives. Several
//! tables, and the pieces of one, are read at once: one reader runs on the
//! copy's task; each other one has a thread of its own.
//!
//! Each reader reads on a session of its own, opened with the crate's own
//! wire client ([`ReplicationClient::connect_sql`]), which hands the rows
//! of a read buffer over as slices of it: a general client spends about a
//! tenth of the copy's CPU passing each row, a message of its own, from its
//! connection task.
//!
//! The copy's own transaction locks every table before the readers start.
//! A reader must not wait for a lock: DDL queued behind the copy's locks
//! would be granted before it, and wait for the copy to end, which waits
//! for that reader. So the readers lock with `NOWAIT` as they begin, and a
//! reader that cannot lock leaves the work to the rest; the one on the
//! copy's task then reads on the copy's own connection, which always can.
//!
//! What a reader parses goes to the copy ([`crate::snapshot`]) over a
//! bounded channel: blocks of encoded rows for a table loaded in bulk,
//! chunks of `Read` records for the others. A block never spans two
//! pieces, so when a table's key order follows its physical order the
//! files built from its blocks do not overlap.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use changelog::{ChangeRecord, RowBlock, RowImage, TableId, TableName};
use futures_util::{pin_mut, TryStreamExt};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::catalog;
use crate::conninfo::ConnInfo;
use crate::error::{CaptureError, CopyProblem, Result};
use crate::replication::ReplicationClient;
use crate::text_formats::{for_each_copy_field, parse_copy_line};

/// Encoded bytes per block of a table loaded in bulk. Larger blocks mean
/// fewer files when the table's key order is not its physical order.
const BLOCK_BYTES: usize = 16 << 20;

/// The smallest block a piece's end is cut into (see [`block_limit`]).
const MIN_BLOCK_BYTES: usize = 1 << 20;

/// Room past `BLOCK_BYTES` for the row that fills a block, so a block's
/// buffer is allocated once (rows longer than this grow it).
const ROW_SLACK: usize = 1 << 20;

/// Records per chunk of a table not loaded in bulk.
const CHUNK_ROWS: usize = 20_000;

/// Emptied blocks kept for reuse: fresh pages cost their zeroing.
const SPARE_BLOCKS: usize = 4;

/// Part of one table to read.
#[derive(Clone, Debug)]
pub(crate) struct Piece {
    /// The table's index in the copy's list.
    pub table: usize,
    /// Its name, for errors.
    pub name: TableName,
    /// The COPY statement.
    pub sql: String,
    /// What its rows become.
    pub shape: Shape,
    /// The planner's estimate of its rows, when it has one.
    pub estimate: Option<u64>,
}

/// What a piece's rows are parsed into.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    /// Blocks of encoded rows of this many values.
    Bulk { width: usize },
    /// `Read` records of the table, rows of this many values.
    Records { table: TableId, width: usize },
}

/// What a reader sends.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A reader of its own connection connected, imported the snapshot and
    /// locked the tables, or could not (the others read its share).
    Connected(std::result::Result<(), CaptureError>),
    /// Rows of a table loaded in bulk.
    Block { table: usize, block: RowBlock, bytes: u64 },
    /// Rows of another table.
    Records {
        table: usize,
        records: Vec<ChangeRecord>,
        bytes: u64,
    },
    /// A piece was read to its end.
    PieceDone { table: usize, bytes: u64 },
}

impl Parsed {
    /// Rows it carries.
    pub(crate) fn rows(&self) -> u64 {
        match self {
            Parsed::Block { block, .. } => block.len() as u64,
            Parsed::Records { records, .. } => records.len() as u64,
            Parsed::Connected(_) | Parsed::PieceDone { .. } => 0,
        }
    }
}

/// The readers of one copy. Dropping it stops them at their next message.
pub(crate) struct Readers {
    rx: mpsc::Receiver<Result<Parsed>>,
    /// What the reader on the copy's connection needs, until it starts.
    here: Option<(Arc<Shared>, Sender)>,
    stop: Arc<AtomicBool>,
    spare: Arc<Mutex<Vec<RowBlock>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What every reader shares.
struct Shared {
    conninfo: ConnInfo,
    snapshot: String,
    /// `LOCK TABLE ... NOWAIT` of every table read.
    lock: String,
    pieces: Vec<Piece>,
    next: AtomicUsize,
    stop: Arc<AtomicBool>,
    spare: Arc<Mutex<Vec<RowBlock>>>,
}

impl Shared {
    fn next_piece(&self) -> Option<&Piece> {
        self.pieces.get(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// An empty block for rows of `width` values.
    fn block(&self, width: usize) -> RowBlock {
        let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
        match spare {
            Some(mut b) => {
                b.reset(width);
                b
            }
            None => RowBlock::with_capacity(width, BLOCK_BYTES + ROW_SLACK),
        }
    }
}

impl Readers {
    /// Starts reading `pieces` (taken in order) of `tables` (quoted names)
    /// in the exported snapshot `snapshot`: `connections - 1` readers of
    /// their own now, and one on the copy's connection once
    /// [`Readers::read_here`] is polled.
    pub(crate) fn start(
        conninfo: &ConnInfo,
        snapshot: &str,
        tables: &[String],
        pieces: Vec<Piece>,
        connections: usize,
    ) -> Result<Readers> {
        let connections = connections.clamp(1, pieces.len().max(1));
        let (tx, rx) = mpsc::channel(connections);
        let stop = Arc::new(AtomicBool::new(false));
        let spare = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            conninfo: conninfo.clone(),
            snapshot: snapshot.to_owned(),
            lock: format!("LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT", tables.join(", ")),
            pieces,
            next: AtomicUsize::new(0),
            stop: stop.clone(),
            spare: spare.clone(),
        });
        let mut threads = Vec::with_capacity(connections);
        for i in 1..connections {
            let (shared, tx) = (shared.clone(), tx.clone());
            let thread = std::thread::Builder::new()
                .name(format!("asof-copy-read-{i}"))
                .spawn(move || read_on_this_thread(&shared, &tx))
                .map_err(CaptureError::CopyThread)?;
            threads.push(thread);
        }
        Ok(Readers {
            rx,
            here: Some((shared, tx)),
            stop,
            spare,
            threads,
        })
    }

    /// The reader on the copy's task: poll it beside [`Readers::recv`]
    /// until it ends. It reads on a session of its own, or, when that
    /// cannot be opened and locked, on the copy's own connection (`client`,
    /// whose transaction imported the snapshot and holds the locks).
    pub(crate) fn read_here<'a>(&mut self, client: &'a Client) -> impl Future<Output = ()> + Send + 'a {
        let here = self.here.take();
        async move {
            let Some((shared, tx)) = here else { return };
            let mut session = match connect(&shared).await {
                Ok(own) => Session::Own(own),
                Err(e) => {
                    tracing::debug!("the copy reads on its own connection: {e}");
                    Session::Copy(client)
                }
            };
            if let Err(e) = read_pieces(&shared, &mut session, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        }
    }

    /// The next thing read; `None` once every reader has ended.
    pub(crate) async fn recv(&mut self) -> Option<Result<Parsed>> {
        self.rx.recv().await
    }

    /// Hands an emptied block back for reuse.
    pub(crate) fn give_back(&self, mut block: RowBlock) {
        if let Ok(mut spare) = self.spare.lock() {
            if spare.len() < SPARE_BLOCKS {
                block.clear();
                spare.push(block);
            }
        }
    }

    /// Waits for the reader threads (after `recv` returned `None`).
    pub(crate) fn join(mut self) {
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        // Threads not joined end at their next message; a copy that failed
        // does not wait for them.
        self.stop.store(true, Ordering::Relaxed);
    }
}

type Sender = mpsc::Sender<Result<Parsed>>;

fn read_on_this_thread(shared: &Shared, tx: &Sender) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = tx.blocking_send(Ok(Parsed::Connected(Err(CaptureError::CopyThread(e)))));
            return;
        }
    };
    runtime.block_on(async {
        let own = match connect(shared).await {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Ok(Parsed::Connected(Err(e)))).await;
                return;
            }
        };
        if tx.send(Ok(Parsed::Connected(Ok(())))).await.is_err() {
            return;
        }
        if let Err(e) = read_pieces(shared, &mut Session::Own(own), tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
}

/// A session whose transaction reads the database as of the snapshot,
/// with every table locked.
async fn connect(shared: &Shared) -> Result<ReplicationClient> {
    crate::sql::check_tls_mode(&shared.conninfo)?;
    let mut own = ReplicationClient::connect_sql(shared.conninfo.config()).await?;
    own.query(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}; {}",
        catalog::quote_literal(&shared.snapshot),
        shared.lock
    ))
    .await?;
    Ok(own)
}

/// Where a reader reads.
enum Session<'a> {
    /// Its own session.
    Own(ReplicationClient),
    /// The copy's own connection.
    Copy(&'a Client),
}

async fn read_pieces(shared: &Shared, session: &mut Session<'_>, tx: &Sender) -> Result<()> {
    let mut lines = Lines::default();
    while let Some(piece) = shared.next_piece() {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut reading = Reading::new(shared, piece);
        match session {
            Session::Own(own) => {
                own.copy_out_start(&piece.sql).await?;
                while own.copy_out_next(|data| reading.take(data, &mut lines)).await? {
                    if shared.stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    if let Some(full) = reading.full() {
                        send(tx, full).await?;
                    }
                }
            }
            Session::Copy(client) => {
                let stream = client.copy_out(piece.sql.as_str()).await?;
                pin_mut!(stream);
                while let Some(buf) = stream.try_next().await? {
                    if shared.stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    reading.take(&buf, &mut lines)?;
                    if let Some(full) = reading.full() {
                        send(tx, full).await?;
                    }
                }
            }
        }
        for parsed in reading.finish()? {
            send(tx, parsed).await?;
        }
    }
    Ok(())
}

/// Scratch space for parsing lines, kept across pieces.
#[derive(Default)]
struct Lines {
    scratch: Vec<u8>,
    values: Vec<changelog::Datum>,
}

/// One piece being read: the rows parsed and not yet sent, and the end of
/// a row that arrived without its newline.
struct Reading<'a> {
    shared: &'a Shared,
    piece: &'a Piece,
    out: Out,
    carry: Vec<u8>,
    /// COPY bytes read since the last thing sent.
    bytes: u64,
    /// Rows and encoded bytes of the blocks sent, and the next one's size.
    sent_rows: u64,
    sent_bytes: usize,
    limit: usize,
}

impl<'a> Reading<'a> {
    fn new(shared: &'a Shared, piece: &'a Piece) -> Reading<'a> {
        Reading {
            shared,
            piece,
            out: Out::new(shared, piece.shape),
            carry: Vec::new(),
            bytes: 0,
            sent_rows: 0,
            sent_bytes: 0,
            limit: BLOCK_BYTES,
        }
    }

    fn bad(&self, problem: CopyProblem) -> CaptureError {
        CaptureError::CopyData {
            table: self.piece.name.clone(),
            problem,
        }
    }

    /// Parses COPY data as it arrived: its messages need not end on a row.
    fn take(&mut self, mut data: &[u8], lines: &mut Lines) -> Result<()> {
        self.bytes += data.len() as u64;
        if !self.carry.is_empty() {
            let Some(i) = memchr::memchr(b'\n', data) else {
                self.carry.extend_from_slice(data);
                return Ok(());
            };
            self.carry.extend_from_slice(data.get(..i).unwrap_or_default());
            let pushed = self.out.push_line(&self.carry, &mut lines.scratch, &mut lines.values);
            pushed.map_err(|p| self.bad(p))?;
            self.carry.clear();
            data = data.get(i + 1..).unwrap_or_default();
        }
        while let Some(i) = memchr::memchr(b'\n', data) {
            let line = data.get(..i).unwrap_or_default();
            let pushed = self.out.push_line(line, &mut lines.scratch, &mut lines.values);
            pushed.map_err(|p| self.bad(p))?;
            data = data.get(i + 1..).unwrap_or_default();
        }
        self.carry.extend_from_slice(data);
        Ok(())
    }

    /// The rows parsed, when there are enough to send.
    fn full(&mut self) -> Option<Parsed> {
        if !self.out.full(self.limit) {
            return None;
        }
        let full = std::mem::replace(&mut self.out, Out::new(self.shared, self.piece.shape));
        if let Out::Block { block, .. } = &full {
            self.sent_rows += block.len() as u64;
            self.sent_bytes += block.bytes();
            self.limit = block_limit(self.piece.estimate, self.sent_rows, self.sent_bytes);
        }
        Some(full.into_parsed(self.piece.table, std::mem::take(&mut self.bytes)))
    }

    /// What is left to send once the piece was read to its end. A block
    /// ends with its piece (see the module docs).
    fn finish(self) -> Result<Vec<Parsed>> {
        if !self.carry.is_empty() {
            return Err(self.bad(CopyProblem::EndedInsideRow));
        }
        let Reading {
            piece, out, mut bytes, ..
        } = self;
        let mut left = Vec::with_capacity(2);
        if !out.is_empty() {
            left.push(out.into_parsed(piece.table, std::mem::take(&mut bytes)));
        }
        left.push(Parsed::PieceDone {
            table: piece.table,
            bytes,
        });
        Ok(left)
    }
}

/// The size of a piece's next block, after `rows` rows in `bytes` were
/// sent: [`BLOCK_BYTES`], except near the piece's estimated end, where each
/// block takes half of what is left. The blocks still being built when the
/// last row arrives are then small, so the copy does not end with one core
/// building a full block while the other waits. Without an estimate, or
/// past it (it was wrong), blocks are full.
fn block_limit(estimate: Option<u64>, rows: u64, bytes: usize) -> usize {
    match estimate {
        Some(estimate) if rows > 0 && rows < estimate => {
            let left = (estimate - rows) as f64 * bytes as f64 / rows as f64;
            ((left / 2.0) as usize).clamp(MIN_BLOCK_BYTES, BLOCK_BYTES)
        }
        _ => BLOCK_BYTES,
    }
}

/// Sends to the copy; an error when it has gone (it failed or was cut
/// short, and reports its own error).
async fn send(tx: &Sender, parsed: Parsed) -> Result<()> {
    tx.send(Ok(parsed))
        .await
        .map_err(|_| CaptureError::CopyThread(std::io::Error::other("the copy stopped reading")))
}

/// Rows parsed from one piece and not yet sent.
enum Out {
    Block {
        block: RowBlock,
        width: usize,
    },
    Records {
        records: Vec<ChangeRecord>,
        table: TableId,
        width: usize,
    },
}

impl Out {
    fn new(shared: &Shared, shape: Shape) -> Out {
        match shape {
            Shape::Bulk { width } => Out::Block {
                block: shared.block(width),
                width,
            },
            Shape::Records { table, width } => Out::Records {
                records: Vec::with_capacity(CHUNK_ROWS),
                table,
                width,
            },
        }
    }

    fn push_line(
        &mut self,
        line: &[u8],
        scratch: &mut Vec<u8>,
        values: &mut Vec<changelog::Datum>,
    ) -> std::result::Result<(), CopyProblem> {
        match self {
            Out::Block { block, width } => {
                block.begin_row();
                for_each_copy_field(line, scratch, |field| match field {
                    Some(text) => block.push_text(text),
                    None => block.push_null(),
                })?;
                block.end_row().map_err(|found| CopyProblem::Width {
                    expected: *width,
                    found,
                })
            }
            Out::Records { records, table, width } => {
                parse_copy_line(line, values)?;
                // A table without columns prints an empty line per row.
                if *width == 0 && values.len() == 1 {
                    values.clear();
                }
                if values.len() != *width {
                    return Err(CopyProblem::Width {
                        expected: *width,
                        found: values.len(),
                    });
                }
                records.push(ChangeRecord::Read {
                    table: *table,
                    row: RowImage(std::mem::take(values)),
                });
                Ok(())
            }
        }
    }

    /// Whether to send it: a block of `limit` bytes, a chunk of
    /// [`CHUNK_ROWS`].
    fn full(&self, limit: usize) -> bool {
        match self {
            Out::Block { block, .. } => block.bytes() >= limit,
            Out::Records { records, .. } => records.len() >= CHUNK_ROWS,
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Out::Block { block, .. } => block.is_empty(),
            Out::Records { records, .. } => records.is_empty(),
        }
    }

    fn into_parsed(self, table: usize, bytes: u64) -> Parsed {
        match self {
            Out::Block { block, .. } => Parsed::Block { table, block, bytes },
            Out::Records { records, .. } => Parsed::Records { table, records, bytes },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_halve_towards_the_estimated_end_of_a_piece() {
        const MIB: usize = 1 << 20;
        // 100-byte rows, 1M estimated: 100 MB in all.
        let limit = |rows: u64| block_limit(Some(1_000_000), rows, rows as usize * 100);
        assert_eq!(limit(0), BLOCK_BYTES);
        assert_eq!(limit(100_000), BLOCK_BYTES);
        assert_eq!(limit(900_000), 5_000_000);
        assert_eq!(limit(990_000), MIB);
        // Past the estimate, or without one: full blocks.
        assert_eq!(limit(1_000_000), BLOCK_BYTES);
        assert_eq!(limit(2_000_000), BLOCK_BYTES);
        assert_eq!(block_limit(None, 900_000, 90_000_000), BLOCK_BYTES);
    }
}
