#!/usr/bin/env bash
# Sourced by the other scripts: make sure the local Postgres and Redis answer,
# starting them the way this machine's services are started when they do not.
# Only 127.0.0.1 is touched; nothing is installed.

ORDERSUM_PG_HOST="${ORDERSUM_PG_HOST:-127.0.0.1}"
ORDERSUM_PG_PORT="${ORDERSUM_PG_PORT:-5432}"
ORDERSUM_REDIS_PORT="${ORDERSUM_REDIS_PORT:-6379}"

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

wait_for() { # wait_for SECONDS CMD...: retry CMD until it succeeds or time runs out
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.3
  done
}

postgres_up() { pg_isready -q -h "$ORDERSUM_PG_HOST" -p "$ORDERSUM_PG_PORT"; }
redis_up() { [[ "$(redis-cli -h 127.0.0.1 -p "$ORDERSUM_REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

ensure_postgres() {
  postgres_up && return 0
  log "Postgres is not answering on $ORDERSUM_PG_HOST:$ORDERSUM_PG_PORT; starting it"
  command -v pg_ctlcluster >/dev/null || { log "pg_ctlcluster not found: start Postgres yourself"; return 1; }
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for 30 postgres_up || { log "Postgres did not come up"; return 1; }
}

ensure_redis() {
  redis_up && return 0
  log "Redis is not answering on 127.0.0.1:$ORDERSUM_REDIS_PORT; starting it"
  command -v redis-server >/dev/null || { log "redis-server not found: start Redis yourself"; return 1; }
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$ORDERSUM_REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for 15 redis_up || { log "Redis did not come up"; return 1; }
}

# The local S3-compatible server (scripts/s3.sh: s3s-fs, installed on first
# use): started if down, its S3_ENDPOINT/AWS_* exports applied.
ensure_s3() {
  local exports
  exports=$(bash scripts/s3.sh start) || { log "the S3 server did not start"; return 1; }
  eval "$exports"
}

ensure_services() {
  ensure_postgres
  ensure_redis
}
