//! Which failures are worth a reconnect: one rule for the SQL and the
//! replication connection, so a server that is briefly out of connection
//! slots is retried whichever connection hit it.

use tokio_postgres::error::SqlState;

/// Server errors that may go away on a new connection without a person
/// changing anything: connection exceptions (class `08`), administrator or
/// crash shutdown, "cannot connect now" during startup, and too many
/// connections. Everything else (authentication, syntax, a missing slot,
/// a slot in use by another process, permissions) needs a person.
const TRANSIENT: &[SqlState] = &[
    SqlState::CONNECTION_EXCEPTION,
    SqlState::CONNECTION_DOES_NOT_EXIST,
    SqlState::CONNECTION_FAILURE,
    SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
    SqlState::SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION,
    SqlState::TRANSACTION_RESOLUTION_UNKNOWN,
    SqlState::PROTOCOL_VIOLATION,
    SqlState::ADMIN_SHUTDOWN,
    SqlState::CRASH_SHUTDOWN,
    SqlState::CANNOT_CONNECT_NOW,
    SqlState::TOO_MANY_CONNECTIONS,
];

/// Whether a server error with this SQLSTATE is worth a reconnect.
pub(crate) fn sqlstate_is_transient(code: &SqlState) -> bool {
    TRANSIENT.contains(code)
}

/// Whether a failure of an ordinary SQL connection is worth a reconnect:
/// the connection closed, the socket failed, or the server's SQLSTATE says so.
pub(crate) fn sql_error_is_transient(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.code().is_some_and(sqlstate_is_transient)
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_connections_and_shutdowns_are_transient() {
        for code in ["53300", "57P01", "57P02", "57P03", "08006", "08001", "08P01"] {
            assert!(sqlstate_is_transient(&SqlState::from_code(code)), "{code}");
        }
    }

    #[test]
    fn problems_a_person_must_fix_are_not() {
        for code in ["42704", "55006", "28P01", "42501", "42601"] {
            assert!(!sqlstate_is_transient(&SqlState::from_code(code)), "{code}");
        }
    }
}
