#!/usr/bin/env bash
# Builds asof and runs its demo: a private PostgreSQL, a small shop, a
# workload captured live, and as-of answers. Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -p asof-cli
"$CARGO_TARGET_DIR/release/asof" demo "$@"
