#!/usr/bin/env bash
# End-to-end test of the operator console (/admin) in headless Chromium:
# installs what is missing (Debian's chromium, playwright-core through
# `npm ci`), builds the binaries, makes a database of its own on the local
# Postgres server with seeded orders and an API key, starts the API and a
# worker with a queue, a file store and an admin token of their own, runs
# tests/e2e/console.test.mjs (node:test + playwright-core) and tears it all
# down at exit, also on failure. Screenshots go to e2e-output/ (ignored by
# git); the logs of the API and the worker too when a test fails.
#
#   bash scripts/e2e.sh
#
# Settings: ORDERSUM_PG_URL (postgres://postgres@127.0.0.1:5432, the server
# the database is made on), REDIS_URL (redis://127.0.0.1:6379),
# ORDERSUM_E2E_ORDERS (orders seeded for the big job), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/services.sh
ensure_services

chromium_bin=/usr/bin/chromium
out="$root/e2e-output"
e2e_dir="$root/tests/e2e"

# --- what the test needs on this machine
if [[ ! -x "$chromium_bin" ]]; then
  log "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
command -v node >/dev/null || { log "node (20 or newer) is needed"; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || { log "node $(node --version) is too old: playwright-core needs 20 or newer"; exit 1; }
if [[ ! -d "$e2e_dir/node_modules/playwright-core" ]]; then
  log "npm ci in tests/e2e"
  # playwright-core brings no browser; nothing is downloaded but the package.
  (cd "$e2e_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

log "building (the first build takes a few minutes)"
cargo build --locked --bins
target="${CARGO_TARGET_DIR:-target}"
[[ "$target" == /* ]] || target="$root/$target"
bin="$target/debug"

# --- a world of its own: database, queue, file store, token, port
tag="e2e_$$_$(date +%s)"
db="ordersum_$tag"
pg_server="${ORDERSUM_PG_URL:-postgres://postgres@127.0.0.1:5432}"
work=$(mktemp -d "${TMPDIR:-/tmp}/ordersum-e2e.XXXXXX")
mkdir -p "$work/files" "$work/tmp" "$out"
rm -f "$out"/*.png "$out"/*.log
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$ORDERSUM_REDIS_PORT}"

pids=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((status != 0)); then
    cp "$work/api.log" "$out/api.log" 2>/dev/null || true
    cp "$work/worker.log" "$out/worker.log" 2>/dev/null || true
    log "failed (exit $status); logs: $out/api.log, $out/worker.log"
  fi
  psql "$pg_server/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
    log "could not drop database $db"
  redis-cli -u "$REDIS_URL" --scan --pattern "ordersum-$tag*" 2>/dev/null |
    xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export DATABASE_URL="$pg_server/$db"
export ORDERSUM_QUEUE="ordersum-$tag:summary-jobs"
export ORDERSUM_STORAGE="file://$work/files"
export ORDERSUM_TEMP_DIR="$work/tmp"
export ORDERSUM_URL_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ORDERSUM_ADMIN_TOKEN="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# Every request makes its own job (no answer from an equal, fresh one).
export ORDERSUM_DEDUP_FRESH_SECONDS=0
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
export ORDERSUM_API_ADDR="127.0.0.1:$port"
export ORDERSUM_API_URL="http://$ORDERSUM_API_ADDR/"
# The worker: small pages and frequent progress, so the big job's progress
# bar moves in small steps for many seconds; no metrics port.
export ORDERSUM_PAGE_SIZE="${ORDERSUM_E2E_PAGE_SIZE:-200}"
export ORDERSUM_PROGRESS_INTERVAL_MS=200
export ORDERSUM_WORKER_METRICS_ADDR=off
# The webhook the test creates points at 127.0.0.1:9, where nothing listens:
# its deliveries fail locally (no packet leaves the machine).
export ORDERSUM_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32 ORDERSUM_WEBHOOK_ALLOW_HTTP=true
export ORDERSUM_SHUTDOWN_GRACE_SECONDS=2
export RUST_LOG="${RUST_LOG:-info}"

orders="${ORDERSUM_E2E_ORDERS:-300000}"
days=60
log "database $db: migrating, seeding $orders orders of company 1 over $days days"
psql "$pg_server/postgres" -qc "CREATE DATABASE \"$db\""
RUST_LOG=warn "$bin/ordersum" migrate >/dev/null
RUST_LOG=warn "$bin/ordersum" seed --company 1 --orders "$orders" --days "$days" >/dev/null
eval "$(RUST_LOG=warn "$bin/ordersum" keys create --company 1)"
export ORDERSUM_PUBLIC_KEY ORDERSUM_PRIVATE_KEY

"$bin/ordersum-api" >"$work/api.log" 2>&1 &
pids+=($!)
"$bin/ordersum-worker" >"$work/worker.log" 2>&1 &
pids+=($!)
wait_for 60 curl -sf "${ORDERSUM_API_URL}healthz" || { log "the API did not start (see the log below)"; tail -n 30 "$work/api.log" >&2; exit 1; }

log "API on $ORDERSUM_API_URL; running the browser test"
export ORDERSUM_E2E_BASE_URL="http://$ORDERSUM_API_ADDR"
export ORDERSUM_E2E_DAYS="$days"
export ORDERSUM_E2E_OUTPUT="$out"
export ORDERSUM_E2E_CHROMIUM="$chromium_bin"
node --test --test-reporter=spec "$e2e_dir/console.test.mjs"
log "screenshots:"
ls -1 "$out"/*.png
