//! Whole-table scans of the version index at a cut (MVCC reads).
//!
//! A snapshot walks the `latest` family (one entry per key) and goes into
//! a key's history only when the key changed after the cut. A diff walks
//! the version index itself, where the versions of one key sit together,
//! newest first.
//!
//! Both must land on a key's first version with LSN `<= c` and leave its
//! older versions behind. Stepping with `next()` is cheapest when that is a
//! few entries ahead, a `seek()` when it is not (a seek costs about ten
//! steps here). Like TiKV's forward scanner and CockroachDB's MVCC scanner,
//! a scan tries [`SEEK_AFTER_NEXTS`] steps and then seeks; a snapshot stops
//! trying for [`SEEKS_BEFORE_RETRY`] keys after a failed try, so deep
//! history does not pay for steps that never arrive.

use std::ops::ControlFlow;

use rocksdb::{DBRawIterator, ReadOptions};

use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf, KeyRange};
use crate::lsn::Lsn;
use crate::schema::SchemaVersionNo;
use crate::store::Store;
use crate::value::DatumRef;

/// A table is split into ranges of at least about this many keys: reading
/// a smaller range on its own thread costs more than it saves.
pub const MIN_KEYS_PER_RANGE: u64 = 4096;

/// How many `next()` calls a scan makes inside one key before it `seek()`s.
pub const SEEK_AFTER_NEXTS: usize = 8;

/// Iterator work done by a scan, to tune [`SEEK_AFTER_NEXTS`] from benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// `next()` calls.
    pub nexts: u64,
    /// `seek()` calls.
    pub seeks: u64,
    /// Rows handed to the caller.
    pub rows: u64,
    /// The base image the scan read from, if it read from one.
    pub image: Option<Lsn>,
    /// Whether, reading from an image, it walked the image's run of
    /// versions beside it rather than the changes since it in the log.
    pub run: bool,
    /// Whether it read `versions` alone rather than `latest` and the
    /// histories of the keys changed after the cut.
    pub through_versions: bool,
}

/// A live row version found by a scan, borrowed from the engine's buffers.
#[derive(Debug)]
pub struct ScanRow<'a> {
    /// The encoded user key (table id + key columns).
    pub key: &'a [u8],
    /// Commit LSN of the version.
    pub lsn: Lsn,
    /// Schema version the values are aligned to.
    pub schema: SchemaVersionNo,
    /// How many identical copies of the row exist (1 unless the table
    /// counts copies, see [`crate::TableSchema::counts_copies`]).
    pub copies: u64,
    /// The values.
    pub values: &'a [DatumRef<'a>],
}

/// One side of a [`DiffRow`]: the version visible at one cut, if a live row.
#[derive(Debug)]
pub struct SideVersion {
    /// Commit LSN of the version.
    pub lsn: Lsn,
    /// Schema version of the values.
    pub schema: SchemaVersionNo,
    /// How many identical copies of the row exist.
    pub copies: u64,
    /// The values, owned (diffs are sparse, so copying is cheap overall).
    pub values: Vec<crate::value::Datum>,
}

/// A key whose visible version differs between two cuts.
#[derive(Debug)]
pub struct DiffRow<'a> {
    /// The encoded user key.
    pub key: &'a [u8],
    /// Visible live row at the earlier cut.
    pub before: Option<SideVersion>,
    /// Visible live row at the later cut.
    pub after: Option<SideVersion>,
}

/// Moves the lifetime of an empty buffer so its allocation can be reused for
/// borrows of the next engine value.
pub(crate) fn recycle<'a>(mut v: Vec<DatumRef<'static>>) -> Vec<DatumRef<'a>> {
    v.clear();
    v.into_iter().collect()
}

pub(crate) fn park(mut v: Vec<DatumRef<'_>>) -> Vec<DatumRef<'static>> {
    v.clear();
    v.into_iter().map(|_| DatumRef::Null).collect()
}

/// Bytes a scan reads ahead in each table file it enters (the engine's own
/// largest automatic read-ahead). The buffer is allocated afresh for every
/// file, and at 2 MiB its pages faulting in cost more than the larger
/// reads saved: a GROUP BY at a past cut took 4% more CPU and twice the
/// page faults, a snapshot at `now` 2-4% more CPU. The kernel reads ahead
/// of a sequential reader on its own.
const READ_AHEAD: usize = 256 << 10;

/// Read options of a whole-table scan: read ahead, and leave the block
/// cache alone. A scan reads each block once, so caching it only evicts
/// what point look-ups use and costs an insert and an eviction per block
/// (about 30% of a deep past-cut scan, 20% of a scan at `now`).
pub(crate) fn scan_options() -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_readahead_size(READ_AHEAD);
    ro.fill_cache(false);
    ro
}

