#!/usr/bin/env bash
# Sourced by the other scripts: make sure the local Postgres and Redis answer,
# starting them the way this machine's services are started when they do not.
# Only 127.0.0.1 is touched. ensure_topology (below) adds the production
# topology around that Postgres: a streaming replica and a PgBouncer; it is the
# one part that may install a package (Debian's pgbouncer) and change the
# primary's pg_hba.conf (a trust line for replication from 127.0.0.1).
#
#   source scripts/services.sh; ensure_services; ensure_topology
#   eval "$(bash scripts/services.sh topology)"   the same from a shell:
#                                   prints the ORDERSUM_TEST_* export lines
#   bash scripts/services.sh topology-env         the export lines only
#   bash scripts/services.sh topology-stop        stop the replica and the
#                                   PgBouncer started from the topology dir
#   bash scripts/services.sh topology-remove      also drop the replica's slot
#                                   on the primary and delete their files

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

# --- the production topology: a streaming replica and PgBouncer --------------
#
# What issue 24's settings point at in production, made on this machine:
#   ensure_replica    a hot standby of the local primary, streaming from it
#                     through a physical replication slot, on 127.0.0.1:
#                     $ORDERSUM_REPLICA_PORT (5433); exports
#                     ORDERSUM_TEST_REPLICA_URL (no database: append yours)
#   ensure_pgbouncer  Debian's PgBouncer in transaction mode on 127.0.0.1:
#                     $ORDERSUM_PGBOUNCER_PORT (6432), every database of the
#                     primary by its name; exports ORDERSUM_TEST_PGBOUNCER_URL
#   ensure_topology   both
# Each returns at once when its server already answers as it should; else it
# starts what is there, or (re)builds it. Their files live in
# $ORDERSUM_TOPOLOGY_DIR (~/.cache/ordersum/topology), one folder per port
# (replica-5433/, pgbouncer-6432/), owned by the postgres user: neither
# server runs as root. Needs root (or the postgres user, if nothing has to be
# installed or granted).
#
# A stopped replica's slot keeps the primary's WAL from being recycled
# (every database a test creates is WAL). `services.sh topology-remove` drops
# the slot; a replica whose WAL is gone is rebuilt by the next ensure_replica.

ORDERSUM_TOPOLOGY_DIR="${ORDERSUM_TOPOLOGY_DIR:-$HOME/.cache/ordersum/topology}"
ORDERSUM_REPLICA_PORT="${ORDERSUM_REPLICA_PORT:-5433}"
ORDERSUM_PGBOUNCER_PORT="${ORDERSUM_PGBOUNCER_PORT:-6432}"

topology_urls() {
  ORDERSUM_TEST_REPLICA_URL="postgres://postgres@127.0.0.1:$ORDERSUM_REPLICA_PORT"
  ORDERSUM_TEST_PGBOUNCER_URL="postgres://postgres@127.0.0.1:$ORDERSUM_PGBOUNCER_PORT"
  export ORDERSUM_TEST_REPLICA_URL ORDERSUM_TEST_PGBOUNCER_URL
}

topology_exports() {
  topology_urls
  printf 'export ORDERSUM_TEST_REPLICA_URL=%q\n' "$ORDERSUM_TEST_REPLICA_URL"
  printf 'export ORDERSUM_TEST_PGBOUNCER_URL=%q\n' "$ORDERSUM_TEST_PGBOUNCER_URL"
}

# as_postgres CMD...: CMD as the postgres user, from / (root's home is not
# theirs to enter).
as_postgres() {
  if [[ "$(id -un)" == postgres ]]; then
    (cd / && "$@")
  elif (($(id -u) == 0)); then
    (cd / && runuser -u postgres -- "$@")
  else
    log "the replica and PgBouncer run as the postgres user: run this as root or as postgres"
    return 1
  fi
}

# psql_at PORT SQL: one value, no password prompt, 3 s to connect.
psql_at() {
  PGCONNECT_TIMEOUT=3 psql -X -w -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -tAc "$2" 2>/dev/null
}
primary_sql() {
  PGCONNECT_TIMEOUT=3 psql -X -w -q -h "$ORDERSUM_PG_HOST" -p "$ORDERSUM_PG_PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -tAc "$1"
}

