#!/usr/bin/env bash
# ordersum end to end on this machine: make sure Postgres and Redis run, build
# the binaries, create a demo database with seeded orders and an API key,
# start the API, and submit and follow a DownloadOrderSummary job through it
# with UCloud-signed calls.
#
#   scripts/demo.sh            run the demo, then stop the API
#   ORDERSUM_DEMO_KEEP=1 scripts/demo.sh   keep the API serving until Ctrl-C
#
# Settings: ORDERSUM_DEMO_DB (ordersum_demo), ORDERSUM_DEMO_ORDERS (20000),
# ORDERSUM_API_ADDR (127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

db="${ORDERSUM_DEMO_DB:-ordersum_demo}"
orders="${ORDERSUM_DEMO_ORDERS:-20000}"
export ORDERSUM_API_ADDR="${ORDERSUM_API_ADDR:-127.0.0.1:8080}"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
api="http://$ORDERSUM_API_ADDR/"

log "building (first build takes a few minutes)"
cargo build --locked --bins
bin="${CARGO_TARGET_DIR:-target}/debug"

if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$db\""
fi
"$bin/ordersum" migrate
"$bin/ordersum" seed --company 1 --orders "$orders" --days 60
eval "$("$bin/ordersum" keys create --company 1)"

"$bin/ordersum-api" &
api_pid=$!
trap 'kill "$api_pid" 2>/dev/null; wait "$api_pid" 2>/dev/null || true' EXIT
wait_for 30 curl -sf "${api}healthz" || { log "the API did not start"; exit 1; }

# call KEY=VALUE...: a form POST signed as UCloud's SDKs sign it.
call() {
  local signing signature args=()
  signing=$(printf '%s\n' "$@" "PublicKey=$ORDERSUM_PUBLIC_KEY" | LC_ALL=C sort -t= -k1,1 |
    while IFS='=' read -r key value; do printf '%s%s' "$key" "$value"; done)
  signature=$(printf '%s%s' "$signing" "$ORDERSUM_PRIVATE_KEY" | sha1sum | cut -d' ' -f1)
  for pair in "$@" "PublicKey=$ORDERSUM_PUBLIC_KEY" "Signature=$signature"; do
    args+=(--data-urlencode "$pair")
  done
  curl -sS "${args[@]}" "$api"
  echo
}

now=$(date +%s)
echo "== DownloadOrderSummary (last 30 days, modelverse, two regions)"
answer=$(call Action=DownloadOrderSummary StartTime=$((now - 30 * 86400)) EndTime="$now" \
  ProductCodes.0=modelverse Regions.0=cn-bj2 Regions.1=cn-sh2 Region=cn-bj2)
echo "$answer"
job_id=$(sed -n 's/.*"JobId":"\([^"]*\)".*/\1/p' <<<"$answer")
echo "== GetOrderSummaryJob $job_id"
call Action=GetOrderSummaryJob JobId="$job_id"
echo "== ListOrderSummaryJobs"
call Action=ListOrderSummaryJobs Limit=5
echo "== /readyz"
curl -sS "${api}readyz"; echo

if [[ -n "${ORDERSUM_DEMO_KEEP:-}" ]]; then
  log "API serving on $api (key $ORDERSUM_PUBLIC_KEY); Ctrl-C to stop"
  wait "$api_pid"
fi
