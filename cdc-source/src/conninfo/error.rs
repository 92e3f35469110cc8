//! Errors of connection-string parsing. None carries a value from the
//! input (option names only), so every message is safe to log.

use std::fmt;

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueSource {
    /// The connection string.
    ConnectionString,
    /// The named environment variable.
    Environment(&'static str),
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSource::ConnectionString => f.write_str("the connection string"),
            ValueSource::Environment(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// Why a connection string was rejected. No variant carries a value from
/// the input (option names only), so the message is safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnInfoError {
    /// The text is not a well-formed connection string.
    #[error("invalid connection string at byte {offset}: {problem}")]
    Syntax {
        /// Byte offset into the string.
        offset: usize,
        /// What is wrong there.
        problem: &'static str,
    },
    /// An option asof does not know or support.
    #[error("unsupported connection option `{key}`")]
    UnsupportedOption {
        /// The option name.
        key: String,
    },
    /// An option's value is not valid.
    #[error("invalid value for `{key}` in {source_of_value}: expected {expected}")]
    InvalidValue {
        /// The option name.
        key: &'static str,
        /// Where the value came from.
        source_of_value: ValueSource,
        /// What would have been valid.
        expected: &'static str,
    },
    /// A list option does not line up with the host list.
    #[error("`{key}` lists {count} values for {hosts} hosts; give one value, or one per host")]
    CountMismatch {
        /// `port` or `hostaddr`.
        key: &'static str,
        /// How many values it has.
        count: usize,
        /// How many hosts there are.
        hosts: usize,
    },
    /// No user was given and the OS user name could not be determined.
    #[error("could not determine the database user; set user= in the connection string or PGUSER")]
    UnknownUser,
}

pub(super) fn invalid(key: &'static str, source: ValueSource, expected: &'static str) -> ConnInfoError {
    ConnInfoError::InvalidValue {
        key,
        source_of_value: source,
        expected,
    }
}
