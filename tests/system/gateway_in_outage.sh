#!/usr/bin/env bash
# Runs gateway_in_outage (Kafka stopped and started under a running gateway-in) against a stack
# of its own: a fresh folder under the build dir and ports of its own, so the test stack the
# other system tests use is never disturbed. The stack is taken down whatever happens.
#
# usage: gateway_in_outage.sh BUILD_DIR TEST_BINARY
# Environment: GWIN_OUTAGE_KAFKA_PORT [29392], GWIN_OUTAGE_CONTROLLER_PORT [29393],
# GWIN_OUTAGE_REDIS_PORT [26679], GWIN_OUTAGE_SIM_PORT [28390], GWIN_OUTAGE_RETRY_MS [10000: the Gateway's 3 retries, 5 min apart, scaled to 10 s so a slow broker restart (14 s seen) still lands].
set -uo pipefail
BUILD=${1:?usage: gateway_in_outage.sh BUILD_DIR TEST_BINARY}
TEST=${2:?usage: gateway_in_outage.sh BUILD_DIR TEST_BINARY}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

export LST_BUILD_DIR=$BUILD
export LST_KAFKA_PORT=${GWIN_OUTAGE_KAFKA_PORT:-29392}
export LST_KAFKA_CONTROLLER_PORT=${GWIN_OUTAGE_CONTROLLER_PORT:-29393}
export LST_REDIS_PORT=${GWIN_OUTAGE_REDIS_PORT:-26679}
export LST_SIM_PORT=${GWIN_OUTAGE_SIM_PORT:-28390}
export LST_KAFKA_BROKERS=127.0.0.1:$LST_KAFKA_PORT
export LST_TOPIC_PREFIX=""
# Enough simulator workers that callbacks held up by the 503s do not queue behind each other.
export LST_SIM_CALLBACK_WORKERS=16
mkdir -p "$BUILD"
export LST_STACK_DIR
LST_STACK_DIR=$(mktemp -d "$BUILD/gwin-outage-stack.XXXXXX")

cleanup() {
    "$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true
    rm -rf "$LST_STACK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$ROOT/scripts/stack.sh" up >"$LST_STACK_DIR.up.log" 2>&1; then
    cat "$LST_STACK_DIR.up.log" >&2
    echo "gateway_in_outage: the stack did not come up"
    exit 1
fi
rm -f "$LST_STACK_DIR.up.log"
"$TEST"
