#!/usr/bin/env bash
# One large export, measured: seeds a bench database, starts the API and one
# worker (release build), asks for the whole window with `ordersum summary`,
# and prints wall time, rows/s, the worker's peak RSS (VmHWM) and the file
# size; then lists the workbook's sheets and their row counts.
#
#   bench/export.sh                  1 000 000 orders, local file store
#   ORDERS=5000000 bench/export.sh   another size
#   ALL_PAID=1 bench/export.sh       every order paid: past 1 048 575 rows the
#                                    paid sheet continues in "Paid Orders (2)"
#   STORE=s3 bench/export.sh         upload to the local S3 server instead
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

orders="${ORDERS:-1000000}"
db="${BENCH_DB:-ordersum_bench}"
work="$PWD/.bench"
rm -rf "$work" && mkdir -p "$work/files" "$work/tmp"
port="${BENCH_PORT:-18181}"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export ORDERSUM_API_ADDR="127.0.0.1:$port" ORDERSUM_API_URL="http://127.0.0.1:$port/"
export ORDERSUM_QUEUE="ordersum-bench:$$" ORDERSUM_TEMP_DIR="$work/tmp" ORDERSUM_URL_SECRET="bench-$$"
export ORDERSUM_WORKER_CONCURRENCY=1
if [[ "${STORE:-file}" == s3 ]]; then
  ensure_s3
  export ORDERSUM_STORAGE="s3://$S3_BUCKET/bench?endpoint=$S3_ENDPOINT&region=$AWS_REGION&path_style=true"
else
  export ORDERSUM_STORAGE="file://$work/files"
fi

cargo build --locked --release --bins >&2
bin="${CARGO_TARGET_DIR:-target}/release"

psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\"" -c "CREATE DATABASE \"$db\""
"$bin/ordersum" migrate >&2
seed_start=$(date +%s.%N)
"$bin/ordersum" seed --company 1 --orders "$orders" --days 30 --seed 1 >&2
[[ -n "${ALL_PAID:-}" ]] && psql -h 127.0.0.1 -U postgres -d "$db" -qc \
  "UPDATE orders SET status = 2, paid_time = end_time + interval '5 minutes' WHERE status <> 2"
psql -h 127.0.0.1 -U postgres -d "$db" -qc "VACUUM ANALYZE orders"
seed_secs=$(echo "$(date +%s.%N) - $seed_start" | bc)
eval "$("$bin/ordersum" keys create --company 1)"
export ORDERSUM_PUBLIC_KEY ORDERSUM_PRIVATE_KEY

"$bin/ordersum-api" 2>"$work/api.log" &
api_pid=$!
"$bin/ordersum-worker" 2>"$work/worker.log" &
worker_pid=$!
trap 'kill "$api_pid" "$worker_pid" 2>/dev/null; wait 2>/dev/null || true' EXIT
wait_for 30 curl -sf "${ORDERSUM_API_URL}healthz"
sleep 1

start=$(date +%s.%N)
file=$("$bin/ordersum" summary --start "$(date -u -d '40 days ago' +%F)" --end "$(date -u -d tomorrow +%F)" \
  --output "$work/summary.xlsx" 2>"$work/cli.log")
wall=$(echo "$(date +%s.%N) - $start" | bc)
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$worker_pid/status")
rows=$(sed -n 's/^\([0-9]*\) paid and \([0-9]*\) unpaid.*/\1 \2/p' "$work/cli.log")
paid=${rows% *} unpaid=${rows#* }
size=$(stat -c %s "$file")

printf '\n%-28s %s\n' "orders seeded" "$orders (in ${seed_secs}s)"
printf '%-28s %s\n' "rows written (paid/unpaid)" "$paid / $unpaid"
printf '%-28s %.2f s\n' "end to end (submit→file)" "$wall"
printf '%-28s %.0f rows/s\n' "throughput" "$(echo "($paid + $unpaid) / $wall" | bc -l)"
printf '%-28s %.1f MiB\n' "worker peak RSS (VmHWM)" "$(echo "$rss_kib / 1024" | bc -l)"
printf '%-28s %.1f MiB\n' "file size" "$(echo "$size / 1048576" | bc -l)"
echo "sheets (name, then the header-plus-data range of its autofilter):"
unzip -p "$file" xl/workbook.xml | grep -o "_FilterDatabase[^>]*>'[^']*'![^<]*" | sed "s/.*>'\([^']*\)'!/  \1  /"
