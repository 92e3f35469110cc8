//! Base images: every live row of one table at one cut, written beside the
//! version index, so a read at a cut long before the newest changes costs
//! the table's size plus the changes since the image, however deep each
//! key's history is.
//!
//! A read at cut `c` of a table with an image at `b <= c` walks the image
//! in key order and overlays the table's changes in `(b, c]`: the last
//! change of each key, read from the log once per read and shared by its
//! parts ([`crate::store::window`]); a deletion hides the key. It is used
//! when it is the cheaper read by an estimate (the log records since the
//! image, counted from the commits, against the share of 64 keys spread
//! over the table that changed after the cut, see `image_is_cheaper`),
//! and nothing between `b` and `c` changed the table's shape or emptied
//! it (a schema change, truncate or re-read); a table that counts copies
//! is always read through its versions. Reading through `latest` and the
//! histories otherwise gives the same answer; the tests hold both to the
//! reference fold.
//!
//! Crash safety: an image's rows are ingested first and its marker is
//! written (synced) after them; a read uses only images with a marker, and
//! writing an image removes whatever rows an interrupted write left.
//! Retention (`compact`) drops the images before its horizon together
//! with their markers, since the log they would be read with is gone.

use std::ops::ControlFlow;

use rocksdb::{Cache, IngestExternalFileOptions, SstFileWriter, WriteBatch, WriteOptions};

use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf, KeyRange};
use crate::lsn::Lsn;
use crate::mvcc::{decode_head, hand_row, park, recycle, scan_options, ScanRow, ScanStats};
use crate::schema::{SchemaVersionNo, TableSchema};
use crate::store::open::cf_options;
use crate::store::sample::{LOG, SEEK};
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

/// How a scan reads from an image.
pub(crate) struct ImagePlan {
    table: TableId,
    at: Lsn,
    /// The shape rows have between the image and the cut.
    schema: TableSchema,
    version: SchemaVersionNo,
}

impl ImagePlan {
    /// The cut the image is the table at.
    pub(crate) fn at(&self) -> Lsn {
        self.at
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
    /// horizon), unless it exists. The rows are those a scan at `at` reads.
    pub fn write_image(&mut self, table: TableId, at: Lsn) -> Result<ImageInfo> {
        self.check_writable()?;
        if self.commit(at)?.is_none() || self.horizon.is_some_and(|h| at < h) {
            return Err(StoreError::NoCommitAt { lsn: at });
        }
        if let Some(done) = self.images(table)?.into_iter().find(|i| i.at == at) {
            return Ok(done);
        }
        let dead_before = self.catalog.table(table).and_then(|e| e.last_reset_at(at));
        let prefix = keys::image_row_prefix(table, at);
        // Rows an interrupted write left.
        let (lo, hi) = keys::image_row_range(table, at, &KeyRange::ALL);
        self.db.delete_range_cf(self.cf(cf::IMAGES)?, lo, hi)?;

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
        let landed = written.and_then(|_| {
            if rows == 0 {
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
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.put_cf_opt(
            self.cf(cf::IMAGES)?,
            keys::encode_image_marker(table, at),
            keys::encode_image_rows(rows),
            &wo,
        )?;
        Ok(ImageInfo { table, at, rows })
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
        let Some(top) = self.watermark.map(|w| w.commit_lsn).filter(|top| cut < *top) else {
            return Ok(None);
        };
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
        if self.history_walk != HistoryWalk::Image && !self.image_is_cheaper(table, &image, cut, top)? {
            return Ok(None);
        }
        Ok(Some(ImagePlan {
            table,
            at: image.at,
            schema: schema.clone(),
            version: version.version,
        }))
    }

    /// Whether reading `table` at `cut` from `image` and the log since
    /// costs less than the cheaper walk without it (the costs are in
    /// [`crate::store::sample`]); the log records after the image are
    /// counted from the commits.
    fn image_is_cheaper(&self, table: TableId, image: &ImageInfo, cut: Lsn, top: Lsn) -> Result<bool> {
        let rows = image.rows.max(1);
        // Even with every key changed, a walk costs no more than this much
        // more than reading every row once.
        let budget = (rows.saturating_mul(SEEK) / LOG).min(MAX_WINDOW_RECORDS);
        let mut records = 0u64;
        let mut from = image.at.next();
        while records < budget {
            let page = self.commits_from(from, cut, 4096)?;
            let Some(last) = page.last() else { break };
            from = last.commit_lsn.next();
            records += page.iter().map(|c| u64::from(c.records)).sum::<u64>();
        }
        if records >= budget || cut >= top {
            return Ok(false);
        }
        let sample = self.sample_keys(table, cut)?;
        let mut walk = sample.through_latest();
        if self.keys_never_extend_each_other(table) {
            walk = walk.min(sample.through_versions());
        }
        // R + LOG W < R * walk, each side times the keys seen.
        let image = rows
            .saturating_add(LOG.saturating_mul(records))
            .saturating_mul(sample.seen);
        Ok(image < rows.saturating_mul(walk))
    }

    /// The changes since `plan`'s image up to `cut`, or `None` when the
    /// image cannot be read past them.
    pub(crate) fn window_since(&self, plan: &ImagePlan, cut: Lsn) -> Result<Option<Window>> {
        let piece = if self.history_walk == HistoryWalk::Image {
            1
        } else {
            MIN_PIECE_LSNS
        };
        self.read_window(plan.table, &plan.schema, plan.at, cut, piece)
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
        let (lo, hi) = keys::image_row_range(plan.table, plan.at, range);
        let mut ro = scan_options();
        ro.set_iterate_lower_bound(lo.clone());
        ro.set_iterate_upper_bound(hi);
        let mut image = self.iter_opt(self.cf(cf::IMAGES)?, ro);
        image.seek(&lo);
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
                (Some(uk), _) => {
                    let v = image.value().unwrap_or_default();
                    let (lsn, v) = codec::decode_latest(v).map_err(StoreError::corrupt(cf::IMAGES))?;
                    let flow = hand_row(cf::IMAGES, uk, lsn, v, &mut spare, &mut f)?.ok_or(StoreError::Corrupt {
                        cf: cf::IMAGES,
                        source: codec::CorruptEncoding {
                            offset: 0,
                            what: "a deletion in an image",
                        },
                    })?;
                    stats.rows += 1;
                    image.next();
                    stats.nexts += 1;
                    flow
                }
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
