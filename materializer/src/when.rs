//! `When`: how a user names a moment (timestamp, LSN, `now`, relative).

use std::fmt;
use std::str::FromStr;

use changelog::{CommitTime, Lsn};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A moment as the user wrote it, before it is resolved to a [`crate::Cut`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum When {
    /// An absolute time: resolves to the last commit at or before it.
    Time(CommitTime),
    /// A WAL position: resolves to the last commit at or before it.
    Lsn(Lsn),
    /// The latest captured state.
    Now,
    /// A time relative to the current wall clock (negative = in the past),
    /// in microseconds.
    Relative(i64),
}

/// The text is not a moment `asof` understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid time {input:?}: {reason}; expected an RFC 3339 timestamp (2026-11-20T09:00:00Z, \
     '2026-11-20 09:00:00.123+09'; no offset means UTC), an LSN (lsn:0/16B3748 or 0/16B3748), \
     'now', or a relative time (-10m, -2h, -1d)"
)]
pub struct ParseWhenError {
    /// What was given.
    pub input: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl When {
    /// The absolute time this stands for, given the current time; `None`
    /// for LSNs and `now`.
    pub fn to_time(self, now: CommitTime) -> Option<CommitTime> {
        match self {
            When::Time(t) => Some(t),
            When::Relative(us) => Some(CommitTime::from_unix_micros(now.unix_micros().saturating_add(us))),
            When::Lsn(_) | When::Now => None,
        }
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::Time(t) => write!(f, "{t}"),
            When::Lsn(l) => write!(f, "lsn:{l}"),
            When::Now => f.write_str("now"),
            When::Relative(us) => {
                // The largest unit that divides it exactly, so the text
                // parses back to the same moment.
                let sign = if *us < 0 { '-' } else { '+' };
                let magnitude = us.unsigned_abs();
                let (n, unit) = [
                    (604_800_000_000, 'w'),
                    (86_400_000_000, 'd'),
                    (3_600_000_000, 'h'),
                    (60_000_000, 'm'),
                ]
                .into_iter()
                .find(|(unit_us, _)| magnitude % unit_us == 0)
                .map_or((magnitude / 1_000_000, 's'), |(unit_us, u)| (magnitude / unit_us, u));
                write!(f, "{sign}{n}{unit}")
            }
        }
    }
}

impl FromStr for When {
    type Err = ParseWhenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseWhenError {
            input: s.to_owned(),
            reason,
        };
        let t = s.trim();
        if t.is_empty() {
            return Err(err("it is empty"));
        }
        if t.eq_ignore_ascii_case("now") {
            return Ok(When::Now);
        }
        if let Some(l) = t.strip_prefix("lsn:").or_else(|| t.strip_prefix("LSN:")) {
            return l
                .parse()
                .map(When::Lsn)
                .map_err(|_| err("the LSN is not of the form X/Y in hexadecimal"));
        }
        if t.contains('/') {
            return t
                .parse()
                .map(When::Lsn)
                .map_err(|_| err("the LSN is not of the form X/Y in hexadecimal"));
        }
        if let Some(rest) = t.strip_prefix('-').or_else(|| t.strip_prefix('+')) {
            if rest.chars().next().is_some_and(|c| c.is_ascii_digit()) && !rest.contains(':') && rest.len() < 12 {
                let sign = if t.starts_with('-') { -1 } else { 1 };
                return parse_relative(rest)
                    .map(|us| When::Relative(sign * us))
                    .ok_or_else(|| err("a relative time is a number followed by s, m, h, d or w (e.g. -10m)"));
            }
        }
        parse_timestamp(t)
            .map(When::Time)
            .ok_or_else(|| err("it is not a valid timestamp"))
    }
}

fn parse_relative(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let unit_us: i64 = match unit {
        "s" | "sec" | "secs" => 1_000_000,
        "m" | "min" | "mins" => 60_000_000,
        "h" | "hr" | "hours" => 3_600_000_000,
        "d" | "day" | "days" => 86_400_000_000,
        "w" | "week" | "weeks" => 604_800_000_000,
        _ => return None,
    };
    n.checked_mul(unit_us)
}

