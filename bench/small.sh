#!/usr/bin/env bash
# Small jobs (1-2k orders each): ordersum against a Celery peer, in one run
# (release build), one table at the end.
#
#   bench/small.sh
#   ORDERSUM_PG_PORT=5440 ORDERSUM_REDIS_PORT=6390 bench/small.sh   other servers
#   BENCH_CONCURRENCY=2 bench/small.sh   each worker runs 2 jobs at once (the
#                                        product's default; 1 by default here,
#                                        as each Celery process runs one)
#
# 1. Seeds the database ordersum_small: 21 companies, 1 500 orders a day over
#    14 days (a one-day window holds 1-2k orders), and a key per company.
# 2. ordersum: the API and 2 worker processes (ORDERSUM_WORKER_CONCURRENCY=1
#    each, or BENCH_CONCURRENCY), the local S3 server as store (scripts/s3.sh), rate limits off;
#    200 sequential jobs of company 1 (after 5 unreported), then a burst of
#    20 companies × 5 jobs; every answer through the public API only.
# 3. Long-polls: the workers stopped, a fresh API, 1 000 GetOrderSummaryJob
#    WaitSeconds=60 held open on queued jobs: the API's RSS, its Postgres
#    connections and transactions/s, and the latency of unrelated calls
#    (wrk -c4), before, while held and after the client closed them.
# 4. Celery (bench/celery_peer.py: bench/peer.py's export as a task; Redis
#    broker and result backend; one prefork worker, -c 2): the same jobs.
# bench/small.py drives every step (Python from bench/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_DB="${BENCH_DB:-ordersum_small}"
BENCH_PORT="${BENCH_PORT:-18182}"
source bench/lib.sh

companies=21 orders_per_day=1500 days=14
out="$BENCH_WORK/small"
export RUST_LOG="${BENCH_LOG:-warn}" PYTHONDONTWRITEBYTECODE=1

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
bench_venv
cargo build --locked --release --bins >&2
rm -rf "$out" && mkdir -p "$out/tmp" "$out/celery-files"

echo "small.sh: [${SECONDS}s] seeding $companies companies × $((orders_per_day * days)) orders" >&2
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$BENCH_DB\" WITH (FORCE)" -c "CREATE DATABASE \"$BENCH_DB\""
"$BIN/ordersum" migrate >&2
seq "$companies" | xargs -P 2 -I '{}' \
  "$BIN/ordersum" seed --company '{}' --orders $((orders_per_day * days)) --days "$days" --seed '{}' >/dev/null
psql -h 127.0.0.1 -U postgres -d "$BENCH_DB" -qc "VACUUM ANALYZE orders"
# A key per company, and one for company 22 (no orders: the long-polls' jobs).
for company in $(seq $((companies + 1))); do
  pair=$("$BIN/ordersum" keys create --company "$company")
  echo "$company $(sed -n 's/^ORDERSUM_PUBLIC_KEY=//p' <<<"$pair") $(sed -n 's/^ORDERSUM_PRIVATE_KEY=//p' <<<"$pair")"
done >"$out/keys.txt"
"$PY" bench/small.py plan "$DATABASE_URL" "$out/plan.json"

# ---- ordersum: API and 2 workers; the workbooks go to the local S3 server,
# under a prefix of this run's, deleted at exit.
ensure_s3
s3_prefix="bench-small/$$"
trap 'bench_cleanup; s3_delete_prefix "$s3_prefix" || echo "small.sh: could not delete s3://$S3_BUCKET/$s3_prefix/" >&2' EXIT
export ORDERSUM_STORAGE="s3://$S3_BUCKET/$s3_prefix?endpoint=$S3_ENDPOINT&region=$AWS_REGION&path_style=true"
export ORDERSUM_RATE_LIMIT_PER_IP=0 ORDERSUM_RATE_LIMIT_PER_KEY=0 ORDERSUM_WORKER_METRICS_ADDR=off
export ORDERSUM_TEMP_DIR="$out/tmp"
"$BIN/ordersum-api" 2>"$out/api.log" &
api_pid=$!
BENCH_PIDS+=("$api_pid")
worker_pids=()
for i in 1 2; do
  ORDERSUM_WORKER_CONCURRENCY="${BENCH_CONCURRENCY:-1}" "$BIN/ordersum-worker" 2>"$out/worker-$i.log" &
  worker_pids+=($!)
  BENCH_PIDS+=($!)
done
wait_for 30 curl -sf "${ORDERSUM_API_URL}readyz" || { echo "small.sh: the API is not ready; see $out/api.log" >&2; exit 1; }
echo "small.sh: [${SECONDS}s] ordersum" >&2
"$PY" bench/small.py ordersum "$out/plan.json" "$out/keys.txt" "$ORDERSUM_API_URL" "$out/ordersum.json"

# ---- Long-polls on jobs that stay queued: no worker runs; a fresh API.
kill "${worker_pids[@]}" "$api_pid"
for pid in "${worker_pids[@]}" "$api_pid"; do
  wait "$pid" || { echo "small.sh: a process exited with an error; see $out/*.log" >&2; exit 1; }
done
"$BIN/ordersum-api" 2>"$out/api-longpoll.log" &
api_pid=$!
BENCH_PIDS+=("$api_pid")
wait_for 30 curl -sf "${ORDERSUM_API_URL}readyz" || { echo "small.sh: the API is not ready; see $out/api-longpoll.log" >&2; exit 1; }
echo "small.sh: [${SECONDS}s] 1 000 long-polls (workers stopped)" >&2
"$PY" bench/small.py longpoll "$out/plan.json" "$out/keys.txt" "$ORDERSUM_API_URL" "$api_pid" \
  "$DATABASE_URL" "$out/longpoll.json"
kill "$api_pid"
wait "$api_pid" || true

# ---- Celery: one prefork worker with 2 processes, a queue of its own.
echo "small.sh: [${SECONDS}s] Celery" >&2
export CELERY_REDIS_URL="$REDIS_URL" CELERY_PEER_DIR="$out/celery-files" CELERY_QUEUE="ordersum-small-$$"
(cd bench && exec "$PY" -m celery -A celery_peer worker -P prefork -c 2 -Q "$CELERY_QUEUE" \
  --without-gossip --without-mingle --without-heartbeat -l warning) >"$out/celery.log" 2>&1 &
celery_pid=$!
BENCH_PIDS+=("$celery_pid")
"$PY" bench/small.py celery "$out/plan.json" "$out/celery.json"
kill "$celery_pid"
wait "$celery_pid" || true

echo
echo "small.sh: [${SECONDS}s] done" >&2
"$PY" bench/small.py table "$out/plan.json" "$out/ordersum.json" "$out/celery.json" "$out/longpoll.json" \
  | tee "$out/table.md"
