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
# A streaming replica and a transaction-pooling PgBouncer (tests/tests/topology.rs,
# and the second pass below); exports ORDERSUM_TEST_REPLICA_URL and _PGBOUNCER_URL.
ensure_topology

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
# The fault tests start the worker binary as real processes.
cargo build --workspace --locked --bins
cargo test --workspace --locked "$@"
# The end-to-end, fault and webhook tests once more through the production
# topology (tests/src/topology.rs): the API and the workers through PgBouncer
# in transaction mode (ORDERSUM_PG_STATEMENT_CACHE=0), LISTEN and the locks on
# the direct URL, orders from the replica; the tests that hold an export
# with a lock on the primary's orders table (tests/src/gate.rs) read the
# orders through PgBouncer instead. Only on a whole run.
if (($# == 0)); then
  ORDERSUM_TEST_TOPOLOGY=1 cargo test --locked --no-fail-fast -p ordersum-tests \
    --test amounts --test attempts --test contract --test jobs --test lost_file --test orphans \
    --test wakeups --test webhooks --test webhook_faults --test workbook_format --test redis_restart
  ORDERSUM_TEST_TOPOLOGY=pgbouncer cargo test --locked --no-fail-fast -p ordersum-tests \
    --test export --test faults --test lifecycle --test admin --test worker_metrics
fi
# The operator console in headless Chromium (scripts/e2e.sh installs Debian's
# chromium and playwright-core when missing); only on a whole run, not when
# arguments pick tests.
if (($# == 0)); then
  bash scripts/e2e.sh
fi
