#!/usr/bin/env bash
# Every source file under crates/ (Rust and the console's JavaScript) stays
# within 400 lines: a file past it does more than one thing.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=400
over=$(find crates -path '*/target' -prune -o \( -name '*.rs' -o -name '*.js' \) -type f -print0 |
  xargs -0 wc -l | awk -v limit="$limit" '$2 != "total" && $1 > limit { print "  " $2 ": " $1 " lines" }')
if [[ -n "$over" ]]; then
  echo "check-size: files over $limit lines:" >&2
  echo "$over" >&2
  exit 1
fi
echo "check-size: every file under crates/ within $limit lines: ok"
