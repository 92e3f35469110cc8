//! The changes of one table between a base image and a cut: the last
//! change of each key, sorted by key, read from the log once for a whole
//! scan and shared by every part of it.
//!
//! A long window is read in pieces of the log on several threads (split
//! evenly by LSN, which follows the log's bytes); each piece keeps the last
//! change of each key it saw, and the pieces are merged in log order, the
//! later piece taking a key. Keys and rows stay encoded as in the log, in
//! large buffers of each piece: no allocation per change, and no copy as
//! the window grows.

use std::ops::ControlFlow;

use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf, KeyRange};
use crate::lsn::Lsn;
use crate::mvcc::{park, recycle};
use crate::schema::TableSchema;
use crate::store::log_rows::{self, EncodedRow, LogRows};
use crate::store::Store;
use crate::value::DatumRef;

/// A piece of the log holds at least this many bytes of WAL: below, a
/// thread costs more than it saves.
pub(crate) const MIN_PIECE_LSNS: u64 = 16 << 20;

/// A read holds its window in memory, about a changed row's bytes per log
/// record: an image further back than this many records is not read.
pub(crate) const MAX_WINDOW_RECORDS: u64 = 4 << 20;

/// Fewer WAL bytes than a change of a narrow row takes (an update of the
/// benchmarks' six columns takes about 400), for a piece's guess at how
/// many changes it holds.
const WAL_BYTES_PER_CHANGE: u64 = 128;

/// At most this many pieces, whatever the machine.
const MAX_PIECES: u64 = 8;

/// Bytes a buffer is made with: changes are added to the last buffer
/// while they fit, so none is copied as the window grows.
const BUFFER_BYTES: usize = 1 << 20;

/// `Change::row_len` of a deletion.
const DELETED: u32 = u32::MAX;

/// The last change of a key in a window.
#[derive(Clone, Copy, Debug)]
struct Change {
    /// The key's first 16 bytes, zero-padded, as two big-endian numbers:
    /// most comparisons of keys end here, without reading the buffers. Not
    /// one `u128`, whose alignment would make each change 48 bytes, not 40.
    head: (u64, u64),
    lsn: Lsn,
    /// The buffer holding its bytes.
    buffer: u32,
    /// Where its key starts; its row follows the key.
    start: u32,
    key_len: u32,
    /// The row's length, or [`DELETED`].
    row_len: u32,
}

// A window holds one of these per change it reads: keep them small.
const _: () = assert!(std::mem::size_of::<Change>() == 40);

impl Change {
    fn key_span(&self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + self.key_len as usize
    }

    fn row_span(&self) -> Option<std::ops::Range<usize>> {
        let start = self.key_span().end;
        (self.row_len != DELETED).then(|| start..start + self.row_len as usize)
    }
}

/// The last change of each key of a table in a window of the log, in key
/// order.
#[derive(Debug, Default)]
pub(crate) struct Window {
    buffers: Vec<Vec<u8>>,
    changes: Vec<Change>,
}

/// One change as a scan meets it: its key, and its row unless it deleted
/// the key.
pub(crate) struct WindowChange<'a> {
    pub key: &'a [u8],
    pub row: Option<(Lsn, EncodedRow<'a>)>,
}

