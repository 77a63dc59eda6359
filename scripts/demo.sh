#!/usr/bin/env bash
# ordersum end to end on this machine: make sure Postgres and Redis run, build
# the binaries, create a demo database with seeded orders and an API key,
# start the API and a worker, ask for an order summary with UCloud-signed
# calls (`ordersum summary`), download the workbook and print where it is.
#
#   scripts/demo.sh                      local file store (links served by the API)
#   ORDERSUM_DEMO_S3=1 scripts/demo.sh   S3 store: the local S3 server of
#                                        scripts/s3.sh (s3s-fs, installed on first use)
#   ORDERSUM_DEMO_KEEP=1 scripts/demo.sh keep API and worker running until Ctrl-C
#
# Settings: ORDERSUM_PG_URL (postgres://postgres@127.0.0.1:5432: the server,
# with user:password@ when it asks for one), ORDERSUM_DEMO_DB (ordersum_demo), ORDERSUM_DEMO_ORDERS (50000),
# ORDERSUM_API_ADDR (127.0.0.1:8080). Files go to ./.demo (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

db="${ORDERSUM_DEMO_DB:-ordersum_demo}"
orders="${ORDERSUM_DEMO_ORDERS:-50000}"
demo_dir="$PWD/.demo"
mkdir -p "$demo_dir/files" "$demo_dir/tmp"
export ORDERSUM_API_ADDR="${ORDERSUM_API_ADDR:-127.0.0.1:8080}"
export ORDERSUM_API_URL="http://$ORDERSUM_API_ADDR/"
# The Postgres server: ORDERSUM_PG_URL, with a password if it asks for one
# (postgres://user:password@host:port); the demo database is made on it.
pg_server="${ORDERSUM_PG_URL:-postgres://postgres@127.0.0.1:5432}"
export DATABASE_URL="$pg_server/$db"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export ORDERSUM_QUEUE="ordersum-demo:summary-jobs"
export ORDERSUM_TEMP_DIR="$demo_dir/tmp"
# Each run makes its own summary: the demo seeds more orders every time, and
# may switch stores between runs (an equal request would otherwise be
# answered by the last run's job for a minute).
export ORDERSUM_DEDUP_FRESH_SECONDS=0
export ORDERSUM_URL_SECRET="${ORDERSUM_URL_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
if [[ -n "${ORDERSUM_DEMO_S3:-}" ]]; then
  ensure_s3
  export ORDERSUM_STORAGE="s3://$S3_BUCKET/demo?endpoint=$S3_ENDPOINT&region=$AWS_REGION&path_style=true"
else
  export ORDERSUM_STORAGE="file://$demo_dir/files"
fi

log "building (the first build takes a few minutes)"
cargo build --locked --bins
bin="${CARGO_TARGET_DIR:-target}/debug"

if [[ "$(psql "$pg_server/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]]; then
  psql "$pg_server/postgres" -qc "CREATE DATABASE \"$db\""
fi
"$bin/ordersum" migrate
"$bin/ordersum" seed --company 1 --orders "$orders" --days 60
eval "$("$bin/ordersum" keys create --company 1)"
export ORDERSUM_PUBLIC_KEY ORDERSUM_PRIVATE_KEY

"$bin/ordersum-api" 2>"$demo_dir/api.log" &
api_pid=$!
"$bin/ordersum-worker" 2>"$demo_dir/worker.log" &
worker_pid=$!
trap 'kill "$api_pid" "$worker_pid" 2>/dev/null; wait "$api_pid" "$worker_pid" 2>/dev/null || true' EXIT
wait_for 30 curl -sf "${ORDERSUM_API_URL}healthz" || { log "the API did not start (see $demo_dir/api.log)"; exit 1; }

log "asking for the summary of the last 30 days (logs: $demo_dir/api.log, $demo_dir/worker.log)"
file=$("$bin/ordersum" summary --start "$(date -u -d '30 days ago' +%F)" --end "$(date -u -d tomorrow +%F)" \
  --output "$demo_dir/order-summary.xlsx")
log "summary downloaded: $file ($(stat -c %s "$file") bytes)"
echo "$file"

if [[ -n "${ORDERSUM_DEMO_KEEP:-}" ]]; then
  log "API on $ORDERSUM_API_URL and a worker running; key $ORDERSUM_PUBLIC_KEY; Ctrl-C to stop"
  wait "$api_pid"
fi
