#!/usr/bin/env bash
# Runs ordersum's whole test suite against real Postgres, Redis and an
# S3-compatible server on this machine (started if they are down). Each
# database test gets a fresh database created from DATABASE_URL's server, its
# own Redis queue, its own file store and its own prefix in the bucket.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services
ensure_s3

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
# The fault tests start the worker binary as real processes.
cargo build --workspace --locked --bins
cargo test --workspace --locked "$@"
# The operator console in headless Chromium (scripts/e2e.sh installs Debian's
# chromium and playwright-core when missing); only on a whole run, not when
# arguments pick tests.
if (($# == 0)); then
  bash scripts/e2e.sh
fi
