#!/usr/bin/env bash
# Installs what building and testing asof needs, when it is missing:
# a C/C++ toolchain and libclang (RocksDB's bindings), OpenSSL headers,
# PostgreSQL server binaries (the private test/demo cluster) and the
# `periods` extension (the as-of benchmark compares with it), a Java
# runtime, Maven and Apache Kafka's jars (kafka-fixture's test brokers),
# and a Python venv with pyarrow and duckdb (the Parquet tests' readers)
# and psycopg (the wire-protocol tests' client).
# Safe to re-run. Source it: it also exports CARGO_TARGET_DIR.
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
if [ -z "${JAVA_HOME:-}" ] && ! command -v java >/dev/null 2>&1; then
  missing+=(default-jre-headless)
fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The `periods` extension (system-versioned tables, the in-Postgres way to
# keep history that the as-of benchmark compares with), for the newest
# Debian-style server, the one pg-fixture picks.
pg_major="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | cut -d/ -f5 | sort -n | tail -n 1)"
if [ -n "$pg_major" ] && [ ! -f "/usr/share/postgresql/$pg_major/extension/periods.control" ]; then
  echo "setup: installing postgresql-$pg_major-periods" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "postgresql-$pg_major-periods" >/dev/null
fi

# Apache Kafka for kafka-fixture: the jars of kafka-fixture/maven/pom.xml
# from Maven Central, copied into a cache outside the clone (about 45 MB,
# 20 s the first time). They are collected under another name and renamed
# when complete, so an interrupted run is redone, and a complete one
# skipped. kafka-fixture looks in the same place ($ASOF_KAFKA_LIBS first).
kafka_version=4.4.0
kafka_libs="${ASOF_KAFKA_LIBS:-$HOME/.cache/asof-kafka/$kafka_version/libs}"
if [ ! -f "$kafka_libs/kafka_2.13-$kafka_version.jar" ]; then
  echo "setup: fetching Apache Kafka $kafka_version jars into $kafka_libs" >&2
  kafka_pom="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/kafka-fixture/maven/pom.xml"
  rm -rf "$kafka_libs.partial"
  mkdir -p "$(dirname "$kafka_libs")"
  mvn -q -B -f "$kafka_pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$kafka_libs.partial"
  rm -rf "$kafka_libs"
  mv "$kafka_libs.partial" "$kafka_libs"
fi

# The PostgreSQL JDBC driver, the Java client the serve tests connect with:
# one jar from Maven Central into a cache outside the clone.
pgjdbc_version=42.7.11
pgjdbc_jar="${ASOF_PGJDBC_JAR:-$HOME/.cache/asof-java/postgresql-$pgjdbc_version.jar}"
if [ ! -f "$pgjdbc_jar" ]; then
  echo "setup: fetching the PostgreSQL JDBC driver $pgjdbc_version into $pgjdbc_jar" >&2
  rm -rf "$pgjdbc_jar.partial"
  mkdir -p "$pgjdbc_jar.partial"
  mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
    -Dartifact="org.postgresql:postgresql:$pgjdbc_version" -DoutputDirectory="$pgjdbc_jar.partial"
  mv "$pgjdbc_jar.partial/postgresql-$pgjdbc_version.jar" "$pgjdbc_jar"
  rm -rf "$pgjdbc_jar.partial"
fi
export ASOF_PGJDBC_JAR="$pgjdbc_jar"

# Python with pyarrow and duckdb, the independent Parquet readers the SQL
# and export tests check files with: a venv in a cache outside the clone,
# built under another name and renamed when complete (like the Kafka jars).
# The tests look in the same place ($ASOF_PYTHON_VENV first).
py_venv="${ASOF_PYTHON_VENV:-$HOME/.cache/asof-python/venv}"
if [ ! -x "$py_venv/bin/python" ] || ! "$py_venv/bin/python" -c 'import pyarrow, duckdb, psycopg' 2>/dev/null; then
  echo "setup: installing pyarrow, duckdb and psycopg into $py_venv" >&2
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  rm -rf "$py_venv.partial"
  mkdir -p "$(dirname "$py_venv")"
  python3 -m venv "$py_venv.partial"
  "$py_venv.partial/bin/python" -m pip install -q --disable-pip-version-check 'pyarrow>=15' 'duckdb>=1.0' 'psycopg[binary]>=3.1'
  rm -rf "$py_venv"
  mv "$py_venv.partial" "$py_venv"
fi
export ASOF_PYTHON_VENV="$py_venv"

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi

# One target directory outside the clone, kept between runs: RocksDB's C++
# takes ~14 minutes to build once and seconds after that.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/asof-target}"
