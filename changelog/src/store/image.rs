//! Base images: every live row of one table at one cut, written beside the
//! version index, so a read at a cut long before the newest changes costs
//! the table's size plus the changes since the image, however deep each
//! key's history is.
//!
//! A read at cut `c` of a table with an image at `b <= c` walks the image
//! in key order and overlays what changed in `(b, c]`, from one of two
//! sources, whichever the estimate says costs less:
//!
//! - the log: the last change of each key, read once per read and shared
//!   by its parts ([`crate::store::window`]), sorted in memory; cheap just
//!   after the image, dearer per change the further the cut;
//! - the image's run: every version of the table after `b` up to the next
//!   image, copied from `versions` when that image is written and keyed as
//!   `versions` keys them. A walk takes each key's newest version at or
//!   before `c`, as a walk of `versions` alone does, beside the image;
//!   its cost is the run's length wherever the cut falls in it.
//!
//! A deletion hides the key. The image is used when it is the cheaper read
//! by an estimate (the log records since the image, counted from the
//! commits, or the run's versions, against the share of 64 keys spread
//! over the table that changed after the cut, see `cheaper_overlay`), and
//! nothing between `b` and `c` changed the table's shape or emptied it (a
//! schema change, truncate or re-read); a table that counts copies is
//! always read through its versions, and a run is only written and read
//! for a table whose keys never extend each other. Reading through
//! `latest` and the histories otherwise gives the same answer; the tests
//! hold every way to the reference fold.
//!
//! Crash safety: an image's rows and its predecessor's run are ingested
//! first (one file) and their markers are written (in one synced batch)
//! after them; a read uses only images and runs with a marker, and writing
//! an image removes whatever an interrupted write left. Retention
//! (`compact`) drops the images before its horizon together with their
//! markers and runs, since the log they would be read with is gone.

use std::ops::ControlFlow;

use rocksdb::{Cache, IngestExternalFileOptions, SstFileWriter, WriteBatch, WriteOptions};

use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf, KeyRange};
use crate::lsn::Lsn;
use crate::mvcc::{decode_head, hand_row, park, recycle, scan_options, walk_options, ScanRow, ScanStats};
use crate::schema::{SchemaVersionNo, TableSchema};
use crate::store::open::cf_options;
use crate::store::sample::{LOG, RUN_PER_STEP, SEEK};
use crate::store::versions_walk::{Take, VersionWalk};
use crate::store::window::{Window, MAX_WINDOW_RECORDS, MIN_PIECE_LSNS};
use crate::store::{HistoryWalk, Store};
use crate::value::DatumRef;

/// One complete image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// The table.
    pub table: TableId,
    /// The cut it is the table at.
    pub at: Lsn,
    /// Its live rows.
    pub rows: u64,
}

/// A complete run of a table's versions after one of its images: every
/// version after the image up to `end`, in key order as `versions` holds
/// them, written with the next image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunInfo {
    /// The image it follows.
    pub from: Lsn,
    /// The newest cut it holds every version up to (the next image's).
    pub end: Lsn,
    /// The versions it holds.
    pub versions: u64,
}

/// What writing an image left: the image, and the run of versions it
/// ended (from the image before it), if it wrote or already had one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrittenImage {
    /// The image.
    pub image: ImageInfo,
    /// The run of versions that ends at it.
    pub run: Option<RunInfo>,
}

/// What a read through an image overlays on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overlay {
    /// The last change of each key since the image, read from the log.
    Log,
    /// The run of versions after the image, walked beside it.
    Run(RunInfo),
}

/// How a scan reads from an image.
pub(crate) struct ImagePlan {
    table: TableId,
    at: Lsn,
    /// The shape rows have between the image and the cut.
    schema: TableSchema,
    version: SchemaVersionNo,
    overlay: Overlay,
}

impl ImagePlan {
    /// The cut the image is the table at.
    pub(crate) fn at(&self) -> Lsn {
        self.at
    }

    /// What the read overlays on the image.
    pub(crate) fn overlay(&self) -> Overlay {
        self.overlay
    }
}

