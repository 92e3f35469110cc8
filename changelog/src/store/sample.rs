//! A few keys spread over a table, read to estimate what a read at a past
//! cut will meet: how many keys changed after the cut, and how many
//! versions each key has; and what each way of reading then costs.
//!
//! Costs are in steps of a walk (about 0.2 µs here). For `R` keys with `d`
//! versions each on average, a fraction `a` of them changed after the cut:
//!
//! - through `latest`, `R (1 + min(d, SEEK a))`: a step per key, and for a
//!   changed key a move of the history iterator, a seek at most, no more
//!   than the versions in between when they are few;
//! - through `versions` alone, `R d`;
//! - from a base image of `R` rows, `R + LOG W` for the `W` log records
//!   (of every table) after it, or `R + V / RUN_PER_STEP` for the `V`
//!   versions of the run that follows it.

use crate::codec;
use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::{self, cf};
use crate::lsn::Lsn;
use crate::store::Store;

/// What a seek into a key's history costs, in steps of a walk.
pub(crate) const SEEK: u64 = 6;
/// What one log record after an image costs, in steps of a walk: measured
/// at 0.37-0.44 µs of CPU time against 0.2 µs a step (decompressing the
/// log's blocks, finding each record's table and key, keeping the last
/// change per key, sorting them by key), read once for the whole scan.
pub(crate) const LOG: u64 = 2;

/// Versions of an image's run that cost one step of a walk: measured at
/// 0.11 µs each beside the image (a step, its row decoded when it decides
/// its key, the image's row then stepped over undecoded), a quarter of a
/// log record.
pub(crate) const RUN_PER_STEP: u64 = 2;

/// Keys sampled.
pub(crate) const SAMPLES: u64 = 64;

/// Versions counted per sampled key at most: deeper is deep enough.
const DEPTH_COUNTED: u64 = 64;

/// What the sampled keys showed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeySample {
    /// Keys read (fewer than [`SAMPLES`] when the keys leave no room).
    pub seen: u64,
    /// Of them, those whose visible version a walk of `latest` reads from
    /// the key's history: the newest is after the cut, or `latest` only
    /// refers to it (a copied row, stored once).
    pub changed: u64,
    /// Their versions (rows and deletions) in all.
    pub versions: u64,
}

/// A number of keys in `0..16` for the `i`th point, the same on every call.
fn jitter(i: usize) -> u64 {
    let x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 60) & 15
}

impl KeySample {
    /// The walk through `latest`, in steps per key times the keys seen.
    pub fn through_latest(&self) -> u64 {
        self.seen + self.versions.min(SEEK * self.changed)
    }

    /// The walk through `versions` alone, in the same units.
    pub fn through_versions(&self) -> u64 {
        self.versions
    }
}

impl Store {
    /// Reads [`SAMPLES`] keys spread over `table` in `latest`, and their
    /// histories.
    pub(crate) fn sample_keys(&self, table: TableId, cut: Lsn) -> Result<KeySample> {
        let mut it = self.table_iter(cf::LATEST, table, rocksdb::ReadOptions::default())?;
        let Some(first) = it.key().map(<[u8]>::to_vec) else {
            it.status()?;
            return Ok(KeySample::default());
        };
        it.seek_to_last();
        let Some(last) = it.key().map(<[u8]>::to_vec) else {
            it.status()?;
            return Ok(KeySample::default());
        };
        let mut history = self.table_iter(cf::VERSIONS, table, rocksdb::ReadOptions::default())?;
        let mut sample = KeySample::default();
        let ranges = keys::split_range(&first, &last, usize::try_from(SAMPLES).unwrap_or(64));
        let starts = ranges.iter().map(|r| r.start.clone().unwrap_or_else(|| first.clone()));
        for (i, start) in starts.enumerate() {
            it.seek(&start);
            // Points spread evenly fall on keys in step with each other (all
            // even ids, say) and can miss a pattern of changes that is not:
            // move on by a few keys, differently at each point.
            for _ in 0..jitter(i) {
                it.next();
            }
            let Some((uk, v)) = it.item() else {
                break;
            };
            let (newest, version) = codec::decode_latest(v).map_err(StoreError::corrupt(cf::LATEST))?;
            sample.seen += 1;
            sample.changed += u64::from(newest > cut || codec::latest_refers_to_versions(version));
            // A key's versions start at the key itself.
            history.seek(uk);
            let mut depth = 0;
            while let Some(k) = history.key() {
                let (vuk, _) = keys::split_version_key(k).map_err(StoreError::corrupt(cf::VERSIONS))?;
                if vuk != uk || depth == DEPTH_COUNTED {
                    break;
                }
                depth += 1;
                history.next();
            }
            history.status()?;
            sample.versions += depth;
        }
        it.status()?;
        Ok(sample)
    }
}
