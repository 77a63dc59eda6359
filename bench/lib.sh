#!/usr/bin/env bash
# Shared by the benchmark scripts (sourced from the repository root).
# bench_setup seeds a database; bench_ordersum runs one export through API and
# worker and sets WALL (submit → succeeded), DOWNLOAD, RSS_KIB, SIZE, PAID,
# UNPAID; s3_delete_prefix empties a run's prefix of the S3 bucket.

source scripts/services.sh
ensure_services

BENCH_WORK="$PWD/.bench"
BENCH_DB="${BENCH_DB:-ordersum_bench}"
BENCH_PORT="${BENCH_PORT:-18181}"
# Another Postgres or Redis on this machine: ORDERSUM_PG_PORT (5432) and
# ORDERSUM_REDIS_PORT (6379), as scripts/services.sh reads them; psql takes
# the port from PGPORT.
export PGPORT="$ORDERSUM_PG_PORT"
# PG_SOCKET=1: reach Postgres through its Unix socket instead of TCP (see
# docs/performance.md, "Postgres over TCP": sqlx leaves Nagle on for TCP connections).
if [[ -n "${PG_SOCKET:-}" ]]; then
  export DATABASE_URL="postgres://postgres@localhost:$ORDERSUM_PG_PORT/$BENCH_DB?host=${PG_SOCKET_DIR:-/var/run/postgresql}"
else
  export DATABASE_URL="postgres://postgres@127.0.0.1:$ORDERSUM_PG_PORT/$BENCH_DB"
fi
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$ORDERSUM_REDIS_PORT}"
export ORDERSUM_API_ADDR="127.0.0.1:$BENCH_PORT" ORDERSUM_API_URL="http://127.0.0.1:$BENCH_PORT/"
export ORDERSUM_QUEUE="ordersum-bench:$$" ORDERSUM_URL_SECRET="bench-url-secret-of-32-bytes-or-more-$$"
export ORDERSUM_WORKER_CONCURRENCY=1 ORDERSUM_MAX_ACTIVE_JOBS=100000
# Every measurement produces its own file: no answer from an earlier run.
export ORDERSUM_DEDUP_FRESH_SECONDS=0
BIN="${CARGO_TARGET_DIR:-target}/release"
# The window every measurement reads: all seeded orders (the last 30 days).
BENCH_START=$(date -u -d '40 days ago' +%s)
BENCH_END=$(date -u -d tomorrow +%s)

BENCH_PIDS=()
bench_cleanup() {
  if [[ ${#BENCH_PIDS[@]} -gt 0 ]]; then kill "${BENCH_PIDS[@]}" 2>/dev/null || true; fi
  wait 2>/dev/null || true
}
trap bench_cleanup EXIT

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

# bench_setup ORDERS: build, create the database, seed ORDERS orders of company 1.
bench_setup() {
  local orders="$1"
  rm -rf "$BENCH_WORK" && mkdir -p "$BENCH_WORK"
  cargo build --locked --release --bins >&2
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$BENCH_DB\" WITH (FORCE)" -c "CREATE DATABASE \"$BENCH_DB\""
  "$BIN/ordersum" migrate >&2
  local started
  started=$(now)
  "$BIN/ordersum" seed --company 1 --orders "$orders" --days 30 --seed 1 >&2
  if [[ -n "${ALL_PAID:-}" ]]; then
    psql -h 127.0.0.1 -U postgres -d "$BENCH_DB" -qc \
      "UPDATE orders SET status = 2, paid_time = end_time + interval '5 minutes' WHERE status <> 2"
  fi
  psql -h 127.0.0.1 -U postgres -d "$BENCH_DB" -qc "VACUUM ANALYZE orders"
  SEED_SECS=$(since "$started")
  eval "$("$BIN/ordersum" keys create --company 1)"
  export ORDERSUM_PUBLIC_KEY ORDERSUM_PRIVATE_KEY
}

# bench_ordersum STORE (file | s3): API + one worker, one summary of the window.
bench_ordersum() {
  local store="$1" dir="$BENCH_WORK/ordersum-$1"
  mkdir -p "$dir/files" "$dir/tmp"
  if [[ "$store" == s3 ]]; then
    ensure_s3
    export ORDERSUM_STORAGE="s3://$S3_BUCKET/bench?endpoint=$S3_ENDPOINT&region=$AWS_REGION&path_style=true"
  else
    export ORDERSUM_STORAGE="file://$dir/files"
  fi
  ORDERSUM_TEMP_DIR="$dir/tmp" "$BIN/ordersum-api" 2>"$dir/api.log" &
  local api_pid=$!
  BENCH_PIDS+=("$api_pid")
  ORDERSUM_TEMP_DIR="$dir/tmp" RUST_LOG=info,ordersum_worker=debug "$BIN/ordersum-worker" 2>"$dir/worker.log" &
  local worker_pid=$!
  BENCH_PIDS+=("$worker_pid")
  wait_for 30 curl -sf "${ORDERSUM_API_URL}healthz"
  sleep 1
  "$BIN/ordersum" summary --start "$BENCH_START" --end "$BENCH_END" --output "$dir/summary.xlsx" \
    >/dev/null 2>"$dir/cli.log"
  # The CLI's own clock: DownloadOrderSummary sent → job seen succeeded, then
  # the download of the file from its URL.
  read -r WALL DOWNLOAD < <(sed -n 's/.*succeeded \([0-9.]*\) s after submitting, downloaded in \([0-9.]*\) s.*/\1 \2/p' "$dir/cli.log")
  RSS_KIB=$(awk '/VmHWM/ {print $2}' "/proc/$worker_pid/status")
  SIZE=$(stat -c %s "$dir/summary.xlsx")
  read -r PAID UNPAID < <(sed -n 's/^\([0-9]*\) paid and \([0-9]*\) unpaid.*/\1 \2/p' "$dir/cli.log")
  kill "$api_pid" "$worker_pid" 2>/dev/null
  wait "$api_pid" "$worker_pid" 2>/dev/null || true
  SUMMARY_FILE="$dir/summary.xlsx"
}

# s3_delete_prefix PREFIX: deletes every object under PREFIX/ in the bucket
# (after ensure_s3: S3_ENDPOINT, S3_BUCKET and AWS_* set).
s3_delete_prefix() {
  local sig=(-s --max-time 60 --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  local list keys
  while :; do
    list=$(curl "${sig[@]}" "$S3_ENDPOINT/$S3_BUCKET?list-type=2&max-keys=1000&prefix=${1//\//%2F}%2F") || return 1
    keys=$(grep -o '<Key>[^<]*</Key>' <<<"$list" | sed "s|<Key>|$S3_ENDPOINT/$S3_BUCKET/|; s|</Key>||") || true
    [[ -n "$keys" ]] || return 0
    xargs -n 100 curl "${sig[@]}" -X DELETE <<<"$keys" >/dev/null || return 1
  done
}

mib() { echo "scale=1; $1 / 1024" | bc; }

# bench_venv: the Python of bench/requirements.txt (a venv, made again when the
# requirements change); sets PY.
bench_venv() {
  local venv="${BENCH_VENV:-$HOME/.cache/ordersum/bench-venv}"
  if [[ ! -x "$venv/bin/python" ]] || ! cmp -s bench/requirements.txt "$venv/requirements.txt"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r bench/requirements.txt
    cp bench/requirements.txt "$venv/requirements.txt"
  fi
  PY="$venv/bin/python"
}