/// Parses RFC 3339 and the looser forms people paste from psql: a space
/// instead of `T`, offsets like `+09` or `+0900`, no offset (UTC), or a bare
/// date (midnight UTC).
fn parse_timestamp(s: &str) -> Option<CommitTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(CommitTime::from_datetime(t));
    }
    let s = s.replacen(' ', "T", 1);
    let (date_part, rest) = s.split_once('T').unwrap_or((s.as_str(), ""));
    let date = parse_date(date_part)?;
    if rest.is_empty() {
        return Some(CommitTime::from_datetime(
            PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc(),
        ));
    }
    // Split the clock from an offset: 'Z', or the last '+'/'-'.
    let (clock, offset) = if let Some(c) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix('z')) {
        (c, UtcOffset::UTC)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, o) = rest.split_at(i);
        (c, parse_offset(o)?)
    } else {
        (rest, UtcOffset::UTC)
    };
    let time = parse_clock(clock)?;
    Some(CommitTime::from_datetime(
        PrimitiveDateTime::new(date, time).assume_offset(offset),
    ))
}

fn parse_date(s: &str) -> Option<Date> {
    let mut it = s.split('-');
    let y: i32 = it.next()?.parse().ok()?;
    let m: u8 = it.next()?.parse().ok()?;
    let d: u8 = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
}

fn parse_clock(s: &str) -> Option<Time> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.split(':');
    let h: u8 = it.next()?.parse().ok()?;
    let m: u8 = it.next()?.parse().ok()?;
    let sec: u8 = match it.next() {
        Some(x) => x.parse().ok()?,
        None => 0,
    };
    if it.next().is_some() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos = 0u32;
    for (i, b) in frac.bytes().enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - u32::try_from(i).ok()?);
    }
    Time::from_hms_nano(h, m, sec, nanos).ok()
}

fn parse_offset(s: &str) -> Option<UtcOffset> {
    let sign: i8 = if s.starts_with('-') { -1 } else { 1 };
    let digits: String = s.get(1..)?.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i8>().ok()?, 0),
        4 => (
            digits.get(..2)?.parse::<i8>().ok()?,
            digits.get(2..)?.parse::<i8>().ok()?,
        ),
        _ => return None,
    };
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        match s.parse::<When>().unwrap() {
            When::Time(t) => t.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(t("2026-11-20T09:00:00Z"), "2026-11-20T09:00:00.000000Z");
        assert_eq!(t("2026-11-20 09:00:00.123456+09"), "2026-11-20T00:00:00.123456Z");
        assert_eq!(t("2026-11-20 09:00:00"), "2026-11-20T09:00:00.000000Z");
        assert_eq!(t("2026-11-20T09:00:00-05:30"), "2026-11-20T14:30:00.000000Z");
        assert_eq!(t("2026-11-20T09:00:00+0100"), "2026-11-20T08:00:00.000000Z");
        assert_eq!(t("2026-11-20"), "2026-11-20T00:00:00.000000Z");
    }

    #[test]
    fn other_forms() {
        assert_eq!("now".parse::<When>().unwrap(), When::Now);
        assert_eq!("lsn:0/16B3748".parse::<When>().unwrap(), When::Lsn(Lsn(0x16B3748)));
        assert_eq!("0/16B3748".parse::<When>().unwrap(), When::Lsn(Lsn(0x16B3748)));
        assert_eq!("-10m".parse::<When>().unwrap(), When::Relative(-600_000_000));
        assert_eq!("-2h".parse::<When>().unwrap(), When::Relative(-7_200_000_000));
        assert_eq!("-1d".parse::<When>().unwrap(), When::Relative(-86_400_000_000));
        // Printed in the largest exact unit, which parses back (a fuzzer found
        // `-900155w` printed as seconds too long to parse).
        for text in ["-900155w", "-60s", "+0s", "-90m", "-36h", "-14d"] {
            let when: When = text.parse().unwrap();
            assert_eq!(
                when.to_string().parse::<When>().unwrap(),
                when,
                "{text} printed as {when}"
            );
        }
        assert_eq!(When::Relative(-3_600_000_000).to_string(), "-1h");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-20T25:00",
            "lsn:xyz",
            "-10parsecs",
            "1/2/3",
            "2026-11-20T09:00:00+99",
        ] {
            let e = bad.parse::<When>().unwrap_err();
            assert!(e.to_string().contains("expected an RFC 3339"), "{bad}: {e}");
        }
    }
}