impl Window {
    /// The changes of the keys in `range`, in key order.
    pub(crate) fn in_range<'a>(&'a self, range: &'a KeyRange) -> impl Iterator<Item = WindowChange<'a>> + 'a {
        let first = match &range.start {
            Some(start) => self.changes.partition_point(|c| self.key(c) < start.as_slice()),
            None => 0,
        };
        self.changes
            .get(first..)
            .unwrap_or_default()
            .iter()
            .map(|c| self.change(c))
            .take_while(|c| range.end.as_deref().is_none_or(|e| c.key < e))
    }

    fn buffer(&self, c: &Change) -> &[u8] {
        self.buffers
            .get(c.buffer as usize)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    fn key(&self, c: &Change) -> &[u8] {
        self.buffer(c).get(c.key_span()).unwrap_or_default()
    }

    fn change(&self, c: &Change) -> WindowChange<'_> {
        let buf = self.buffer(c);
        WindowChange {
            key: buf.get(c.key_span()).unwrap_or_default(),
            row: c
                .row_span()
                .map(|span| (c.lsn, EncodedRow(buf.get(span).unwrap_or_default()))),
        }
    }

    /// Adds a change after those already in the window; false when it is
    /// too large to be held in one (a key or row of 4 GiB), or its key is
    /// empty. A stored key starts with its table's id, so none is; and as
    /// every change's bytes then start after the last one's, where they
    /// start is their order in the log ([`Window::settle`]).
    fn push(&mut self, lsn: Lsn, key: &[u8], row: Option<&[u8]>) -> bool {
        if key.is_empty() {
            return false;
        }
        let row_bytes = row.unwrap_or_default();
        let (Ok(key_len), Ok(row_len)) = (u32::try_from(key.len()), u32::try_from(row_bytes.len())) else {
            return false;
        };
        let n = key.len() + row_bytes.len();
        if n >= DELETED as usize {
            return false;
        }
        if self.buffers.last().is_none_or(|b| b.capacity() - b.len() < n) {
            self.buffers.push(Vec::with_capacity(n.max(BUFFER_BYTES)));
        }
        let (Ok(buffer), Some(buf)) = (u32::try_from(self.buffers.len() - 1), self.buffers.last_mut()) else {
            return false;
        };
        // Within a buffer of at most `max(n, BUFFER_BYTES)` bytes.
        let Ok(start) = u32::try_from(buf.len()) else {
            return false;
        };
        buf.extend_from_slice(key);
        buf.extend_from_slice(row_bytes);
        self.changes.push(Change {
            head: head(key),
            lsn,
            buffer,
            start,
            key_len,
            row_len: if row.is_some() { row_len } else { DELETED },
        });
        true
    }

    /// The order of two changes' keys.
    fn order(&self, a: &Change, b: &Change) -> std::cmp::Ordering {
        a.head.cmp(&b.head).then_with(|| {
            if a.key_len <= 16 && a.key_len == b.key_len {
                std::cmp::Ordering::Equal
            } else {
                self.key(a).cmp(self.key(b))
            }
        })
    }

    /// Keeps the last change of each key, in key order (`changes` are in
    /// log order).
    fn settle(&mut self) {
        let mut changes = std::mem::take(&mut self.changes);
        // Among changes of one key, log order, which is the order of their
        // bytes in the buffers: then the last wins. Not a stable sort, whose
        // scratch space is half as large again as the changes.
        changes.sort_unstable_by(|a, b| {
            self.order(a, b)
                .then_with(|| (a.buffer, a.start).cmp(&(b.buffer, b.start)))
        });
        changes.dedup_by(|later, kept| {
            let same = self.order(later, kept).is_eq();
            if same {
                *kept = *later;
            }
            same
        });
        self.changes = changes;
        let held: usize = self.buffers.iter().map(Vec::len).sum();
        let live: usize = self
            .changes
            .iter()
            .map(|c| c.key_span().len() + c.row_span().map_or(0, |r| r.len()))
            .sum();
        if live < held / 2 {
            // Mostly overwritten changes: keep only the live bytes.
            let mut kept = Window::default();
            for c in &self.changes {
                let change = self.change(c);
                // Each was held once already, so each fits again.
                let _ = kept.push(c.lsn, change.key, change.row.map(|(_, r)| r.0));
            }
            *self = kept;
        }
    }

    /// `later`'s changes over this window's: both in key order, and
    /// `later` read from the log after this one.
    fn then(self, later: Window) -> Window {
        let offset = self.buffers.len() as u32;
        let mut buffers = self.buffers;
        buffers.extend(later.buffers);
        let mut merged = Window {
            buffers,
            changes: Vec::with_capacity(self.changes.len() + later.changes.len()),
        };
        let mut earlier = self.changes.into_iter().peekable();
        let mut after = later
            .changes
            .into_iter()
            .map(|c| Change {
                buffer: c.buffer + offset,
                ..c
            })
            .peekable();
        loop {
            let next = match (earlier.peek(), after.peek()) {
                (None, None) => break,
                (Some(_), None) => earlier.next(),
                (None, Some(_)) => after.next(),
                (Some(a), Some(b)) => match merged.order(a, b) {
                    std::cmp::Ordering::Less => earlier.next(),
                    std::cmp::Ordering::Greater => after.next(),
                    std::cmp::Ordering::Equal => {
                        earlier.next();
                        after.next()
                    }
                },
            };
            merged.changes.extend(next);
        }
        merged
    }
}

