//! Finding the PostgreSQL server binaries.
//!
//! Order: an explicit directory (builder), then `$ASOF_PG_BIN`, then `PATH`,
//! then the newest Debian-style `/usr/lib/postgresql/<version>/bin`.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::FixtureError;

/// Environment variable naming the directory that holds `initdb` and
/// `postgres`.
pub const BIN_DIR_ENV: &str = "ASOF_PG_BIN";

/// Where Debian and Ubuntu install one directory per major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The binaries a directory must hold to be usable.
const REQUIRED: [&str; 2] = ["initdb", "postgres"];

/// Returns the directory holding the server binaries.
pub(crate) fn locate(explicit: Option<&Path>) -> Result<PathBuf, FixtureError> {
    if let Some(dir) = explicit {
        return checked(dir);
    }
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV).filter(|v| !v.is_empty()) {
        return checked(Path::new(&dir));
    }
    if let Some(dir) = from_path(std::env::var_os("PATH").as_deref()) {
        return Ok(dir);
    }
    if let Some(dir) = newest_debian_dir(Path::new(DEBIAN_ROOT)) {
        return Ok(dir);
    }
    Err(FixtureError::BinariesNotFound { looked_in: None })
}

fn checked(dir: &Path) -> Result<PathBuf, FixtureError> {
    if has_server_binaries(dir) {
        Ok(dir.to_path_buf())
    } else {
        Err(FixtureError::BinariesNotFound {
            looked_in: Some(dir.to_path_buf()),
        })
    }
}

/// The first `PATH` entry with an `initdb`, resolved through symlinks so
/// that `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb` yields
/// the real bin directory, where the client tools (`psql`,
/// `pg_recvlogical`) of the same version live too.
fn from_path(path: Option<&OsStr>) -> Option<PathBuf> {
    for dir in std::env::split_paths(path?) {
        let initdb = dir.join("initdb");
        if !is_executable(&initdb) {
            continue;
        }
        let real_dir = std::fs::canonicalize(&initdb)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        if let Some(real_dir) = real_dir.filter(|d| has_server_binaries(d)) {
            return Some(real_dir);
        }
        if has_server_binaries(&dir) {
            return Some(dir);
        }
    }
    None
}

fn newest_debian_dir(root: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = parse_version(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            has_server_binaries(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// "15" -> [15], "9.6" -> [9, 6]; anything else is not a version directory.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn has_server_binaries(dir: &Path) -> bool {
    REQUIRED.iter().all(|name| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        assert!(parse_version("10") > parse_version("9.6"));
        assert!(parse_version("16") > parse_version("15"));
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("main"), None);
    }

    #[test]
    fn empty_dir_is_not_a_bin_dir() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = locate(Some(dir.path())).expect_err("must fail");
        let message = err.to_string();
        assert!(message.contains("not found in"), "{message}");
        assert!(message.contains("ASOF_PG_BIN"), "{message}");
    }

    #[test]
    fn path_search_skips_dirs_without_binaries() {
        let empty = tempfile::tempdir().expect("temp dir");
        let path = std::env::join_paths([empty.path()]).expect("join");
        assert_eq!(from_path(Some(&path)), None);
    }
}
