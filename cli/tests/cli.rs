//! The `asof` binary as a real process: output bytes against PostgreSQL's
//! own COPY, every subcommand, reads beside a running `tail`, and the error
//! cases (exit codes, one-line messages, no panics, no passwords); SQL
//! and Parquet exports read back by independent readers.
//!
//! Each test starts its own throwaway PostgreSQL (pg-fixture) and store.

#[path = "cli/support.rs"]
mod support;

#[path = "cli/damage.rs"]
mod damage;
#[path = "cli/edges.rs"]
mod edges;
#[path = "cli/end_to_end.rs"]
mod end_to_end;
#[path = "cli/errors.rs"]
mod errors;
#[path = "cli/help_examples.rs"]
mod help_examples;
#[path = "cli/images.rs"]
mod images;
#[path = "cli/live_tail.rs"]
mod live_tail;
#[path = "cli/metrics.rs"]
mod metrics;
#[path = "cli/misc.rs"]
mod misc;
#[path = "cli/multiset.rs"]
mod multiset;
#[path = "cli/pipes.rs"]
mod pipes;
#[path = "cli/queries.rs"]
mod queries;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/source_cleanup.rs"]
mod source_cleanup;
#[path = "cli/sql.rs"]
mod sql_and_export;
#[path = "cli/tail_options.rs"]
mod tail_options;
#[path = "cli/verify.rs"]
mod verify;
