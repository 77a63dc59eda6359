#!/usr/bin/env bash
# Completion webhooks: 1 000 job ends delivered to a local receiver, and the
# small-job latency without and with an endpoint subscribed, in one run
# (release build), one table at the end.
#
#   bench/webhooks.sh
#   ORDERSUM_PG_PORT=5440 ORDERSUM_REDIS_PORT=6390 bench/webhooks.sh   other servers
#   ORDERSUM_WEBHOOK_POLL_MS=50 bench/webhooks.sh   the deliverers' poll interval
#                                                   (1000 by default: NOTIFY wakes them)
#
# 1. Seeds the database ordersum_webhooks: company 1 as bench/small.sh seeds
#    its companies (1 500 orders a day over 14 days: a one-day window holds
#    1-2k orders), companies 2-11 with 300 a day (one-hour windows: a few
#    orders each); a key per company.
# 2. The API and 2 worker processes (ORDERSUM_WORKER_CONCURRENCY=1 each), the
#    local S3 server as store (scripts/s3.sh), rate limits off, and on both
#    ORDERSUM_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32 ORDERSUM_WEBHOOK_ALLOW_HTTP=true
#    (deliveries to the receiver on loopback, over http).
# 3. The receiver (bench/webhooks.py receive: Python ThreadingHTTPServer on
#    127.0.0.1, a process of its own): verifies each POST's signature with the
#    standardwebhooks package, records webhook-id, the body's JobId and
#    time.time(), answers 204.
# 4. Sequential: 4 blocks of 50 small jobs of company 1, each block once
#    without an endpoint and once with one (CreateOrderSummaryWebhook before,
#    DeleteOrderSummaryWebhook after), the same windows, the order
#    alternating: submit → URL p50/p95/p99 side by side, as bench/small.py
#    times its sequential jobs; the with-endpoint jobs' webhooks timed too.
# 5. Burst: an endpoint for each of companies 2-11; one client thread a
#    company, all released at once, each submits 90 jobs back to back and 10
#    more cancelled at once (CancelOrderSummaryJob): 1 000 job ends. Per event,
#    latency = receipt − webhook_events.created_at (the job's end, read from
#    Postgres by event id = webhook-id): p50/p99/max, deliveries/s (events ÷
#    first job end → last receipt), each event delivered exactly once.
# bench/webhooks.py drives every step (Python from bench/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_DB="${BENCH_DB:-ordersum_webhooks}"
BENCH_PORT="${BENCH_PORT:-18183}"
source bench/lib.sh

receiver_port="${BENCH_RECEIVER_PORT:-18190}"
out="$BENCH_WORK/webhooks"
export RUST_LOG="${BENCH_LOG:-warn}" PYTHONDONTWRITEBYTECODE=1

bench_venv
cargo build --locked --release --bins >&2
rm -rf "$out" && mkdir -p "$out/tmp"

echo "webhooks.sh: [${SECONDS}s] seeding 11 companies" >&2
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$BENCH_DB\" WITH (FORCE)" -c "CREATE DATABASE \"$BENCH_DB\""
"$BIN/ordersum" migrate >&2
"$BIN/ordersum" seed --company 1 --orders $((1500 * 14)) --days 14 --seed 1 >/dev/null
seq 2 11 | xargs -P 2 -I '{}' "$BIN/ordersum" seed --company '{}' --orders $((300 * 14)) --days 14 --seed '{}' >/dev/null
psql -h 127.0.0.1 -U postgres -d "$BENCH_DB" -qc "VACUUM ANALYZE orders"
for company in $(seq 11); do
  pair=$("$BIN/ordersum" keys create --company "$company")
  echo "$company $(sed -n 's/^ORDERSUM_PUBLIC_KEY=//p' <<<"$pair") $(sed -n 's/^ORDERSUM_PRIVATE_KEY=//p' <<<"$pair")"
done >"$out/keys.txt"
"$PY" bench/webhooks.py plan "$DATABASE_URL" "$out/plan.json"

# ---- The receiver, on loopback.
receiver_url="http://127.0.0.1:$receiver_port/"
: >"$out/received.jsonl"
"$PY" bench/webhooks.py receive "$receiver_port" "$out/secrets.json" "$out/received.jsonl" 2>"$out/receiver.log" &
receiver_pid=$!
BENCH_PIDS+=("$receiver_pid")
wait_for 30 curl -sf "$receiver_url" || { echo "webhooks.sh: the receiver did not start; see $out/receiver.log" >&2; exit 1; }

# ---- ordersum: API and 2 workers, both allowed to deliver to 127.0.0.1 over
# http; the workbooks go to the local S3 server, under a prefix of this
# run's, deleted at exit.
ensure_s3
s3_prefix="bench-webhooks/$$"
trap 'bench_cleanup; s3_delete_prefix "$s3_prefix" || echo "webhooks.sh: could not delete s3://$S3_BUCKET/$s3_prefix/" >&2' EXIT
export ORDERSUM_STORAGE="s3://$S3_BUCKET/$s3_prefix?endpoint=$S3_ENDPOINT&region=$AWS_REGION&path_style=true"
export ORDERSUM_RATE_LIMIT_PER_IP=0 ORDERSUM_RATE_LIMIT_PER_KEY=0 ORDERSUM_WORKER_METRICS_ADDR=off
export ORDERSUM_TEMP_DIR="$out/tmp"
export ORDERSUM_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32 ORDERSUM_WEBHOOK_ALLOW_HTTP=true
"$BIN/ordersum-api" 2>"$out/api.log" &
api_pid=$!
BENCH_PIDS+=("$api_pid")
worker_pids=()
for i in 1 2; do
  "$BIN/ordersum-worker" 2>"$out/worker-$i.log" &
  worker_pids+=($!)
  BENCH_PIDS+=($!)
done
wait_for 30 curl -sf "${ORDERSUM_API_URL}readyz" || { echo "webhooks.sh: the API is not ready; see $out/api.log" >&2; exit 1; }
echo "webhooks.sh: [${SECONDS}s] sequential jobs, then the burst" >&2
"$PY" bench/webhooks.py run "$out/plan.json" "$out/keys.txt" "$ORDERSUM_API_URL" "$receiver_url" "$receiver_pid" \
  "$out/secrets.json" "$out/received.jsonl" "$DATABASE_URL" "$out/result.json"

kill "${worker_pids[@]}" "$api_pid"
for pid in "${worker_pids[@]}" "$api_pid"; do
  wait "$pid" || { echo "webhooks.sh: a process exited with an error; see $out/*.log" >&2; exit 1; }
done

echo
echo "webhooks.sh: [${SECONDS}s] done" >&2
"$PY" bench/webhooks.py table "$out/result.json" | tee "$out/table.md"
