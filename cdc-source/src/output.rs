//! The one set of output settings every captured value is rendered in.
//!
//! A value's text depends on the session that prints it: `TimeZone` and
//! `DateStyle` for dates and times, `IntervalStyle` for intervals,
//! `extra_float_digits` for floats, `bytea_output` for bytes. The stream
//! (walsender), the initial copy and the DDL capture's re-reads all print
//! values, so all three pin these settings: the replication connection
//! sends them at start-up, the SQL connection sets them after connecting,
//! and the event trigger functions carry them as `SET` clauses (Postgres
//! restores the DDL session's own values when the function returns).

use crate::catalog::{quote_ident, quote_literal};

/// The settings, as (name, value). `extra_float_digits = 1` is Postgres's
/// shortest exact float text.
pub const OUTPUT_SETTINGS: [(&str, &str); 5] = [
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
];

/// `SET` statements for a SQL session.
pub fn set_statements() -> String {
    OUTPUT_SETTINGS
        .iter()
        .map(|(name, value)| format!("SET {} TO {};", quote_ident(name), quote_literal(value)))
        .collect()
}

/// `SET` clauses for a function definition.
pub fn function_clauses() -> String {
    OUTPUT_SETTINGS
        .iter()
        .map(|(name, value)| format!(" SET {} TO {}", quote_ident(name), quote_literal(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_and_clauses_name_every_setting_quoted() {
        let set = set_statements();
        assert!(set.starts_with("SET \"DateStyle\" TO 'ISO, MDY';"), "{set}");
        assert_eq!(set.matches("SET ").count(), OUTPUT_SETTINGS.len());
        let clauses = function_clauses();
        assert!(clauses.contains(" SET \"bytea_output\" TO 'hex'"), "{clauses}");
        assert!(!clauses.contains(';'));
    }
}
