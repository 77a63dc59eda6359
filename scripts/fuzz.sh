#!/usr/bin/env bash
# Fuzzes ordersum's parsers with cargo-fuzz (libFuzzer): the wire parsers
# (`params`), UCloud signatures (`signature`) and request validation
# (`request`), each for FUZZ_SECONDS (default 60). Exits non-zero when a
# target crashes; the input that did it is in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh                     # every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh request
#
# Needs only the repository and crates.io: cargo-fuzz is installed when
# missing. The stable toolchain runs it with RUSTC_BOOTSTRAP=1 (cargo-fuzz
# passes nightly -Z flags); FUZZ_SANITIZER=none turns AddressSanitizer off;
# FUZZ_TARGET_DIR builds outside the clone (fuzz/target by default), so
# later runs on the same machine are incremental.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-address}
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(params signature request)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (a few minutes)" >&2
    cargo install cargo-fuzz --locked --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1

failed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$root/fuzz/corpus/$target"
    log="$root/fuzz/artifacts/$target.log"
    mkdir -p "$corpus" "$root/fuzz/artifacts"
    dirs=("$corpus")
    if [ -d "$root/fuzz/seeds/$target" ]; then
        dirs+=("$root/fuzz/seeds/$target")
    fi
    echo "== fuzz $target for ${seconds}s (sanitizer: $sanitizer)" >&2
    status=0
    cargo fuzz run --sanitizer "$sanitizer" ${FUZZ_TARGET_DIR:+--target-dir "$FUZZ_TARGET_DIR"} \
        "$target" "${dirs[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>&1 | tee "$log" >&2 || status=$?
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1 || true)
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        summary+=("$target: FAILED (exit $status) after ${runs:-?} runs; see $log and fuzz/artifacts/$target/")
    else
        summary+=("$target: ok, ${runs:-?} runs in ${seconds}s")
    fi
done

printf 'fuzz %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