/// A key's first 16 bytes, zero-padded, as two big-endian numbers. Where two
/// keys' heads differ, they order as the keys do; where they are equal,
/// the keys are equal if both are that long or shorter and equally long.
fn head(key: &[u8]) -> (u64, u64) {
    let mut b = [0u8; 16];
    for (d, k) in b.iter_mut().zip(key) {
        *d = *k;
    }
    let v = u128::from_be_bytes(b);
    ((v >> 64) as u64, v as u64)
}

/// Reads one piece of the window into its own buffers.
struct PieceReader<'s> {
    table: TableId,
    schema: &'s TableSchema,
    window: Window,
    key: Vec<u8>,
    old_key: Vec<u8>,
    spare: Vec<DatumRef<'static>>,
    old_spare: Vec<DatumRef<'static>>,
}

impl PieceReader<'_> {
    fn put(&mut self, lsn: Lsn, old_key: bool, row: Option<EncodedRow<'_>>) -> bool {
        let key = if old_key { &self.old_key } else { &self.key };
        self.window.push(lsn, key, row.map(|r| r.0))
    }

    /// Takes in one log value; `Break` when the window cannot be read past
    /// it (a change of the table's shape, a reset, a row without all its
    /// values, or one too large to hold).
    fn record(&mut self, lsn: Lsn, v: &[u8]) -> Result<ControlFlow<()>> {
        let rows = log_rows::log_rows(v).map_err(StoreError::corrupt(cf::LOG))?;
        let (t, schema) = (self.table, self.schema);
        let mut refs = recycle(std::mem::take(&mut self.spare));
        let mut old_refs = recycle(std::mem::take(&mut self.old_spare));
        let mut usable = true;
        match rows {
            LogRows::Put { table, row } if table == t => {
                usable = row.values_into(&mut refs).map_err(StoreError::corrupt(cf::LOG))?;
                if usable {
                    keys::row_key_of_refs_into(&mut self.key, t, schema, &refs);
                    usable = self.put(lsn, false, Some(row));
                }
            }
            LogRows::Update { table, old, new } if table == t => {
                usable = new.values_into(&mut refs).map_err(StoreError::corrupt(cf::LOG))?;
                if usable {
                    keys::row_key_of_refs_into(&mut self.key, t, schema, &refs);
                    if let Some(old) = old {
                        // Unchanged TOAST is no key column: the key reads.
                        old.values_into(&mut old_refs).map_err(StoreError::corrupt(cf::LOG))?;
                        keys::row_key_of_refs_into(&mut self.old_key, t, schema, &old_refs);
                        if self.old_key != self.key {
                            usable = self.put(lsn, true, None);
                        }
                    }
                    usable = usable && self.put(lsn, false, Some(new));
                }
            }
            LogRows::Delete { table, old } if table == t => {
                old.values_into(&mut old_refs).map_err(StoreError::corrupt(cf::LOG))?;
                keys::row_key_of_refs_into(&mut self.key, t, schema, &old_refs);
                usable = self.put(lsn, false, None);
            }
            LogRows::Other(tables) if tables.contains(&t) => usable = false,
            _ => {}
        }
        self.spare = park(refs);
        self.old_spare = park(old_refs);
        Ok(if usable {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        })
    }
}

