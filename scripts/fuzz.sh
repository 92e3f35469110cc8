#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a bounded time, starting
# from the committed corpus (fuzz/corpus/<target>, read-only here: new
# inputs go to a scratch directory). A crash fails the run and leaves its
# input under fuzz/artifacts/<target>/; turn it into a named regression
# test. FUZZ_SECONDS sets the time per target (default 15).
#
# cargo-fuzz needs the compiler's unstable sanitizer flags; RUSTC_BOOTSTRAP
# lets the stable toolchain accept them for this build only.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz >/dev/null
fi
seconds="${FUZZ_SECONDS:-15}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd fuzz
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in $(cargo fuzz list); do
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  if ! cargo fuzz run -O "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target failed; its input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs="$(grep -o 'number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  echo "fuzz: $target: $runs inputs in ${seconds}s, no failure" >&2
done