/// Read options of a walk that only moves forward (through `versions`, or
/// through the log), where a seek lands a few entries on: as
/// [`scan_options`], but the read-ahead is a fixed size instead of one
/// trimmed to the upper bound.
/// Trimming looks ahead in a file's index, and an iterator whose index is
/// ahead of its block compares every key with the bound, where otherwise it
/// compares once per block: 6% of the CPU of a GROUP BY at a past cut.
/// Iterators that seek far (the key sample, a `latest` walk's history)
/// keep the trimmed read-ahead: a fixed one reads its whole size again at
/// each far seek, which made a read at `now` of a store after a long
/// catch-up four times slower.
pub(crate) fn walk_options() -> ReadOptions {
    let mut ro = scan_options();
    ro.set_auto_readahead_size(false);
    ro
}

struct Walker<'s> {
    it: DBRawIterator<'s>,
    stats: ScanStats,
    key: Vec<u8>,
}

impl<'s> Walker<'s> {
    fn new(store: &'s Store, table: TableId) -> Result<Self> {
        let mut ro = scan_options();
        ro.set_async_io(true);
        let it = store.table_iter(cf::VERSIONS, table, ro)?;
        Ok(Walker {
            it,
            stats: ScanStats {
                seeks: 1,
                ..ScanStats::default()
            },
            key: Vec::new(),
        })
    }

    /// Loads the current entry's user key into `self.key`; `None` at the end.
    fn current(&self) -> Result<Option<(&[u8], Lsn)>> {
        match self.it.key() {
            Some(k) => Ok(Some(
                keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?,
            )),
            None => {
                self.it.status()?;
                Ok(None)
            }
        }
    }

    /// Positions on the first version of `self.key` with LSN `<= cut`, or
    /// on the next key. Returns whether the iterator is on `self.key`.
    fn skip_to_cut(&mut self, cut: Lsn) -> Result<bool> {
        let mut steps = 0;
        loop {
            let Some((uk, lsn)) = self.current()? else {
                return Ok(false);
            };
            if uk != self.key.as_slice() {
                return Ok(false);
            }
            if lsn <= cut {
                return Ok(true);
            }
            if steps == SEEK_AFTER_NEXTS {
                self.it.seek(keys::encode_version_key(&self.key, cut).0);
                self.stats.seeks += 1;
                steps = 0;
                continue;
            }
            self.it.next();
            self.stats.nexts += 1;
            steps += 1;
        }
    }

    /// Moves past every remaining version of `self.key`.
    fn skip_key(&mut self) -> Result<()> {
        for _ in 0..SEEK_AFTER_NEXTS {
            self.it.next();
            self.stats.nexts += 1;
            match self.current()? {
                Some((uk, _)) if uk == self.key.as_slice() => {}
                _ => return Ok(()),
            }
        }
        self.it.seek(keys::after_all_versions(&self.key));
        self.stats.seeks += 1;
        Ok(())
    }

    /// Sets `self.key` from the current entry; false at the end.
    fn begin_key(&mut self) -> Result<bool> {
        let Some(k) = self.it.key() else {
            self.it.status()?;
            return Ok(false);
        };
        let (uk, _) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
        self.key.clear();
        self.key.extend_from_slice(uk);
        Ok(true)
    }
}

/// How a past-cut scan reaches the visible version of a key that changed
/// after the cut. The history iterator moves forward through the same keys
/// as the scan, so the target is often a few entries ahead: stepping there
/// with `next()` costs a fraction of a `seek()` when histories are shallow,
/// and wastes [`SEEK_AFTER_NEXTS`] steps per key when they are deep. After
/// a failed attempt the scan seeks directly for [`SEEKS_BEFORE_RETRY`]
/// keys, so deep history costs at most one wasted attempt per that many keys.
#[derive(Default)]
struct Reach {
    seeks_left: u32,
    /// The version key `(user key, !cut)` aimed at, reused across keys.
    target: Vec<u8>,
}

