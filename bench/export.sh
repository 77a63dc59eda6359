#!/usr/bin/env bash
# One large export, measured: seeds a bench database, starts the API and one
# worker (release build), asks for the whole window with `ordersum summary`,
# and prints wall time, rows/s, the worker's peak RSS (VmHWM) and the file
# size; then lists the workbook's sheets and their ranges.
#
#   bench/export.sh                  1 000 000 orders, local file store
#   ORDERS=5000000 bench/export.sh   another size
#   ALL_PAID=1 bench/export.sh       every order paid: past 1 048 575 rows the
#                                    paid sheet continues in "Paid Orders (2)"
#   STORE=s3 bench/export.sh         upload to the local S3 server instead
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

orders="${ORDERS:-1000000}"
bench_setup "$orders"
bench_ordersum "${STORE:-file}"

printf '\n%-28s %s\n' "orders seeded" "$orders (in ${SEED_SECS}s)"
printf '%-28s %s\n' "rows written (paid/unpaid)" "$PAID / $UNPAID"
printf '%-28s %.2f s\n' "submit → job succeeded" "$WALL"
printf '%-28s %.2f s\n' "then the download" "$DOWNLOAD"
printf '%-28s %.0f rows/s\n' "throughput" "$(echo "($PAID + $UNPAID) / $WALL" | bc -l)"
printf '%-28s %s MiB\n' "worker peak RSS (VmHWM)" "$(mib "$RSS_KIB")"
printf '%-28s %s MiB\n' "file size" "$(mib $((SIZE / 1024)))"
grep -h "workbook saved\|exported and stored" "$BENCH_WORK"/ordersum-*/worker.log | sed 's/^.*ordersum_worker::export: /  worker: /'
echo "sheets (name, then the header-plus-data range of its autofilter):"
unzip -p "$SUMMARY_FILE" xl/workbook.xml | grep -o "_FilterDatabase[^>]*>'[^']*'![^<]*" | sed "s/.*>'\([^']*\)'!/  \1  /"
