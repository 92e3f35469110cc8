#!/usr/bin/env bash
# Builds the release `asof` and writes a lean copy to ship, with its debug
# information split off beside it: dist/asof (stripped) and dist/asof.debug,
# which the stripped binary names in a .gnu_debuglink section, so perf, gdb
# and addr2line find the symbols when both sit in one directory (or under
# /usr/lib/debug). Usage: scripts/dist.sh [OUT_DIR] (default: dist).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
out="${1:-dist}"
cargo build --release --locked -p asof-cli --bin asof
mkdir -p "$out"
bin="$CARGO_TARGET_DIR/release/asof"
objcopy --only-keep-debug "$bin" "$out/asof.debug.partial"
objcopy --strip-debug --strip-unneeded "$bin" "$out/asof.partial"
(cd "$out" && mv asof.debug.partial asof.debug && objcopy --add-gnu-debuglink=asof.debug asof.partial && mv asof.partial asof)
ls -l "$out/asof" "$out/asof.debug" | awk '{printf "%s %.1f MB\n", $NF, $5 / 1e6}'
