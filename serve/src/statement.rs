//! What a statement asks for, before any SQL planning: a query for
//! DataFusion, a session setting (`SET asof.at = ...`), a transaction
//! command (accepted; every transaction is read-only), or a write, which is
//! refused. Also splits a simple query's text into its statements.

/// One statement, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A query, planned by DataFusion.
    Query(String),
    /// `SET name = value` (`None`: `DEFAULT`).
    Set {
        /// The setting, lower case.
        name: String,
        /// Its new value.
        value: Option<String>,
    },
    /// `RESET name`, or `RESET ALL` (`name` "all").
    Reset(String),
    /// `SHOW name`.
    Show(String),
    /// `BEGIN`, `COMMIT`, ... with the tag Postgres answers it with, and
    /// whether it opens (`Some(true)`) or ends (`Some(false)`) a block.
    Transaction(&'static str, Option<bool>),
    /// A statement that changes data or schema, with its command word.
    Write(String),
    /// A statement this server does not offer, with its command word.
    Unsupported(String),
}

/// Commands that change something: refused with SQLSTATE 25006.
const WRITES: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "UPSERT",
    "REPLACE",
    "CREATE",
    "DROP",
    "ALTER",
    "TRUNCATE",
    "GRANT",
    "REVOKE",
    "VACUUM",
    "ANALYZE",
    "CLUSTER",
    "REINDEX",
    "COMMENT",
    "LOCK",
    "CALL",
    "DO",
    "REFRESH",
    "IMPORT",
    "SECURITY",
    "CHECKPOINT",
    "REASSIGN",
];

/// Commands without a read-only meaning here: refused with SQLSTATE 0A000.
const UNSUPPORTED: &[&str] = &[
    "COPY",
    "PREPARE",
    "EXECUTE",
    "DEALLOCATE",
    "DECLARE",
    "FETCH",
    "MOVE",
    "CLOSE",
    "LISTEN",
    "UNLISTEN",
    "NOTIFY",
    "LOAD",
    "SAVEPOINT",
    "RELEASE",
];

/// Classifies one statement (no `;` separators).
pub fn classify(sql: &str) -> Command {
    let mut words = Words::new(sql);
    let Some(first) = words.next_word() else {
        return Command::Query(sql.to_string());
    };
    let upper = first.to_ascii_uppercase();
    match upper.as_str() {
        "SET" => set(&mut words),
        "RESET" => Command::Reset(words.name().unwrap_or_default()),
        "SHOW" => Command::Show(show_name(&mut words)),
        "BEGIN" => Command::Transaction("BEGIN", Some(true)),
        "START" => Command::Transaction("START TRANSACTION", Some(true)),
        "COMMIT" | "END" => Command::Transaction("COMMIT", Some(false)),
        "ROLLBACK" | "ABORT" => Command::Transaction("ROLLBACK", Some(false)),
        "DISCARD" => Command::Transaction("DISCARD ALL", None),
        w if WRITES.contains(&w) => Command::Write(w.to_string()),
        w if UNSUPPORTED.contains(&w) => Command::Unsupported(w.to_string()),
        _ => Command::Query(sql.to_string()),
    }
}

fn set(words: &mut Words<'_>) -> Command {
    let mut name = words.name().unwrap_or_default();
    if name == "session" || name == "local" {
        name = words.name().unwrap_or_default();
    }
    match name.as_str() {
        // `SET TIME ZONE x`: the `timezone` setting.
        "time" => {
            words.name();
            name = "timezone".into();
        }
        // Transaction characteristics: every transaction here is read-only.
        "transaction" | "characteristics" | "session characteristics" => {
            return Command::Transaction("SET", None);
        }
        _ => {}
    }
    words.skip_ws();
    if !words.eat('=') {
        words.next_word();
    }
    let value = words.value();
    Command::Set {
        name,
        value: value.filter(|v| !v.eq_ignore_ascii_case("default")),
    }
}

fn show_name(words: &mut Words<'_>) -> String {
    let name = words.name().unwrap_or_default();
    match name.as_str() {
        "time" => "timezone".into(),
        "transaction" => "transaction_isolation".into(),
        _ => name,
    }
}

/// A tiny scanner over a statement's text: words, names, values.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Words<'a> {
        Words { rest: sql }
    }

    /// Skips whitespace and comments.
    fn skip_ws(&mut self) {
        loop {
            self.rest = self.rest.trim_start();
            if let Some(r) = self.rest.strip_prefix("--") {
                self.rest = r.find('\n').map_or("", |i| &r[i..]);
            } else if self.rest.starts_with("/*") {
                self.rest = skip_block_comment(self.rest);
            } else {
                return;
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    /// A bare word (letters, digits, `_`, `.`).
    fn next_word(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let end = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '$'))
            .unwrap_or(self.rest.len());
        if end == 0 {
            return None;
        }
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(word)
    }

    /// A setting's name: a word lower-cased, or a quoted identifier as
    /// written; dotted parts joined.
    fn name(&mut self) -> Option<String> {
        self.skip_ws();
        if self.rest.starts_with('"') {
            let (quoted, rest) = quoted(self.rest, '"')?;
            self.rest = rest;
            return Some(quoted);
        }
        self.next_word().map(str::to_ascii_lowercase)
    }

    /// The value of a SET: a quoted string, or the words up to the end.
    fn value(&mut self) -> Option<String> {
        self.skip_ws();
        let e_string =
            self.rest.len() > 1 && self.rest[..1].eq_ignore_ascii_case("e") && self.rest[1..].starts_with('\'');
        if e_string {
            self.rest = &self.rest[1..];
        }
        if self.rest.starts_with('\'') {
            let (quoted, rest) = quoted(self.rest, '\'')?;
            self.rest = rest;
            return Some(quoted);
        }
        let v = self.rest.trim().trim_end_matches(';').trim();
        self.rest = "";
        (!v.is_empty()).then(|| v.to_string())
    }
}