# topology_folder NAME: $ORDERSUM_TOPOLOGY_DIR/NAME, made and owned by
# postgres, which must be able to reach it. The default is under $HOME, and
# root's home is 0700 on Debian: the postgres user (only it) is then given
# search permission (x, not read: it cannot list them) on the folders in the
# way, with an ACL (Debian's `acl` package, installed when missing).
topology_folder() {
  local dir="$ORDERSUM_TOPOLOGY_DIR/$1" path="" part parts
  mkdir -p "$dir" || return 1
  [[ "$(id -un)" == postgres ]] || chown postgres: "$dir" || return 1
  chmod 0700 "$dir"
  as_postgres test -w "$dir" && return 0
  # from / down, each folder the postgres user cannot pass
  IFS=/ read -ra parts <<<"${dir#/}"
  for part in "${parts[@]}"; do
    [[ -n "$part" ]] || continue
    path+="/$part"
    as_postgres test -x "$path" && continue
    if ! command -v setfacl >/dev/null; then
      log "installing Debian's acl (setfacl), to let the postgres user through $path"
      apt_install acl || return 1
    fi
    log "giving the postgres user search permission on $path (setfacl -m u:postgres:x)"
    setfacl -m u:postgres:x "$path" || return 1
  done
  as_postgres test -w "$dir" || { log "the postgres user cannot write $dir"; return 1; }
}

