#!/usr/bin/env bash
# The image and the compose stack on a real Docker engine (run by CI):
#
#   1. a Docker engine: installed from Debian (docker.io, docker-compose) when
#      absent and started with no bridge network (dockerd --bridge=none
#      --iptables=false): every container uses the host network and all
#      traffic stays on 127.0.0.1;
#   2. the runtime base image: no registry is reachable here, so a Debian
#      bookworm rootfs is made with debootstrap and `docker import`ed (the
#      rootfs is cached in ~/.cache/ordersum/docker);
#   3. the image: deploy/Dockerfile's `runtime` stage, the one that ships.
#      No Rust toolchain image can be pulled here either, so the builder
#      stage is not run: the three binaries are built on the host (release,
#      same Debian release as the runtime base) and handed to the Dockerfile
#      through its BINARIES build argument (BuildKit builds only the stages
#      the target needs);
#   4. compose: deploy/compose.yaml with deploy/compose.host.yaml (the host's
#      Postgres, Redis and S3 server): the one-shot migrate, the API and three
#      workers, read-only root filesystems;
#   5. a real summary with `ordersum summary` from the host (UCloud-signed
#      calls, the workbook downloaded from its presigned S3 URL);
#   6. a large summary: the worker that claims it is stopped mid-job with
#      `docker stop` (SIGTERM); it hands the job back and another worker
#      finishes it; the stopped worker exits 0 within its grace;
#   7. each worker's Prometheus metrics scraped;
#   8. clean-up: containers, volumes, images, the test database, and the
#      engine if this script started it.
#
# Settings: ORDERSUM_PG_URL (postgres://postgres@127.0.0.1:5432),
# REDIS_URL (redis://127.0.0.1:6379), ORDERSUM_DOCKER_BIG_ORDERS (600000),
# ORDERSUM_TEST_API_PORT (18080).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
started_at=$SECONDS

cache="$HOME/.cache/ordersum/docker"
run_id="$(date +%s)-$$"
project="ordersumtest$$"
api_container="$project-api"
tag="test-$run_id"
image="ordersum:$tag"
binaries_image="ordersum-test-binaries:$tag"
base_image="ordersum-test-base:bookworm-$run_id"
db="ordersum_docker_$$"
pg_server="${ORDERSUM_PG_URL:-postgres://postgres@127.0.0.1:5432}"
big_orders="${ORDERSUM_DOCKER_BIG_ORDERS:-600000}"
work="$(mktemp -d)"
dockerd_pid=""

step() { log "[$((SECONDS - started_at)) s] $*"; }
fail() { log "FAILED: $*"; exit 1; }

