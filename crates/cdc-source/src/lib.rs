//! Captures PostgreSQL changes through logical replication (work in progress).
pub mod conninfo;
pub mod pgoutput;
pub mod replication;
