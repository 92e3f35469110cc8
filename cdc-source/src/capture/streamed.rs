//! Transactions the server streams before they end (pgoutput protocol 2
//! with `streaming = on`).
//!
//! A transaction larger than the server's `logical_decoding_work_mem`
//! arrives in blocks while it runs, interleaved with other transactions,
//! instead of being spilled to disk by the server and sent after its
//! commit. Each block's messages are appended, as received, to a spool
//! file of their transaction in the store's scratch directory. A
//! subtransaction's abort cuts its transaction's file back to where that
//! subtransaction's first message starts: a session's changes arrive in
//! order, so everything after that point is the subtransaction's or its
//! children's. The server labels a logical message with the top
//! transaction's xid even when a subtransaction wrote it, so the DDL
//! capture's messages are placed by the `asof.xacts` message its triggers
//! write first, which names the xids the session holds there (see
//! [`crate::ddl`]). A transaction's abort drops its file. At its commit the
//! stream replays the file through the assembler as if the transaction had
//! arrived whole there, so it is stored in commit order exactly like any
//! other.
//!
//! Nothing here needs to survive a crash: until the commit is durable the
//! slot is not acknowledged past it, and a new session receives the whole
//! transaction again from its first block. The files are unlinked as they
//! are created, so even a killed process leaves none behind.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use bytes::Bytes;
use changelog::Lsn;

use crate::error::{CaptureError, Result, StreamProblem};
use crate::pgoutput::{StreamAbortBody, StreamStartBody};

/// Bytes before each spooled message: its length and its WAL position.
const HEADER_LEN: u64 = 4 + 8;
/// Write and read buffer of one spool file.
const BUFFER: usize = 256 << 10;

/// The streamed transactions of one session that have not ended.
pub(super) struct Streamed {
    dir: PathBuf,
    open: HashMap<u32, Spool>,
    /// The transaction whose block is being received.
    block: Option<u32>,
}

impl Streamed {
    /// Spools into files under `dir`.
    pub(super) fn new(dir: PathBuf) -> Self {
        Streamed {
            dir,
            open: HashMap::new(),
            block: None,
        }
    }

    /// Whether a block is being received (its messages carry xids).
    pub(super) fn in_block(&self) -> bool {
        self.block.is_some()
    }

    /// A block of `start.xid` begins.
    pub(super) fn start(&mut self, start: StreamStartBody, at: Lsn) -> Result<()> {
        if start.first_segment || !self.open.contains_key(&start.xid) {
            if !start.first_segment {
                return Err(CaptureError::Stream {
                    lsn: at,
                    problem: StreamProblem::StreamContinuesUnknown(start.xid),
                });
            }
            let spool = Spool::create(&self.dir)?;
            self.open.insert(start.xid, spool);
        }
        self.block = Some(start.xid);
        Ok(())
    }

    /// The open block ends.
    pub(super) fn stop(&mut self) {
        self.block = None;
    }

    /// Appends one message of the open block, made by `subxid` (the
    /// block's own transaction when the message names none).
    pub(super) fn append(&mut self, subxid: Option<u32>, at: Lsn, data: &[u8]) -> Result<()> {
        let Some(xid) = self.block else {
            return Ok(());
        };
        let dir = &self.dir;
        let spool = self.open.get_mut(&xid).ok_or_else(|| CaptureError::Stream {
            lsn: at,
            problem: StreamProblem::StreamContinuesUnknown(xid),
        })?;
        spool
            .append(subxid.unwrap_or(xid), at, data)
            .map_err(|e| spool_error(dir, e))
    }

    /// The open block's transaction holds `xids` here (an `asof.xacts`
    /// message): a later abort of any of them cuts back to this point at
    /// the latest. The server labels logical messages with the top
    /// transaction's xid even when a subtransaction wrote them, so the
    /// DDL capture's messages are placed by this claim, not by their label.
    pub(super) fn claim(&mut self, xids: &[u32]) {
        if let Some(spool) = self.block.and_then(|xid| self.open.get_mut(&xid)) {
            spool.claim(xids);
        }
    }

    /// A transaction or one of its subtransactions aborted.
    pub(super) fn abort(&mut self, abort: StreamAbortBody) -> Result<()> {
        if abort.subxid == abort.xid {
            self.open.remove(&abort.xid);
            return Ok(());
        }
        match self.open.get_mut(&abort.xid) {
            Some(spool) => spool.cut(abort.subxid).map_err(|e| spool_error(&self.dir, e)),
            None => Ok(()),
        }
    }