impl Store {
    /// The complete images of `table`, oldest first.
    pub fn images(&self, table: TableId) -> Result<Vec<ImageInfo>> {
        let Some(images) = self.db.cf_handle(cf::IMAGES) else {
            return Ok(Vec::new());
        };
        let (lo, hi) = keys::image_marker_range(table);
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_upper_bound(hi);
        let mut it = self.iter_opt(images, ro);
        it.seek(lo);
        let mut out = Vec::new();
        while let Some((k, v)) = it.item() {
            let (t, at) = keys::decode_image_marker(k).map_err(StoreError::corrupt(cf::IMAGES))?;
            let rows = keys::decode_image_rows(v).map_err(StoreError::corrupt(cf::IMAGES))?;
            out.push(ImageInfo { table: t, at, rows });
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Writes the image of `table` at `at` (a stored commit at or after the
    /// horizon), unless it exists. The rows are those a scan at `at` reads;
    /// the run of versions since the image before it goes with them.
    pub fn write_image(&mut self, table: TableId, at: Lsn) -> Result<WrittenImage> {
        self.check_writable()?;
        if self.commit(at)?.is_none() || self.horizon.is_some_and(|h| at < h) {
            return Err(StoreError::NoCommitAt { lsn: at });
        }
        if let Some(done) = self.images(table)?.into_iter().find(|i| i.at == at) {
            let run = self.run_into(table, at)?;
            return Ok(WrittenImage { image: done, run });
        }
        let dead_before = self.catalog.table(table).and_then(|e| e.last_reset_at(at));
        let prefix = keys::image_row_prefix(table, at);
        let run_from = self.run_to_write(table, at)?;
        // Rows an interrupted write left.
        let (lo, hi) = keys::image_row_range(table, at, &KeyRange::ALL);
        self.db.delete_range_cf(self.cf(cf::IMAGES)?, lo, hi)?;
        if let Some(from) = run_from {
            let (lo, hi) = keys::run_version_range(table, from, &KeyRange::ALL);
            self.db.delete_range_cf(self.cf(cf::IMAGES)?, lo, hi)?;
        }

        let dir = self.scratch_dir()?;
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(format!("image-{}-{}.sst", table.0, at.0));
        let cache = Cache::new_lru_cache(1 << 20);
        let options = cf_options(cf::IMAGES, &cache);
        let mut writer = SstFileWriter::create(&options);
        writer.open(&path)?;
        let mut rows = 0u64;
        let (mut key, mut value) = (Vec::new(), Vec::new());
        let through_versions = self.walks_versions(table, at)?;
        let written = self.visit_visible::<StoreError>(
            table,
            &KeyRange::ALL,
            at,
            dead_before,
            through_versions,
            |uk, lsn, v| {
                if decode_head(v)?.is_some() {
                    key.clear();
                    key.extend_from_slice(&prefix);
                    key.extend_from_slice(uk);
                    codec::encode_latest_into(&mut value, lsn, v);
                    writer.put(&key, &value)?;
                    rows += 1;
                }
                Ok(ControlFlow::Continue(()))
            },
        );
        // The run of versions since the previous image, after the rows: its
        // keys sort after theirs.
        let mut versions = 0u64;
        let written = written.and_then(|_| {
            let Some(from) = run_from else { return Ok(()) };
            let prefix = keys::run_version_prefix(table, from);
            let mut it = self.table_iter(cf::VERSIONS, table, walk_options())?;
            let walk = VersionWalk {
                prefix: &[],
                range: &KeyRange::ALL,
                upto: at,
                take: Take::After(from),
            };
            walk.run::<StoreError>(&mut it, cf::VERSIONS, &mut ScanStats::default(), |uk, lsn, v| {
                key.clear();
                key.extend_from_slice(&prefix);
                keys::extend_version_key(&mut key, uk, lsn);
                writer.put(&key, v)?;
                versions += 1;
                Ok(ControlFlow::Continue(()))
            })
        });
        let landed = written.and_then(|_| {
            if rows == 0 && versions == 0 {
                return Ok(());
            }
            writer.finish()?;
            let mut io = IngestExternalFileOptions::default();
            io.set_move_files(true);
            self.db
                .ingest_external_file_cf_opts(self.cf(cf::IMAGES)?, &io, vec![path.clone()])?;
            Ok(())
        });
        let _ = std::fs::remove_file(&path);
        landed?;
        let images = self.cf(cf::IMAGES)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            images,
            keys::encode_image_marker(table, at),
            keys::encode_image_rows(rows),
        );
        let run = run_from.map(|from| RunInfo {
            from,
            end: at,
            versions,
        });
        if let Some(run) = run {
            batch.put_cf(
                images,
                keys::encode_run_marker(table, run.from),
                keys::encode_run_extent(run.end, run.versions),
            );
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(WrittenImage {
            image: ImageInfo { table, at, rows },
            run,
        })
    }

    /// The run of `table`'s versions that ends at its image at `at`.
    fn run_into(&self, table: TableId, at: Lsn) -> Result<Option<RunInfo>> {
        for image in self.images(table)?.iter().rev().filter(|i| i.at < at) {
            if let Some(run) = self.image_run(table, image.at)?.filter(|r| r.end == at) {
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    /// The image of `table` before `at` whose run of versions an image at
    /// `at` should write: the newest one, when it has no run yet, the
    /// table's keys never extend each other (a run is walked as `versions`
    /// alone is) and its rows at `at` are not counted copies.
    fn run_to_write(&self, table: TableId, at: Lsn) -> Result<Option<Lsn>> {
        let counts_copies = self
            .catalog
            .table(table)
            .and_then(|e| e.history.at(at))
            .and_then(|v| v.schema())
            .is_none_or(TableSchema::counts_copies);
        if counts_copies || !self.keys_never_extend_each_other(table) {
            return Ok(None);
        }
        let Some(previous) = self.images(table)?.into_iter().rev().find(|i| i.at < at) else {
            return Ok(None);
        };
        if self.image_run(table, previous.at)?.is_some() {
            return Ok(None);
        }
        Ok(Some(previous.at))
    }

    /// The complete run of `table`'s versions after its image at `from`.
    pub fn image_run(&self, table: TableId, from: Lsn) -> Result<Option<RunInfo>> {
        let Some(images) = self.db.cf_handle(cf::IMAGES) else {
            return Ok(None);
        };
        let Some(v) = self.db.get_pinned_cf(images, keys::encode_run_marker(table, from))? else {
            return Ok(None);
        };
        let (end, versions) = keys::decode_run_extent(&v).map_err(StoreError::corrupt(cf::IMAGES))?;
        Ok(Some(RunInfo { from, end, versions }))
    }

    /// Drops every image before `horizon`, marker and rows together.
    pub(crate) fn drop_images_before(&self, horizon: Lsn) -> Result<u64> {
        let Some(images) = self.db.cf_handle(cf::IMAGES) else {
            return Ok(0);
        };
        let mut dropped = 0;
        let mut batch = WriteBatch::default();
        for (table, _) in self.catalog.tables() {
            for image in self.images(table)?.into_iter().filter(|i| i.at < horizon) {
                let (lo, hi) = keys::image_row_range(table, image.at, &KeyRange::ALL);
                batch.delete_cf(images, keys::encode_image_marker(table, image.at));
                batch.delete_range_cf(images, lo, hi);
                let (lo, hi) = keys::run_version_range(table, image.at, &KeyRange::ALL);
                batch.delete_cf(images, keys::encode_run_marker(table, image.at));
                batch.delete_range_cf(images, lo, hi);
                dropped += 1;
            }
        }
        if dropped > 0 {
            let mut wo = WriteOptions::default();
            wo.set_sync(true);
            self.db.write_opt(batch, &wo)?;
        }
        Ok(dropped)
    }

    /// The image a scan of `table` at `cut` should read from, if any (see
    /// the module docs for when).
    pub(crate) fn image_plan(&self, table: TableId, cut: Lsn, dead_before: Option<Lsn>) -> Result<Option<ImagePlan>> {
        if matches!(self.history_walk, HistoryWalk::Latest | HistoryWalk::Versions) {
            return Ok(None);
        }
        if self.watermark.is_none_or(|w| cut >= w.commit_lsn) {
            return Ok(None);
        }
        let Some(entry) = self.catalog.table(table) else {
            return Ok(None);
        };
        let Some(version) = entry.history.at(cut) else {
            return Ok(None);
        };
        let Some(schema) = version.schema().filter(|s| !s.counts_copies()) else {
            return Ok(None);
        };
        let usable = |at: Lsn| {
            at <= cut
                && self.horizon.is_none_or(|h| at >= h)
                && dead_before.is_none_or(|r| r <= at)
                && entry.history.at(at).is_some_and(|v| v.version == version.version)
        };
        let Some(image) = self.images(table)?.into_iter().rev().find(|i| usable(i.at)) else {
            return Ok(None);
        };
        let run = match self.history_walk {
            HistoryWalk::ImageLog => None,
            _ if !self.keys_never_extend_each_other(table) => None,
            _ => self.image_run(table, image.at)?.filter(|r| cut <= r.end),
        };
        let overlay = match self.history_walk {
            HistoryWalk::Image => Some(run.map_or(Overlay::Log, Overlay::Run)),
            HistoryWalk::ImageLog => Some(Overlay::Log),
            _ => self.cheaper_overlay(table, &image, run, cut)?,
        };
        Ok(overlay.map(|overlay| ImagePlan {
            table,
            at: image.at,
            schema: schema.clone(),
            version: version.version,
            overlay,
        }))
    }

    /// What reading `table` at `cut` from `image` overlays on it, when that
    /// costs less than the cheaper walk without it (the costs are in
    /// [`crate::store::sample`]): the log since the image (its records
    /// counted from the commits) or `run`, whichever costs less.
    fn cheaper_overlay(
        &self,
        table: TableId,
        image: &ImageInfo,
        run: Option<RunInfo>,
        cut: Lsn,
    ) -> Result<Option<Overlay>> {
        let rows = image.rows.max(1);
        // Even with every key changed, a walk costs no more than this much
        // more than reading every row once; and the log is read only when
        // it costs less than the run.
        let run_cost = |r: RunInfo| r.versions.div_ceil(RUN_PER_STEP);
        let budget = (rows.saturating_mul(SEEK) / LOG).min(MAX_WINDOW_RECORDS);
        let budget = run.map_or(budget, |r| budget.min(run_cost(r).div_ceil(LOG)));
        let mut records = 0u64;
        let mut from = image.at.next();
        while records < budget {
            let page = self.commits_from(from, cut, 4096)?;
            let Some(last) = page.last() else { break };
            from = last.commit_lsn.next();
            records += page.iter().map(|c| u64::from(c.records)).sum::<u64>();
        }
        let (overlay, cost) = match run {
            _ if records < budget => (Overlay::Log, LOG.saturating_mul(records)),
            Some(r) => (Overlay::Run(r), run_cost(r)),
            None => return Ok(None),
        };
        let sample = self.sample_keys(table, cut)?;
        let mut walk = sample.through_latest();
        if self.keys_never_extend_each_other(table) {
            walk = walk.min(sample.through_versions());
        }
        // R + overlay < R * walk, each side times the keys seen.
        let image = rows.saturating_add(cost).saturating_mul(sample.seen);
        Ok((image < rows.saturating_mul(walk)).then_some(overlay))
    }

    /// The changes since `plan`'s image up to `cut`, or `None` when the
    /// image cannot be read past them.
    pub(crate) fn window_since(&self, plan: &ImagePlan, cut: Lsn) -> Result<Option<Window>> {
        let piece = if matches!(self.history_walk, HistoryWalk::Image | HistoryWalk::ImageLog) {
            1
        } else {
            MIN_PIECE_LSNS
        };
        self.read_window(plan.table, &plan.schema, plan.at, cut, piece)
    }

    /// [`Store::scan_range_as_of`] at `cut` through `plan`'s image and its
    /// run of versions: each key's newest version in the run at or before
    /// the cut decides it, and the image holds the others.
    pub(crate) fn scan_from_run<E: From<StoreError>>(
        &self,
        plan: &ImagePlan,
        run: &RunInfo,
        cut: Lsn,
        range: &KeyRange,
        mut f: impl FnMut(ScanRow<'_>) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<ScanStats, E> {
        let mut image = self.image_rows(plan, range)?;
        let image_prefix = keys::image_row_prefix(plan.table, plan.at).len();
        let run_prefix = keys::run_version_prefix(plan.table, run.from);
        let mut versions = self.images_iter(keys::run_version_range(plan.table, run.from, range), walk_options())?;
        let mut stats = ScanStats {
            seeks: 2,
            image: Some(plan.at),
            run: true,
            ..ScanStats::default()
        };
        let mut spare: Vec<DatumRef<'static>> = Vec::with_capacity(16);
        let walk = VersionWalk {
            prefix: &run_prefix,
            range,
            upto: cut,
            take: Take::First,
        };
        let mut run_stats = ScanStats::default();
        let mut stopped = false;
        walk.run::<E>(&mut versions, cf::IMAGES, &mut run_stats, |uk, lsn, v| {
            // The image's rows before this key stand as they are.
            while let Some(k) = image.key().and_then(|k| k.get(image_prefix..)) {
                match k.cmp(uk) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => {
                        image.next();
                        stats.nexts += 1;
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
                if hand_image_row(&mut image, image_prefix, &mut spare, &mut stats, &mut f)?.is_break() {
                    stopped = true;
                    return Ok(ControlFlow::Break(()));
                }
            }
            let flow = hand_row(cf::IMAGES, uk, lsn, v, &mut spare, &mut f)?;
            stats.rows += u64::from(flow.is_some());
            stopped = flow.is_some_and(|f| f.is_break());
            Ok(if stopped {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?;
        stats.nexts += run_stats.nexts;
        stats.seeks += run_stats.seeks;
        while !stopped && image.valid() {
            stopped = hand_image_row(&mut image, image_prefix, &mut spare, &mut stats, &mut f)?.is_break();
        }
        image.status().map_err(StoreError::from)?;
        Ok(stats)
    }

    /// An iterator over the rows of `plan`'s image in `range`, at the first.
    fn image_rows(&self, plan: &ImagePlan, range: &KeyRange) -> Result<rocksdb::DBRawIterator<'_>> {
        self.images_iter(keys::image_row_range(plan.table, plan.at, range), scan_options())
    }

    /// An iterator over the `images` family from `lo` to `hi`, at `lo`.
    fn images_iter(
        &self,
        (lo, hi): (Vec<u8>, Vec<u8>),
        mut ro: rocksdb::ReadOptions,
    ) -> Result<rocksdb::DBRawIterator<'_>> {
        ro.set_iterate_lower_bound(lo.clone());
        ro.set_iterate_upper_bound(hi);
        let mut it = self.iter_opt(self.cf(cf::IMAGES)?, ro);
        it.seek(&lo);
        Ok(it)
    }

    /// [`Store::scan_range_as_of`] through `plan`'s image and `window`,
    /// the changes since it.
    pub(crate) fn scan_from_image<E: From<StoreError>>(
        &self,
        plan: &ImagePlan,
        window: &Window,
        range: &KeyRange,
        mut f: impl FnMut(ScanRow<'_>) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<ScanStats, E> {
        let prefix = keys::image_row_prefix(plan.table, plan.at);
        let mut image = self.image_rows(plan, range)?;
        let mut stats = ScanStats {
            seeks: 1,
            image: Some(plan.at),
            ..ScanStats::default()
        };
        let mut changed = window.in_range(range).peekable();
        let mut spare: Vec<DatumRef<'static>> = Vec::with_capacity(16);
        loop {
            let from_image = image.key().and_then(|k| k.get(prefix.len()..));
            let next_change = changed.peek().map(|c| c.key);
            let flow = match (from_image, next_change) {
                (None, None) => break,
                // A change since the image decides its key.
                (image_key, Some(k)) if image_key.is_none_or(|i| k <= i) => {
                    if image_key == Some(k) {
                        image.next();
                        stats.nexts += 1;
                    }
                    let Some(change) = changed.next() else { break };
                    match change.row {
                        Some((lsn, row)) => {
                            let mut refs = recycle(std::mem::take(&mut spare));
                            row.values_into(&mut refs).map_err(StoreError::corrupt(cf::LOG))?;
                            stats.rows += 1;
                            let flow = f(ScanRow {
                                key: change.key,
                                lsn,
                                schema: plan.version,
                                copies: 1,
                                values: &refs,
                            })?;
                            spare = park(refs);
                            flow
                        }
                        None => ControlFlow::Continue(()),
                    }
                }
                (Some(_), _) => hand_image_row(&mut image, prefix.len(), &mut spare, &mut stats, &mut f)?,
                (None, Some(_)) => break,
            };
            if flow.is_break() {
                return Ok(stats);
            }
        }
        image.status().map_err(StoreError::from)?;
        Ok(stats)
    }
}

/// Hands the row `image` stands on to `f` and moves on.
fn hand_image_row<E: From<StoreError>>(
    image: &mut rocksdb::DBRawIterator<'_>,
    prefix: usize,
    spare: &mut Vec<DatumRef<'static>>,
    stats: &mut ScanStats,
    f: &mut impl FnMut(ScanRow<'_>) -> std::result::Result<ControlFlow<()>, E>,
) -> std::result::Result<ControlFlow<()>, E> {
    let (Some(k), Some(v)) = (image.key(), image.value()) else {
        return Ok(ControlFlow::Continue(()));
    };
    let uk = k.get(prefix..).unwrap_or_default();
    let (lsn, v) = codec::decode_latest(v).map_err(StoreError::corrupt(cf::IMAGES))?;
    let flow = hand_row(cf::IMAGES, uk, lsn, v, spare, f)?.ok_or(StoreError::Corrupt {
        cf: cf::IMAGES,
        source: codec::CorruptEncoding {
            offset: 0,
            what: "a deletion in an image",
        },
    })?;
    stats.rows += 1;
    image.next();
    stats.nexts += 1;
    Ok(flow)
}
