//! One table's copied rows loaded in bulk, on two cores: this task parses
//! the COPY text into blocks of encoded rows and ingests what is built,
//! while a thread sorts each block and writes its files
//! ([`changelog::BulkRows`]). Blocks are bounded, so memory does not grow
//! with the table.

use changelog::{BuiltRows, RowBlock, SpillTxn, Store, StoreError, TableId};
use tokio::sync::mpsc;

use crate::error::{CaptureError, CopyProblem, Result};
use crate::text_formats::for_each_copy_field;

/// Encoded bytes per block handed to the builder. Larger blocks mean fewer
/// files when the table's key order is not its physical order.
const BLOCK_BYTES: usize = 16 << 20;

/// Room past `BLOCK_BYTES` for the row that fills a block, so a block's
/// buffer is allocated once (rows longer than this grow it).
const ROW_SLACK: usize = 1 << 20;

type Built = std::result::Result<(BuiltRows, RowBlock), StoreError>;

/// A table being loaded; see the module docs.
pub(crate) struct BulkCopy {
    block: RowBlock,
    width: usize,
    scratch: Vec<u8>,
    to_builder: Option<mpsc::Sender<(RowBlock, u32)>>,
    built: mpsc::UnboundedReceiver<Built>,
    /// Blocks sent and not yet ingested.
    in_flight: usize,
    spare: Vec<RowBlock>,
    builder: Option<std::thread::JoinHandle<()>>,
}

impl BulkCopy {
    /// Starts loading `table`, whose `ReadStart` is already spilled in `sp`.
    pub(crate) fn start(store: &Store, sp: &SpillTxn, table: TableId) -> Result<BulkCopy> {
        let rows = store.bulk_rows(sp, table)?;
        let width = rows.width();
        let (to_builder, mut blocks) = mpsc::channel::<(RowBlock, u32)>(1);
        let (done, built) = mpsc::unbounded_channel::<Built>();
        let builder = std::thread::Builder::new()
            .name("asof-copy".into())
            .spawn(move || {
                while let Some((mut block, first)) = blocks.blocking_recv() {
                    let result = rows.build(&block, first).map(|b| {
                        block.clear();
                        (b, block)
                    });
                    let failed = result.is_err();
                    // A closed receiver means the copy gave up; files of an
                    // unsent result are removed as it drops.
                    if done.send(result).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(CaptureError::CopyThread)?;
        Ok(BulkCopy {
            block: RowBlock::with_capacity(width, BLOCK_BYTES + ROW_SLACK),
            width,
            scratch: Vec::new(),
            to_builder: Some(to_builder),
            built,
            in_flight: 0,
            spare: Vec::new(),
            builder: Some(builder),
        })
    }

    /// Adds one COPY text line (without its newline).
    pub(crate) fn push_line(&mut self, line: &[u8]) -> std::result::Result<(), CopyProblem> {
        let block = &mut self.block;
        block.begin_row();
        for_each_copy_field(line, &mut self.scratch, |field| match field {
            Some(text) => block.push_text(text),
            None => block.push_null(),
        })?;
        block.end_row().map_err(|found| CopyProblem::Width {
            expected: self.width,
            found,
        })
    }

    /// Hands the block to the builder once it is full, and ingests what
    /// has been built meanwhile; true when it did.
    pub(crate) async fn send_when_full(&mut self, store: &mut Store, sp: &mut SpillTxn) -> Result<bool> {
        if self.block.bytes() < BLOCK_BYTES {
            return Ok(false);
        }
        self.send(sp).await?;
        while let Ok(built) = self.built.try_recv() {
            self.ingest(store, sp, built)?;
        }
        Ok(true)
    }

    /// Sends the last rows and ingests everything.
    pub(crate) async fn finish(mut self, store: &mut Store, sp: &mut SpillTxn) -> Result<()> {
        if !self.block.is_empty() {
            self.send(sp).await?;
        }
        self.to_builder = None;
        while self.in_flight > 0 {
            let built = self.built.recv().await.ok_or_else(builder_gone)?;
            self.ingest(store, sp, built)?;
        }
        if let Some(thread) = self.builder.take() {
            let _ = thread.join();
        }
        Ok(())
    }

    async fn send(&mut self, sp: &mut SpillTxn) -> Result<()> {
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| RowBlock::with_capacity(self.width, BLOCK_BYTES + ROW_SLACK));
        let block = std::mem::replace(&mut self.block, next);
        let first = sp.reserve(block.len());
        let tx = self.to_builder.as_ref().ok_or_else(builder_gone)?;
        tx.send((block, first)).await.map_err(|_| builder_gone())?;
        self.in_flight += 1;
        Ok(())
    }

    fn ingest(&mut self, store: &mut Store, sp: &mut SpillTxn, built: Built) -> Result<()> {
        self.in_flight -= 1;
        let (files, block) = built?;
        self.spare.push(block);
        store.ingest_rows(sp, files)?;
        Ok(())
    }
}

/// The builder thread ended before its work was done (it panicked).
fn builder_gone() -> CaptureError {
    CaptureError::CopyThread(std::io::Error::other("it stopped before building every block"))
}