    /// A transaction committed: its messages, to replay in order.
    pub(super) fn commit(&mut self, xid: u32, at: Lsn) -> Result<Replay> {
        let spool = self.open.remove(&xid).ok_or(CaptureError::Stream {
            lsn: at,
            problem: StreamProblem::UnknownStreamedTransaction(xid),
        })?;
        spool.replay(&self.dir).map_err(|e| spool_error(&self.dir, e))
    }
}

/// One transaction's messages so far.
struct Spool {
    file: BufWriter<File>,
    len: u64,
    /// Where each subtransaction's first message starts.
    first: HashMap<u32, u64>,
}

impl Spool {
    fn create(dir: &std::path::Path) -> Result<Spool> {
        std::fs::create_dir_all(dir).map_err(|e| spool_error(dir, e))?;
        let file = tempfile::tempfile_in(dir).map_err(|e| spool_error(dir, e))?;
        Ok(Spool {
            file: BufWriter::with_capacity(BUFFER, file),
            len: 0,
            first: HashMap::new(),
        })
    }

    fn append(&mut self, subxid: u32, at: Lsn, data: &[u8]) -> std::io::Result<()> {
        self.first.entry(subxid).or_insert(self.len);
        let len = u32::try_from(data.len()).map_err(std::io::Error::other)?;
        self.file.write_all(&len.to_le_bytes())?;
        self.file.write_all(&at.0.to_le_bytes())?;
        self.file.write_all(data)?;
        self.len += HEADER_LEN + u64::from(len);
        Ok(())
    }

    /// Marks where `xids` start if they have not started yet.
    fn claim(&mut self, xids: &[u32]) {
        for &xid in xids {
            self.first.entry(xid).or_insert(self.len);
        }
    }

    /// Drops `subxid`'s messages and everything after them.
    fn cut(&mut self, subxid: u32) -> std::io::Result<()> {
        let Some(at) = self.first.remove(&subxid) else {
            return Ok(());
        };
        self.file.flush()?;
        self.file.get_ref().set_len(at)?;
        self.file.seek(SeekFrom::Start(at))?;
        self.len = at;
        self.first.retain(|_, start| *start < at);
        Ok(())
    }

    fn replay(self, dir: &std::path::Path) -> std::io::Result<Replay> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Replay {
            reader: BufReader::with_capacity(BUFFER, file),
            remaining: self.len,
            dir: dir.to_path_buf(),
        })
    }
}

/// A committed transaction's spooled messages, read back in order.
pub(super) struct Replay {
    reader: BufReader<File>,
    remaining: u64,
    /// For errors.
    dir: PathBuf,
}

impl Replay {
    /// The next message and the position it was sent at; `None` after the
    /// last.
    pub(super) fn next_message(&mut self) -> Result<Option<(Lsn, Bytes)>> {
        self.read().map_err(|e| spool_error(&self.dir, e))
    }

    fn read(&mut self) -> std::io::Result<Option<(Lsn, Bytes)>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let mut header = [0u8; 12];
        self.reader.read_exact(&mut header)?;
        let (len, at) = header.split_at(4);
        let len = u32::from_le_bytes(len.try_into().map_err(std::io::Error::other)?);
        let at = u64::from_le_bytes(at.try_into().map_err(std::io::Error::other)?);
        let mut data = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
        self.reader.read_exact(&mut data)?;
        self.remaining = self.remaining.saturating_sub(HEADER_LEN + u64::from(len));
        Ok(Some((Lsn(at), Bytes::from(data))))
    }
}

