#!/usr/bin/env bash
# The log on Kafka, end to end, on this machine: a private PostgreSQL and a
# private 3-broker Kafka cluster (KRaft), `asof tail --kafka` publishing,
# the partition's leader killed and brought back, and `asof follow`
# rebuilding the store from the topic. Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -p asof-cli
"$CARGO_TARGET_DIR/release/asof" demo --kafka "$@"
