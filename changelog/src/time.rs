//! `CommitTime`: when a transaction committed, in microseconds, UTC.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Microseconds between the Unix epoch and the PostgreSQL epoch (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// A commit timestamp with microsecond precision (PostgreSQL's own
/// precision), counted from the Unix epoch in UTC.
///
/// Stored as an integer so that it orders, encodes and compares exactly;
/// converted to [`OffsetDateTime`] only for display and parsing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct CommitTime(i64);

impl CommitTime {
    /// The earliest representable time; sorts before every real commit.
    pub const MIN: CommitTime = CommitTime(i64::MIN);
    /// The latest representable time.
    pub const MAX: CommitTime = CommitTime(i64::MAX);

    /// From microseconds since the Unix epoch.
    pub const fn from_unix_micros(us: i64) -> Self {
        CommitTime(us)
    }

    /// From microseconds since the PostgreSQL epoch (2000-01-01 UTC), the
    /// form used on the replication wire.
    pub const fn from_pg_micros(us: i64) -> Self {
        CommitTime(us.saturating_add(PG_EPOCH_OFFSET_US))
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// Microseconds since the PostgreSQL epoch.
    pub const fn pg_micros(self) -> i64 {
        self.0.saturating_sub(PG_EPOCH_OFFSET_US)
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// From a date-time in any offset, truncated to microseconds.
    pub fn from_datetime(t: OffsetDateTime) -> Self {
        let us = t.unix_timestamp_nanos().div_euclid(1_000);
        CommitTime(i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX }))
    }

    /// As a UTC date-time, or `None` outside the range `time` can represent.
    pub fn to_datetime(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000).ok()
    }
}

impl fmt::Display for CommitTime {
    /// RFC 3339 in UTC with microseconds, e.g. `2026-11-20T09:00:00.123456Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(t) => write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.microsecond()
            ),
            None => write!(f, "@{}us", self.0),
        }
    }
}

debug_as_display!(CommitTime);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_epoch_round_trip() {
        let t = CommitTime::from_pg_micros(0);
        assert_eq!(t.to_string(), "2000-01-01T00:00:00.000000Z");
        assert_eq!(t.pg_micros(), 0);
        assert_eq!(
            CommitTime::from_unix_micros(1_500_000).to_string(),
            "1970-01-01T00:00:01.500000Z"
        );
    }

    #[test]
    fn from_datetime_keeps_micros() {
        let dt = time::macros::datetime!(2026-11-20 09:00:00.123456789 +09:00);
        let t = CommitTime::from_datetime(dt);
        assert_eq!(t.to_string(), "2026-11-20T00:00:00.123456Z");
    }
}
