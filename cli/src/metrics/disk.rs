//! The store's size on disk, from its directory. The store itself belongs
//! to the capture's writer thread, so its files are summed instead, every
//! few seconds rather than on each scrape.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::CaptureMetrics;

/// How often the directory is summed.
const INTERVAL: Duration = Duration::from_secs(5);

/// Keeps `metrics`' store size current until the runtime ends.
pub async fn watch_size(dir: PathBuf, metrics: Arc<CaptureMetrics>) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tick.tick().await;
        let d = dir.clone();
        if let Ok(bytes) = tokio::task::spawn_blocking(move || dir_bytes(&d)).await {
            metrics.set_store_size(bytes);
        }
    }
}

/// Bytes of the files under `dir`. Files that vanish while it is read
/// (compactions delete them) count as nothing.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_files_in_subdirectories() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), [0u8; 10]).expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/b"), [0u8; 5]).expect("write");
        assert_eq!(dir_bytes(dir.path()), 15);
        assert_eq!(dir_bytes(&dir.path().join("missing")), 0);
    }
}