apt_install() { # apt_install PACKAGE...: as scripts/e2e.sh installs chromium
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$@" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}

# --- the replica

replica_dir() { echo "$ORDERSUM_TOPOLOGY_DIR/replica-$ORDERSUM_REPLICA_PORT"; }
replica_slot() { echo "ordersum_replica_$ORDERSUM_REPLICA_PORT"; }

# in recovery and streaming from the primary
replica_streaming() {
  [[ "$(psql_at "$ORDERSUM_REPLICA_PORT" "SELECT pg_is_in_recovery()
    AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')")" == t ]]
}

# The primary can have a replica: wal_level, a free WAL sender and slot, and
# a replication connection from 127.0.0.1 as postgres without a password.
primary_allows_replication() {
  local settings wal_level senders used_senders slots used_slots hba
  settings=$(primary_sql "SELECT current_setting('wal_level'), current_setting('max_wal_senders'),
      (SELECT count(*) FROM pg_stat_replication), current_setting('max_replication_slots'),
      (SELECT count(*) FROM pg_replication_slots)") || { log "cannot query the primary"; return 1; }
  IFS='|' read -r wal_level senders used_senders slots used_slots <<<"$settings"
  # replica is the default; minimal would need a restart of the shared primary,
  # which is not done here.
  [[ "$wal_level" == replica || "$wal_level" == logical ]] ||
    { log "the primary has wal_level=$wal_level: set it to replica and restart it"; return 1; }
  ((used_senders < senders)) || { log "the primary has no free WAL sender (max_wal_senders=$senders)"; return 1; }
  ((used_slots < slots)) || primary_sql "SELECT 1 FROM pg_replication_slots WHERE slot_name = '$(replica_slot)'" |
    grep -q 1 || { log "the primary has no free replication slot (max_replication_slots=$slots)"; return 1; }
  replication_connects && return 0
  # Debian's own pg_hba.conf allows replication from 127.0.0.1 with a password
  # only, and a trimmed one (as on this machine: `host all ...` does not cover
  # replication) not at all. The replica connects as the tests do: postgres,
  # trust, 127.0.0.1 only. First match wins, so the line goes first.
  hba=$(primary_sql "SHOW hba_file") || return 1
  [[ -w "$hba" ]] || { log "replication from 127.0.0.1 is refused and $hba is not writable: add 'host replication postgres 127.0.0.1/32 trust'"; return 1; }
  log "adding 'host replication postgres 127.0.0.1/32 trust' to $hba and reloading the primary"
  local tmp
  tmp=$(mktemp) || return 1
  hba_with_replication "$hba" >"$tmp" &&
    cat "$tmp" >"$hba" # in place: the file keeps its owner and mode
  rm -f "$tmp"
  primary_sql "SELECT pg_reload_conf()" >/dev/null || return 1
  wait_for 10 replication_connects || { log "replication from 127.0.0.1 still refused after the reload (see $hba)"; return 1; }
}

# hba_with_replication FILE: FILE with the trust line for replication from
# 127.0.0.1 before its first rule.
hba_with_replication() {
  awk 'function ours() {
         print "# ordersum (scripts/services.sh ensure_replica): the local test replica streams"
         print "# from 127.0.0.1 as postgres without a password, as the tests connect."
         print "host    replication     postgres        127.0.0.1/32            trust"
       }
       !done && /^[[:space:]]*[^#[:space:]]/ { ours(); done = 1 }
       { print }
       END { if (!done) ours() }' "$1"
}

replication_connects() {
  PGCONNECT_TIMEOUT=3 psql -X -w -q "host=$ORDERSUM_PG_HOST port=$ORDERSUM_PG_PORT user=postgres replication=true" \
    -c IDENTIFY_SYSTEM >/dev/null 2>&1
}

# The data folder can still follow the primary: same major version, same
# system (not a primary made anew since), standby.signal, and its slot on
# the primary with its WAL still there.
replica_reusable() {
  local data="$1" major="$2" bin="$3" ours theirs status
  [[ -f "$data/PG_VERSION" && "$(cat "$data/PG_VERSION")" == "$major" && -f "$data/standby.signal" ]] || return 1
  ours=$(LC_ALL=C "$bin/pg_controldata" "$data" 2>/dev/null | sed -n 's/^Database system identifier: *//p')
  theirs=$(primary_sql "SELECT system_identifier FROM pg_control_system()") || return 1
  [[ -n "$ours" && "$ours" == "$theirs" ]] || return 1
  status=$(primary_sql "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '$(replica_slot)'") || return 1
  [[ -n "$status" && "$status" != lost ]]
}

replica_start() { # replica_start BIN: start the server of the data folder
  local dir bin="$1"
  dir=$(replica_dir)
  # Port and addresses on the command line too: they win over anything in a
  # postgresql.auto.conf copied from the primary.
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $ORDERSUM_REPLICA_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null
}

replica_stop() { # replica_stop BIN: stop it if it runs
  local dir bin="$1"
  dir=$(replica_dir)
  [[ -f "$dir/data/postmaster.pid" ]] || return 0
  as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# Streaming, and replayed at least up to the primary's WAL position of now.
replica_caught_up() {
  local target="$1"
  replica_streaming &&
    [[ "$(psql_at "$ORDERSUM_REPLICA_PORT" "SELECT pg_last_wal_replay_lsn() >= '$target'::pg_lsn")" == t ]]
}
replica_wait() { # replica_wait SECONDS: streaming within 30 s, caught up within SECONDS
  local target
  target=$(primary_sql "SELECT pg_current_wal_lsn()") || return 1
  wait_for 30 replica_streaming && wait_for "$1" replica_caught_up "$target"
}

# Settings the standby must have at least as high as the primary (it refuses
# to start otherwise), and the session defaults it should share with it.
replica_conf() {
  local data="$1" name value
  {
    echo "# Written by scripts/services.sh (ensure_replica); made again with the replica."
    echo "port = $ORDERSUM_REPLICA_PORT"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = ''"
    echo "cluster_name = 'ordersum-replica-$ORDERSUM_REPLICA_PORT'"
    echo "hot_standby = on"
    # The primary keeps the rows the replica's queries still see (no
    # cancellation of a long export because VACUUM removed its rows); its
    # tables may bloat a little while an export runs.
    echo "hot_standby_feedback = on"
    # How long replay waits for a conflicting query (a lock an export holds
    # against a DROP or TRUNCATE, VACUUM truncating a table) before cancelling
    # it: Postgres' default, kept. Meanwhile replay stands still, and a worker
    # claims a job only once the replica has replayed up to its acceptance
    # (less ORDERSUM_MAX_REPLICA_LAG_SECONDS): longer would hold new jobs
    # back that long; shorter cancels more reads (the worker reads again).
    echo "max_standby_streaming_delay = 30s"
    # Replay positions reach the primary each second (pg_stat_replication).
    echo "wal_receiver_status_interval = 1s"
    echo "log_line_prefix = '%m [%p] %q%u@%d '"
    primary_sql "SELECT name, setting FROM pg_settings WHERE name IN ('max_connections',
        'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions',
        'max_locks_per_transaction', 'DateStyle', 'TimeZone', 'lc_messages', 'lc_monetary',
        'lc_numeric', 'lc_time', 'default_text_search_config', 'log_timezone') ORDER BY name" |
      while IFS='|' read -r name value; do printf "%s = '%s'\n" "$name" "${value//\'/\'\'}"; done
  } >"$data/postgresql.conf" || return 1
  # Debian keeps the primary's pg_hba.conf in /etc, so the copy has none.
  printf '# Written by scripts/services.sh (ensure_replica).\nhost all all 127.0.0.1/32 trust\n' >"$data/pg_hba.conf"
  : >"$data/pg_ident.conf"
  chown postgres: "$data/postgresql.conf" "$data/pg_hba.conf" "$data/pg_ident.conf" 2>/dev/null || true
}

replica_build() { # replica_build BIN: a fresh base backup, then start it
  local bin="$1" dir slot active
  dir=$(replica_dir) slot=$(replica_slot)
  replica_stop "$bin"
  active=$(primary_sql "SELECT active FROM pg_replication_slots WHERE slot_name = '$slot'") || return 1
  [[ "$active" != t ]] || { log "slot $slot is in use by another standby: not rebuilding over it"; return 1; }
  [[ -z "$active" ]] || primary_sql "SELECT pg_drop_replication_slot('$slot')" >/dev/null || return 1
  rm -rf "$dir/data"
  log "making the replica: pg_basebackup of 127.0.0.1:$ORDERSUM_PG_PORT into $dir/data (slot $slot)"
  # -R: standby.signal and primary_conninfo (+ primary_slot_name with -S);
  # -C -S: the slot is made with the backup, so no WAL is missed between them.
  as_postgres "$bin/pg_basebackup" -h "$ORDERSUM_PG_HOST" -p "$ORDERSUM_PG_PORT" -U postgres -w \
    -D "$dir/data" -R -C -S "$slot" -X stream -c fast >>"$dir/basebackup.log" 2>&1 ||
    { log "pg_basebackup failed; see $dir/basebackup.log"; return 1; }
  replica_conf "$dir/data" || return 1
  replica_start "$bin" || { log "the new replica did not start; see $dir/server.log"; return 1; }
}

ensure_replica() {
  topology_urls
  replica_streaming && return 0
  ensure_postgres || return 1
  local dir major bin
  dir=$(replica_dir)
  if psql_at "$ORDERSUM_REPLICA_PORT" "SELECT 1" >/dev/null && [[ ! -f "$dir/data/postmaster.pid" ]]; then
    log "something else answers on 127.0.0.1:$ORDERSUM_REPLICA_PORT and is not a streaming replica: set ORDERSUM_REPLICA_PORT"
    return 1
  fi
  major=$(primary_sql "SELECT current_setting('server_version_num')::int / 10000") || return 1
  bin="/usr/lib/postgresql/$major/bin"
  [[ -x "$bin/pg_basebackup" && -x "$bin/pg_ctl" ]] || { log "no Postgres $major binaries in $bin"; return 1; }
  primary_allows_replication || return 1
  topology_folder "replica-$ORDERSUM_REPLICA_PORT" || return 1
  if replica_reusable "$dir/data" "$major" "$bin"; then
    if replica_streaming; then
      :
    elif [[ -f "$dir/data/postmaster.pid" ]] && as_postgres "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      log "the replica on 127.0.0.1:$ORDERSUM_REPLICA_PORT runs but does not stream; waiting for it"
    else
      log "starting the replica on 127.0.0.1:$ORDERSUM_REPLICA_PORT ($dir/data)"
      replica_start "$bin" || log "it did not start; see $dir/server.log"
    fi
    # a replica that was down long replays the WAL kept for it first
    replica_wait 120 && return 0
    log "the replica does not catch up; making it anew"
  elif [[ -d "$dir/data" ]]; then
    log "the replica in $dir/data can no longer follow the primary (new primary, lost slot or WAL); making it anew"
  fi
  replica_build "$bin" || return 1
  replica_wait 120 || { log "the replica does not stream; see $dir/server.log"; return 1; }
}

# --- PgBouncer

pgbouncer_dir() { echo "$ORDERSUM_TOPOLOGY_DIR/pgbouncer-$ORDERSUM_PGBOUNCER_PORT"; }

# Up = a statement through it reaches the primary (whoever started it: one
# may already run there from elsewhere).
pgbouncer_up() { [[ "$(psql_at "$ORDERSUM_PGBOUNCER_PORT" "SELECT 1")" == 1 ]]; }

pgbouncer_ini() {
  local dir="$1"
  cat <<INI
;; Written by scripts/services.sh (ensure_pgbouncer): ordersum's test topology.
[databases]
;; every database of the primary, by its own name (each test's too)
* = host=$ORDERSUM_PG_HOST port=$ORDERSUM_PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $ORDERSUM_PGBOUNCER_PORT
;; TCP on 127.0.0.1 only
unix_socket_dir =
;; the tests' trust; a user must still be in auth_file
auth_type = trust
auth_file = $dir/users.txt
;; psql -h 127.0.0.1 -p $ORDERSUM_PGBOUNCER_PORT -U postgres pgbouncer -c 'SHOW POOLS'
admin_users = postgres
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
;; sqlx 0.9 sends DateStyle, client_encoding, TimeZone and application_name
;; (tracked by PgBouncer: application_name still reaches pg_stat_activity,
;; listing it here changes nothing), extra_float_digits=2 (not tracked:
;; ignored, the server's default of 1 is exact on Postgres 12+) and, only
;; when configured, options (ignored: its settings are dropped).
ignore_startup_parameters = extra_float_digits,application_name,options
;; Tests make a database each: close idle server connections and free the
;; pools of dropped databases soon, so they neither use up the primary's
;; max_connections nor hold a database a test wants to drop.
server_idle_timeout = 10
autodb_idle_timeout = 60
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
}

# Stop the PgBouncer started with this folder's ini (never another one).
pgbouncer_stop() {
  local dir pid
  dir=$(pgbouncer_dir)
  pid=$(cat "$dir/pgbouncer.pid" 2>/dev/null) || return 0
  if [[ -n "$pid" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/pgbouncer.ini"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true # a hung one holds the port
  fi
  rm -f "$dir/pgbouncer.pid"
}

ensure_pgbouncer() {
  topology_urls
  pgbouncer_up && return 0
  ensure_postgres || return 1
  if pg_isready -q -h 127.0.0.1 -p "$ORDERSUM_PGBOUNCER_PORT"; then
    log "something answers on 127.0.0.1:$ORDERSUM_PGBOUNCER_PORT but does not reach the primary's postgres database: set ORDERSUM_PGBOUNCER_PORT"
    return 1
  fi
  if ! command -v pgbouncer >/dev/null; then
    log "installing Debian's pgbouncer"
    # The package would start its own service (/etc/pgbouncer, port 6432):
    # policy-rc.d refuses, as deploy/check.sh does for prometheus.
    local policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=1
    fi
    local status=0
    apt_install pgbouncer || status=$?
    [[ -z "$policy" ]] || rm -f /usr/sbin/policy-rc.d
    ((status == 0)) || { log "apt-get install pgbouncer failed"; return 1; }
  fi
  topology_folder "pgbouncer-$ORDERSUM_PGBOUNCER_PORT" || return 1
  local dir
  dir=$(pgbouncer_dir)
  pgbouncer_stop
  pgbouncer_ini "$dir" >"$dir/pgbouncer.ini" && printf '"postgres" ""\n' >"$dir/users.txt" || return 1
  chown postgres: "$dir/pgbouncer.ini" "$dir/users.txt" 2>/dev/null || true
  log "starting PgBouncer on 127.0.0.1:$ORDERSUM_PGBOUNCER_PORT ($dir/pgbouncer.ini)"
  # -d: detaches, stdio closed. 1000 clients need more descriptors than
  # the usual 1024.
  (ulimit -n 4096 2>/dev/null; as_postgres pgbouncer -d -q "$dir/pgbouncer.ini") ||
    { log "PgBouncer did not start; see $dir/pgbouncer.log"; return 1; }
  wait_for 15 pgbouncer_up || { log "PgBouncer does not answer; see $dir/pgbouncer.log"; return 1; }
}

ensure_topology() {
  ensure_replica || return 1
  ensure_pgbouncer
}

# Stop what the topology dir's files started; topology-remove also drops the
# slot (the primary keeps no WAL for it any more) and deletes the files.
stop_topology() {
  local dir
  dir=$(replica_dir)
  [[ ! -f "$dir/data/PG_VERSION" ]] || replica_stop "/usr/lib/postgresql/$(cat "$dir/data/PG_VERSION")/bin"
  pgbouncer_stop
}

remove_topology() {
  stop_topology
  local slot
  slot=$(replica_slot)
  primary_sql "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
    WHERE slot_name = '$slot' AND NOT active" >/dev/null || log "could not drop slot $slot"
  rm -rf "$(replica_dir)" "$(pgbouncer_dir)"
}

# Run, not sourced: `bash scripts/services.sh topology` (as scripts/s3.sh start).
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  case "${1:-}" in
    topology) ensure_topology && topology_exports ;;
    topology-env) topology_exports ;;
    topology-stop) stop_topology ;;
    topology-remove) remove_topology ;;
    *) log "usage: $0 topology|topology-env|topology-stop|topology-remove"; exit 2 ;;
  esac
fi
