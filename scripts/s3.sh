#!/usr/bin/env bash
# A local S3-compatible server for the tests and the demo: s3s-fs from
# crates.io (it checks SigV4 signatures and presigned URLs, and does multipart
# uploads, as AWS and UCloud US3 do), installed with cargo on first use.
#
#   scripts/s3.sh start   install if missing, start if down, create the bucket,
#                         print the `export` lines a client needs
#   scripts/s3.sh env     print the exports only
#   scripts/s3.sh stop    stop the server this script started
#
# Use: eval "$(scripts/s3.sh start)". Settings: S3_PORT (9000), S3_BUCKET
# (order-summaries), S3_ACCESS_KEY / S3_SECRET_KEY (minioadmin), S3_REGION
# (us-east-1), S3_STATE_DIR (./.s3-local: data, pid file, log).
set -euo pipefail

S3_PORT="${S3_PORT:-9000}"
S3_BUCKET="${S3_BUCKET:-order-summaries}"
S3_ACCESS_KEY="${S3_ACCESS_KEY:-minioadmin}"
S3_SECRET_KEY="${S3_SECRET_KEY:-minioadmin}"
S3_REGION="${S3_REGION:-us-east-1}"
S3_STATE_DIR="${S3_STATE_DIR:-$PWD/.s3-local}"
# 0.15 and later need a newer rustc than this project's.
S3S_FS_VERSION=0.14.1

ENDPOINT="http://127.0.0.1:$S3_PORT"
PID_FILE="$S3_STATE_DIR/s3s-fs.pid"
LOG_FILE="$S3_STATE_DIR/s3s-fs.log"

say() { printf 's3.sh: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

exports() {
  printf 'export S3_ENDPOINT=%q S3_BUCKET=%q AWS_REGION=%q\n' "$ENDPOINT" "$S3_BUCKET" "$S3_REGION"
  printf 'export AWS_ACCESS_KEY_ID=%q AWS_SECRET_ACCESS_KEY=%q\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
}

# A SigV4-signed request with curl; prints the HTTP status.
signed() {
  curl -s --max-time 10 -o /dev/null -w '%{http_code}' \
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@" || true
}

answers() { [[ "$(signed "$ENDPOINT/")" == 200 ]]; }

binary() {
  local bin="${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"
  [[ -x "$bin" ]] && { echo "$bin"; return; }
  command -v s3s-fs
}

install() {
  command -v cargo >/dev/null || fail "cargo not found: install Rust first"
  say "installing s3s-fs $S3S_FS_VERSION with cargo (first use only; 2-4 minutes)"
  cargo install s3s-fs --version "=$S3S_FS_VERSION" --features binary --locked >&2 \
    || fail "cargo install s3s-fs failed"
}

# An s3s-fs started from an earlier clone that has since been deleted (CI
# checks out each run in a new folder) still answers, but from a data
# directory that is gone: stop it, so a fresh one starts here.
stop_orphaned_server() {
  local pid args
  for pid in $(pgrep -x s3s-fs || true); do
    mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || continue
    ((${#args[@]} > 0)) || continue
    [[ " ${args[*]} " == *" --port $S3_PORT "* ]] || continue
    # Its data directory, or the folder it was started from, deleted (the
    # path may exist again: a new clone in the same place).
    [[ ! -d "${args[-1]}" || "$(readlink "/proc/$pid/cwd")" == *" (deleted)" ]] || continue
    say "stopping s3s-fs (pid $pid): the folder it serves from is gone"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
}

start() {
  command -v curl >/dev/null || fail "curl not found"
  mkdir -p "$S3_STATE_DIR/data"
  stop_orphaned_server
  if answers; then
    say "an S3 server with these keys already answers on $ENDPOINT"
  else
    local bin
    bin=$(binary) || { install; bin=$(binary) || fail "s3s-fs not found after install"; }
    say "starting s3s-fs on $ENDPOINT (log: $LOG_FILE)"
    # setsid + closed stdio: the server outlives this shell and holds no pipe
    # of the caller's open (a `$(...)` would otherwise never end).
    (
      for fd in /proc/self/fd/*; do
        fd=${fd##*/}
        if [[ $fd =~ ^[0-9]+$ && $fd -gt 2 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
      done
      exec setsid "$bin" --host 127.0.0.1 --port "$S3_PORT" \
        --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" \
        "$S3_STATE_DIR/data" </dev/null >>"$LOG_FILE" 2>&1
    ) &
    echo $! >"$PID_FILE"
    for _ in $(seq 300); do
      answers && break
      kill -0 "$(cat "$PID_FILE")" 2>/dev/null || fail "s3s-fs exited; see $LOG_FILE"
      sleep 0.1
    done
    answers || fail "s3s-fs did not answer within 30 s; see $LOG_FILE"
  fi
  case "$(signed -I "$ENDPOINT/$S3_BUCKET")" in
    200) ;;
    404) [[ "$(signed -X PUT "$ENDPOINT/$S3_BUCKET")" =~ ^(200|409)$ ]] \
           || fail "could not create bucket $S3_BUCKET" ;;
    *) fail "bucket $S3_BUCKET: unexpected answer" ;;
  esac
  exports
}

stop() {
  [[ -f "$PID_FILE" ]] || { say "not started by this script"; return 0; }
  kill "$(cat "$PID_FILE")" 2>/dev/null || true
  rm -f "$PID_FILE"
}

case "${1:-start}" in
  start) start ;;
  env) exports ;;
  stop) stop ;;
  *) fail "usage: $0 [start|env|stop]" ;;
esac
