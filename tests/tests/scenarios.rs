//! Table shapes real databases have, replayed against a real PostgreSQL
//! while asof captures them: after every commit, asof's answer for every
//! published table must be what Postgres itself showed then.
//!
//! Each scenario is one declarative block (see `asof_tests::scenario`):
//! setup SQL that the initial copy reads, then steps, one transaction each,
//! committed while the capture streams.

#[path = "scenarios/generated.rs"]
mod generated;
#[path = "scenarios/identity.rs"]
mod identity;
#[path = "scenarios/limits.rs"]
mod limits;
#[path = "scenarios/partitions.rs"]
mod partitions;
#[path = "scenarios/publications.rs"]
mod publications;
#[path = "scenarios/schema.rs"]
mod schema;
#[path = "scenarios/shapes.rs"]
mod shapes;
#[path = "scenarios/transactions.rs"]
mod transactions;
#[path = "scenarios/truncate.rs"]
mod truncate;
#[path = "scenarios/types.rs"]
mod types;
