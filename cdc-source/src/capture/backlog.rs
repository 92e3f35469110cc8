//! Where a session's messages come from: the replication stream, or, while
//! the slot is far behind, the SQL decoding interface.
//!
//! Why the SQL interface for a backlog: the walsender sends one message per
//! network write and is the bottleneck of a large catch-up, while
//! `pg_logical_slot_peek_binary_changes` decodes a bounded chunk and COPY
//! sends it in large writes, several times faster. The same pgoutput
//! messages arrive, so the same assembler and sink take them.
//!
//! Exactly-once holds as for the stream: a chunk is peeked (the slot does
//! not move), every transaction of it is stored durably, and only then is
//! the slot advanced (`pg_replication_slot_advance`) to what is durable.
//! The next chunk starts there. A crash before the advance re-reads the
//! chunk, and the store skips what it holds by commit LSN. Peeking needs
//! the slot not to be active in a walsender, so the replication stream
//! starts only once the backlog is drained.

use bytes::Bytes;
use changelog::Lsn;
use futures_util::StreamExt;
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::{PgLsn, Type};
use tokio_postgres::Client;

use crate::catalog;
use crate::error::Result;
use crate::replication::{LogicalStream, ReplicationEvent};

/// Changes per peeked chunk (the server decodes a chunk whole before it
/// sends it, and stops at the first transaction boundary past this).
const CHUNK_CHANGES: u32 = 200_000;

/// The source of a session's messages.
pub(super) enum Wal {
    /// The replication protocol.
    Stream(LogicalStream),
    /// The SQL decoding interface, chunk by chunk.
    Backlog(Backlog),
}

/// What the source gave.
pub(super) enum WalEvent {
    /// A server message.
    Event(ReplicationEvent),
    /// The backlog is drained: the stream can take over.
    Drained,
    /// The connection ended.
    Closed,
}

impl Wal {
    /// The next message. A backlog between chunks waits (forever) until
    /// [`Wal::on_idle`] has advanced the slot.
    pub(super) async fn next_event(&mut self) -> Result<WalEvent> {
        match self {
            Wal::Stream(s) => Ok(s.next_event().await?.map_or(WalEvent::Closed, WalEvent::Event)),
            Wal::Backlog(b) => b.next_event().await,
        }
    }

    /// Reports `lsn` as durable. The stream acknowledges it; a backlog
    /// advances the slot when its chunk is done ([`Wal::on_idle`]).
    pub(super) async fn send_status(&mut self, lsn: Lsn) -> Result<()> {
        match self {
            Wal::Stream(s) => Ok(s.send_status(lsn, lsn, lsn, false).await?),
            Wal::Backlog(b) => {
                b.durable = b.durable.max(lsn);
                Ok(())
            }
        }
    }

    /// Called when everything received is durable: a backlog whose chunk
    /// was read whole advances the slot, and the next chunk may start.
    pub(super) async fn on_idle(&mut self) -> Result<()> {
        match self {
            Wal::Stream(_) => Ok(()),
            Wal::Backlog(b) => b.chunk_done().await,
        }
    }

    /// Ends the source cleanly.
    pub(super) async fn finish(self) {
        if let Wal::Stream(s) = self {
            let _ = s.finish().await;
        }
    }
}

/// The SQL decoding interface over a slot; see the module docs.
pub(super) struct Backlog {
    client: Client,
    slot: String,
    /// pgoutput's options, as the stream sends them.
    options: String,
    /// Drained once the slot is this close to the server's WAL end.
    close_enough: u64,
    rows: Option<std::pin::Pin<Box<BinaryCopyOutStream>>>,
    state: State,
    /// What the session reported durable.
    durable: Lsn,
    /// Where the slot was advanced to.
    advanced: Lsn,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Ready to peek the next chunk.
    Ready,
    /// Reading a chunk.
    Reading,
    /// The chunk was read whole; waiting for it to be durable.
    Read,
    /// Nothing more to read this way.
    Drained,
}

impl Backlog {
    /// A backlog reader over `slot` on its own connection (the session's
    /// other connection looks types up while a chunk streams), used
    /// while the slot is more than `close_enough` bytes behind.
    pub(super) fn new(client: Client, slot: &str, publication: &str, close_enough: u64, start: Lsn) -> Backlog {
        let options = format!(
            "'proto_version', '1', 'publication_names', {}, 'messages', 'true'",
            catalog::quote_literal(&catalog::quote_ident(publication))
        );
        Backlog {
            client,
            slot: slot.to_string(),
            options,
            close_enough,
            rows: None,
            state: State::Ready,
            durable: start,
            advanced: start,
        }
    }

    /// How far the slot is behind the server's WAL end, in bytes.
    pub(super) async fn lag(client: &Client, slot: &str) -> Result<u64> {
        let row = client
            .query_one(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await?;
        Ok(row.get::<_, Option<i64>>(0).map_or(0, |n| n.max(0) as u64))
    }

    async fn next_event(&mut self) -> Result<WalEvent> {
        loop {
            match self.state {
                State::Drained => return Ok(WalEvent::Drained),
                // Resumed by `chunk_done`, which the session calls once idle.
                State::Read => std::future::pending::<()>().await,
                State::Ready => {
                    if Self::lag(&self.client, &self.slot).await? <= self.close_enough {
                        self.state = State::Drained;
                        continue;
                    }
                    let sql = format!(
                        "COPY (SELECT lsn, data FROM pg_logical_slot_peek_binary_changes({}, NULL, {CHUNK_CHANGES}, {})) \
                         TO STDOUT (FORMAT binary)",
                        catalog::quote_literal(&self.slot),
                        self.options
                    );
                    let copy = self.client.copy_out(&sql).await?;
                    self.rows = Some(Box::pin(BinaryCopyOutStream::new(copy, &[Type::PG_LSN, Type::BYTEA])));
                    self.state = State::Reading;
                }
                State::Reading => {
                    let next = match &mut self.rows {
                        Some(rows) => rows.next().await,
                        None => None,
                    };
                    let Some(row) = next else {
                        self.rows = None;
                        self.state = State::Read;
                        continue;
                    };
                    let row = row?;
                    let lsn = Lsn(u64::from(row.try_get::<PgLsn>(0)?));
                    let data = Bytes::copy_from_slice(row.try_get::<&[u8]>(1)?);
                    return Ok(WalEvent::Event(ReplicationEvent::XLogData {
                        wal_start: lsn,
                        wal_end: lsn,
                        server_time_us: 0,
                        data,
                    }));
                }
            }
        }
    }

    /// The chunk is read and durable: the slot moves to what is durable.
    async fn chunk_done(&mut self) -> Result<()> {
        if self.state != State::Read {
            return Ok(());
        }
        if self.durable > self.advanced {
            let to = PgLsn::from(self.durable.0);
            self.client
                .execute("SELECT pg_replication_slot_advance($1, $2)", &[&self.slot, &to])
                .await?;
            self.advanced = self.durable;
            self.state = State::Ready;
        } else {
            // A chunk that stored nothing new (it held only what the store
            // had): the stream takes over rather than peek it again.
            self.state = State::Drained;
        }
        Ok(())
    }
}