/// `'it''s'` or `"a""b"`: the text inside, and what follows.
fn quoted(s: &str, q: char) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c == q {
            if chars.peek().map(|(_, n)| *n) == Some(q) {
                out.push(q);
                chars.next();
            } else {
                return Some((out, &s[i + c.len_utf8()..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// What follows a (possibly nested) `/* ... */` comment at the start of `s`.
fn skip_block_comment(s: &str) -> &str {
    let bytes = s.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i + 1 < bytes.len() {
        if bytes[i] == b'/' && bytes[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return &s[i..];
            }
        } else {
            i += 1;
        }
    }
    ""
}

/// Splits a simple query into its statements at `;` outside quotes,
/// comments and dollar quotes; statements that are only whitespace and
/// comments are left out.
pub fn split(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                let q = bytes[i];
                // E'..' strings escape with backslashes too.
                let backslashes = q == b'\'' && i > 0 && bytes[i - 1].eq_ignore_ascii_case(&b'e');
                i += 1;
                while i < bytes.len() {
                    if backslashes && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == q {
                        if bytes.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = bytes.len() - skip_block_comment(&sql[i..]).len();
            }
            b'$' => {
                // `$tag$ ... $tag$`; `$1` is a parameter.
                let tag_end = sql[i + 1..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(e) if bytes[e] == b'$' && !bytes[i + 1].is_ascii_digit() => {
                        let tag = &sql[i..=e];
                        i = sql[e + 1..].find(tag).map_or(bytes.len(), |n| e + 1 + n + tag.len());
                    }
                    _ => i += 1,
                }
            }
            b';' => {
                out.push(&sql[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push(&sql[start..]);
    out.into_iter().filter(|s| !is_blank(s)).collect()
}

/// Only whitespace and comments.
pub fn is_blank(sql: &str) -> bool {
    let mut w = Words::new(sql);
    w.skip_ws();
    w.rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_as_postgres_reads_them() {
        let set = |name: &str, value: Option<&str>| Command::Set {
            name: name.into(),
            value: value.map(String::from),
        };
        assert_eq!(classify("SET asof.at = '-1h'"), set("asof.at", Some("-1h")));
        assert_eq!(
            classify("set ASOF.AT to 'lsn:0/16B3748'"),
            set("asof.at", Some("lsn:0/16B3748"))
        );
        assert_eq!(classify("SET SESSION asof.at = DEFAULT"), set("asof.at", None));
        assert_eq!(
            classify("SET extra_float_digits = 3"),
            set("extra_float_digits", Some("3"))
        );
        assert_eq!(classify("SET TIME ZONE 'UTC'"), set("timezone", Some("UTC")));
        assert_eq!(classify("SET asof.at = 'it''s'"), set("asof.at", Some("it's")));
        assert_eq!(classify("  -- hi\n RESET asof.at"), Command::Reset("asof.at".into()));
        assert_eq!(classify("SHOW asof.at"), Command::Show("asof.at".into()));
        assert_eq!(
            classify("SHOW TRANSACTION ISOLATION LEVEL"),
            Command::Show("transaction_isolation".into())
        );
        assert_eq!(classify("insert into t values (1)"), Command::Write("INSERT".into()));
        assert_eq!(
            classify("/* x */ CREATE TABLE t (a int)"),
            Command::Write("CREATE".into())
        );
        assert_eq!(classify("BEGIN READ ONLY"), Command::Transaction("BEGIN", Some(true)));
        assert_eq!(classify("SELECT 1"), Command::Query("SELECT 1".into()));
        assert_eq!(
            classify("WITH x AS (SELECT 1) SELECT * FROM x"),
            Command::Query("WITH x AS (SELECT 1) SELECT * FROM x".into())
        );
    }

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        assert_eq!(split("SELECT 1; SELECT 2;"), vec!["SELECT 1", " SELECT 2"]);
        assert_eq!(
            split("SELECT ';' -- ;\n; SELECT \"a;b\""),
            vec!["SELECT ';' -- ;\n", " SELECT \"a;b\""]
        );
        assert_eq!(split("SELECT $x$;$x$, $1; /* ; */"), vec!["SELECT $x$;$x$, $1"]);
        assert_eq!(split("SELECT E'\\';'"), vec!["SELECT E'\\';'"]);
        assert!(split(" ; -- nothing").is_empty());
    }
}
