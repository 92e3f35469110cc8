//! `Lsn`: a position in the PostgreSQL write-ahead log.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A PostgreSQL log sequence number: a byte position in the WAL.
///
/// Printed and parsed in Postgres's own `X/Y` form (two hexadecimal halves),
/// so values can be pasted between `asof` and `psql`. `Debug` prints the same
/// form, because a raw integer is unreadable next to Postgres's logs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The invalid/zero position (`0/0`).
    pub const ZERO: Lsn = Lsn(0);
    /// The largest representable position.
    pub const MAX: Lsn = Lsn(u64::MAX);

    /// The raw 64-bit value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The next position (saturating), used to express "strictly after".
    pub const fn next(self) -> Lsn {
        Lsn(self.0.saturating_add(1))
    }

    /// The position just before this one, used to express "strictly
    /// before": the cut a transaction committed at `self` sees the state
    /// before it. Saturates at [`Lsn::ZERO`], which no transaction commits
    /// at, so `Lsn::ZERO.prev()` still means "before everything".
    pub const fn prev(self) -> Lsn {
        Lsn(self.0.saturating_sub(1))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

debug_as_display!(Lsn);

/// The text was not an LSN in `X/Y` hexadecimal form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LSN {0:?}: expected two hexadecimal numbers separated by '/', e.g. 0/16B3748")]
pub struct ParseLsnError(pub String);

impl FromStr for Lsn {
    type Err = ParseLsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseLsnError(s.to_owned());
        let (hi, lo) = s.split_once('/').ok_or_else(err)?;
        let valid = |p: &str| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid(hi) || !valid(lo) {
            return Err(err());
        }
        let hi = u64::from_str_radix(hi, 16).map_err(|_| err())?;
        let lo = u64::from_str_radix(lo, 16).map_err(|_| err())?;
        Ok(Lsn((hi << 32) | lo))
    }
}

impl From<u64> for Lsn {
    fn from(v: u64) -> Self {
        Lsn(v)
    }
}

impl From<Lsn> for u64 {
    fn from(v: Lsn) -> Self {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prints_like_postgres() {
        assert_eq!(Lsn(0x16B3748).to_string(), "0/16B3748");
        assert_eq!(Lsn((0xAB << 32) | 0x1).to_string(), "AB/1");
        assert_eq!(format!("{:?}", Lsn(0)), "0/0");
    }

    #[test]
    fn prev_and_next_saturate() {
        assert_eq!(Lsn(0x10).prev(), Lsn(0xF));
        assert_eq!(Lsn::ZERO.prev(), Lsn::ZERO);
        assert_eq!(Lsn::MAX.next(), Lsn::MAX);
        assert_eq!(Lsn(7).next().prev(), Lsn(7));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "/", "0/", "/0", "0x1/2", "1/2/3", "G/0", "123456789/0", " 0/1"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad:?} should not parse");
        }
    }

    proptest! {
        #[test]
        fn round_trips(v in any::<u64>()) {
            let lsn = Lsn(v);
            prop_assert_eq!(lsn.to_string().parse::<Lsn>().unwrap(), lsn);
            prop_assert_eq!(lsn.to_string().to_lowercase().parse::<Lsn>().unwrap(), lsn);
        }
    }
}
