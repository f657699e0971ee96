#!/usr/bin/env bash
# The chaos suite (issue 7): one stack (Kafka, Redis with AOF, the Gateway simulator) started
# once, inside a network namespace of its own when `ip netns` works; per scenario the services
# under tests/chaos/supervise (two gateway-out workers, gateway-in), a workload with a history,
# faults injected in phases (steady, fault, heal, recovery) and a verdict from check.py.
#
#   tests/chaos/run.sh [--quick] [SCENARIO...]
#
# Scenarios: baseline gwout-kill gwin-kill broker-kill redis-restart (= --quick, also the
# default). One JSON verdict line per scenario ("verdict {...}"), then "N passed, N failed".
#
# Environment: LST_BUILD_DIR [build] (services, lst-admin, simulator, the test drivers),
# CHAOS_DIR [<build>/chaos] (stack, histories, tools), CHAOS_NETNS=0 to stay in the host
# network, CHAOS_KEEP=1 to keep the histories of passing scenarios.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${LST_BUILD_DIR:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CHAOS_DIR=${CHAOS_DIR:-$BUILD/chaos}
HERE=$ROOT/tests/chaos

QUICK="baseline gwout-kill gwin-kill broker-kill redis-restart"
args=()
for a in "$@"; do
    case "$a" in
    --quick) ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) args+=("$a") ;;
    esac
done
SCENARIOS=${args[*]:-$QUICK}

# ---- network namespace: re-run this script inside one, so later network faults (nftables)
# touch nothing else. Fallback: the host network with the suite's own ports.
if [ -z "${CHAOS_IN_NS:-}" ] && [ "${CHAOS_NETNS:-1}" = 1 ]; then
    NS=lstchaos$$
    if ip netns add "$NS" 2>/dev/null; then
        ip netns exec "$NS" ip link set lo up
        # librdkafka resolves with AI_ADDRCONFIG, which fails ("Name or service not known",
        # even for 127.0.0.1) when the namespace has loopback addresses only: one more,
        # non-loopback address on lo (reachable from nowhere) makes glibc answer.
        ip netns exec "$NS" ip addr add 10.255.255.1/32 dev lo
        CHAOS_IN_NS=$NS ip netns exec "$NS" bash "$0" "$@"
        rc=$?
        ip netns del "$NS" 2>/dev/null
        exit $rc
    fi
    echo "chaos: 'ip netns add' is not permitted here; running in the host network on the" \
        "suite's own ports (network-fault scenarios unavailable)"
fi

KAFKA_PORT=39092
export LST_STACK_DIR=$CHAOS_DIR/stack LST_BUILD_DIR=$BUILD
export LST_KAFKA_PORT=$KAFKA_PORT LST_KAFKA_CONTROLLER_PORT=39093 LST_REDIS_PORT=36379
export LST_SIM_PORT=38090 LST_KAFKA_LIBS=${LST_KAFKA_LIBS:-$ROOT/.stack/kafka/libs}
export LST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
# The simulator: callback retries shortened from 3 x 5 min to 3 x 10 s; quick phones.
export LST_SIM_CALLBACK_RETRIES=3 LST_SIM_CALLBACK_RETRY_INTERVAL_MS=10000
export LST_SIM_JOURNAL_CAPACITY=500000 LST_SIM_RECEIVED_DELAY_MS=200 LST_SIM_READ_DELAY_MS=600
export LST_SIM_CALLBACK_TIMEOUT_MS=5000 LST_LOG_LEVEL=warn
SIM=http://127.0.0.1:$LST_SIM_PORT
REDIS=(redis-cli -h 127.0.0.1 -p "$LST_REDIS_PORT")
ADMIN=$BUILD/tools/lst-admin/lst-admin
DRIVER=$BUILD/tests/system/gateway_out/gateway_out_driver
TOOLS=$CHAOS_DIR/bin
W=4                 # lanes per gateway-out worker (the duplicate bound is kills x W)
ACK_TIMEOUT_MS=3000 # gateway-in's deadline for Kafka's ack (then 503)
RUN_ID=$(date +%s)
PASSED=0
FAILED=0
SUP_PID=""

