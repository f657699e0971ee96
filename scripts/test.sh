#!/usr/bin/env bash
# Sets up and runs every test of Leitstand; `./leitstand test` and .ci/run call this.
#
#  1. set-up and a -Werror build (build/), plus an ASan+UBSan build (build-asan/)
#  2. unit tests in both builds; interoperability tests against the official Threema SDK;
#     a quick run of the benchmarks; each libFuzzer target for a short while
#  3. a test stack (real Kafka + the two real Redis) on its own ports and folder, so a running
#     development system is not disturbed; system tests against it; the stack is stopped
#     afterwards whatever happened
#  4. the chaos suite's quick subset (tests/chaos/run.sh --quick, its own stack and network
#     namespace, about 3 minutes)
#  5. the stack script's own check (up twice, status, down leaves no process)
#  6. the deployment checks (tests/deploy/run.sh: docker-compose config, config tables, docs)
#
# Ends with one line "N passed, N failed" counting the suites above.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD=${LST_BUILD_DIR:-$ROOT/build}
ASAN_BUILD=$ROOT/build-asan
JOBS=$(nproc)
passed=0
failed=0
failures=""

step() { printf '\n=== %s\n' "$*"; }
record() {
    local name=$1 rc=$2
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures="$failures $name"
    fi
}

step "set-up and build (-Werror)"
LST_CMAKE_ARGS="-DLST_WERROR=ON ${LST_CMAKE_ARGS:-}" scripts/setup.sh --build-dir "$BUILD" || {
    echo "set-up or build failed"
    echo "0 passed, 1 failed"
    exit 1
}

step "formatting (.clang-format)"
unformatted=$(git ls-files '*.c' '*.h' 2>/dev/null | while read -r f; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || echo "$f"
done)
if [ -n "$unformatted" ]; then
    echo "clang-format would change:" $unformatted
    record format 1
else
    echo "all C sources formatted"
    record format 0
fi

step "ASan+UBSan build"
cmake -S . -B "$ASAN_BUILD" -G Ninja -DLST_WERROR=ON -DLST_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build "$ASAN_BUILD" -j "$JOBS"
rc=$?
record asan-build $rc

step "unit tests"
ctest --test-dir "$BUILD" -L unit --output-on-failure -j "$JOBS"
record unit $?

if [ $rc -eq 0 ]; then
    step "unit tests under ASan+UBSan"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --test-dir "$ASAN_BUILD" -L unit --output-on-failure -j "$JOBS"
    record unit-asan $?
fi

step "interoperability with the official Threema SDK (threema.gateway 8.0.0 from PyPI)"
ctest --test-dir "$BUILD" -L interop --output-on-failure
record interop $?

step "benchmark smoke run (figures printed, not judged)"
ctest --test-dir "$BUILD" -L bench --output-on-failure
record bench-smoke $?

step "fuzzing: each libFuzzer target for ${LST_FUZZ_SECONDS:-30} s (clang, ASan+UBSan)"
tests/fuzz/run.sh "$ROOT/build-fuzz" "${LST_FUZZ_SECONDS:-30}"
record fuzz $?

# The test stack: its own ports and folder.
export LST_STACK_DIR=$BUILD/test-stack
export LST_KAFKA_PORT=${LST_TEST_KAFKA_PORT:-29192}
export LST_KAFKA_CONTROLLER_PORT=${LST_TEST_KAFKA_CONTROLLER_PORT:-29193}
export LST_REDIS_PORT=${LST_TEST_REDIS_PORT:-26479}
export LST_SIM_PORT=${LST_TEST_SIM_PORT:-28190}
export LST_KAFKA_BROKERS=127.0.0.1:$LST_KAFKA_PORT
export LST_BUILD_DIR=$BUILD
# The test stack's projections Redis is given to stack.sh only, never exported: the system
# tests run their services on the one Redis of LST_REDIS_PORT, and those that start a stack of
# their own (gateway_in_outage.sh) would inherit this port, find it taken by the test stack and
# fail; without it stack.sh gives theirs the port after their LST_REDIS_PORT.
unset LST_PROJ_REDIS_PORT
TEST_PROJ_REDIS_PORT=${LST_TEST_PROJ_REDIS_PORT:-26480}
test_stack() { LST_PROJ_REDIS_PORT=$TEST_PROJ_REDIS_PORT scripts/stack.sh "$@"; }
trap 'test_stack down >/dev/null 2>&1 || true' EXIT

# Two test runs on one machine (a developer's and CI's) would share these ports, and one's
# "stack down" would stop the other's broker mid-test: the stack phase takes a lock per port
# set and waits for the other run instead (held until the stack script's own check is done;
# no command started meanwhile inherits the lock's descriptor, or a daemon would keep it).
exec 9>"${TMPDIR:-/tmp}/leitstand-test-ports-$LST_KAFKA_PORT.lock"
if ! flock -n 9; then
    echo "another test run holds the test ports (Kafka :$LST_KAFKA_PORT); waiting for it"
    flock 9
fi

step "test stack up (Kafka :$LST_KAFKA_PORT, Redis :$LST_REDIS_PORT and :$TEST_PROJ_REDIS_PORT)"
if test_stack up 9>&-; then
    record stack-up 0
    step "system tests"
    ctest --test-dir "$BUILD" -L system --output-on-failure 9>&-
    record system $?
else
    record stack-up 1
fi
step "test stack down"
test_stack down 9>&-
record stack-down $?
trap - EXIT

# The chaos suite's quick subset (tests/chaos/run.sh, docs/chaos.md): its own stack, ports and
# network namespace; started after the test stack is down so the two never compete for the
# two cores. run.sh fails itself when a process of its namespace outlives it.
step "chaos suite, quick subset (baseline, gateway-out/gateway-in/broker kills, Redis restart, projections' Redis lost)"
env -u LST_STACK_DIR -u LST_KAFKA_PORT -u LST_KAFKA_CONTROLLER_PORT -u LST_REDIS_PORT \
    -u LST_PROJ_REDIS_PORT -u LST_SIM_PORT -u LST_KAFKA_BROKERS LST_BUILD_DIR="$BUILD" \
    tests/chaos/run.sh --quick 9>&-
record chaos $?

step "stack script check (alternate ports, up twice, down leaves nothing)"
tests/system/stack_check.sh 9>&-
record stack-check $?
exec 9>&- # the test ports are free for another run

step "deployment checks (compose config, config tables, generated docs, units)"
tests/deploy/run.sh "$BUILD"
record deploy $?

printf '\n=== summary\n'
[ -n "$failures" ] && echo "failed suites:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
