#!/usr/bin/env bash
# The benchmark: ordersum against the script a user would write, and against
# the floor, on the same data in one run (release build).
#
#   bench/run.sh                   1 000 000 orders (ORDERS=5000000 for 5M)
#
# It creates the database ordersum_bench, seeds it with `ordersum seed`, and
# measures, each over the same window and query:
#   1. ordersum end to end (DownloadOrderSummary → job succeeded → file
#      downloaded): API + one worker with the local file store, then with
#      the local S3 server; wall time, rows/s, the worker's peak RSS, size;
#   2. the peer: bench/peer.py (psycopg server-side cursor + XlsxWriter
#      constant_memory, pinned in bench/requirements.txt, in a venv);
#   3. the floor: COPY (the same query) TO STDOUT | gzip -1;
# and prints one table with the ratios. Then the API load run (bench/load.sh)
# and the completion webhooks run (bench/webhooks.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

orders="${ORDERS:-1000000}"
bench_setup "$orders"

venv="${BENCH_VENV:-$HOME/.cache/ordersum/bench-venv}"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s bench/requirements.txt "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r bench/requirements.txt
  cp bench/requirements.txt "$venv/requirements.txt"
fi

declare -A wall rss size download
bench_ordersum file
wall[file]=$WALL rss[file]=$RSS_KIB size[file]=$SIZE download[file]=$DOWNLOAD rows=$((PAID + UNPAID))
bench_ordersum s3
wall[s3]=$WALL rss[s3]=$RSS_KIB size[s3]=$SIZE download[s3]=$DOWNLOAD

started=$(now)
/usr/bin/time -f '%M' -o "$BENCH_WORK/peer.rss" "$venv/bin/python" bench/peer.py \
  "$DATABASE_URL" 1 "$BENCH_START" "$BENCH_END" "$BENCH_WORK/peer.xlsx"
wall[peer]=$(since "$started") rss[peer]=$(tail -n 1 "$BENCH_WORK/peer.rss") size[peer]=$(stat -c %s "$BENCH_WORK/peer.xlsx")

query=$(sed -n '/^QUERY = """/,/^"""/p' bench/peer.py | sed '1d;$d' \
  | sed "s/%s AND o.start_time >= to_timestamp(%s) AND o.start_time < to_timestamp(%s)/1 AND o.start_time >= to_timestamp($BENCH_START) AND o.start_time < to_timestamp($BENCH_END)/")
started=$(now)
psql -h 127.0.0.1 -U postgres -d "$BENCH_DB" -qc "COPY ($query) TO STDOUT" | gzip -1 > "$BENCH_WORK/floor.tsv.gz"
wall[floor]=$(since "$started") rss[floor]=0 size[floor]=$(stat -c %s "$BENCH_WORK/floor.tsv.gz")

echo
echo "## $orders orders seeded ($rows in the window, paid + unpaid), $(nproc) cores"
printf '| %-34s | %9s | %10s | %13s | %9s | %12s | %13s | %13s |\n' run "wall (s)" "rows/s" "peak RSS (MiB)" "size (MiB)" "vs peer" "vs floor" "download (s)"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..36})" "-----------" "------------" "---------------" "-----------" "--------------" "---------------" "---------------"
for run in file s3 peer floor; do
  case $run in
    file) label="ordersum (file store)" ;;
    s3) label="ordersum (S3 store)" ;;
    peer) label="peer: psycopg + XlsxWriter" ;;
    floor) label="floor: COPY | gzip -1" ;;
  esac
  peer_ratio=$(echo "scale=1; ${wall[peer]} / ${wall[$run]}" | bc)
  floor_ratio=$(echo "scale=2; ${wall[$run]} / ${wall[floor]}" | bc)
  rss_mib=$([[ ${rss[$run]} == 0 ]] && echo "-" || mib "${rss[$run]}")
  printf '| %-34s | %9.2f | %10.0f | %13s | %9s | %11sx | %12sx | %13s |\n' "$label" "${wall[$run]}" \
    "$(echo "$rows / ${wall[$run]}" | bc -l)" "$rss_mib" "$(mib $((${size[$run]} / 1024)))" \
    "$peer_ratio" "$floor_ratio" "${download[$run]:--}"
done
echo
echo "wall: ordersum from DownloadOrderSummary sent to the job seen succeeded by the polling"
echo "client (the file written and stored); the peer and the floor from start to file written."
echo "download: then fetching the file from its URL (served by the API, or by the S3 server)."
echo "vs peer: how many times faster than the peer; vs floor: how many times the floor's time."

echo
echo "## API load (bench/load.sh)"
bench_cleanup
bash bench/load.sh

echo
echo "## Completion webhooks (bench/webhooks.sh)"
bash bench/webhooks.sh