fn spool_error(dir: &std::path::Path, source: std::io::Error) -> CaptureError {
    CaptureError::Spool {
        path: dir.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(xid: u32, first_segment: bool) -> StreamStartBody {
        StreamStartBody { xid, first_segment }
    }

    fn replayed(replay: &mut Replay) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some((at, data)) = replay.next_message().unwrap() {
            out.push((at.0, data.to_vec()));
        }
        out
    }

    #[test]
    fn interleaved_transactions_replay_their_own_messages_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Streamed::new(dir.path().join("scratch"));
        s.start(start(10, true), Lsn(1)).unwrap();
        s.append(Some(10), Lsn(1), b"a1").unwrap();
        s.stop();
        s.start(start(20, true), Lsn(2)).unwrap();
        s.append(Some(20), Lsn(2), b"b1").unwrap();
        s.stop();
        s.start(start(10, false), Lsn(3)).unwrap();
        s.append(None, Lsn(3), b"a2").unwrap();
        s.stop();
        assert_eq!(s.open.len(), 2);
        let mut a = s.commit(10, Lsn(4)).unwrap();
        assert_eq!(replayed(&mut a), [(1, b"a1".to_vec()), (3, b"a2".to_vec())]);
        let mut b = s.commit(20, Lsn(5)).unwrap();
        assert_eq!(replayed(&mut b), [(2, b"b1".to_vec())]);
        assert!(s.commit(20, Lsn(6)).is_err(), "a transaction commits once");
        // Unlinked as created: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path().join("scratch")).unwrap().count(), 0);
    }

    #[test]
    fn a_subtransaction_abort_cuts_it_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Streamed::new(dir.path().join("scratch"));
        s.start(start(10, true), Lsn(1)).unwrap();
        s.append(Some(10), Lsn(1), b"top").unwrap();
        s.append(Some(11), Lsn(2), b"sub").unwrap();
        s.append(Some(12), Lsn(3), b"child").unwrap();
        s.append(Some(11), Lsn(4), b"sub again").unwrap();
        s.stop();
        s.abort(StreamAbortBody { xid: 10, subxid: 11 }).unwrap();
        // The child's abort comes too; it has nothing left to cut.
        s.abort(StreamAbortBody { xid: 10, subxid: 12 }).unwrap();
        s.start(start(10, false), Lsn(5)).unwrap();
        s.append(Some(13), Lsn(5), b"after").unwrap();
        s.append(Some(10), Lsn(6), b"top again").unwrap();
        s.stop();
        let mut a = s.commit(10, Lsn(7)).unwrap();
        assert_eq!(
            replayed(&mut a),
            [(1, b"top".to_vec()), (5, b"after".to_vec()), (6, b"top again".to_vec())]
        );
    }

    #[test]
    fn a_claim_places_messages_labelled_with_the_transaction_in_its_subtransactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Streamed::new(dir.path().join("scratch"));
        s.start(start(10, true), Lsn(1)).unwrap();
        s.append(Some(10), Lsn(1), b"top").unwrap();
        // A savepoint's DDL: its messages carry the transaction's xid.
        s.claim(&[10, 11]);
        s.append(Some(10), Lsn(2), b"ddl of 11").unwrap();
        s.append(Some(11), Lsn(3), b"row of 11").unwrap();
        s.stop();
        s.abort(StreamAbortBody { xid: 10, subxid: 11 }).unwrap();
        s.start(start(10, false), Lsn(4)).unwrap();
        // A savepoint released into an open one: claimed too, and cut
        // with it.
        s.claim(&[10, 12, 13]);
        s.append(Some(10), Lsn(5), b"ddl of 13").unwrap();
        s.stop();
        s.abort(StreamAbortBody { xid: 10, subxid: 13 }).unwrap();
        s.abort(StreamAbortBody { xid: 10, subxid: 12 }).unwrap();
        s.start(start(10, false), Lsn(6)).unwrap();
        s.claim(&[10]);
        s.append(Some(10), Lsn(7), b"ddl of 10").unwrap();
        s.stop();
        let mut a = s.commit(10, Lsn(8)).unwrap();
        assert_eq!(replayed(&mut a), [(1, b"top".to_vec()), (7, b"ddl of 10".to_vec())]);
    }

    #[test]
    fn an_abort_drops_the_transaction_and_a_first_block_starts_it_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Streamed::new(dir.path().join("scratch"));
        s.start(start(10, true), Lsn(1)).unwrap();
        s.append(Some(10), Lsn(1), b"gone").unwrap();
        s.stop();
        s.abort(StreamAbortBody { xid: 10, subxid: 10 }).unwrap();
        assert!(s.commit(10, Lsn(2)).is_err());
        assert!(
            s.start(start(10, false), Lsn(3)).is_err(),
            "a later block of a transaction never begun"
        );
        s.start(start(20, true), Lsn(4)).unwrap();
        s.append(Some(20), Lsn(4), b"old").unwrap();
        s.stop();
        s.start(start(20, true), Lsn(5)).unwrap();
        s.append(Some(20), Lsn(5), b"new").unwrap();
        s.stop();
        let mut b = s.commit(20, Lsn(6)).unwrap();
        assert_eq!(replayed(&mut b), [(5, b"new".to_vec())]);
    }
}
