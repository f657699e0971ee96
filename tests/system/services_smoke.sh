#!/usr/bin/env bash
# Every service binary: --help from its config table, clear start-up errors, health, readiness
# and metrics endpoints against the real stack, readiness failing when Redis is unreachable,
# and a clean exit (status 0) on SIGTERM.
#
# Needs a running stack (scripts/stack.sh up); reads LST_KAFKA_BROKERS and LST_REDIS_PORT.
# usage: services_smoke.sh BUILD_DIR
set -uo pipefail
BUILD=${1:?usage: services_smoke.sh BUILD_DIR}
SERVICES="gateway-out gateway-in ledger view-api"
BASE_PORT=${SMOKE_BASE_PORT:-28180}
WORK=$(mktemp -d "$BUILD/smoke.XXXXXX")
passed=0
failed=0
pids=()
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The Gateway account the services need: the demo-only one, against the test stack's simulator.
export LST_GATEWAY_URL=http://127.0.0.1:${LST_SIM_PORT:-18090}
export LST_GATEWAY_ID='*LSTDEMO'
export LST_GATEWAY_SECRET_FILE=$SRC/demo/DEMO-ONLY-gateway.secret
export LST_PRIVATE_KEY_FILE=$SRC/demo/DEMO-ONLY-gateway.private.key
export LST_BLOB_DIR=$WORK/blobs

cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

check() {
    local what=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $what" >&2
    fi
}

# Polls until url answers with the expected status, at most 20 s.
wait_status() {
    local url=$1 want=$2 deadline=$((SECONDS + 20)) got
    while [ $SECONDS -lt $deadline ]; do
        got=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "$url")
        [ "$got" = "$want" ] && return 0
        sleep 0.2
    done
    echo "  $url answered $got, wanted $want" >&2
    return 1
}

contains() { grep -q -- "$2" "$1"; }

# Sends SIGTERM and expects exit status 0 within 15 s.
stops_cleanly() {
    local pid=$1 deadline=$((SECONDS + 15))
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "  pid $pid still running 15 s after SIGTERM" >&2
        return 1
    fi
    wait "$pid"
}

port=$BASE_PORT
for svc in $SERVICES; do
    bin=$BUILD/services/$svc/$svc
    out=$WORK/$svc
    check "$svc binary exists" test -x "$bin"

    "$bin" --help >"$out.help" 2>&1
    check "$svc --help exits 0" test $? -eq 0
    check "$svc --help lists its settings" contains "$out.help" LST_HTTP_PORT
    check "$svc --help lists the common settings" contains "$out.help" LST_KAFKA_BROKERS

    "$bin" --no-such-flag >"$out.bad" 2>&1
    check "$svc rejects an unknown argument with 2" test $? -eq 2
    LST_HTTP_PORT=70000 LST_REDIS_TIMEOUT_MS=x "$bin" >"$out.cfg" 2>&1
    check "$svc rejects a bad config with 2" test $? -eq 2
    check "$svc names every bad variable" \
        bash -c "grep -q 'LST_HTTP_PORT: 70000 is out of range' '$out.cfg' && grep -q LST_REDIS_TIMEOUT_MS '$out.cfg'"

    LST_HTTP_PORT=$port "$bin" >"$out.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    url=http://127.0.0.1:$port
    check "$svc /healthz 200" wait_status "$url/healthz" 200
    check "$svc /readyz 200 with Kafka and Redis up" wait_status "$url/readyz" 200
    curl -s -D "$out.mh" -o "$out.metrics" "$url/metrics"
    check "$svc /metrics is Prometheus text" contains "$out.mh" "text/plain; version=0.0.4"
    check "$svc /metrics has its gauges" contains "$out.metrics" "# TYPE lst_service_up gauge"
    check "$svc /metrics counts requests" contains "$out.metrics" 'lst_http_requests_total{route="/healthz"'
    curl -s -D "$out.nh" -o "$out.nf" "$url/no/such/route"
    check "$svc unknown route is a problem+json 404" \
        bash -c "grep -q 'application/problem+json' '$out.nh' && grep -q '\"status\":404' '$out.nf'"
    check "$svc logs JSON lines" bash -c "head -n 1 '$out.log' | python3 -c 'import json,sys; json.loads(sys.stdin.readline())'"
    check "$svc stops cleanly on SIGTERM" stops_cleanly "$pid"
    port=$((port + 1))

    # Readiness must say no when Redis is not there (nothing listens on port 1 of loopback).
    LST_HTTP_PORT=$port LST_REDIS_PORT=1 LST_REDIS_TIMEOUT_MS=200 "$bin" >"$out.log2" 2>&1 &
    pid=$!
    pids+=("$pid")
    check "$svc /healthz 200 without Redis" wait_status "http://127.0.0.1:$port/healthz" 200
    check "$svc /readyz 503 without Redis" wait_status "http://127.0.0.1:$port/readyz" 503
    curl -s "http://127.0.0.1:$port/readyz" >"$out.ready"
    check "$svc /readyz names Redis" contains "$out.ready" redis
    check "$svc stops cleanly without Redis" stops_cleanly "$pid"
    port=$((port + 1))
done

# The view API keeps its idempotency keys in a Redis of their own where one is configured:
# sends need it, so readiness follows it too.
bin=$BUILD/services/view-api/view-api
out=$WORK/view-api-state
LST_HTTP_PORT=$port LST_VIEW_STATE_REDIS_HOST=127.0.0.1 LST_VIEW_STATE_REDIS_PORT=${LST_REDIS_PORT:-16379} \
    "$bin" >"$out.log" 2>&1 &
pid=$!
pids+=("$pid")
check "view-api /readyz 200 with its state Redis up" wait_status "http://127.0.0.1:$port/readyz" 200
check "view-api stops cleanly with its state Redis" stops_cleanly "$pid"
port=$((port + 1))
LST_HTTP_PORT=$port LST_VIEW_STATE_REDIS_HOST=127.0.0.1 LST_VIEW_STATE_REDIS_PORT=1 LST_REDIS_TIMEOUT_MS=200 \
    "$bin" >"$out.log2" 2>&1 &
pid=$!
pids+=("$pid")
check "view-api /healthz 200 without its state Redis" wait_status "http://127.0.0.1:$port/healthz" 200
check "view-api /readyz 503 without its state Redis" wait_status "http://127.0.0.1:$port/readyz" 503
curl -s "http://127.0.0.1:$port/readyz" >"$out.ready"
check "view-api /readyz names the idempotency keys' Redis" contains "$out.ready" "idempotency keys"
check "view-api stops cleanly without its state Redis" stops_cleanly "$pid"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