# --- 1. the engine --------------------------------------------------------
# A `docker` without buildx (the newer CLIs) cannot use BuildKit; Debian's
# docker.io client can.
pick_docker() {
  if docker buildx version >/dev/null 2>&1; then
    DOCKER=(docker); BUILD=(docker buildx build --load)
  elif [[ -x /usr/bin/docker ]]; then
    DOCKER=(/usr/bin/docker); BUILD=(env DOCKER_BUILDKIT=1 /usr/bin/docker build)
  else
    return 1
  fi
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
  else
    return 1
  fi
}
engine_up() { "${DOCKER[@]}" info >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null || ! pick_docker || ! command -v debootstrap >/dev/null; then
  step "installing docker.io, docker-compose and debootstrap from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io docker-compose debootstrap >/dev/null
  pick_docker || fail "no docker client with BuildKit, or no compose"
fi
if ! engine_up; then
  step "starting dockerd (no bridge network, no iptables)"
  mkdir -p "$cache"
  dockerd --bridge=none --iptables=false >"$cache/dockerd.log" 2>&1 &
  dockerd_pid=$!
  wait_for 60 engine_up || fail "dockerd did not start (see $cache/dockerd.log)"
fi

cleanup() {
  local rc=$?
  set +e
  if ((rc != 0)) && [[ -n "${COMPOSE_FILES:-}" ]]; then
    log "logs of the stack:"
    compose logs --no-color --tail 40 >&2
  fi
  if [[ -n "${COMPOSE_FILES:-}" ]]; then
    ((rc != 0)) && "${DOCKER[@]}" logs --tail 40 "$api_container" >&2
    "${DOCKER[@]}" rm -f -v "$api_container" >/dev/null 2>&1
    compose down -v --remove-orphans >/dev/null 2>&1
  fi
  "${DOCKER[@]}" image rm -f "$image" "$binaries_image" "$base_image" >/dev/null 2>&1
  psql "$pg_server/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
  [[ -n "${bg_pid:-}" ]] && kill "$bg_pid" 2>/dev/null
  rm -rf "$work"
  if [[ -n "$dockerd_pid" ]]; then
    kill "$dockerd_pid"; wait "$dockerd_pid"
  fi
  exit "$rc"
}
trap cleanup EXIT

# --- 2. the base image ----------------------------------------------------
rootfs_tar="$cache/debian-bookworm-minbase.tar"
if [[ ! -s "$rootfs_tar" ]]; then
  step "debootstrap: a Debian bookworm rootfs (first run only)"
  mkdir -p "$cache"
  rm -rf "$cache/rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$cache/rootfs" \
    http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
    fail "debootstrap failed (see $cache/debootstrap.log)"
  tar -C "$cache/rootfs" -cf "$rootfs_tar.part" . && mv "$rootfs_tar.part" "$rootfs_tar"
  rm -rf "$cache/rootfs"
fi
"${DOCKER[@]}" import - "$base_image" <"$rootfs_tar" >/dev/null

# --- 3. the image -----------------------------------------------------------
step "building the binaries on the host (release; no Rust image can be pulled here)"
cargo build --release --locked -q -p ordersum-api -p ordersum-worker -p ordersum-cli
bin="${CARGO_TARGET_DIR:-target}/release"
mkdir -p "$work/binaries"
cp "$bin/ordersum-api" "$bin/ordersum-worker" "$bin/ordersum" "$work/binaries/"
printf 'FROM scratch\nCOPY . /out/\n' >"$work/binaries.Dockerfile"
"${BUILD[@]}" -q -t "$binaries_image" -f "$work/binaries.Dockerfile" "$work/binaries" >/dev/null

step "building $image: deploy/Dockerfile, target runtime"
"${BUILD[@]}" -q --network host --target runtime \
  --build-arg RUNTIME_IMAGE="$base_image" --build-arg BINARIES="$binaries_image" \
  -t "$image" -f deploy/Dockerfile . >/dev/null
size=$("${DOCKER[@]}" image inspect -f '{{.Size}}' "$image")
user=$("${DOCKER[@]}" image inspect -f '{{.Config.User}}' "$image")
base_size=$("${DOCKER[@]}" image inspect -f '{{.Size}}' "$base_image")
step "image $image: $((size / 1024 / 1024)) MiB ($(((size - base_size) / 1024 / 1024)) MiB over the debootstrap base), user $user; layers:"
"${DOCKER[@]}" history --format '{{.Size}}	{{.CreatedBy}}' "$image" | cut -c1-110 >&2
[[ "$user" == 10001:10001 ]] || fail "the image runs as '$user', not 10001:10001"
"${DOCKER[@]}" run --rm --read-only --network none "$image" \
  sh -c 'ordersum --version && ordersum-api --version && ordersum-worker --version' ||
  fail "the binaries do not run in the image"

# --- 4. compose -------------------------------------------------------------
ensure_services
ensure_s3
psql "$pg_server/postgres" -qc "CREATE DATABASE \"$db\""
export DATABASE_URL="$pg_server/$db"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export ORDERSUM_QUEUE="$project:summary-jobs"
export ORDERSUM_STORAGE="s3://$S3_BUCKET/$project?endpoint=$S3_ENDPOINT&region=$AWS_REGION&path_style=true"
export S3_ACCESS_KEY="$AWS_ACCESS_KEY_ID" S3_SECRET_KEY="$AWS_SECRET_ACCESS_KEY"
export ORDERSUM_IMAGE="$image"
export ORDERSUM_API_PORT="${ORDERSUM_TEST_API_PORT:-18080}"
export ORDERSUM_API_URL="http://127.0.0.1:$ORDERSUM_API_PORT/"
# Short, so that the stopped worker hands its job back rather than finishing it.
export ORDERSUM_SHUTDOWN_GRACE_SECONDS=1
export ORDERSUM_URL_SECRET
ORDERSUM_URL_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
COMPOSE_FILES=(-f deploy/compose.yaml -f deploy/compose.host.yaml)
compose() { "${COMPOSE[@]}" -p "$project" "${COMPOSE_FILES[@]}" "$@"; }

step "compose: one-shot migrate"
compose run --rm --no-deps migrate >/dev/null
step "compose: the API and three workers"
# The API through `run`, which publishes no ports: compose.yaml publishes 8080,
# which a host-network container cannot (compose v1 refuses the pair).

compose run -d --no-deps --name "$api_container" api >/dev/null
compose up -d --no-deps --no-build --scale worker=3 worker
api_ready() { curl -fsS -o /dev/null "${ORDERSUM_API_URL}readyz"; }
wait_for 60 api_ready || fail "the API did not become ready"
mapfile -t workers < <(compose ps -q worker)
((${#workers[@]} == 3)) || fail "expected 3 worker containers, got ${#workers[@]}"
for c in "${workers[@]}"; do
  [[ "$("${DOCKER[@]}" inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$c")" == true ]] ||
    fail "worker $c has a writable root filesystem"
done

# The id a worker container runs as and the port of its metrics, from its log.
# (Logs are read whole, never through an early-closing pipe: under pipefail
# `docker logs | grep -q` fails when grep stops reading.)
container_log() { "${DOCKER[@]}" logs "$1" 2>&1; }
log_field() { # log_field CONTAINER MESSAGE FIELD
  local lines
  lines=$(container_log "$1")
  grep -F "\"message\":\"$2\"" <<<"$lines" | sed -n "s/.*\"$3\":\"\\([^\"]*\\)\".*/\\1/p" |
    awk 'NR == 1'
}
declare -A worker_id metrics_addr
for c in "${workers[@]}"; do
  wait_for 30 test -n "$(log_field "$c" "serving metrics on /metrics" addr)" ||
    fail "worker $c did not log its metrics address"
  metrics_addr[$c]=$(log_field "$c" "serving metrics on /metrics" addr)
  worker_id[$c]=$(log_field "$c" "ordersum-worker started" worker)
  [[ -n "${worker_id[$c]}" ]] || fail "worker $c did not log its id"
done
step "workers: $(for c in "${workers[@]}"; do printf '%s (%s) ' "${worker_id[$c]}" "${metrics_addr[$c]}"; done)"

# --- 5. a real summary --------------------------------------------------------
cli="$bin/ordersum"
# What a summary of the whole window holds: the seeded paid and unpaid orders
# (`ordersum seed` prints "... (paid P, unpaid U, revoked R) ..."; revoked
# orders are in no sheet).
seed() { # seed COMPANY ORDERS: seeds, prints paid + unpaid
  "$cli" seed --company "$1" --orders "$2" --days 30 |
    sed -n 's/.*(paid \([0-9]*\), unpaid \([0-9]*\),.*/\1 + \2/p' | { read -r sum; echo $((sum)); }
}
small_rows=$(seed 1 20000)
eval "$("$cli" keys create --company 1)"
export ORDERSUM_PUBLIC_KEY ORDERSUM_PRIVATE_KEY
start=$(date -u -d '40 days ago' +%F) end=$(date -u -d tomorrow +%F)
step "summary of company 1 ($small_rows orders) with ordersum summary"
file=$("$cli" summary --start "$start" --end "$end" --output "$work/small.xlsx")
[[ "$(head -c 2 "$file")" == PK ]] || fail "$file is not a workbook"
rows() { # rows JOB_FILTER: paid+unpaid rows of the newest matching job
  psql "$DATABASE_URL" -tAc "SELECT paid_rows + unpaid_rows FROM summary_jobs WHERE $1 ORDER BY created_at DESC LIMIT 1"
}
got=$(rows "company_id = 1 AND status = 'succeeded'")
[[ "$got" == "$small_rows" ]] || fail "the summary holds $got orders, not the $small_rows seeded"
step "downloaded $(stat -c %s "$file") bytes from the presigned URL"

# --- 6. a worker stopped mid-job ------------------------------------------------
big_rows=$(seed 2 "$big_orders")
eval "$("$cli" keys create --company 2)"
export ORDERSUM_PUBLIC_KEY ORDERSUM_PRIVATE_KEY
step "summary of company 2 ($big_rows orders); its worker will be stopped"
"$cli" summary --start "$start" --end "$end" --output "$work/big.xlsx" >"$work/big.out" 2>"$work/big.err" &
bg_pid=$!
job_sql="SELECT id || ' ' || worker_id || ' ' || paid_rows + unpaid_rows FROM summary_jobs
         WHERE company_id = 2 AND status = 'running' AND paid_rows + unpaid_rows > 0"
running() { [[ -n "$(psql "$DATABASE_URL" -tAc "$job_sql")" ]]; }
wait_for 60 running || fail "the large summary never ran"
read -r job_id first_worker progress < <(psql "$DATABASE_URL" -tAc "$job_sql")
victim=""
for c in "${workers[@]}"; do [[ "${worker_id[$c]}" == "$first_worker" ]] && victim=$c; done
[[ -n "$victim" ]] || fail "job $job_id runs on $first_worker, not on a container of this stack"
sample() { # sample SERIES: its value on the metrics page on stdin
  awk -v s="$1" '$1 == s { print $2 }'
}
victim_metrics=$(curl -fsS "http://${metrics_addr[$victim]}/metrics")
in_flight=$(sample ordersum_worker_jobs_in_flight <<<"$victim_metrics")
[[ "$in_flight" == 1 ]] || fail "the working worker reports $in_flight jobs in flight"
succeeded=$(sample ordersum_worker_jobs_succeeded_total <<<"$victim_metrics")
step "job $job_id on $first_worker at $progress rows: docker stop"
stop_started=$SECONDS
"${DOCKER[@]}" stop -t 30 "$victim" >/dev/null
stop_took=$((SECONDS - stop_started))
exit_code=$("${DOCKER[@]}" inspect -f '{{.State.ExitCode}}' "$victim")
[[ "$exit_code" == 0 ]] || fail "the stopped worker exited with $exit_code (137: killed after the grace)"
grep -q "job handed back" <<<"$(container_log "$victim")" || fail "the stopped worker did not hand its job back"
step "stopped in ${stop_took} s, exit 0, job handed back"
wait "$bg_pid" || { cat "$work/big.err" >&2; fail "the large summary did not complete"; }
bg_pid=""
read -r status attempts last_worker total < <(psql "$DATABASE_URL" -tA -F ' ' -c \
  "SELECT status, attempts, worker_id, paid_rows + unpaid_rows FROM summary_jobs WHERE id = '$job_id'")
[[ "$status" == succeeded ]] || fail "job $job_id is $status"
[[ "$last_worker" != "$first_worker" ]] || fail "job $job_id was finished by the stopped worker"
((attempts >= 2)) || fail "job $job_id took $attempts attempt(s); the hand-back was not seen"
[[ "$total" == "$big_rows" ]] || fail "job $job_id wrote $total rows, not the $big_rows seeded"
[[ "$(head -c 2 "$work/big.xlsx")" == PK ]] || fail "the large summary is not a workbook"
step "job $job_id finished on $last_worker (attempt $attempts, $total rows, $(stat -c %s "$work/big.xlsx") bytes)"

# --- 7. metrics -------------------------------------------------------------------
# Runs counted by the workers (the stopped one as scraped before the stop) add
# up to the two summaries, and every worker's fleet gauges see both succeeded
# (read each sweep interval, 10 s).
both_seen() { [[ "$(sample 'ordersum_worker_jobs{status="succeeded"}' <<<"$metrics")" == 2 ]]; }
for c in "${workers[@]}"; do
  [[ "$c" == "$victim" ]] && continue
  deadline=$((SECONDS + 20))
  while metrics=$(curl -fsS "http://${metrics_addr[$c]}/metrics") || fail "worker ${worker_id[$c]} serves no metrics"
    ! both_seen && ((SECONDS < deadline)); do
    sleep 0.5
  done
  both_seen || fail "worker ${worker_id[$c]} does not see the 2 succeeded jobs"
  for name in ordersum_worker_jobs_started_total ordersum_worker_jobs_handed_back_total \
    ordersum_worker_rows_written_total ordersum_worker_queue_depth ordersum_worker_heartbeat_age_seconds; do
    grep -q "^$name[ {]" <<<"$metrics" || fail "worker ${worker_id[$c]} has no $name"
  done
  n=$(sample ordersum_worker_jobs_succeeded_total <<<"$metrics")
  step "metrics of ${worker_id[$c]}: runs started $(sample ordersum_worker_jobs_started_total <<<"$metrics"), succeeded $n, queue depth $(sample ordersum_worker_queue_depth <<<"$metrics")"
  succeeded=$((succeeded + n))
done
((succeeded == 2)) || fail "the workers count $succeeded succeeded runs, not 2"

step "container test passed"
