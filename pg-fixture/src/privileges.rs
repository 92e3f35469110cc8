//! Running the server as an unprivileged user when this process is root.
//!
//! `initdb` and `postgres` refuse to run as root (containers and CI often
//! are root), so the cluster directory is handed to the `postgres` OS user
//! and the server processes run as that user.

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::FixtureError;

/// The OS user the server runs as when this process is root.
pub(crate) const SERVER_OS_USER: &str = "postgres";

/// A user to switch to before executing a server binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// `None` when this process may run the server itself (it is not root).
    pub(crate) fn for_current_process() -> Result<Option<RunAs>, FixtureError> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Ok(None);
        }
        match lookup_user(SERVER_OS_USER) {
            Ok(Some(user)) => Ok(Some(user)),
            Ok(None) => Err(FixtureError::NoPostgresUser),
            Err(source) => Err(FixtureError::io(
                format!("looking up the `{SERVER_OS_USER}` OS user"),
                source,
            )),
        }
    }

    /// Makes `command` run as this user. The standard library also drops the
    /// supplementary groups (it calls `setgroups(0)` when a uid is set and
    /// no groups were given), so root's groups do not leak to the server.
    pub(crate) fn apply(self, command: &mut Command) {
        command.uid(self.uid).gid(self.gid);
    }

    /// Gives `path` and everything below it to this user. Symlinks are
    /// re-owned themselves, never followed.
    pub(crate) fn chown_recursive(self, path: &Path) -> io::Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))?;
        if std::fs::symlink_metadata(path)?.is_dir() {
            for entry in std::fs::read_dir(path)? {
                self.chown_recursive(&entry?.path())?;
            }
        }
        Ok(())
    }
}

/// Looks a user up by name through NSS (so LDAP users work too).
fn lookup_user(name: &str) -> io::Result<Option<RunAs>> {
    let c_name = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut buf_len = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; buf_len];
        // SAFETY: passwd is plain old data; all-zero is a valid value that
        // getpwnam_r overwrites.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call: c_name is a NUL-
        // terminated string, pwd and result are live locals, and buf has
        // buf.len() writable bytes. The strings pwd points at live in buf,
        // but only the integer ids are read.
        let rc = unsafe { libc::getpwnam_r(c_name.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf_len < (1 << 20) {
            buf_len *= 4;
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if result.is_null() {
            return Ok(None);
        }
        return Ok(Some(RunAs {
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_user_exists_and_unknown_user_does_not() {
        let root = lookup_user("root").expect("lookup").expect("root exists");
        assert_eq!(root.uid, 0);
        assert_eq!(lookup_user("asof-no-such-user-x7").expect("lookup"), None);
    }
}
