//! Password lookup in a libpq password file (`~/.pgpass`).
//!
//! Each line is `hostname:port:database:username:password`; `*` in any of
//! the first four fields matches anything; `\:` and `\\` escape; lines
//! starting with `#` are comments; the first matching line wins. As in
//! libpq, a file readable by group or others is ignored, and an unreadable
//! or missing file simply yields no password: a password file must never
//! be the reason a connection string is rejected.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What a line is matched against.
pub(super) struct Lookup<'a> {
    /// `localhost` stands for Unix-socket connections, as in libpq.
    pub(super) host: &'a str,
    pub(super) port: u16,
    pub(super) dbname: &'a str,
    pub(super) user: &'a str,
}

/// The password for `lookup` from the file at `path`, if any.
pub(super) fn find_password(path: &Path, lookup: &Lookup<'_>) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() {
        return None;
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "password file has group or world access; ignoring it (chmod 0600 it)"
        );
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    find_in(&text, lookup)
}

fn find_in(text: &str, lookup: &Lookup<'_>) -> Option<String> {
    let port = lookup.port.to_string();
    let wanted = [lookup.host, port.as_str(), lookup.dbname, lookup.user];
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let fields = split_fields(line);
        let (keys, rest) = fields.split_at_checked(wanted.len())?;
        let password = rest.first()?;
        let matches = keys
            .iter()
            .zip(wanted)
            .all(|(field, want)| field == "*" || field == want);
        matches.then(|| password.clone())
    })
}

/// Splits on unescaped `:`, removing the escapes. As in libpq, the
/// password is the fifth field and ends at the next unescaped `:`.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let c = match c {
            '\\' => match chars.next() {
                Some(escaped) => escaped,
                None => break,
            },
            ':' => {
                fields.push(String::new());
                continue;
            }
            c => c,
        };
        if let Some(field) = fields.last_mut() {
            field.push(c);
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup() -> Lookup<'static> {
        Lookup {
            host: "db",
            port: 5432,
            dbname: "shop",
            user: "alice",
        }
    }

    #[test]
    fn first_matching_line_wins() {
        let text = "# comment\n\
                    other:5432:shop:alice:nope\n\
                    db:*:shop:alice:first\n\
                    *:*:*:*:fallback\n";
        assert_eq!(find_in(text, &lookup()).as_deref(), Some("first"));
    }

    #[test]
    fn wildcards_and_no_match() {
        assert_eq!(find_in("*:*:*:*:any", &lookup()).as_deref(), Some("any"));
        assert_eq!(find_in("db:5433:shop:alice:x", &lookup()), None);
        assert_eq!(find_in("db:5432:shop", &lookup()), None);
    }

    #[test]
    fn escapes() {
        let text = r"d\:b:5432:shop:alice:x
db:5432:shop:alice:pa\:ss\\word:more";
        assert_eq!(find_in(text, &lookup()).as_deref(), Some(r"pa:ss\word"));
    }

    #[test]
    fn group_readable_files_are_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:secret\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(find_password(&path, &lookup()), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(find_password(&path, &lookup()).as_deref(), Some("secret"));
        assert_eq!(find_password(&dir.path().join("missing"), &lookup()), None);
    }
}
