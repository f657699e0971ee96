#!/usr/bin/env bash
# gateway-out throughput, side by side with the official Python SDK (threema.gateway 8.0.0).
#
#   bench/gateway_out/run.sh BUILD_DIR [N]        (N text sends, default 20000)
#
# Needs Kafka and Redis (scripts/stack.sh up; LST_KAFKA_BROKERS [127.0.0.1:19092],
# LST_REDIS_PORT [16379]) and the SDK's venv (tests/interop/setup_venv.sh, created on first
# use, needs PyPI). Starts its own simulator on a free port (no callbacks, phones do not
# decrypt, no faults, no rate limit), then:
#   1. produces N text requests to <prefix>lst.outbound (not timed),
#   2. starts ONE gateway-out worker (BENCH_CONCURRENCY lanes [32], shared rate limit off
#      unless BENCH_RATE is set) and times the published outcomes: "steady" from the N/10-th
#      to the N-th (past the start-up: key fetches, the consumer's first fetches), "whole run"
#      from the first; CPU per send is taken over the steady window. watch.py polls the
#      worker's /metrics from one process (a shell loop of curl, awk and date cost a tenth of
#      the cores it was measuring),
#   3. the SDK sends N messages to the same simulator with its async API at the same
#      concurrency (the recipients' public keys given, as gateway-out has them cached), timed
#      over the same two windows of its completions,
#   4. prints both rates, the ratio, gateway-out's peak RSS (VmHWM), the CPU time gateway-out
#      and the simulator spent per send during the timed window, and the load average.
# BENCH_GATEWAY_OUT=PATH runs another gateway-out binary (before/after comparisons);
# BENCH_SDK_CONCURRENCY sets the SDK's concurrency apart [BENCH_CONCURRENCY].
# BENCH_BULK=true sends through send_e2e_bulk (LST_GATEWAY_OUT_BULK; BENCH_BULK_MAX [100],
# BENCH_BULK_LINGER_MS [2]). The SDK has no bulk send; it always sends one message a call.
# Unless BENCH_BULK=true or BENCH_BULK_LINE=false, a second worker then sends N more requests
# with send_e2e_bulk (BENCH_BULK_CONCURRENCY lanes [128]), printed as a separate line with its
# own ratio: the headline ratio is always the one-message-per-call send, like the SDK's.
# BENCH_SDK=false skips the SDK (quick before/after comparisons of gateway-out alone).
# gateway-out inherits the environment: LST_GATEWAY_OUT_EVENT_LOOP=false benchmarks one
# blocking thread per lane instead of the event loop (the default).
# BENCH_KEEP_LOG=FILE keeps gateway-out's outcome and cache counters of the (last) run there.
# BENCH_SIM_EVENT_THREADS [2]: the simulator's LST_SIM_EVENT_THREADS. The simulator stands in
# for the Gateway, whose CPU is not on this machine; in event mode it costs the shared cores
# less per request (both gateway-out and the SDK send to it). 0: a thread per connection.
# Not a pass/fail test; figures depend on the machine (everything shares its cores).
set -uo pipefail
BUILD=$(cd "${1:?usage: bench/gateway_out/run.sh BUILD_DIR [N]}" && pwd)
N=${2:-20000}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export LST_KAFKA_BROKERS=${LST_KAFKA_BROKERS:-127.0.0.1:19092}
export LST_REDIS_PORT=${LST_REDIS_PORT:-16379}
CONC=${BENCH_CONCURRENCY:-32}
RATE=${BENCH_RATE:-0}
BULK=${BENCH_BULK:-false}
BULK_MAX=${BENCH_BULK_MAX:-100}
BULK_LINGER=${BENCH_BULK_LINGER_MS:-2}
RUN="bench-gwout-$(date +%s)-$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_gateway_out.XXXXXX")
SIM_PID="" GW_PID=""
PREFIXES=() # the runs' topic prefixes, deleted on exit