impl Store {
    /// The last change of each key of `table` (in its shape `schema`) in
    /// `(after, cut]`, or `None` when a record there is one an image cannot
    /// be read past. Pieces span at least `min_piece` of the WAL.
    pub(crate) fn read_window(
        &self,
        table: TableId,
        schema: &TableSchema,
        after: Lsn,
        cut: Lsn,
        min_piece: u64,
    ) -> Result<Option<Window>> {
        let first = after.next();
        if first > cut {
            return Ok(Some(Window::default()));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let span = cut.0 - first.0 + 1;
        let pieces = (span / min_piece.max(1)).clamp(1, cores.min(MAX_PIECES));
        // Piece `i` holds commits in `[bounds[i], bounds[i + 1])`.
        let bounds: Vec<Lsn> = (0..=pieces)
            .map(|i| Lsn(first.0 + ((u128::from(span) * u128::from(i)) / u128::from(pieces)) as u64))
            .collect();
        let read = |i: usize| -> Result<Option<Window>> {
            let (Some(lo), Some(hi)) = (bounds.get(i), bounds.get(i + 1)) else {
                return Ok(Some(Window::default()));
            };
            if hi <= lo {
                return Ok(Some(Window::default()));
            }
            self.read_piece(table, schema, *lo, Lsn(hi.0 - 1))
        };
        let read_all = std::thread::scope(|s| {
            let others: Vec<_> = (1..bounds.len() - 1).map(|i| s.spawn(move || read(i))).collect();
            let mut all = vec![read(0)];
            all.extend(
                others
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
            );
            all
        });
        let mut merged: Option<Window> = None;
        for piece in read_all {
            let Some(piece) = piece? else { return Ok(None) };
            // The first piece is taken as it is, not merged into nothing.
            merged = Some(match merged {
                Some(earlier) => earlier.then(piece),
                None => piece,
            });
        }
        Ok(Some(merged.unwrap_or_default()))
    }

    /// One piece of [`Store::read_window`]: the commits in `[from, to]`.
    fn read_piece(&self, table: TableId, schema: &TableSchema, from: Lsn, to: Lsn) -> Result<Option<Window>> {
        let mut reader = PieceReader {
            table,
            schema,
            window: Window::default(),
            key: Vec::new(),
            old_key: Vec::new(),
            spare: Vec::new(),
            old_spare: Vec::new(),
        };
        // Room for the piece's changes up front: grown by doubling, the
        // list was copied and its new pages faulted in at each step (5% of
        // a read one round of updates past an image). Untouched room costs
        // address space only, and all pieces together reserve no more than
        // the largest window holds.
        let guess = (to.0.saturating_sub(from.0) / WAL_BYTES_PER_CHANGE).min(MAX_WINDOW_RECORDS / MAX_PIECES);
        reader.window.changes.reserve(usize::try_from(guess).unwrap_or(0));
        let mut usable = true;
        self.for_each_raw_log_value::<StoreError>(from, to, |lsn, v| {
            let flow = reader.record(lsn, v)?;
            usable = flow.is_continue();
            Ok(flow)
        })?;
        if !usable {
            return Ok(None);
        }
        reader.window.settle();
        Ok(Some(reader.window))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// A key's last change: its LSN and row, or `None` for a deletion.
    type Last = Option<(Lsn, Vec<u8>)>;
    type Model = BTreeMap<Vec<u8>, Last>;

    fn contents(w: &Window, range: &KeyRange) -> Vec<(Vec<u8>, Last)> {
        w.in_range(range)
            .map(|c| (c.key.to_vec(), c.row.map(|(lsn, r)| (lsn, r.0.to_vec()))))
            .collect()
    }

    #[test]
    fn an_empty_key_is_refused() {
        let mut w = Window::default();
        assert!(!w.push(Lsn(1), b"", Some(b"row")));
        assert!(w.push(Lsn(1), b"k", None));
    }

    proptest! {
        /// Changes split into pieces at random, each piece settled, then
        /// merged in order: the last change of each key, in key order, as
        /// one pass over all of them keeps; and a range's part of it.
        #[test]
        fn pieces_merged_keep_the_last_change_of_each_key(
            changes in prop::collection::vec(
                (prop::collection::vec(0u8..4, 1..3), prop::option::of(prop::collection::vec(any::<u8>(), 0..5))),
                0..80,
            ),
            cuts in prop::collection::vec(0usize..80, 0..4),
            bounds in (prop::option::of(prop::collection::vec(0u8..4, 0..3)), prop::option::of(prop::collection::vec(0u8..4, 0..3))),
        ) {
            let mut model = Model::new();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(changes.len())).collect();
            cuts.push(changes.len());
            cuts.sort_unstable();
            let (mut merged, mut from) = (Window::default(), 0);
            for to in cuts {
                let mut piece = Window::default();
                for (i, (key, row)) in changes.iter().enumerate().take(to).skip(from) {
                    let lsn = Lsn(i as u64 + 1);
                    prop_assert!(piece.push(lsn, key, row.as_deref()));
                    model.insert(key.clone(), row.clone().map(|r| (lsn, r)));
                }
                piece.settle();
                merged = merged.then(piece);
                from = to;
            }
            let want: Vec<_> = model.clone().into_iter().collect();
            prop_assert_eq!(contents(&merged, &KeyRange::ALL), want);
            let range = KeyRange { start: bounds.0, end: bounds.1 };
            let want: Vec<_> = model.into_iter().filter(|(k, _)| range.contains(k)).collect();
            prop_assert_eq!(contents(&merged, &range), want);
        }
    }
}