log() { printf 'chaos: %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }

build_tools() {
    mkdir -p "$TOOLS"
    local p
    for p in supervise chaos_cb; do
        if [ ! -x "$TOOLS/$p" ] || [ "$HERE/$p.c" -nt "$TOOLS/$p" ] ||
            [ "$BUILD/lib/liblst.a" -nt "$TOOLS/$p" ]; then
            cc -std=c11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I"$ROOT/lib/include" \
                -I"$ROOT/tests/system" "$HERE/$p.c" -o "$TOOLS/$p" "$BUILD/lib/liblst.a" \
                -lrdkafka -lhiredis -ljson-c -lsodium -lcurl -lmicrohttpd -lpthread -lm ||
                return 1
        fi
    done
    [ -x "$DRIVER" ] || { log "missing $DRIVER (build the tests first)"; return 1; }
}

stack() { "$ROOT/scripts/stack.sh" "$@"; }

# wait_for SECONDS COMMAND...: polls every 0.2 s until the command succeeds.
wait_for() {
    local end=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

sim_post() { curl -sf -m 10 -X POST -H 'Content-Type: application/json' -d "$2" "$SIM$1"; }
healthy() { curl -sf -m 2 "http://127.0.0.1:$1/healthz"; }
pid_of() { cat "$S/state/$1.pid" 2>/dev/null; }
kafka_ready() { "$ADMIN" wait-ready --brokers "$LST_KAFKA_BROKERS" --timeout-ms 2000; }

# Dumps a topic from the start: "kafka_ts_ms TAB value" per record.
dump() {
    timeout 60 kcat -b "$LST_KAFKA_BROKERS" -C -t "$1" -o beginning -e -q -f '%T\t%s\n' \
        2>/dev/null
}

outcomes_done() { # all requests have an lst.sent record
    dump "${PREFIX}lst.sent" | cut -f2 | python3 -c '
import json, sys
ids = {json.loads(l).get("request_id") for l in sys.stdin if l.strip()}
want = {l.split()[0] for l in open(sys.argv[1]) if l.strip()}
sys.exit(0 if want <= ids else 1)' "$S/requests.tsv"
}

callbacks_idle() {
    curl -sf -m 5 "$SIM/_sim/stats" | python3 -c '
import json, sys
c = json.load(sys.stdin)["callbacks"]
sys.exit(0 if c.get("queued", 1) == 0 and c.get("inFlight", 1) == 0 else 1)'
}

# ---- the services of one scenario under the supervisor -----------------------------------

write_spec() {
    local common="LST_TOPIC_PREFIX=$PREFIX LST_REDIS_DB=$DB LST_REDIS_PORT=$LST_REDIS_PORT \
LST_KAFKA_BROKERS=$LST_KAFKA_BROKERS LST_KAFKA_SESSION_TIMEOUT_MS=6000 LST_LOG_LEVEL=info \
LST_GATEWAY_URL=$SIM 'LST_GATEWAY_ID=*LSTDEMO' LST_GATEWAY_SECRET_FILE=$ROOT/demo/DEMO-ONLY-gateway.secret \
LST_PRIVATE_KEY_FILE=$ROOT/demo/DEMO-ONLY-gateway.private.key LST_BLOB_DIR=$S/blobs \
LST_GATEWAY_TIMEOUT_MS=3000 LST_SHUTDOWN_TIMEOUT_MS=5000"
    local gwout="LST_GATEWAY_OUT_GROUP=chaos-$NAME-$RUN_ID LST_GATEWAY_OUT_CONCURRENCY=$W \
LST_GATEWAY_OUT_RATE_LIMIT=0 LST_GATEWAY_OUT_BACKOFF_MIN_MS=50 LST_GATEWAY_OUT_BACKOFF_MAX_MS=1000 \
LST_GATEWAY_OUT_REVOKE_TIMEOUT_MS=3000"
    # The pending marker of a callback killed mid-way must expire within the Gateway's retry
    # window (3 x 10 s here), or every retry of it is answered 503 and the callback dropped.
    local gwin="LST_CALLBACK_ACK_TIMEOUT_MS=$ACK_TIMEOUT_MS LST_DEDUPE_PENDING_TTL_MS=5000"
    {
        printf 'gateway-out-1\t%s %s LST_HTTP_PORT=40081 %s\n' "$common" "$gwout" \
            "$BUILD/services/gateway-out/gateway-out"
        printf 'gateway-out-2\t%s %s LST_HTTP_PORT=40082 %s\n' "$common" "$gwout" \
            "$BUILD/services/gateway-out/gateway-out"
        printf 'gateway-in\t%s %s LST_HTTP_PORT=40083 %s\n' "$common" "$gwin" \
            "$BUILD/services/gateway-in/gateway-in"
    } >"$S/services.spec"
}

assigned() { # both workers hold partitions of lst.outbound
    local w
    for w in gateway-out-1 gateway-out-2; do
        grep '"kafka.consumer.assigned"' "$S/state/$w.log" | tail -1 | grep -qv '"0 partitions"' ||
            return 1
    done
}

start_services() {
    mkdir -p "$S/state" "$S/blobs"
    write_spec
    "$TOOLS/supervise" "$S/state" "$S/services.spec" &
    SUP_PID=$!
    wait_for 30 healthy 40081 && wait_for 30 healthy 40082 && wait_for 30 healthy 40083 &&
        wait_for 40 assigned
}

stop_services() {
    [ -n "$SUP_PID" ] || return 0
    kill -TERM "$SUP_PID" 2>/dev/null
    wait "$SUP_PID" 2>/dev/null
    SUP_PID=""
}

# ---- the workload --------------------------------------------------------------------------

recipients() {
    curl -sf -m 10 "$SIM/_sim/users" | python3 -c '
import json, random, sys
users = json.load(sys.stdin)
random.seed(7)
random.shuffle(users)
with open(sys.argv[1], "w") as r, open(sys.argv[2], "w") as off:
    for u in users[:120]:
        r.write("%s\t%s\t-\t-\n" % (u["employeeNo"], u["identity"]))
        if not u["readReceipts"]:
            off.write(u["identity"] + "\n")' "$S/rcpt.tsv" "$S/read_off.txt"
}

# produce_load SECONDS CHUNK: CHUNK requests every 200 ms; every 10th chunk asks the phones
# for no delivery receipts. Appends "request_id produce_ms" to requests.tsv.
produce_load() {
    local end=$((SECONDS + $1)) i=0 t extra
    while [ $SECONDS -lt "$end" ]; do
        t=$(now_ms)
        extra=()
        [ $((i % 10)) -eq 9 ] && extra=(--no-receipts)
        shuf -n "$2" "$S/rcpt.tsv" >"$S/chunk.tsv"
        "$DRIVER" produce "${PREFIX}lst.outbound" "$S/chunk.tsv" "${extra[@]}" 2>>"$S/driver.err" |
            while read -r id; do
                printf '%s\t%s\n' "$id" "$t" >>"$S/requests.tsv"
                [ ${#extra[@]} -eq 0 ] || printf '%s\n' "$id" >>"$S/no_receipts.txt"
            done
        i=$((i + 1))
        sleep 0.2
    done
}

# The callback storm: hand-made receipts (read before received, each posted twice) for
# random message IDs from the workload's recipients, PAIRS of them at RATE per second.
callback_storm() {
    python3 -c '
import random, sys
ids = [l.split("\t")[1] for l in open(sys.argv[1]) if l.strip()]
for i in range(int(sys.argv[2])):
    print(random.choice(ids), "%016x" % random.getrandbits(64))' "$S/rcpt.tsv" "$1" >"$S/pairs.txt"
    "$TOOLS/chaos_cb" "$ROOT" "$SIM" "http://127.0.0.1:40083/threema/callback" "$S/pairs.txt" \
        "$S/callbacks.tsv" "$2" 3 10000 >"$S/chaos_cb.out" 2>&1
}

# ---- faults ----------------------------------------------------------------------------------

FAULT_LOG=""
fault_note() { printf '%s %s\n' "$(now_ms)" "$*" >>"$S/faults.log"; }

# kill_service NAME: SIGKILL through the supervisor's pid file, wait until it is back.
kill_service() {
    local pid
    pid=$(pid_of "$1")
    [ -n "$pid" ] && [ -e "/proc/$pid" ] || { fault_note "no-pid $1"; return 1; }
    kill -KILL "$pid"
    fault_note "killed $1 $pid"
    wait_for 30 sh -c "[ \"\$(cat '$S/state/$1.pid')\" != $pid ]" &&
        wait_for 30 healthy "$2"
    fault_note "back $1"
}

fault_gwout_kill() {
    sleep 4; kill_service gateway-out-1 40081
    sleep 4; kill_service gateway-out-2 40082
    sleep 4; kill_service gateway-out-1 40081
    echo "$(now_ms)" >"$S/heal_ms"
}

fault_gwin_kill() {
    local i
    for i in 1 2 3; do sleep 4; kill_service gateway-in 40083; done
    echo "$(now_ms)" >"$S/heal_ms"
}

fault_broker_kill() {
    sleep 5
    local pid
    pid=$(cat "$LST_STACK_DIR/kafka/kafka.pid")
    kill -KILL "$pid" && fault_note "killed kafka $pid"
    wait_for 10 sh -c "[ ! -e /proc/$pid ] || grep -q '^[^ ]* [^ ]* Z' /proc/$pid/stat"
    sleep 3
    stack restart-kafka >>"$S/stack.log" 2>&1
    fault_note "back kafka"
    echo "$(now_ms)" >"$S/heal_ms"
}

fault_redis_restart() {
    sleep 5
    local pid
    pid=$(cat "$LST_STACK_DIR/redis/redis.pid")
    kill -KILL "$pid" && fault_note "killed redis $pid"
    sleep 3
    stack restart-redis >>"$S/stack.log" 2>&1
    fault_note "back redis"
    echo "$(now_ms)" >"$S/heal_ms"
}

# ---- one scenario ----------------------------------------------------------------------------

scenario() {
    NAME=$1
    DB=$2
    local fault=$3 t0 dur
    t0=$(now_ms)
    S=$CHAOS_DIR/runs/$RUN_ID/$NAME
    PREFIX="chaos.$RUN_ID.$NAME."
    rm -rf "$S"
    mkdir -p "$S"
    : >"$S/requests.tsv"
    : >"$S/no_receipts.txt"
    : >"$S/faults.log"
    log "scenario $NAME (topics $PREFIX*, Redis db $DB)"
    "${REDIS[@]}" -n "$DB" FLUSHDB >/dev/null
    "$ADMIN" create-topics --brokers "$LST_KAFKA_BROKERS" --file "$ROOT/proto/topics.tsv" \
        --prefix "$PREFIX" >"$S/topics.log" 2>&1 || { log "topics failed"; return 1; }
    sim_post /_sim/reset '{}' >/dev/null
    sim_post /_sim/faults '{"callbackUrl":"http://127.0.0.1:40083/threema/callback","callbackRetries":3,"callbackRetryIntervalMs":10000}' \
        >/dev/null || { log "simulator control failed"; return 1; }
    recipients || { log "recipients failed"; return 1; }
    if ! start_services; then
        log "services did not come up; see $S/state/*.log"
        stop_services
        return 1
    fi
    # steady + fault + heal: 16 s of sends (about 50/s) and callbacks (about 60 posts/s)
    local lp cp fp=""
    produce_load 16 10 &
    lp=$!
    callback_storm 240 15 &
    cp=$!
    case "$fault" in
    none) ;;
    *) "fault_$fault" & fp=$! ;;
    esac
    wait $lp
    [ -z "$fp" ] || wait "$fp"
    wait $cp
    # recovery: every request has an outcome, the phones' callbacks are all delivered
    wait_for 90 outcomes_done || log "$NAME: not every request has an outcome after 90 s"
    wait_for 60 callbacks_idle || log "$NAME: simulator callbacks still queued after 60 s"
    sleep 1
    dump "${PREFIX}lst.sent" >"$S/sent.tsv"
    dump "${PREFIX}lst.inbound" >"$S/inbound.tsv"
    python3 - "$SIM" >"$S/simlog.jsonl" <<'PY'
import json, sys, urllib.request
since = 0
while True:
    d = json.load(urllib.request.urlopen(f"{sys.argv[1]}/_sim/log?since={since}&limit=20000"))
    for e in d["entries"]:
        print(json.dumps(e))
    if not d["entries"]:
        break
    since = d["entries"][-1]["seq"]
PY
    curl -sf -m 5 "$SIM/_sim/stats" >"$S/sim_stats.json"
    stop_services
    cp "$S/state/status" "$S/status"
    dur=$((($(now_ms) - t0) / 1000))
    python3 - "$S" "$NAME" "$fault" "$W" "$ACK_TIMEOUT_MS" "$dur" <<'PY'
import json, os, sys
d, name, fault, w, ack, dur = sys.argv[1:7]
faults = [l.split() for l in open(os.path.join(d, "faults.log")) if l.strip()]
status = {l.split()[0]: l.split() for l in open(os.path.join(d, "status")) if l.strip()}
kills = {}
for f in faults:
    if f[1] == "killed" and f[2].startswith("gateway"):
        k = f[2].rsplit("-", 1)[0] if f[2].startswith("gateway-out") else f[2]
        kills[k] = kills.get(k, 0) + 1
killed = [f for f in faults if f[1] == "killed"]
back = [f for f in faults if f[1] == "back"]
observed, detail = True, "none"
if fault != "none":
    exits = {k: sum(int(s[3]) for n, s in status.items() if n.startswith(k)) for k in kills}
    observed = len(killed) == 3 if fault.startswith("gw") else len(killed) == 1
    observed = observed and len(back) == len(killed) and all(exits[k] >= kills[k] for k in kills)
    outage = [int(b[0]) - int(k[0]) for k, b in zip(killed, back)]
    detail = f"{fault}: {len(killed)} SIGKILL, back after {outage} ms, exits {exits}"
heal = None
if os.path.exists(os.path.join(d, "heal_ms")):
    heal = int(open(os.path.join(d, "heal_ms")).read())
read_off = [l.strip() for l in open(os.path.join(d, "read_off.txt")) if l.strip()]
no_receipts = [l.strip() for l in open(os.path.join(d, "no_receipts.txt")) if l.strip()]
meta = {"scenario": name, "W": int(w), "kills": kills, "deadline_ms": int(ack),
        "min_ops": 500, "fault_observed": observed, "fault_detail": detail, "heal_ms": heal,
        "read_off": read_off, "no_receipts": no_receipts, "duration_s": int(dur),
        "require_outbound_dedupe": fault == "gwout_kill", "exit_allowance": 0}
json.dump(meta, open(os.path.join(d, "meta.json"), "w"), indent=1)
PY
    local v rc
    v=$(python3 "$HERE/check.py" "$S")
    rc=$?
    echo "verdict $v"
    if [ $rc -eq 0 ]; then
        PASSED=$((PASSED + 1))
        log "$NAME passed in ${dur} s"
        [ "${CHAOS_KEEP:-0}" = 1 ] || rm -rf "$S/blobs"
    else
        FAILED=$((FAILED + 1))
        log "$NAME FAILED in ${dur} s; history kept in $S"
    fi
    return 0
}

setup_failed() {
    echo "verdict {\"scenario\": \"$1\", \"passed\": false, \"error\": \"set-up failed\"}"
    FAILED=$((FAILED + 1))
}

cleanup() {
    stop_services
    stack down >"$CHAOS_DIR/stack-down.log" 2>&1
}

main() {
    local t0
    t0=$(now_ms)
    mkdir -p "$CHAOS_DIR"
    log "checker self-test"
    python3 "$HERE/check_test.py" >"$CHAOS_DIR/check_test.log" 2>&1 || {
        cat "$CHAOS_DIR/check_test.log"
        echo "0 passed, 1 failed"
        exit 1
    }
    build_tools || { echo "0 passed, 1 failed"; exit 1; }
    trap cleanup EXIT
    log "stack up in $LST_STACK_DIR${CHAOS_IN_NS:+ (network namespace $CHAOS_IN_NS)}"
    stack up >"$CHAOS_DIR/stack-up.log" 2>&1 || {
        tail -20 "$CHAOS_DIR/stack-up.log"
        echo "0 passed, 1 failed"
        exit 1
    }
    local db=1 s
    for s in $SCENARIOS; do
        case "$s" in
        baseline) scenario baseline $db none || setup_failed baseline ;;
        gwout-kill) scenario gwout-kill $db gwout_kill || setup_failed gwout-kill ;;
        gwin-kill) scenario gwin-kill $db gwin_kill || setup_failed gwin-kill ;;
        broker-kill) scenario broker-kill $db broker_kill || setup_failed broker-kill ;;
        redis-restart) scenario redis-restart $db redis_restart || setup_failed redis-restart ;;
        *) log "unknown scenario $s"; FAILED=$((FAILED + 1)) ;;
        esac
        db=$((db + 1))
    done
    log "suite took $((($(now_ms) - t0) / 1000)) s"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
main
