#!/usr/bin/env bash
# Runs the whole test suite (unit, property, and end-to-end tests against a
# private PostgreSQL) in release mode, which is also the benchmarks' profile,
# so RocksDB is compiled once; then every fuzz target for a short, bounded
# time (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export PROPTEST_CASES="${PROPTEST_CASES:-256}"
cargo test --release --workspace --locked "$@"
bash scripts/fuzz.sh
