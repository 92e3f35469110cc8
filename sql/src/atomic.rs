//! Files that appear whole or not at all: written under a temporary name
//! beside their place, synced, then renamed into it.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use crate::error::{Result, SqlError};

/// A file being written; it takes its name only on [`AtomicFile::commit`],
/// and its temporary file is removed when dropped uncommitted.
pub struct AtomicFile {
    path: PathBuf,
    partial: PathBuf,
    /// `None` once committed.
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `path` (as `.name.partial` beside it).
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = path.with_file_name(format!(".{name}.partial"));
        let file = File::create(&partial).map_err(io_error("cannot create", &partial))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            partial,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Where to write the contents.
    pub fn writer(&mut self) -> Result<&mut BufWriter<File>> {
        match self.out.as_mut() {
            Some(out) => Ok(out),
            None => Err(io_error("already committed", &self.partial)(io::Error::other(
                "committed",
            ))),
        }
    }

    /// Flushes and syncs the contents, then gives the file its name. On
    /// error the temporary file is removed.
    pub fn commit(mut self) -> Result<()> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let done = out
            .into_inner()
            .map_err(|e| io_error("cannot write", &self.partial)(e.into_error()))
            .and_then(|file| file.sync_all().map_err(io_error("cannot sync", &self.partial)))
            .and_then(|()| fs::rename(&self.partial, &self.path).map_err(io_error("cannot rename into", &self.path)));
        if done.is_err() {
            let _ = fs::remove_file(&self.partial);
        }
        done
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.partial);
        }
    }
}

/// Writes `path` whole: `fill` writes the contents.
pub fn write_atomically<T>(path: &Path, fill: impl FnOnce(&mut BufWriter<File>) -> Result<T>) -> Result<T> {
    let mut file = AtomicFile::create(path)?;
    let v = fill(file.writer()?)?;
    file.commit()?;
    Ok(v)
}

/// An I/O error about `path`.
pub(crate) fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SqlError {
    let path = path.to_path_buf();
    move |source| SqlError::Io { what, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn only_a_committed_file_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        let mut f = AtomicFile::create(&path).unwrap();
        f.writer().unwrap().write_all(b"half").unwrap();
        drop(f);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomically(&path, |out| {
            out.write_all(b"whole").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
