//! The two libpq connection-string syntaxes, tokenised into key/value
//! pairs: `key=value ...` and `postgres[ql]://user:pass@host:port/db?k=v`.
//!
//! Only the syntax lives here; which keys exist and what their values mean
//! is decided by the caller. Errors carry a byte offset and a fixed
//! description, never text from the input, because the input may hold a
//! password.

use super::ConnInfoError;

/// One `key=value` setting, in input order (later ones win, as in libpq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Param {
    pub(super) key: String,
    pub(super) value: String,
}

impl Param {
    fn new(key: impl Into<String>, value: impl Into<String>) -> Param {
        Param {
            key: key.into(),
            value: value.into(),
        }
    }
}

const URI_PREFIXES: [&str; 2] = ["postgresql://", "postgres://"];

/// Splits a connection string of either syntax into parameters.
pub(super) fn tokenize(s: &str) -> Result<Vec<Param>, ConnInfoError> {
    for prefix in URI_PREFIXES {
        if let Some(rest) = s.strip_prefix(prefix) {
            return tokenize_uri(rest, prefix.len());
        }
    }
    tokenize_key_value(s)
}

fn syntax(offset: usize, problem: &'static str) -> ConnInfoError {
    ConnInfoError::Syntax { offset, problem }
}

/// libpq's `key = value` form: whitespace separates settings and may
/// surround `=`; a value is either bare (up to the next whitespace) or
/// single-quoted; in both a backslash takes the next character literally.
fn tokenize_key_value(s: &str) -> Result<Vec<Param>, ConnInfoError> {
    let mut params = Vec::new();
    let mut chars = s.char_indices().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        let Some(&(key_start, _)) = chars.peek() else {
            return Ok(params);
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|&(_, c)| !c.is_whitespace() && c != '=') {
            key.push(c);
        }
        skip_ws(&mut chars);
        match chars.next() {
            Some((_, '=')) => {}
            Some((offset, _)) => return Err(syntax(offset, "expected `=` after the option name")),
            None => return Err(syntax(s.len(), "expected `=` after the option name")),
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next() {
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err(syntax(s.len(), "unterminated quoted value")),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err(syntax(s.len(), "unterminated quoted value")),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|&(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        check_key(&key, key_start)?;
        params.push(Param::new(key, value));
    }
}

/// Option names are identifiers; anything else is reported without
/// echoing it (it may be a misplaced password).
fn check_key(key: &str, offset: usize) -> Result<(), ConnInfoError> {
    let ok = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(syntax(offset, "malformed option name"))
    }
}

/// libpq's URI form, after the scheme (`base` is the scheme's length, for
/// offsets). `[user[:password]@][host[:port][,...]][/dbname][?k=v[&...]]`,
/// every part percent-encoded.
fn tokenize_uri(rest: &str, base: usize) -> Result<Vec<Param>, ConnInfoError> {
    let mut params = Vec::new();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);

    // The last `@` ends the credentials, so an unencoded `@` in a password
    // still parses (libpq would take the first and mangle the host).
    let (hosts, hosts_offset) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                params.push(Param::new("user", decode(user, base)?));
            }
            if let Some(password) = password {
                let offset = base + user.len() + 1;
                params.push(Param::new("password", decode(password, offset)?));
            }
            (hosts, base + userinfo.len() + 1)
        }
        None => (authority, base),
    };
    parse_hosts(hosts, hosts_offset, &mut params)?;

    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    let path_offset = base + authority_end;
    if let Some(dbname) = path.strip_prefix('/') {
        if !dbname.is_empty() {
            params.push(Param::new("dbname", decode(dbname, path_offset + 1)?));
        }
    }
    if let Some(query) = query {
        let mut offset = path_offset + path.len() + 1;
        for pair in query.split('&') {
            if !pair.is_empty() {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(syntax(offset, "expected `=` in a URI query parameter"));
                };
                let key = decode(key, offset)?;
                check_key(&key, offset)?;
                let value = decode(value, offset + key.len() + 1)?;
                // libpq accepts JDBC's `ssl=true` as `sslmode=require`.
                if key == "ssl" && value == "true" {
                    params.push(Param::new("sslmode", "require"));
                } else {
                    params.push(Param::new(key, value));
                }
            }
            offset += pair.len() + 1;
        }
    }
    Ok(params)
}

/// `host[:port],[host][:port],...`, IPv6 addresses in brackets. Emits one
/// `host` parameter with the comma-joined hosts and, if any port was
/// given, one `port` parameter aligned with it (empty where a host had
/// none, which means the default port).
fn parse_hosts(spec: &str, base: usize, params: &mut Vec<Param>) -> Result<(), ConnInfoError> {
    if spec.is_empty() {
        return Ok(());
    }
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    let mut offset = base;
    for entry in spec.split(',') {
        let (host, port) = if let Some(bracketed) = entry.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(syntax(offset, "missing `]` after an IPv6 address"));
            };
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None => return Err(syntax(offset, "unexpected text after `]`")),
                },
            };
            (host, port)
        } else {
            match entry.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (entry, None),
            }
        };
        hosts.push(decode(host, offset)?);
        ports.push(match port {
            Some(port) => decode(port, offset)?,
            None => String::new(),
        });
        offset += entry.len() + 1;
    }
    params.push(Param::new("host", hosts.join(",")));
    if ports.iter().any(|p| !p.is_empty()) {
        params.push(Param::new("port", ports.join(",")));
    }
    Ok(())
}