/// Keys a past-cut scan seeks directly after stepping failed once.
pub const SEEKS_BEFORE_RETRY: u32 = 16;

impl Reach {
    /// Positions `it` on the first version of `uk` with LSN `<= cut`, or on
    /// whatever follows where that would be.
    fn to(&mut self, it: &mut DBRawIterator<'_>, uk: &[u8], cut: Lsn, stats: &mut ScanStats) -> Result<()> {
        keys::encode_version_key_into(&mut self.target, uk, cut);
        if self.seeks_left == 0 {
            if step_to(it, &self.target, stats)? {
                return Ok(());
            }
            self.seeks_left = SEEKS_BEFORE_RETRY;
        } else {
            self.seeks_left -= 1;
        }
        it.seek(&self.target);
        stats.seeks += 1;
        Ok(())
    }
}

/// Moves a version iterator forward with `next()` onto the first entry at
/// or after `target` (a version key), exactly where a seek would land, when
/// that is at most [`SEEK_AFTER_NEXTS`] entries ahead. Returns false, with the
/// iterator somewhere a seek must correct, otherwise.
///
/// Whole version keys are compared, not user keys: a key written under an
/// older shape can be a prefix of one written under a newer shape, and
/// then the two keys' versions sort in the opposite order to the keys.
fn step_to(it: &mut DBRawIterator<'_>, target: &[u8], stats: &mut ScanStats) -> Result<bool> {
    for step in 0..=SEEK_AFTER_NEXTS {
        let Some(k) = it.key() else {
            it.status()?;
            return Ok(false);
        };
        if k >= target {
            // Only stepping proves nothing lies between here and the target.
            return Ok(step > 0);
        }
        if step == SEEK_AFTER_NEXTS {
            return Ok(false);
        }
        it.next();
        stats.nexts += 1;
    }
    Ok(false)
}

