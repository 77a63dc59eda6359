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
exec cargo test --workspace --locked "$@"
