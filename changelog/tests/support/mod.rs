//! Shared pieces of the store's integration tests, by purpose:
//!
//! - [`rng`]: a small seeded random number generator;
//! - [`gen`]: a generator of valid transactions and its fixtures;
//! - [`checks`]: opening a store and comparing everything it exposes with
//!   the reference fold ([`changelog::reference::Reference`]);
//! - [`scenario`]: a hand-written spilled transaction and chunking helpers.
//!
//! Each test binary uses a part of these.
#![allow(dead_code, unused_imports)]

pub mod checks;
pub mod gen;
pub mod rng;
pub mod scenario;

pub use changelog::reference::{initial_schema, key_image, key_values, Reference};
pub use checks::*;
pub use gen::*;
pub use rng::Rng;
pub use scenario::*;
