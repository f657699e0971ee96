#!/usr/bin/env bash
# gateway-in benchmark: accepted callbacks/s (MAC, decrypt, Kafka acknowledged), p50/p99 and
# peak RSS, side by side with the official SDK's callback application (threema.gateway 8.0.0 in
# the interop venv) decrypting the same callbacks. Prints figures; not a pass/fail test.
#
#   bench/gateway_in/run.sh BUILD_DIR [--callbacks N] [--senders N] [--conns N (256)] [--no-sdk]
#   LST_HTTP_EVENT_THREADS=0 bench/gateway_in/run.sh ...   gateway-in in thread-per-connection
#                                                          mode (event mode is the default)
#
# Brings up a stack of its own (Kafka, Redis, simulator; folder BUILD_DIR/bench-gwin-stack.*,
# ports GWIN_BENCH_*_PORT or 29492/29493/26779/28490) and takes it down afterwards.
# GWIN_BENCH_BIN=PATH benchmarks another gateway-in binary (a before/after comparison).
set -uo pipefail
BUILD=${1:?usage: run.sh BUILD_DIR [options]}
shift
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
BIN=$BUILD/bench/gateway_in/bench_gateway_in
[ -x "$BIN" ] || { echo "bench: $BIN not built (cmake --build $BUILD)"; exit 1; }

SDK=1
ARGS=()
for a in "$@"; do
    if [ "$a" = --no-sdk ]; then SDK=0; else ARGS+=("$a"); fi
done
if [ $SDK = 1 ]; then
    PY=$("$ROOT/tests/interop/setup_venv.sh" "$BUILD") || { echo "bench: venv set-up failed"; exit 1; }
    ARGS+=(--sdk "$PY")
fi

export LST_BUILD_DIR=$BUILD
export LST_KAFKA_PORT=${GWIN_BENCH_KAFKA_PORT:-29492}
export LST_KAFKA_CONTROLLER_PORT=${GWIN_BENCH_CONTROLLER_PORT:-29493}
export LST_REDIS_PORT=${GWIN_BENCH_REDIS_PORT:-26779}
export LST_SIM_PORT=${GWIN_BENCH_SIM_PORT:-28490}
export LST_KAFKA_BROKERS=127.0.0.1:$LST_KAFKA_PORT
export LST_TOPIC_PREFIX=""
export LST_STACK_DIR
LST_STACK_DIR=$(mktemp -d "$BUILD/bench-gwin-stack.XXXXXX")
export GWIN_BIN=${GWIN_BENCH_BIN:-$BUILD/services/gateway-in/gateway-in} GWIN_ADMIN=$BUILD/tools/lst-admin/lst-admin
export LST_SOURCE_DIR=$ROOT GWIN_WORK=$LST_STACK_DIR/work GWIN_SDK_APP=$HERE/sdk_callback_app.py
cleanup() {
    "$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true
    rm -rf "$LST_STACK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$ROOT/scripts/stack.sh" up >"$LST_STACK_DIR/up.log" 2>&1 || {
    cat "$LST_STACK_DIR/up.log"
    echo "bench: the stack did not come up"
    exit 1
}
# gateway-in inherits the environment: LST_HTTP_EVENT_THREADS=N selects its event mode. Its
# connection limit leaves room for the warm-up's connections that are still being closed
# when the measured run opens its own (the limit is not what is measured here).
export LST_HTTP_MAX_CONNECTIONS=${LST_HTTP_MAX_CONNECTIONS:-1024}
echo "bench: gateway-in LST_HTTP_EVENT_THREADS=${LST_HTTP_EVENT_THREADS:-2 (the default)} (0: thread per connection)"
"$BIN" "${ARGS[@]}"
