#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan, -DLST_FUZZ=ON) in BUILD_DIR and runs
# each for SECONDS, starting from the seed corpus in tests/fuzz/corpus/<target>/. New corpus
# entries go to BUILD_DIR/fuzz-corpus/<target>/, crashes to BUILD_DIR/fuzz-artifacts/.
# Exits non-zero when any target finds a crash, leak, timeout or sanitizer report.
#
#   tests/fuzz/run.sh build-fuzz 20
set -euo pipefail

if [[ $# -ne 2 || ! $2 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
seconds=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
targets=(fuzz_callback fuzz_container fuzz_records)

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DLST_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" --target "${targets[@]}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
passed=0
failed=0
for t in "${targets[@]}"; do
    corpus="$build/fuzz-corpus/$t"
    artifacts="$build/fuzz-artifacts/$t/"
    mkdir -p "$corpus" "$artifacts"
    log="$build/fuzz-$t.log"
    echo "== $t for ${seconds}s (log: $log)"
    # -max_total_time bounds the run, -rss_limit_mb the memory, -timeout a single input.
    if "$build/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -max_len=8192 -artifact_prefix="$artifacts" -print_final_stats=1 \
        "$corpus" "$src/tests/fuzz/corpus/$t" >"$log" 2>&1; then
        passed=$((passed + 1))
        grep -E '^stat::number_of_executed_units|^Done' "$log" | tr '\n' ' ' || true
        echo
    else
        failed=$((failed + 1))
        echo "FAIL $t: see $log and $artifacts" >&2
        tail -n 40 "$log" >&2
    fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
