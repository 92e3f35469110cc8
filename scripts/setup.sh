#!/usr/bin/env bash
# Installs what building and testing asof needs, when it is missing:
# a C/C++ toolchain and libclang (RocksDB's bindings), OpenSSL headers, and
# PostgreSQL server binaries (the private test/demo cluster). Safe to re-run.
# Source it: it also exports CARGO_TARGET_DIR.
set -euo pipefail

missing=()
command -v c++ >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v pg_recvlogical >/dev/null 2>&1 || missing+=(postgresql-client)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi

# One target directory outside the clone, kept between runs: RocksDB's C++
# takes ~14 minutes to build once and seconds after that.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/asof-target}"
