#!/usr/bin/env bash
# One large export read from the primary, then from its streaming replica
# (ORDERSUM_ORDERS_DATABASE_URL), then with job state through a
# transaction-pooling PgBouncer as well (ORDERSUM_PG_STATEMENT_CACHE=0,
# ORDERSUM_LISTEN_DATABASE_URL direct), in one run, ROUNDS times each,
# alternating; prints each run and the medians. The replica and PgBouncer are
# the test topology (scripts/services.sh topology).
#
#   bench/replica.sh                  1 000 000 orders, 2 rounds
#   ORDERS=200000 ROUNDS=3 bench/replica.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ensure_topology

orders="${ORDERS:-1000000}"
rounds="${ROUNDS:-2}"
bench_setup "$orders"
primary_url="$DATABASE_URL"
replica_url="$ORDERSUM_TEST_REPLICA_URL/$BENCH_DB"
pgbouncer_url="$ORDERSUM_TEST_PGBOUNCER_URL/$BENCH_DB"
# The replica has replayed the seeding before anything is timed.
target=$(psql -h 127.0.0.1 -U postgres -d "$BENCH_DB" -Atc "SELECT pg_current_wal_lsn()")
wait_for 300 test "$(psql "$replica_url" -Atc "SELECT pg_last_wal_replay_lsn() >= '$target'" 2>/dev/null)" = t
psql "$replica_url" -qc "SELECT count(*) FROM orders" >/dev/null # warm its cache as the primary's is

declare -A walls
run() { # run NAME: one export with the current environment
  bench_ordersum file
  walls[$1]+="$WALL "
  printf '%-34s %6.2f s  %s rows  worker peak %s MiB\n' "$1" "$WALL" "$((PAID + UNPAID))" "$(mib "$RSS_KIB")"
}
for ((round = 1; round <= rounds; round++)); do
  DATABASE_URL="$primary_url" run "primary (direct)"
  DATABASE_URL="$primary_url" ORDERSUM_ORDERS_DATABASE_URL="$replica_url" run "orders from the replica"
  DATABASE_URL="$pgbouncer_url" ORDERSUM_LISTEN_DATABASE_URL="$primary_url" ORDERSUM_PG_STATEMENT_CACHE=0 \
    ORDERSUM_ORDERS_DATABASE_URL="$replica_url" run "replica + PgBouncer (state)"
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
direct=$(median "${walls[primary (direct)]}")
printf '\n%s orders, median of %s rounds:\n' "$orders" "$rounds"
for name in "primary (direct)" "orders from the replica" "replica + PgBouncer (state)"; do
  m=$(median "${walls[$name]}")
  printf '  %-32s %6.2f s  (%+.1f %% against direct)\n' "$name" "$m" "$(echo "($m / $direct - 1) * 100" | bc -l)"
done
