#!/usr/bin/env bash
# The API's memory under a flood of unsigned calls, each with a different
# 1 MB PublicKey (what an unauthenticated caller controls): RSS of a release
# `ordersum-api` before and after CALLS (300) such calls.
#
#   bench/key-flood.sh            # CALLS=1000 bench/key-flood.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
calls="${CALLS:-300}"
cargo build --locked --release -p ordersum-api >&2
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$BENCH_DB\" WITH (FORCE)" -c "CREATE DATABASE \"$BENCH_DB\""
rm -rf "$BENCH_WORK" && mkdir -p "$BENCH_WORK/files"
# The flood comes from one address: the per-address limit would stop it.
ORDERSUM_RATE_LIMIT_PER_IP=0 ORDERSUM_STORAGE="file://$BENCH_WORK/files" RUST_LOG=warn \
  "$BIN/ordersum-api" 2>"$BENCH_WORK/api.log" &
api_pid=$!
BENCH_PIDS+=("$api_pid")
wait_for 30 curl -sf "${ORDERSUM_API_URL}healthz"
rss_mib() { awk -v field="$1" '$1 == field":" { printf "%.1f", $2 / 1024 }' "/proc/$api_pid/status"; }
before=$(rss_mib VmRSS)
python3 - "$BENCH_PORT" "$calls" <<'PY'
import collections, http.client, sys
port, calls = int(sys.argv[1]), int(sys.argv[2])
padding = b"k" * 1_000_000
answers = collections.Counter()
conn = http.client.HTTPConnection("127.0.0.1", port)
for i in range(calls):
    body = b"Action=ListOrderSummaryJobs&Signature=00&PublicKey=%d" % i + padding
    conn.request("POST", "/", body, {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    code = response.read().split(b'"RetCode":')[1].split(b",")[0].rstrip(b"}").decode()
    answers[(response.status, code)] += 1
print("answers (HTTP, RetCode):", dict(answers), file=sys.stderr)
PY
printf 'ordersum-api RSS: %s MiB before, %s MiB after %s calls with a distinct 1 MB PublicKey (peak %s MiB)\n' \
  "$before" "$(rss_mib VmRSS)" "$calls" "$(rss_mib VmHWM)"
