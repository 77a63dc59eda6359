#!/usr/bin/env bash
# Runs ordersum's whole test suite against real Postgres and Redis on this
# machine (started if they are down). Each database test gets a fresh
# database created from DATABASE_URL's server; each test its own Redis queue.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
exec cargo test --workspace --locked "$@"