/// Percent-decodes `s` (no `+` for space, as in libpq); the result must be
/// UTF-8 and free of NUL.
fn decode(s: &str, offset: usize) -> Result<String, ConnInfoError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            // Checked digit by digit: from_str_radix would accept a sign.
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(0) => return Err(syntax(offset + i, "percent-encoded NUL (%00)")),
                Some(byte) => out.push(byte),
                None => return Err(syntax(offset + i, "invalid percent-encoding")),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| syntax(offset, "percent-decoded text is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        tokenize(s)
            .expect("parse")
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect()
    }

    fn p(key: &str, value: &str) -> (String, String) {
        (key.to_owned(), value.to_owned())
    }

    #[test]
    fn key_value_basics() {
        assert_eq!(
            pairs("host=db port=5433  user = alice\tdbname=shop"),
            vec![
                p("host", "db"),
                p("port", "5433"),
                p("user", "alice"),
                p("dbname", "shop")
            ]
        );
        assert_eq!(pairs(""), vec![]);
        assert_eq!(pairs("   "), vec![]);
    }

    #[test]
    fn key_value_quoting_and_escapes() {
        assert_eq!(
            pairs(r"password='it\'s a \\ secret' application_name=a\ b x=''"),
            vec![
                p("password", r"it's a \ secret"),
                p("application_name", "a b"),
                p("x", "")
            ]
        );
    }

    #[test]
    fn key_value_errors_have_offsets_not_input() {
        let err = tokenize("host=db hunter2").expect_err("no =");
        assert_eq!(
            err,
            ConnInfoError::Syntax {
                offset: 15,
                problem: "expected `=` after the option name"
            }
        );
        assert!(!err.to_string().contains("hunter2"));
        let err = tokenize("password='hunter2").expect_err("unterminated");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = tokenize("pass-word=x").expect_err("bad key");
        assert!(matches!(err, ConnInfoError::Syntax { offset: 0, .. }));
    }

    #[test]
    fn uri_full() {
        assert_eq!(
            pairs("postgresql://alice:p%40ss@db.example:5433/shop?sslmode=require&application_name=asof"),
            vec![
                p("user", "alice"),
                p("password", "p@ss"),
                p("host", "db.example"),
                p("port", "5433"),
                p("dbname", "shop"),
                p("sslmode", "require"),
                p("application_name", "asof"),
            ]
        );
    }

    #[test]
    fn uri_minimal_and_partial() {
        assert_eq!(pairs("postgres://"), vec![]);
        assert_eq!(pairs("postgres://db"), vec![p("host", "db")]);
        assert_eq!(pairs("postgres:///shop"), vec![p("dbname", "shop")]);
        assert_eq!(
            pairs("postgres://bob@/shop"),
            vec![p("user", "bob"), p("dbname", "shop")]
        );
    }

    #[test]
    fn uri_multiple_hosts_ipv6_and_socket_paths() {
        assert_eq!(
            pairs("postgresql://h1:5433,[::1],h3:5435/db"),
            vec![p("host", "h1,::1,h3"), p("port", "5433,,5435"), p("dbname", "db")]
        );
        assert_eq!(
            pairs("postgresql://%2Fvar%2Frun%2Fpostgresql/db"),
            vec![p("host", "/var/run/postgresql"), p("dbname", "db")]
        );
        assert_eq!(
            pairs("postgresql:///db?host=/tmp&port=5444"),
            vec![p("dbname", "db"), p("host", "/tmp"), p("port", "5444")]
        );
    }

    #[test]
    fn uri_unencoded_at_in_password() {
        assert_eq!(
            pairs("postgres://u:p@ss@h/db"),
            vec![p("user", "u"), p("password", "p@ss"), p("host", "h"), p("dbname", "db")]
        );
    }

    #[test]
    fn uri_ssl_true_means_require() {
        assert_eq!(
            pairs("postgres://h?ssl=true"),
            vec![p("host", "h"), p("sslmode", "require")]
        );
    }

    #[test]
    fn uri_errors() {
        assert!(matches!(
            tokenize("postgres://h/db?sslmode"),
            Err(ConnInfoError::Syntax { .. })
        ));
        assert!(matches!(
            tokenize("postgres://u:%zz@h"),
            Err(ConnInfoError::Syntax { offset: 13, .. })
        ));
        // A sign is not a hex digit, though from_str_radix accepts it.
        assert!(matches!(
            tokenize("postgres://u:%+f@h"),
            Err(ConnInfoError::Syntax { .. })
        ));
        assert!(matches!(
            tokenize("postgres://u:%00@h"),
            Err(ConnInfoError::Syntax { .. })
        ));
        assert!(matches!(
            tokenize("postgres://[::1/db"),
            Err(ConnInfoError::Syntax { .. })
        ));
        let err = tokenize("postgres://u:s3cr%ZZet@h").expect_err("bad escape");
        assert!(!err.to_string().contains("s3cr"), "{err}");
    }
}