/// Hands the row of the stored version `v` (a value of `family`) of `key`
/// to `f`, decoded into `spare`'s allocation; `None` for a deletion.
pub(crate) fn hand_row<E: From<StoreError>>(
    family: &'static str,
    key: &[u8],
    lsn: Lsn,
    v: &[u8],
    spare: &mut Vec<DatumRef<'static>>,
    f: &mut impl FnMut(ScanRow<'_>) -> std::result::Result<ControlFlow<()>, E>,
) -> std::result::Result<Option<ControlFlow<()>>, E> {
    let Some(head) = codec::decode_version_head(v).map_err(StoreError::corrupt(family))? else {
        return Ok(None);
    };
    let mut pos = head.row_at;
    let mut refs = recycle(std::mem::take(spare));
    codec::decode_row_into(v, &mut pos, &mut refs).map_err(StoreError::corrupt(family))?;
    let flow = f(ScanRow {
        key,
        lsn,
        schema: head.schema,
        copies: head.copies,
        values: &refs,
    })?;
    *spare = park(refs);
    Ok(Some(flow))
}

pub(crate) fn decode_head(v: &[u8]) -> Result<Option<codec::VersionHead>> {
    codec::decode_version_head(v).map_err(StoreError::corrupt(cf::VERSIONS))
}

impl Store {
    /// Streams the live rows of `table` as of `cut`, in key order. Versions
    /// older than `dead_before` (the table's last reset at or before the
    /// cut) are treated as gone. `f` returns [`ControlFlow::Break`] to stop
    /// early; its errors come back unchanged.
    pub fn scan_as_of<E: From<StoreError>>(
        &self,
        table: TableId,
        cut: Lsn,
        dead_before: Option<Lsn>,
        f: impl FnMut(ScanRow<'_>) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<ScanStats, E> {
        self.scan_range_as_of(table, &KeyRange::ALL, cut, dead_before, f)
    }

    /// [`Store::scan_as_of`] limited to the keys in `range`, so that parts
    /// of one table ([`Store::split_table`]) can be read side by side (plan
    /// the read once with [`Store::plan_table_read`] and read each part
    /// with [`Store::scan_planned`], so that they share what the plan
    /// reads).
    ///
    /// A cut well behind the newest changes is read from the table's
    /// newest base image at or before it plus the log since, when there is
    /// one (see [`crate::store::image`]); otherwise through `latest` and,
    /// for keys changed after the cut, their histories.
    pub fn scan_range_as_of<E: From<StoreError>>(
        &self,
        table: TableId,
        range: &KeyRange,
        cut: Lsn,
        dead_before: Option<Lsn>,
        f: impl FnMut(ScanRow<'_>) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<ScanStats, E> {
        let read = self.plan_table_read(table, cut, dead_before)?;
        self.scan_planned(&read, range, f)
    }

    /// [`Store::scan_range_as_of`] through `latest` and the histories of
    /// the keys changed after the cut.
    pub(crate) fn scan_walking_history<E: From<StoreError>>(
        &self,
        table: TableId,
        range: &KeyRange,
        cut: Lsn,
        dead_before: Option<Lsn>,
        through_versions: bool,
        mut f: impl FnMut(ScanRow<'_>) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<ScanStats, E> {
        let mut stats = ScanStats::default();
        let mut spare: Vec<DatumRef<'static>> = Vec::with_capacity(16);
        let mut rows = 0;
        let walked = self.visit_visible::<E>(table, range, cut, dead_before, through_versions, |uk, lsn, v| {
            let flow = hand_row(cf::VERSIONS, uk, lsn, v, &mut spare, &mut f)?;
            rows += u64::from(flow.is_some());
            Ok(flow.unwrap_or(ControlFlow::Continue(())))
        })?;
        stats.nexts = walked.nexts;
        stats.seeks = walked.seeks;
        stats.through_versions = walked.through_versions;
        stats.rows = rows;
        Ok(stats)
    }

    /// Calls `f` with the user key, LSN and stored bytes of the version of
    /// each key in `range` visible at `cut` (a row or a deletion), unless a
    /// reset hides it, in key order: through `versions` alone when
    /// `through_versions` (as [`Store::walks_versions`] decided for the
    /// whole read), else through `latest`.
    pub(crate) fn visit_visible<E: From<StoreError>>(
        &self,
        table: TableId,
        range: &KeyRange,
        cut: Lsn,
        dead_before: Option<Lsn>,
        through_versions: bool,
        f: impl FnMut(&[u8], Lsn, &[u8]) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<ScanStats, E> {
        if through_versions {
            self.visit_through_versions(table, range, cut, dead_before, f)
        } else {
            self.visit_through_latest(table, range, cut, dead_before, f)
        }
    }

    /// [`Store::visit_visible`] through `latest`, and the histories of the
    /// keys changed after the cut.
    fn visit_through_latest<E: From<StoreError>>(
        &self,
        table: TableId,
        range: &KeyRange,
        cut: Lsn,
        dead_before: Option<Lsn>,
        mut f: impl FnMut(&[u8], Lsn, &[u8]) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<ScanStats, E> {
        // Walk the newest version of every key (`latest`); only a key
        // changed after the cut needs a seek into its history. So a scan of
        // recent state costs the same however deep the history is.
        // Only the walk of `latest` is bounded: history is only ever
        // entered at keys it yields.
        let mut latest = self.range_iter(cf::LATEST, table, range, scan_options())?;
        let mut history: Option<DBRawIterator<'_>> = None;
        let mut stats = ScanStats {
            seeks: 1,
            ..ScanStats::default()
        };
        let mut reach = Reach::default();
        while let Some((uk, lv)) = latest.item() {
            let (newest, newest_value) = codec::decode_latest(lv).map_err(StoreError::corrupt(cf::LATEST))?;
            // A copied row's `latest` entry refers to its version instead of
            // holding it: read it from the history like a changed key's.
            let visible: Option<(Lsn, &[u8])> = if newest <= cut && !codec::latest_refers_to_versions(newest_value) {
                Some((newest, newest_value))
            } else {
                let it = match history.as_mut() {
                    Some(it) => it,
                    None => {
                        // Unbounded above: a key in the range can have
                        // versions sorting past the range's end (a key of
                        // an older shape that a newer one extends).
                        let mut it = self.table_iter(cf::VERSIONS, table, scan_options())?;
                        if let Some(start) = &range.start {
                            it.seek(start);
                        }
                        history.insert(it)
                    }
                };
                reach.to(it, uk, cut, &mut stats)?;
                match (it.key(), it.value()) {
                    (Some(k), Some(v)) => {
                        let (vuk, vlsn) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
                        (vuk == uk).then_some((vlsn, v))
                    }
                    _ => {
                        it.status().map_err(StoreError::from)?;
                        None
                    }
                }
            };
            if let Some((lsn, v)) = visible.filter(|(lsn, _)| dead_before.is_none_or(|r| *lsn >= r)) {
                if f(uk, lsn, v)?.is_break() {
                    return Ok(stats);
                }
            }
            latest.next();
            stats.nexts += 1;
        }
        latest.status().map_err(StoreError::from)?;
        Ok(stats)
    }

    /// At most `parts` key ranges that together cover `table`, split where
    /// its keys seem evenly spread (see [`keys::split_range`]), and no more
    /// of them than the store holds [`MIN_KEYS_PER_RANGE`] keys (an
    /// estimate over every table): a small table is read as one.
    pub fn split_table(&self, table: TableId, parts: usize) -> Result<Vec<KeyRange>> {
        let keys = self.estimated_keys(cf::LATEST)?;
        let parts = parts.min(usize::try_from(keys / MIN_KEYS_PER_RANGE).unwrap_or(usize::MAX).max(1));
        if parts == 1 {
            return Ok(vec![KeyRange::ALL]);
        }
        let mut it = self.range_iter(cf::LATEST, table, &KeyRange::ALL, ReadOptions::default())?;
        let Some(first) = it.key().map(<[u8]>::to_vec) else {
            it.status()?;
            return Ok(vec![KeyRange::ALL]);
        };
        it.seek_to_last();
        let Some(last) = it.key().map(<[u8]>::to_vec) else {
            it.status()?;
            return Ok(vec![KeyRange::ALL]);
        };
        Ok(keys::split_range(&first, &last, parts))
    }

    /// Streams the keys of `table` whose visible version differs between
    /// `from` and `to` (`from <= to`), with the live row at each side.
    /// `dead_before_*` are the table's last resets at or before each cut.
    /// `f` returns [`ControlFlow::Break`] to stop early.
    pub fn scan_diff<E: From<StoreError>>(
        &self,
        table: TableId,
        (from, dead_before_from): (Lsn, Option<Lsn>),
        (to, dead_before_to): (Lsn, Option<Lsn>),
        mut f: impl FnMut(DiffRow<'_>) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<ScanStats, E> {
        let mut w = Walker::new(self, table)?;
        let side = |v: &[u8], lsn: Lsn, dead: Option<Lsn>| -> Result<Option<SideVersion>> {
            if dead.is_some_and(|r| lsn < r) {
                return Ok(None);
            }
            match codec::decode_version_owned(v).map_err(StoreError::corrupt(cf::VERSIONS))? {
                Some(row) => Ok(Some(SideVersion {
                    lsn,
                    schema: row.schema,
                    copies: row.copies,
                    values: row.values,
                })),
                None => Ok(None),
            }
        };
        while w.begin_key()? {
            if !w.skip_to_cut(to)? {
                continue;
            }
            let Some((_, after_lsn)) = w.current()? else { break };
            let after_raw = w.it.value().map(<[u8]>::to_vec).unwrap_or_default();
            let on_key = w.skip_to_cut(from)?;
            let before_lsn = if on_key { w.current()?.map(|(_, l)| l) } else { None };
            // Same version at both cuts and no reset in between: unchanged.
            let after_dead = dead_before_to.is_some_and(|r| after_lsn < r);
            let before_dead = before_lsn.is_none_or(|l| dead_before_from.is_some_and(|r| l < r));
            if before_lsn == Some(after_lsn) && after_dead == before_dead {
                if on_key {
                    w.skip_key()?;
                }
                continue;
            }
            let after = side(&after_raw, after_lsn, dead_before_to)?;
            let before = match (on_key, before_lsn, w.it.value()) {
                (true, Some(l), Some(v)) => side(v, l, dead_before_from)?,
                _ => None,
            };
            let key = w.key.clone();
            if on_key {
                w.skip_key()?;
            }
            if before.is_none() && after.is_none() {
                continue;
            }
            if f(DiffRow {
                key: &key,
                before,
                after,
            })?
            .is_break()
            {
                break;
            }
        }
        Ok(w.stats)
    }
}