cleanup() {
    [ -z "$GW_PID" ] || { kill -TERM "$GW_PID" 2>/dev/null; wait "$GW_PID" 2>/dev/null; }
    [ -z "$SIM_PID" ] || { kill -TERM "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; }
    for p in "${PREFIXES[@]}"; do
        "$BUILD/tools/lst-admin/lst-admin" delete-topics --brokers "$LST_KAFKA_BROKERS" \
            --file "$SRC/proto/topics.tsv" --prefix "$p" >/dev/null 2>&1
    done
    redis-cli -p "$LST_REDIS_PORT" --scan --pattern "lst:$RUN:*" 2>/dev/null |
        xargs -r -n 500 redis-cli -p "$LST_REDIS_PORT" DEL >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
die() { echo "bench: $*" >&2; exit 1; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_url() {
    for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done
    return 1
}
metric() {
    curl -sf -m 5 "http://127.0.0.1:$GW_PORT/metrics" |
        awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { printf "%d\n", s }'
}

PY=$("$SRC/tests/interop/setup_venv.sh" "$BUILD") || die "SDK venv set-up failed"

SIM_PORT=$(free_port)
LST_LOG_LEVEL=warn LST_SIM_PORT=$SIM_PORT LST_SIM_DIRECTORY="$SRC/demo/erp-export.csv" \
    LST_SIM_MAX_CONNECTIONS=512 LST_SIM_JOURNAL_CAPACITY=1000 \
    LST_SIM_EVENT_THREADS="${BENCH_SIM_EVENT_THREADS:-2}" \
    "$BUILD/tools/threema-sim/threema-sim" 2>"$WORK/sim.log" &
SIM_PID=$!
wait_url "http://127.0.0.1:$SIM_PORT/healthz" || die "simulator did not start"
curl -sf "http://127.0.0.1:$SIM_PORT/_sim/users" >"$WORK/users.json"
# BENCH_ADDRESS=phone addresses the drivers by the phone number of the ERP export, as the view
# API does for drivers without a Threema ID (most of the demo directory), instead of by ID.
python3 - "$WORK/users.json" "$SRC/demo/erp-export.csv" "${BENCH_ADDRESS:-id}" \
    >"$WORK/rcpt.tsv" <<'PY'
import csv, json, sys
phones = {r["employee_no"]: r["phone"] for r in csv.DictReader(open(sys.argv[2]))}
for u in json.load(open(sys.argv[1])):
    if sys.argv[3] == "phone":
        if u["hasPhone"] and phones.get(u["employeeNo"]):
            print(f"E{u['employeeNo']}\t-\t{phones[u['employeeNo']]}\t-")
    else:
        print(f"E{u['employeeNo']}\t{u['identity']}\t-\t-")
PY

# run_gateway_out TAG BULK LANES: produces N requests to a fresh prefix, runs ONE worker on them and
# times the first to the N-th published outcome (group join and start-up excluded). Sets
# GW_RATE, GW_US, SIM_US, LOAD, ACCEPTED, HWM.
run_gateway_out() {
    local tag=$1 bulk=$2 lanes=$3 prefix="b.$RUN.$1."
    PREFIXES+=("$prefix")
    "$BUILD/tools/lst-admin/lst-admin" create-topics --brokers "$LST_KAFKA_BROKERS" \
        --file "$SRC/proto/topics.tsv" --prefix "$prefix" >/dev/null 2>&1 || die "topics"
    "$BUILD/tests/system/gateway_out/gateway_out_driver" produce "${prefix}lst.outbound" \
        "$WORK/rcpt.tsv" --count "$N" --address "${BENCH_ADDRESS:-id}" >/dev/null ||
        die "producing requests failed"
    GW_PORT=$(free_port)
    env LST_LOG_LEVEL=warn LST_TOPIC_PREFIX="$prefix" LST_HTTP_PORT="$GW_PORT" \
        LST_GATEWAY_URL="http://127.0.0.1:$SIM_PORT" LST_GATEWAY_ID='*LSTDEMO' \
        LST_GATEWAY_SECRET_FILE="$SRC/demo/DEMO-ONLY-gateway.secret" \
        LST_PRIVATE_KEY_FILE="$SRC/demo/DEMO-ONLY-gateway.private.key" \
        LST_GATEWAY_OUT_GROUP="$RUN-$tag" LST_GATEWAY_OUT_KEY_PREFIX="lst:$RUN:$tag:" \
        LST_GATEWAY_OUT_CONCURRENCY="$lanes" LST_GATEWAY_OUT_RATE_LIMIT="$RATE" \
        LST_GATEWAY_OUT_BULK="$bulk" LST_GATEWAY_OUT_BULK_MAX="$BULK_MAX" \
        LST_GATEWAY_OUT_BULK_LINGER_MS="$BULK_LINGER" \
        LST_BLOB_DIR="$WORK/blobs" "${BENCH_GATEWAY_OUT:-$BUILD/services/gateway-out/gateway-out}" \
        2>"$WORK/gw-$tag.log" &
    GW_PID=$!
    wait_url "http://127.0.0.1:$GW_PORT/healthz" || die "gateway-out did not start"
    local times
    times=$(python3 "$SRC/bench/gateway_out/watch.py" "http://127.0.0.1:$GW_PORT/metrics" "$N" \
        "$GW_PID" "$SIM_PID" 600) || die "gateway-out ($tag) did not finish"
    eval "$times" # GW_RATE_ALL GW_RATE GW_US SIM_US
    LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
    ACCEPTED=$(metric 'lst_gateway_out_outcomes_total{outcome="accepted"')
    HWM=$(awk '/VmHWM/ {print $2, $3}' "/proc/$GW_PID/status")
    LOOP_PATHS="$(metric 'lst_gateway_out_loop_jobs_total{path="loop"') by the event loop, $(metric 'lst_gateway_out_loop_jobs_total{path="thread"') on lane threads"
    [ -z "${BENCH_KEEP_LOG:-}" ] || curl -sf "http://127.0.0.1:$GW_PORT/metrics" | grep -E "outcomes_total|cache_total" >"$BENCH_KEEP_LOG"
    kill -TERM "$GW_PID"
    wait "$GW_PID"
    GW_PID=""
}

run_gateway_out one "$BULK" "$CONC"
ONE_RATE=$GW_RATE ONE_RATE_ALL=$GW_RATE_ALL ONE_US=$GW_US ONE_SIM_US=$SIM_US ONE_LOAD=$LOAD
ONE_ACC=$ACCEPTED ONE_HWM=$HWM
ONE_PATHS=$LOOP_PATHS
if [ "$BULK" != true ] && [ "${BENCH_BULK_LINE:-true}" = true ]; then
    run_gateway_out bulk true "${BENCH_BULK_CONCURRENCY:-128}"
    BULK_RATE=$GW_RATE BULK_RATE_ALL=$GW_RATE_ALL
    printf -v BULK_LINE '%s sends/s steady, %s whole run (%s accepted), CPU per send gateway-out %s us, simulator %s us' \
        "$GW_RATE" "$GW_RATE_ALL" "$ACCEPTED" "$GW_US" "$SIM_US"
fi

if [ "${BENCH_SDK:-true}" = false ]; then
    printf 'gateway-out %s sends/s steady, %s whole run (%s accepted; %s), CPU per send gateway-out %s us, simulator %s us (SDK skipped)\n' \
        "$ONE_RATE" "$ONE_RATE_ALL" "$ONE_ACC" "$ONE_PATHS" "$ONE_US" "$ONE_SIM_US"
    [ -z "${BULK_LINE:-}" ] || echo "gateway-out with send_e2e_bulk: $BULK_LINE"
    exit 0
fi
python3 - "$WORK/users.json" >"$WORK/rcpt.json" <<'PY'
import json, sys
print(json.dumps([{"identity": u["identity"], "publicKey": u["publicKey"]}
                  for u in json.load(open(sys.argv[1]))]))
PY
SDK_JSON=$("$PY" "$SRC/bench/gateway_out/sdk_send.py" "http://127.0.0.1:$SIM_PORT" \
    "$(cat "$SRC/demo/DEMO-ONLY-gateway.secret")" "$SRC/demo/DEMO-ONLY-gateway.private.key" \
    "$WORK/rcpt.json" "$N" "${BENCH_SDK_CONCURRENCY:-$CONC}") || die "SDK run failed"
SDK_RATE=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['per_second'])" "$SDK_JSON")
SDK_RATE_ALL=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['per_second_all'])" "$SDK_JSON")

echo "gateway-out benchmark: $N text sends, concurrency $CONC (SDK ${BENCH_SDK_CONCURRENCY:-$CONC}), one worker, $(nproc) cores"
echo "  rates: steady = from the tenth of the sends to the last; whole run = from the first"
printf '  gateway-out (Kafka -> Gateway sim -> lst.sent):  %10s sends/s steady, %s whole run  (%s accepted, rate limit %s, bulk %s)\n' \
    "$ONE_RATE" "$ONE_RATE_ALL" "$ONE_ACC" "$([ "$RATE" = 0 ] && echo off || echo "$RATE/s")" \
    "$([ "$BULK" = true ] && echo "on, max $BULK_MAX, linger $BULK_LINGER ms" || echo off)"
printf '  CPU per send during it: gateway-out %s us, simulator %s us; load average %s\n' \
    "$ONE_US" "$ONE_SIM_US" "$ONE_LOAD"
printf '  requests finished: %s\n' "$ONE_PATHS"
printf '  official SDK (async, same simulator):            %10s sends/s steady, %s whole run  %s\n' \
    "$SDK_RATE" "$SDK_RATE_ALL" "$SDK_JSON"
printf '  ratio: %sx steady, %sx whole run\n' "$(python3 -c "print(round($ONE_RATE / $SDK_RATE, 2))")" \
    "$(python3 -c "print(round($ONE_RATE_ALL / $SDK_RATE_ALL, 2))")"
printf '  gateway-out peak RSS (VmHWM): %s\n' "$ONE_HWM"
if [ -n "${BULK_LINE:-}" ]; then
    echo "  second figure: gateway-out with send_e2e_bulk (${BENCH_BULK_CONCURRENCY:-128} lanes, max $BULK_MAX, linger $BULK_LINGER ms;"
    echo "    up to $BULK_MAX messages per Gateway call, which the SDK has no equivalent of): $BULK_LINE"
    printf '  ratio with send_e2e_bulk (the option against the SDK at its best, one message a call): %sx steady, %sx whole run\n' \
        "$(python3 -c "print(round($BULK_RATE / $SDK_RATE, 2))")" \
        "$(python3 -c "print(round($BULK_RATE_ALL / $SDK_RATE_ALL, 2))")"
fi
