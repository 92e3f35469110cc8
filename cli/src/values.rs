//! Typed command-line values: clap turns WHEN, `--until`, connection
//! strings and table names into domain values while it parses, so every
//! command starts from checked input and a malformed value is reported
//! before anything is opened.
//!
//! A value that does not parse becomes a [`BadValue`]; `main` prints it as
//! one `asof: ` line and exits 2, like every other usage error.

use std::convert::Infallible;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use cdc_source::conninfo::{parse_conninfo, ConnInfo};
use cdc_source::Until;
use changelog::TableName;
use materializer::When;

/// Why a command-line value was refused.
#[derive(Debug)]
pub struct BadValue {
    /// The explanation, without the option's name.
    message: String,
    /// Whether the message reads better after the option's name
    /// (`--at: invalid time ...`) or stands alone (`invalid connection string: ...`).
    names_option: bool,
}

impl BadValue {
    /// The one line to print for this value of `arg` (clap's rendering of
    /// the argument: `--at <WHEN>` or `<CONNINFO>`).
    pub fn line(&self, arg: &str) -> String {
        let option = arg.split_whitespace().next().filter(|o| o.starts_with('-'));
        match option {
            Some(o) if self.names_option => format!("{o}: {}", self.message),
            _ => self.message.clone(),
        }
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BadValue {}

/// A WHEN: timestamp, LSN, `now` or a relative time.
pub fn when(s: &str) -> Result<When, BadValue> {
    s.parse().map_err(|e: materializer::ParseWhenError| BadValue {
        message: e.to_string(),
        names_option: true,
    })
}

/// `--until`: `caught-up` or an LSN (`lsn:` prefix optional).
pub fn until(s: &str) -> Result<Until, BadValue> {
    if s == "caught-up" {
        return Ok(Until::CaughtUp);
    }
    let lsn = s.strip_prefix("lsn:").unwrap_or(s);
    lsn.parse().map(Until::Lsn).map_err(|_| BadValue {
        message: format!("expected 'caught-up' or an LSN like 0/16B3748, got {s:?}"),
        names_option: true,
    })
}

/// A libpq connection string or URI, completed from the environment. The
/// message never quotes the input: it may hold a password.
pub fn conninfo(s: &str) -> Result<ConnInfo, BadValue> {
    parse_conninfo(s).map_err(|e| BadValue {
        message: format!("invalid connection string: {e}"),
        names_option: false,
    })
}

/// `--metrics`: an address to listen on, `HOST:PORT` (a name is resolved
/// now, so a typo is a usage error rather than a failure later).
pub fn listen_address(s: &str) -> Result<SocketAddr, BadValue> {
    let bad = || BadValue {
        message: format!("expected HOST:PORT to listen on, like 127.0.0.1:9187, got {s:?}"),
        names_option: true,
    };
    s.to_socket_addrs().map_err(|_| bad())?.next().ok_or_else(bad)
}

/// A table name, `schema.name` or a bare name in `public`.
pub fn table(s: &str) -> Result<TableName, Infallible> {
    Ok(TableName::parse(s))
}

/// A duration: whole seconds, optionally with an `s`, `m` or `h` unit.
pub fn duration(s: &str) -> Result<Duration, BadValue> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let scale = match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        _ => None,
    };
    scale
        .zip(digits.parse::<u64>().ok())
        .and_then(|(scale, n)| n.checked_mul(scale))
        .map(Duration::from_secs)
        .ok_or_else(|| BadValue {
            message: format!("expected a duration like 90s, 5m or 1h, got {s:?}"),
            names_option: true,
        })
}

/// Kafka bootstrap servers: `host:port[,host:port...]`.
pub fn brokers(s: &str) -> Result<String, BadValue> {
    let ok = !s.is_empty()
        && s.split(',').all(|b| {
            b.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        });
    match ok {
        true => Ok(s.to_owned()),
        false => Err(BadValue {
            message: format!("expected Kafka brokers like host:9092[,host:9092...], got {s:?}"),
            names_option: true,
        }),
    }
}

/// A Kafka topic name: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn topic(s: &str) -> Result<String, BadValue> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    match !s.is_empty() && s.len() <= 249 && s.chars().all(legal) && s != "." && s != ".." {
        true => Ok(s.to_owned()),
        false => Err(BadValue {
            message: format!("expected a Kafka topic name (letters, digits, '.', '_', '-'), got {s:?}"),
            names_option: true,
        }),
    }
}

/// A whole number of seconds, at least one.
pub fn seconds(s: &str) -> Result<std::time::Duration, BadValue> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(std::time::Duration::from_secs(n)),
        _ => Err(BadValue {
            message: format!("expected a number of seconds, got {s:?}"),
            names_option: true,
        }),
    }
}

/// A size in bytes (`512`, `64MiB`, `1GiB`), or `off`.
pub fn size_or_off(s: &str) -> Result<SizeOrOff, BadValue> {
    if s == "off" {
        return Ok(SizeOrOff(None));
    }
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => 0,
    };
    match digits.parse::<u64>().ok().and_then(|n| n.checked_mul(scale)) {
        Some(n) if scale > 0 => Ok(SizeOrOff(Some(n))),
        _ => Err(BadValue {
            message: format!("expected a size like 64MiB, or 'off', got {s:?}"),
            names_option: true,
        }),
    }
}

/// A size in bytes, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeOrOff(pub Option<u64>);

/// `caught-up`, the one stop a follower knows.
pub fn follow_until(s: &str) -> Result<kafka_relay::FollowUntil, BadValue> {
    match s {
        "caught-up" => Ok(kafka_relay::FollowUntil::CaughtUp),
        _ => Err(BadValue {
            message: format!("expected 'caught-up', got {s:?}"),
            names_option: true,
        }),
    }
}
