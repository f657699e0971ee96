#!/usr/bin/env bash
# The chaos suite (issue 7): one stack (Kafka, Redis with AOF, the Gateway simulator) started
# once, inside a network namespace of its own when `ip netns` works; per scenario the services
# under tests/chaos/supervise (two gateway-out workers, gateway-in, two ledgers, the view API),
# a workload with a history (view_poll.py reads it back through the view API), faults injected
# in phases (steady, fault, heal, recovery), a rebuild of the projections from Kafka to compare
# with, and a verdict from check.py.
#
#   tests/chaos/run.sh [--quick|--full] [SCENARIO...]
#
# Scenarios: baseline gwout-kill gwin-kill broker-kill redis-restart proj-redis-loss (= --quick,
# also the default); --full adds ledger-kill broker-pause stale gateway-faults net-drop
# clock-skew redis-snapshot redis-pause redis-disk-full cold-boot, sixteen in all
# (docs/chaos.md). One JSON verdict line per scenario ("verdict {...}"), then "N passed, N
# failed".
#
# Environment: LST_BUILD_DIR [build] (services, lst-admin, simulator, the test drivers),
# CHAOS_DIR [<build>/chaos] (stack, histories), CHAOS_NETNS=0 to stay in the host
# network, CHAOS_KEEP=1 to keep the histories of passing scenarios.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${LST_BUILD_DIR:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CHAOS_DIR=${CHAOS_DIR:-$BUILD/chaos}
HERE=$ROOT/tests/chaos

QUICK="baseline gwout-kill gwin-kill broker-kill redis-restart proj-redis-loss"
FULL="$QUICK ledger-kill broker-pause stale gateway-faults net-drop clock-skew redis-snapshot
redis-pause redis-disk-full cold-boot"
args=()
for a in "$@"; do
    case "$a" in
    --quick) ;;
    --full) args+=($FULL) ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
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
        # The suite's own ports (36379-40087) lie in Linux's default ephemeral range: a
        # server (re)started mid-run, such as redis-disk-full's on 36380 or a restarted
        # service, found its port taken by some client connection's local port. Outgoing
        # connections in the namespace take ports from 50000 up instead.
        ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="50000 60999"
        CHAOS_IN_NS=$NS ip netns exec "$NS" bash "$0" "$@"
        rc=$?
        # Nothing the suite started may outlive it: every process it started lives in the
        # namespace, so what is still there is a leftover (ended here, by pid, and a failure).
        left=$(ip netns pids "$NS" 2>/dev/null | tr '\n' ' ')
        if [ -n "${left// /}" ]; then
            echo "chaos: processes left behind in $NS:"
            ps -o pid,args -p "$(echo $left | tr " " ,)" 2>/dev/null | cut -c1-160
            kill -KILL $left 2>/dev/null
            echo "chaos: left processes behind (failure)"
            rc=1
        fi
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
# A stack.sh that also starts a projections Redis would put it on LST_REDIS_PORT + 1 (36380),
# redis-disk-full's port; 36382 keeps it off the ports of the suite's own servers (36380,
# 36381). No scenario uses it (proj-redis-loss starts its own).
export LST_PROJ_REDIS_PORT=36382
export LST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
# The simulator: callback retries shortened from 3 x 5 min to 3 x 10 s; quick phones.
export LST_SIM_CALLBACK_RETRIES=3 LST_SIM_CALLBACK_RETRY_INTERVAL_MS=10000
export LST_SIM_JOURNAL_CAPACITY=500000 LST_SIM_RECEIVED_DELAY_MS=200 LST_SIM_READ_DELAY_MS=600
export LST_SIM_CALLBACK_TIMEOUT_MS=5000 LST_LOG_LEVEL=warn
SIM=http://127.0.0.1:$LST_SIM_PORT
# The Redis of the current scenario: the stack's, except in redis-disk-full (a second
# redis-server on a small disk of its own, disk_redis_up)
SC_REDIS_PORT=$LST_REDIS_PORT
REDIS=(redis-cli -h 127.0.0.1 -p "$SC_REDIS_PORT")
DISK_REDIS_PORT=36380
DISK_REDIS_PID=""
DISK_DIR=""
# The Redis of the projections (the ledgers, the view API, ldriver, the rebuild): the
# scenario's Redis above, except in proj-redis-loss, where the projections live on a second
# redis-server without AOF (the production topology of docs/chaos.md, proj_redis_up) and the
# gateways stay on the stack's. SC_PROJ_PORT/SC_PROJ_DB empty: the scenario's port and
# database; PROJ_PORT, PROJ_DB and PROJ_REDIS are what the scenario uses (set in scenario()).
SC_PROJ_PORT=""
SC_PROJ_DB=""
PROJ_PORT=$SC_REDIS_PORT
PROJ_DB=""
PROJ_REDIS=("${REDIS[@]}")
PROJ_REDIS_PORT=36381
PROJ_DIR=""
ADMIN=$BUILD/tools/lst-admin/lst-admin
DRIVER=$BUILD/tests/system/gateway_out/gateway_out_driver
TOOLS=$BUILD/tests/chaos # supervise and chaos_cb (tests/chaos/CMakeLists.txt)
LDRIVER=$BUILD/services/ledger/ledger_sys_driver
REBUILD_DB=15       # the rebuild's database (scenarios use 1 to 14, see main)
W=4                 # lanes per gateway-out worker (the duplicate bound is kills x W)
ACK_TIMEOUT_MS=3000 # gateway-in's deadline for Kafka's ack (then 503)
GW_RATE=40          # gateway-out's configured rate in gateway-faults (never to be exceeded)
RUN_ID=$(date +%s)
PASSED=0
FAILED=0
KNOWN=0
KNOWN_NAMES=""
SUP_PID=""

log() { printf 'chaos: %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }

# The C tools are CMake targets (tests/chaos/CMakeLists.txt, the project's warnings): built
# here too, so a build folder configured before they existed, or with stale tools, works.
build_tools() {
    cmake --build "$BUILD" --target chaos_supervise chaos_cb >"$CHAOS_DIR/build_tools.log" 2>&1 || {
        tail -20 "$CHAOS_DIR/build_tools.log"
        log "building the chaos tools failed"
        return 1
    }
    local x
    for x in "$DRIVER" "$LDRIVER" "$BUILD/services/ledger/ledger" "$BUILD/services/view-api/view-api"; do
        [ -x "$x" ] || { log "missing $x (build the tests first)"; return 1; }
    done
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
def rid(line):
    try:
        return json.loads(line).get("request_id")
    except ValueError:
        return None  # a poison record (ledger-kill)
ids = {rid(l) for l in sys.stdin if l.strip()}
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
    # the gateways' Redis (dedupe marks, key caches, rate limiter) and the projections' Redis
    # (ledgers, view API): the same server and database except in proj-redis-loss
    local state_redis="LST_REDIS_DB=$DB LST_REDIS_PORT=$SC_REDIS_PORT"
    local proj_redis="LST_REDIS_DB=$PROJ_DB LST_REDIS_PORT=$PROJ_PORT"
    local common="LST_TOPIC_PREFIX=$PREFIX \
LST_KAFKA_BROKERS=$LST_KAFKA_BROKERS LST_KAFKA_SESSION_TIMEOUT_MS=6000 LST_LOG_LEVEL=info \
LST_GATEWAY_URL=$SIM 'LST_GATEWAY_ID=*LSTDEMO' LST_GATEWAY_SECRET_FILE=$ROOT/demo/DEMO-ONLY-gateway.secret \
LST_PRIVATE_KEY_FILE=$ROOT/demo/DEMO-ONLY-gateway.private.key LST_BLOB_DIR=$S/blobs \
LST_GATEWAY_TIMEOUT_MS=3000 LST_SHUTDOWN_TIMEOUT_MS=5000"
    # two event loops, as a worker of 32 lanes or more gets by default on two CPUs
    local gwout="LST_GATEWAY_OUT_GROUP=chaos-$NAME-$RUN_ID LST_GATEWAY_OUT_CONCURRENCY=$W \
LST_GATEWAY_OUT_LOOPS=2 LST_GATEWAY_OUT_RATE_LIMIT=0 LST_GATEWAY_OUT_BACKOFF_MIN_MS=50 LST_GATEWAY_OUT_BACKOFF_MAX_MS=1000 \
LST_GATEWAY_OUT_REVOKE_TIMEOUT_MS=3000"
    # The pending marker of a callback killed mid-way must expire within the Gateway's retry
    # window (3 x 10 s here), or every retry of it is answered 503 and the callback dropped.
    gwout="$gwout ${GWOUT_EXTRA:-}"
    local gwin="LST_CALLBACK_ACK_TIMEOUT_MS=$ACK_TIMEOUT_MS LST_DEDUPE_PENDING_TTL_MS=5000 ${GWIN_EXTRA:-}"
    local ledger="${LEDGER_EXTRA:-}"
    {
        # AS_UID1/AS_UID2: gateway-out-1/gateway-in under their own uid, so nftables can
        # single out their traffic (meta skuid) in the network-fault scenario
        printf 'gateway-out-1\t%s %s %s LST_HTTP_PORT=40081 %s%s\n' "$common" "$state_redis" \
            "$gwout" "${AS_UID1:-}" "$BUILD/services/gateway-out/gateway-out"
        printf 'gateway-out-2\t%s %s %s LST_HTTP_PORT=40082 %s\n' "$common" "$state_redis" \
            "$gwout" "$BUILD/services/gateway-out/gateway-out"
        printf 'gateway-in\t%s %s %s LST_HTTP_PORT=40083 %s%s\n' "$common" "$state_redis" \
            "$gwin" "${AS_UID2:-}" "$BUILD/services/gateway-in/gateway-in"
        # two ledgers at once (docs/ledger.md: safe, the watermark gates make every event
        # idempotent), each its own group for lag monitoring only
        printf 'ledger-1\t%s %s %s LST_LEDGER_GROUP_ID=chaos-ledger-%s-%s LST_HTTP_PORT=40084 %s\n' \
            "$common" "$proj_redis" "$ledger" "$NAME" "$RUN_ID" "$BUILD/services/ledger/ledger"
        printf 'ledger-2\t%s %s %s LST_LEDGER_GROUP_ID=chaos-ledger-%s-%s LST_HTTP_PORT=40085 %s\n' \
            "$common" "$proj_redis" "$ledger" "$NAME" "$RUN_ID" "$BUILD/services/ledger/ledger"
        # the view API's bound is 1.5 s (invariant 8): a Redis that does not answer (paused)
        # must cost it less than that before it says 503; the default 2 s is for production
        printf 'view-api\t%s %s LST_REDIS_TIMEOUT_MS=1000 LST_VIEW_TOKENS_FILE=%s LST_HTTP_PORT=40086 %s\n' \
            "$common" "$proj_redis" "$S/tokens" "$BUILD/services/view-api/view-api"
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
    chmod 0777 "$S/blobs" # net-drop runs two services under their own uid
    write_spec
    "$TOOLS/supervise" "$S/state" "$S/services.spec" &
    SUP_PID=$!
    local p
    for p in 40081 40082 40083 40084 40085 40086; do
        wait_for 30 healthy $p || return 1
    done
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
        "$DRIVER" produce "${PREFIX}lst.outbound" "$S/chunk.tsv" --per-message "$2" \
            "${extra[@]}" 2>>"$S/driver.err" >"$S/chunk.ids"
        while read -r id; do
            printf '%s\t%s\n' "$id" "$t" >>"$S/requests.tsv"
            [ ${#extra[@]} -eq 0 ] || printf '%s\n' "$id" >>"$S/no_receipts.txt"
        done <"$S/chunk.ids"
        produce_message "$t"
        i=$((i + 1))
        sleep 0.2
    done
}

# produce_message T: the lst.message record of the chunk just sent (one fan-out message, as
# the view API would write it), so the ledger shows its recipients in the message detail.
produce_message() {
    local mid eids
    [ -s "$S/chunk.ids" ] || return 0
    mid=$(head -1 "$S/chunk.ids" | cut -d: -f1)
    eids=$(cut -d: -f2 "$S/chunk.ids" | sed 's/.*/"&"/' | paste -sd,)
    printf '%s\t{"v":1,"message_id":"%s","created_at":%s,"dispatcher":"chaos","category":"chaos","idempotency_key":"chaos-%s","content":{"kind":"text","text":"chaos"},"audience":{"selector":{"employee_ids":[%s]},"recipients":[%s]}}\n' \
        "$mid" "$mid" "$(($1 + ${MESSAGE_SKEW_MS:-0} * (RANDOM % 3 - 1)))" "$mid" "$eids" "$eids" |
        timeout 25 kcat -b "$LST_KAFKA_BROKERS" -P -t "${PREFIX}lst.message" -K $'\t' \
            -X message.timeout.ms=20000 -X enable.idempotence=true 2>>"$S/driver.err" &&
        printf '%s\n' "$mid" >>"$S/messages.txt"
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

# ---- the ledger's projections (invariant 5) ---------------------------------------------------

# ldriver ARGS: the ledger system test's driver on this scenario's topics and projections
# (PROJ_PORT, PROJ_DB: caught-up, progress, dump); LDB overrides the database.
ldriver() {
    LST_TOPIC_PREFIX=$PREFIX LST_REDIS_DB=${LDB:-$PROJ_DB} LST_REDIS_PORT=$PROJ_PORT \
        LST_LOG_LEVEL=error "$LDRIVER" "$@"
}
ledger_caught_up() { ldriver caught-up "$1"; }

# A third ledger, alone on an empty database (REBUILD_DB of the projections' Redis), replays
# the scenario's topics from the beginning; its canonical dump must equal the live one
# (check.py compares them).
rebuild_projections() {
    local rp rc=0
    "${PROJ_REDIS[@]}" -n "$REBUILD_DB" FLUSHDB >/dev/null
    env LST_TOPIC_PREFIX="$PREFIX" LST_REDIS_DB="$REBUILD_DB" LST_REDIS_PORT="$PROJ_PORT" \
        LST_KAFKA_BROKERS="$LST_KAFKA_BROKERS" LST_LEDGER_GROUP_ID="chaos-rebuild-$NAME-$RUN_ID" \
        LST_HTTP_PORT=40087 LST_LOG_LEVEL=warn "$BUILD/services/ledger/ledger" \
        >"$S/rebuild.log" 2>&1 &
    rp=$!
    LDB=$REBUILD_DB ldriver caught-up 90 >"$S/rebuild_caught_up.txt" 2>&1 || rc=1
    LDB=$REBUILD_DB ldriver dump "$S/rebuilt.dump" >/dev/null 2>&1 || rc=1
    kill -TERM "$rp" 2>/dev/null
    wait_for 20 sh -c "! kill -0 $rp" || kill -KILL "$rp" 2>/dev/null
    wait "$rp" 2>/dev/null
    "${PROJ_REDIS[@]}" -n "$REBUILD_DB" FLUSHDB >/dev/null
    return $rc
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

# after_chunk: returns ~150 ms after the workload's next chunk was produced. A worker killed
# then has sent that chunk's requests (and published their outcomes) but not yet committed
# their offsets (auto-commit runs every second): the kill is sure to hit the redelivery path
# that invariant 9 requires. Killing at a random moment missed it in 2 of 5 runs, when the
# last commit had just covered everything the worker had done.
after_chunk() {
    local n end=$((SECONDS + 5))
    n=$(wc -l <"$S/requests.tsv")
    while [ $SECONDS -lt $end ] && [ "$(wc -l <"$S/requests.tsv")" -le "$n" ]; do
        sleep 0.02
    done
    sleep 0.15
}

fault_gwout_kill() {
    echo 3 >"$S/expect_faults"
    sleep 4; after_chunk; kill_service gateway-out-1 40081
    sleep 4; after_chunk; kill_service gateway-out-2 40082
    sleep 4; after_chunk; kill_service gateway-out-1 40081
    echo "$(now_ms)" >"$S/heal_ms"
}

fault_gwin_kill() {
    echo 3 >"$S/expect_faults"
    local i
    for i in 1 2 3; do sleep 4; kill_service gateway-in 40083; done
    echo "$(now_ms)" >"$S/heal_ms"
}

fault_broker_kill() {
    echo 1 >"$S/expect_faults"
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

# A power cut of the application host: the broker and every producing service SIGKILLed at
# once, the broker back after 3 s. The services come back (supervise) with new producer ids
# while the broker still loads its partitions, the moment in which librdkafka 2.0.2 reported
# records as delivered that were never written ("implicit ack", docs/architecture.md).
fault_cold_boot() {
    echo 6 >"$S/expect_faults"
    sleep 5
    after_chunk
    local kpid pid name port
    kpid=$(cat "$LST_STACK_DIR/kafka/kafka.pid")
    kill -KILL "$kpid" && fault_note "killed kafka $kpid"
    for name in gateway-out-1 gateway-out-2 gateway-in ledger-1 ledger-2; do
        pid=$(pid_of "$name")
        [ -n "$pid" ] && kill -KILL "$pid" && fault_note "killed $name $pid"
    done
    wait_for 10 sh -c "[ ! -e /proc/$kpid ] || grep -q '^[^ ]* [^ ]* Z' /proc/$kpid/stat"
    sleep 3
    stack restart-kafka >>"$S/stack.log" 2>&1
    fault_note "back kafka"
    for name in gateway-out-1:40081 gateway-out-2:40082 gateway-in:40083 ledger-1:40084 \
        ledger-2:40085; do
        port=${name#*:}
        name=${name%:*}
        wait_for 60 healthy "$port" && fault_note "back $name"
    done
    echo "$(now_ms)" >"$S/heal_ms"
}

fault_redis_restart() {
    echo 1 >"$S/expect_faults"
    sleep 5
    local pid
    pid=$(cat "$LST_STACK_DIR/redis/redis.pid")
    kill -KILL "$pid" && fault_note "killed redis $pid"
    sleep 3
    stack restart-redis >>"$S/stack.log" 2>&1
    fault_note "back redis"
    echo "$(now_ms)" >"$S/heal_ms"
}

# SIGKILL of both ledgers at three points of a backlog (6000 receipts plus poison records on
# three topics), built while both were stopped.
fault_ledger_kill() {
    echo 6 >"$S/expect_faults"
    sleep 2
    local l1 l2 p0 k at final dlq t
    l1=$(pid_of ledger-1)
    l2=$(pid_of ledger-2)
    kill -STOP "$l1" "$l2"
    fault_note "info ledgers stopped while the backlog is produced"
    printf 'poison\tnot json {\n' | kcat -b "$LST_KAFKA_BROKERS" -P -t "${PREFIX}lst.sent" -K $'\t'
    printf 'poison\t{"v":99}\n' | kcat -b "$LST_KAFKA_BROKERS" -P -t "${PREFIX}lst.inbound" -K $'\t'
    printf 'poison\t{"v":1,"message_id":"x"}\n' |
        kcat -b "$LST_KAFKA_BROKERS" -P -t "${PREFIX}lst.message" -K $'\t'
    # the backlog: 6000 receipts from 200 phones for messages the ledger does not know yet
    # (held until their outcome arrives), on lst.inbound, which only the ledger reads
    python3 -c '
import json, random, sys, time
now = int(time.time() * 1000)
for i in range(6000):
    frm, tm = "BKLG%04d" % (i % 200), "%016x" % random.getrandbits(64)
    print("%s	%s" % (frm, json.dumps({"v": 1, "event_id": frm + ":" + tm, "kind": "receipt",
          "from": frm, "to": "*LSTDEMO", "threema_message_id": tm, "date": now // 1000,
          "received_at": now, "receipt": {"status": 1 + i % 2,
          "message_ids": ["%016x" % random.getrandbits(64)]}})))' >"$S/backlog.tsv"
    kcat -b "$LST_KAFKA_BROKERS" -P -t "${PREFIX}lst.inbound" -K $'\t' -l "$S/backlog.tsv" \
        >>"$S/backlog.log" 2>&1
    p0=$(ldriver progress)
    kill -CONT "$l1" "$l2"
    fault_note "info backlog produced, ledgers continue at $p0 records applied"
    for k in 1 2 3; do
        local end=$((SECONDS + 20))
        while [ $SECONDS -lt $end ] && [ "$(ldriver progress)" -lt $((p0 + k * 1500)) ]; do
            sleep 0.05
        done
        at=$(ldriver progress)
        kill_service ledger-1 40084 &
        kill_service ledger-2 40085
        wait $!
        fault_note "info kill $k at $at records applied (backlog from $p0)"
        echo "$at" >>"$S/kill_points"
    done
    echo "$(now_ms)" >"$S/heal_ms"
    ldriver caught-up 60 >/dev/null 2>&1
    final=$(ldriver progress)
    # every poison record dead-lettered (required through meta_extra.json)
    dlq=0
    for t in lst.sent lst.inbound lst.message; do
        dlq=$((dlq + $(dump "${PREFIX}$t.dlq" | wc -l)))
    done
    python3 -c '
import json, os, sys
d, final, dlq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pts = [int(l) for l in open(os.path.join(d, "kill_points")) if l.strip()]
json.dump({"require": {"two kills before the backlog was applied":
                       sum(1 for p in pts if p < final) >= 2,
                       "the three poison records dead-lettered": dlq >= 3},
           "kill_points": pts, "backlog_final": final, "dead_letters": dlq},
          open(os.path.join(d, "meta_extra.json"), "w"))' "$S" "$final" "$dlq"
}

# SIGSTOP of the broker for 12 s (a long GC pause, a frozen VM), then SIGCONT: longer than the
# consumers' session timeout, shorter than the Gateway's callback retry window.
fault_broker_pause() {
    echo 1 >"$S/expect_faults"
    sleep 4
    local pid
    pid=$(cat "$LST_STACK_DIR/kafka/kafka.pid")
    kill -STOP "$pid" && fault_note "fault SIGSTOP kafka $pid"
    sleep 12
    kill -CONT "$pid" && fault_note "info SIGCONT kafka"
    echo "$(now_ms)" >"$S/heal_ms"
}

# Redis restarted from a copy of its AOF taken 6 s earlier: everything written since (the
# ledger's projections and watermarks, gateway-in's dedupe keys, gateway-out's outcome markers)
# is gone; the ledger must rewind to the watermarks and refill from Kafka.
fault_redis_snapshot() {
    echo 1 >"$S/expect_faults"
    sleep 3
    local rdir=$LST_STACK_DIR/redis pid before after i
    "${REDIS[@]}" BGREWRITEAOF >/dev/null
    for i in $(seq 1 100); do
        "${REDIS[@]}" INFO persistence | grep -q '^aof_rewrite_in_progress:0' &&
            "${REDIS[@]}" INFO persistence | grep -q '^aof_rewrite_scheduled:0' && break
        sleep 0.1
    done
    rm -rf "$S/aof-old"
    cp -a "$rdir/appendonlydir" "$S/aof-old"
    # a marker written after the copy (database 0, used by nothing else): gone after the
    # restore if and only if the restored Redis really is older
    "${REDIS[@]}" -n 0 SET chaos:after-copy 1 >/dev/null
    fault_note "info AOF copied"
    sleep 6
    before=$(ldriver progress)
    pid=$(cat "$rdir/redis.pid")
    kill -KILL "$pid"
    wait_for 10 sh -c "[ ! -e /proc/$pid ]"
    rm -rf "$rdir/appendonlydir"
    mv "$S/aof-old" "$rdir/appendonlydir"
    stack restart-redis >>"$S/stack.log" 2>&1
    after=$("${REDIS[@]}" -n 0 EXISTS chaos:after-copy)
    fault_note "fault redis restarted from a 6 s old AOF (ledger had applied $before records)"
    [ "$after" = 0 ] || fault_note "unobserved the restored Redis was not older"
    "${REDIS[@]}" -n 0 DEL chaos:after-copy >/dev/null
    echo "$(now_ms)" >"$S/heal_ms"
}

# SIGSTOP of the stack's redis-server for 6 s during load (a frozen VM, a long fork on a big
# dataset), then SIGCONT; shorter than the Gateway's callback retry window (3 x 10 s). The
# kernel still accepts connections to a stopped process, so clients see no refusal, only a
# server that does not answer: every service waits out its Redis timeout. The checker counts
# the callbacks and view reads in flight during the pause (fault_window, min_in_fault).
fault_redis_pause() {
    echo 1 >"$S/expect_faults"
    sleep 4
    local pid t0 t1 ping=answered
    pid=$(cat "$LST_STACK_DIR/redis/redis.pid")
    kill -STOP "$pid" && fault_note "fault SIGSTOP redis $pid"
    t0=$(now_ms)
    # the pause is in effect: a PING gets no answer within 1 s
    timeout 1 "${REDIS[@]}" PING >/dev/null 2>&1 || ping=unanswered
    fault_note "info PING during the pause: $ping"
    sleep 5
    kill -CONT "$pid" && fault_note "info SIGCONT redis"
    t1=$(now_ms)
    echo "$t1" >"$S/heal_ms"
    # chaos_cb posts one callback at a time, so a post that hangs on the paused Redis holds
    # the storm up: one callback in flight is what a pause longer than the answer time gives
    python3 - "$S" "$t0" "$t1" "$ping" <<'PY'
import glob, json, os, sys
d, t0, t1, ping = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
timeouts = {}
for p in sorted(glob.glob(os.path.join(d, "state", "*.log"))):
    n = sum(1 for l in open(p, errors="replace") if '"event":"redis.' in l and "timeout" in l)
    if n:
        timeouts[os.path.basename(p)[:-4]] = n
json.dump({"fault_window": [t0, t1], "min_in_fault": {"callbacks": 1, "views": 2},
           "redis_timeouts_logged": timeouts,
           "require": {"a PING got no answer during the pause": ping == "unanswered",
                       "gateway-in met Redis timeouts during the pause": "gateway-in" in timeouts}},
          open(os.path.join(d, "meta_extra.json"), "w"))
PY
}

# redis-disk-full: the scenario's own redis-server (the stack's configuration, AOF everysec,
# with port, dir, log and pid file overridden) whose dir is a 32 MB tmpfs mounted in the
# scenario's folder. A second server, not CONFIG SET dir on the stack's: Redis 7's multi-part
# AOF keeps writing through the open file of the old dir until a rewrite, so only a server
# started on the small disk really runs out of space. Its log stays on the big disk.
disk_redis_up() {
    DISK_DIR=$S/redis-disk
    mkdir -p "$DISK_DIR"
    mount -t tmpfs -o size=32m,mode=0700 lstchaos-redis "$DISK_DIR" ||
        { log "cannot mount a tmpfs (needs root)"; DISK_DIR=""; return 1; }
    {
        cat "$LST_STACK_DIR/redis/redis.conf"
        printf 'port %s\ndir %s\nlogfile %s\npidfile %s\n' "$DISK_REDIS_PORT" "$DISK_DIR" \
            "$S/redis-disk.log" "$S/redis-disk.pid"
    } >"$S/redis-disk.conf"
    redis-server "$S/redis-disk.conf" >"$S/redis-disk.out" 2>&1 &
    DISK_REDIS_PID=$!
    SC_REDIS_PORT=$DISK_REDIS_PORT
    REDIS=(redis-cli -h 127.0.0.1 -p "$SC_REDIS_PORT")
    wait_for 10 sh -c "${REDIS[*]} PING | grep -qx PONG"
}

disk_redis_down() {
    SC_REDIS_PORT=$LST_REDIS_PORT
    REDIS=(redis-cli -h 127.0.0.1 -p "$SC_REDIS_PORT")
    if [ -n "$DISK_REDIS_PID" ]; then
        rm -f "$DISK_DIR"/filler* # a SHUTDOWN that cannot write its last snapshot refuses
        redis-cli -h 127.0.0.1 -p "$DISK_REDIS_PORT" SHUTDOWN NOSAVE >/dev/null 2>&1
        wait_for 10 sh -c "! kill -0 $DISK_REDIS_PID" || kill -KILL "$DISK_REDIS_PID" 2>/dev/null
        wait "$DISK_REDIS_PID" 2>/dev/null
        DISK_REDIS_PID=""
    fi
    if [ -n "$DISK_DIR" ]; then
        umount "$DISK_DIR" 2>/dev/null && rmdir "$DISK_DIR"
        DISK_DIR=""
    fi
}

# write_refused: a probe write (database 0, used by nothing else) is refused (MISCONF).
write_refused() { "${REDIS[@]}" -n 0 SET chaos:probe 1 2>&1 | grep -q MISCONF; }
write_accepted() { "${REDIS[@]}" -n 0 SET chaos:probe 1 2>&1 | grep -qx OK; }

# The disk fills up during load (a file takes the rest of the tmpfs), Redis refuses writes
# (MISCONF: its AOF write failed), 6 s later the file is deleted and Redis must accept writes
# again by itself (it retries the AOF write once a second).
fault_redis_disk_full() {
    echo 1 >"$S/expect_faults"
    sleep 4
    local t0 t1 t2 refused=false healed=false
    # bs=1M to near the end, then the last pages (a full tmpfs refuses even 4 kB)
    dd if=/dev/zero of="$DISK_DIR/filler" bs=1M 2>/dev/null
    dd if=/dev/zero of="$DISK_DIR/filler2" bs=4k 2>/dev/null
    t0=$(now_ms)
    fault_note "fault redis disk full ($(df -k --output=avail "$DISK_DIR" | tail -1 | tr -d ' ') kB left)"
    if wait_for 5 write_refused; then
        refused=true
        fault_note "info redis refuses writes after $(($(now_ms) - t0)) ms:" \
            "$("${REDIS[@]}" -n 0 SET chaos:probe 1 2>&1 | head -c 120)"
    fi
    "${REDIS[@]}" INFO persistence | grep -E '^(aof_last_write_status|rdb_last_bgsave_status|aof_last_bgrewrite_status)' \
        >"$S/redis_disk_info_full.txt"
    t1=$((6 - ($(now_ms) - t0) / 1000))
    [ "$t1" -le 0 ] || sleep "$t1"
    rm -f "$DISK_DIR/filler" "$DISK_DIR/filler2"
    t1=$(now_ms)
    fault_note "info space freed"
    if wait_for 10 write_accepted; then
        healed=true
        t2=$(now_ms)
        fault_note "info redis accepts writes again after $((t2 - t1)) ms"
    fi
    echo "$(now_ms)" >"$S/heal_ms"
    python3 - "$S" "$t0" "$t1" "$refused" "$healed" <<'PY'
import glob, json, os, sys
d, t0, t1, refused, healed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
# what each service logged about the refused writes ("clear errors in the logs")
logged = {}
for p in sorted(glob.glob(os.path.join(d, "state", "*.log"))):
    n = sum(1 for l in open(p, errors="replace") if "MISCONF" in l)
    if n:
        logged[os.path.basename(p)[:-4]] = n
rlog = open(os.path.join(d, "redis-disk.log"), errors="replace").read().count("writing to the AOF file")
json.dump({"fault_window": [t0, t1], "min_in_fault": {"callbacks": 20, "views": 2},
           "services_logging_misconf": logged,
           "redis_log_aof_write_errors": rlog,
           "require": {"Redis refused writes (MISCONF) while the disk was full": refused == "true",
                       "Redis logged the failed AOF write": rlog > 0,
                       "Redis accepted writes again after space was freed": healed == "true",
                       "the ledger logged the refused writes":
                           any(k.startswith("ledger") for k in logged)}},
          open(os.path.join(d, "meta_extra.json"), "w"))
PY
}

# proj-redis-loss: the projections on a redis-server of their own with the production
# topology's settings for it (docs/chaos.md): no AOF, RDB snapshots only, since the projections
# and the ledger's watermarks can be rebuilt from Kafka; its own port and dir in the scenario's
# folder. The ledgers and the view API use it, the gateways keep the stack's Redis with AOF.
# The fault starts it again with the same configuration, so it loads whatever RDB its dir
# holds. proc-title-template keeps the config's path in the command line (proj_redis_pid).
proj_redis_up() {
    PROJ_DIR=$S/redis-proj
    mkdir -p "$PROJ_DIR"
    printf '%s\n' "bind 127.0.0.1" "port $PROJ_REDIS_PORT" "protected-mode yes" "daemonize no" \
        "dir $PROJ_DIR" "dbfilename dump.rdb" "logfile $S/redis-proj.log" \
        "pidfile $S/redis-proj.pid" \
        'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"' \
        "appendonly no" 'save "900 1 300 100 60 10000"' "hash-max-listpack-value 256" \
        >"$S/redis-proj.conf"
    SC_PROJ_PORT=$PROJ_REDIS_PORT
    SC_PROJ_DB=0 # a server of its own: the projections in database 0, as in production
    proj_redis_start
}

proj_redis_start() {
    # disowned: the fault SIGKILLs it, and bash would report every such job as "Killed"
    redis-server "$S/redis-proj.conf" >>"$S/redis-proj.out" 2>&1 &
    disown $!
    # PONG only once the RDB is loaded (-LOADING before)
    wait_for 10 sh -c "redis-cli -h 127.0.0.1 -p $PROJ_REDIS_PORT PING | grep -qx PONG"
}

# proj_redis_pid: the running projections' redis-server (from its pid file, only if it is
# that server: the fault restarts it from a subshell, so no shell variable knows its pid).
proj_redis_pid() {
    local pid
    pid=$(cat "$S/redis-proj.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$S/redis-proj.conf" &&
        echo "$pid"
}

gone() { [ ! -e "/proc/$1" ] || grep -q '^[^ ]* [^ ]* Z' "/proc/$1/stat" 2>/dev/null; }

proj_redis_down() {
    local pid
    SC_PROJ_PORT=""
    SC_PROJ_DB=""
    [ -n "$PROJ_DIR" ] || return 0
    if pid=$(proj_redis_pid); then
        redis-cli -h 127.0.0.1 -p "$PROJ_REDIS_PORT" SHUTDOWN NOSAVE >/dev/null 2>&1
        wait_for 10 gone "$pid" || { kill -KILL "$pid" 2>/dev/null; wait_for 5 gone "$pid"; }
    fi
    PROJ_DIR=""
}

# view_probe N MID: reads MID through the view API every 20 ms ("N sent_ms answered_ms http
# problem-type" lines in refill_probe.tsv) until it answers 200 after restart N (proj_up.N
# exists), at most 60 s: what the view said between the kill and serving again, closer than
# view_poll's rounds. The send time counts: a read sent before the kill may answer after it.
view_probe() {
    local end=$((SECONDS + 60)) code why t
    while [ $SECONDS -lt $end ]; do
        t=$(now_ms)
        code=$(curl -s -m 2 -o "$S/probe.body.$1" -w '%{http_code}' \
            -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:40086/api/messages/$2")
        why=$(grep -o '"type":"[^"]*"' "$S/probe.body.$1" 2>/dev/null | sed 's/.*://; s/"$//')
        printf '%s %s %s %s %s\n' "$1" "$t" "$(now_ms)" "${code:-0}" "${why:--}" \
            >>"$S/refill_probe.tsv"
        [ "$code" = 200 ] && [ -e "$S/proj_up.$1" ] && return 0
        sleep 0.02
    done
    return 1
}

# view_reached N: the probe of restart N got an answer from the restarted server (answered
# after proj_up.N, and not store-unavailable).
view_reached() {
    local up
    up=$(cat "$S/proj_up.$1" 2>/dev/null) || return 1
    awk -v n="$1" -v up="$up" '$1 == n && $3 >= up && $4 != 0 && $5 != "store-unavailable" {f = 1}
        END {exit !f}' "$S/refill_probe.tsv"
}

# proj_loss N DOWN_S [empty]: SIGKILL of the projections' Redis, down DOWN_S seconds, then the
# same server started again from its dir: from the last RDB snapshot, or from nothing (empty:
# the RDB removed while it was down). The view is read closely meanwhile (view_probe and
# view_poll's fast rounds) until it serves again.
#
# The ledgers are held (SIGSTOP) from the kill until the view has read the restarted server
# once. What the view promises is to refuse an older or empty server before any ledger checked
# it (the old "run" in a restored snapshot; the refill hash it saw before, gone). Without the
# hold the two race: in a CI run (2026-12-07) a ledger reconnected at once, marked 49
# partitions and refilled them all within 70 ms, between two of the view's reconnect attempts,
# so the view's first answer was a correct 200 and the scenario could not tell it from a view
# that never refuses. The ledgers cannot apply while the server is down anyway.
proj_loss() {
    local n=$1 down=$2 how="from its last RDB snapshot" mid pid probe before after l1 l2
    [ "${3:-}" != empty ] || how="from nothing (RDB removed)"
    l1=$(pid_of ledger-1)
    l2=$(pid_of ledger-2)
    mid=$(head -1 "$S/messages.txt")
    : >"$S/view.fast"
    view_probe "$n" "$mid" &
    probe=$!
    sleep 0.3 # the probe saw the view serve before the kill
    before=$(ldriver progress)
    if ! pid=$(proj_redis_pid); then
        fault_note "no-pid projections redis"
        kill "$probe"
        rm -f "$S/view.fast"
        return 1
    fi
    kill -STOP "$l1" "$l2"
    now_ms >"$S/proj_kill.$n"
    kill -KILL "$pid"
    fault_note "killed redis $pid (the projections' Redis, ledger at $before records applied; ledgers held)"
    wait_for 10 gone "$pid"
    [ "${3:-}" != empty ] || rm -f "$PROJ_DIR/dump.rdb"
    sleep "$down"
    proj_redis_start || log "the projections' Redis did not come back"
    now_ms >"$S/proj_up.$n"
    # a key written after the snapshot (database 1, used by nothing else): gone after the
    # restart if and only if the server really went back to an older state
    after=$("${PROJ_REDIS[@]}" -n 1 EXISTS chaos:after-save)
    fault_note "back redis (restarted $how, $("${PROJ_REDIS[@]}" -n 0 DBSIZE) keys at start)"
    [ "$after" = 0 ] || fault_note "unobserved restart $n: the restarted Redis was not older"
    wait_for 10 view_reached "$n" || log "restart $n: the view did not reach the restarted Redis"
    kill -CONT "$l1" "$l2"
    fault_note "info ledgers continue"
    wait "$probe" || fault_note "unobserved restart $n: the view did not serve again within 60 s"
    sleep 1.5 # the reads right after the view serves again still close together
    rm -f "$S/view.fast"
}

# The projections' Redis (no AOF) SIGKILLed under load 4 s after a snapshot (BGSAVE: the
# production save points are minutes apart) and restarted from it 3 s later, i.e. back in
# time: the projections, the ledger's watermarks and refill markers of the last 4 s are gone.
# The ledgers must mark the partitions and refill from Kafka, the view answer 503
# projections-refilling meanwhile instead of the older data. Then the same with the RDB
# removed: a restart from nothing, refilled from the beginning of the topics.
fault_proj_redis_loss() {
    echo 2 >"$S/expect_faults"
    : >"$S/refill_probe.tsv"
    sleep 2
    local t0 ok=false
    t0=$("${PROJ_REDIS[@]}" LASTSAVE)
    "${PROJ_REDIS[@]}" BGSAVE >/dev/null
    wait_for 10 sh -c "[ \"\$(${PROJ_REDIS[*]} LASTSAVE)\" != $t0 ]" &&
        "${PROJ_REDIS[@]}" INFO persistence | grep -q '^rdb_last_bgsave_status:ok' && ok=true
    "${PROJ_REDIS[@]}" -n 1 SET chaos:after-save 1 >/dev/null
    $ok && fault_note "info RDB snapshot written (ledger at $(ldriver progress) records applied)" ||
        fault_note "unobserved no RDB snapshot written"
    sleep 4
    proj_loss 1 3
    "${PROJ_REDIS[@]}" -n 1 SET chaos:after-save 1 >/dev/null
    proj_loss 2 2 empty
    echo "$(now_ms)" >"$S/heal_ms"
    python3 - "$S" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
def ms(f):
    p = os.path.join(d, f)
    return int(open(p).read()) if os.path.exists(p) else None
kill = {n: ms("proj_kill.%d" % n) for n in (1, 2) if ms("proj_kill.%d" % n)}
up = {n: ms("proj_up.%d" % n) for n in (1, 2) if ms("proj_up.%d" % n)}
# per kill: what the view answered to the reads sent after the kill until it served again
# (the first 200; the server answers PING a little before proj_up.N is written)
probe = {}
for l in open(os.path.join(d, "refill_probe.tsv")):
    n, t, t_end, code, why = l.split()
    probe.setdefault(int(n), []).append((int(t), int(t_end), int(code), why))
polls = []
for l in open(os.path.join(d, "views.jsonl")):
    try:
        v = json.loads(l)
        polls.append((v["t"] - v["ms"], v["t"], v["http"], v.get("why") or "-"))
    except (ValueError, KeyError):
        pass  # a line the poller is still writing
after = {}
for n, t_kill in kill.items():
    seen, first200, answered = {}, None, None
    for t, t_end, code, why in probe.get(n, []):
        if t < t_kill:
            continue
        if code == 200:
            first200, answered = t, t_end
            break
        k = "%d %s" % (code, why)
        seen[k] = seen.get(k, 0) + 1
    # view_poll's reads (fast rounds meanwhile) sent after the kill, answered until the probe's
    # first 200 (all messages: the refill gate is one for the whole view)
    polled = {}
    for t, t_end, code, why in polls:
        if t >= t_kill and (answered is None or t_end <= answered):
            k = "%d %s" % (code, why)
            polled[k] = polled.get(k, 0) + 1
    # every read of this kill (sent before the next one): a 200 between two "refilling"
    # answers is the view serving while the ledgers had not finished (a ledger that lagged
    # behind the other checked first); shown, not judged: invariant 6 judges what it served
    reads = sorted((t_end, code, why) for t, t_end, code, why in polls + probe.get(n, [])
                   if t >= t_kill and (n + 1 not in kill or t < kill[n + 1]))
    ref = [t_end for t_end, _, why in reads if why == "projections-refilling"]
    amid = sum(1 for t_end, code, _ in reads if code == 200 and ref and ref[0] < t_end < ref[-1])
    after[n] = {"probe_answers_until_200": seen, "view_poll_answers_until_probe_200": polled,
                "pong_seen_after_kill_ms": up[n] - t_kill if n in up else None,
                "served_again_after_kill_ms": first200 - t_kill if first200 else None,
                "refilling_answered_ms_after_kill": [ref[0] - t_kill, ref[-1] - t_kill] if ref
                else None, "answers_200_amid_refilling": amid}
refill_logged = {}
for p in sorted(glob.glob(os.path.join(d, "state", "*.log"))):
    name = os.path.basename(p)[:-4]
    for l in open(p, errors="replace"):
        for ev in ('"ledger.refill"', '"ledger.refill_done"', "refilling after Redis lost",
                   "not checked by a ledger"):
            if ev in l:
                k = name + " " + ev.strip('"')
                refill_logged[k] = refill_logged.get(k, 0) + 1
json.dump({"fault_window": [kill[1], max(up.values())] if 1 in kill and up else None,
           "min_in_fault": {"views": 2},
           "after_restart": after, "refill_logged": refill_logged,
           "require": {"the view answered 503 projections-refilling after kill %d before "
                       "it served again" % n:
                           any(k == "503 projections-refilling" for k in
                               list(after.get(n, {}).get("probe_answers_until_200", {})) +
                               list(after.get(n, {}).get("view_poll_answers_until_probe_200", {})))
                       for n in (1, 2)}},
          open(os.path.join(d, "meta_extra.json"), "w"))
PY
}

# The Gateway misbehaving, in turn (simulator fault modes): a 429 storm (its own rate limit
# far below the load), 20 % 500s, 15 % answers slower than gateway-out's 3 s client timeout
# after the send took effect (in doubt), then no credits (402) until they are restored.
# gateway-out and gateway-in run with LST_GATEWAY_OUT_RATE_LIMIT (GW_RATE), the account's rate
# they share: the checker counts Gateway calls per second in the simulator's log.
fault_gateway_faults() {
    echo 4 >"$S/expect_faults"
    sleep 2
    sim_post /_sim/faults '{"rateLimit":8,"rateBurst":4,"retryAfterS":1}' >/dev/null && fault_note "fault 429 storm with Retry-After: 1"
    sleep 3
    sim_post /_sim/faults '{"rateLimit":0,"retryAfterS":0,"error500Rate":0.2}' >/dev/null && fault_note "fault 500s"
    sleep 3
    sim_post /_sim/faults '{"error500Rate":0,"timeoutAfterRate":0.15,"timeoutMs":4000}' \
        >/dev/null && fault_note "fault slow answers after the effect"
    sleep 3
    sim_post /_sim/faults '{"timeoutAfterRate":0,"credits":0}' >/dev/null && fault_note "fault 402"
    sleep 4
    sim_post /_sim/faults '{"credits":1000000}' >/dev/null && fault_note "info credits restored"
    echo "$(now_ms)" >"$S/heal_ms"
    printf '{"gateway_rate_limit": %s, "expect_gateway_faults": ["429", "500", "timeout_after", "402"]}\n' \
        "$GW_RATE" >"$S/meta_extra.json"
}

# nftables in the suite's namespace: gateway-out-1 (uid 65533) and gateway-in (uid 65534) lose
# their Kafka traffic: 6 s of silent drops, then 4 s of TCP resets.
fault_net_drop() {
    echo 2 >"$S/expect_faults"
    sleep 3
    printf '%s\n' 'table inet lstchaos {' '  chain out {' \
        '    type filter hook output priority 0; policy accept;' \
        "    meta skuid { 65533, 65534 } tcp dport $KAFKA_PORT counter drop" '  }' '}' |
        nft -f - && fault_note "fault nft drop gateway-out-1/gateway-in -> kafka"
    sleep 6
    nft list table inet lstchaos >"$S/nft_drop.txt"
    nft flush chain inet lstchaos out
    nft add rule inet lstchaos out meta skuid '{ 65533, 65534 }' tcp dport "$KAFKA_PORT" counter \
        reject with tcp reset && fault_note "fault nft tcp reset gateway-out-1/gateway-in -> kafka"
    sleep 4
    nft list table inet lstchaos >"$S/nft_reset.txt"
    nft delete table inet lstchaos
    echo "$(now_ms)" >"$S/heal_ms"
    local f
    for f in nft_drop nft_reset; do
        grep -q 'packets [1-9]' "$S/$f.txt" || fault_note "unobserved $f matched no packet"
    done
}

# A stale ledger and a stale gateway-out worker: ledger-2 and gateway-out-2 stopped (SIGSTOP)
# for 10 s while the others move on (gateway-out-2's partitions are reassigned after its 6 s
# session timeout), then continued with their old in-memory state.
fault_stale() {
    echo 2 >"$S/expect_faults"
    sleep 3
    local l g
    l=$(pid_of ledger-2)
    g=$(pid_of gateway-out-2)
    kill -STOP "$l" && fault_note "fault SIGSTOP ledger-2"
    kill -STOP "$g" && fault_note "fault SIGSTOP gateway-out-2"
    sleep 10
    kill -CONT "$l" "$g"
    fault_note "info SIGCONT ledger-2 gateway-out-2"
    echo "$(now_ms)" >"$S/heal_ms"
    # a worker whose session expired is, for the group, a killed one: the same bound of W
    printf '{"in_doubt_allowance": %s}\n' "$W" >"$S/meta_extra.json"
}

# Skewed clocks without libfaketime (not installed here): the producers' timestamps disagree.
# Every lst.message record of this scenario carries a created_at 5 min early, on time or 5 min
# late (MESSAGE_SKEW_MS), so the ledger sees queued times after the sends and receipts of the
# same message; states must still only move forward and a rebuild must give the same state.
fault_clock_skew() {
    echo 1 >"$S/expect_faults"
    fault_note "fault lst.message created_at skewed by -/+ ${MESSAGE_SKEW_MS} ms"
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
    : >"$S/messages.txt"
    if [ -n "${SC_SETUP:-}" ] && ! $SC_SETUP; then
        log "$NAME: set-up ($SC_SETUP) failed"
        return 1
    fi
    PROJ_PORT=${SC_PROJ_PORT:-$SC_REDIS_PORT}
    PROJ_DB=${SC_PROJ_DB:-$DB}
    PROJ_REDIS=(redis-cli -h 127.0.0.1 -p "$PROJ_PORT")
    log "scenario $NAME (topics $PREFIX*, Redis port $SC_REDIS_PORT db $DB," \
        "projections port $PROJ_PORT db $PROJ_DB)"
    "${REDIS[@]}" -n "$DB" FLUSHDB >/dev/null
    "${PROJ_REDIS[@]}" -n "$PROJ_DB" FLUSHDB >/dev/null
    "$ADMIN" create-topics --brokers "$LST_KAFKA_BROKERS" --file "$ROOT/proto/topics.tsv" \
        --prefix "$PREFIX" >"$S/topics.log" 2>&1 || { log "topics failed"; return 1; }
    sim_post /_sim/reset '{}' >/dev/null
    sim_post /_sim/faults '{"callbackUrl":"http://127.0.0.1:40083/threema/callback","callbackRetries":3,"callbackRetryIntervalMs":10000}' \
        >/dev/null || { log "simulator control failed"; return 1; }
    recipients || { log "recipients failed"; return 1; }
    TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
    printf '%s admin chaos -\n' "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" >"$S/tokens"
    if ! start_services; then
        log "services did not come up; see $S/state/*.log"
        stop_services
        return 1
    fi
    # steady + fault + heal: 16 s of sends (about 50/s) and callbacks (about 60 posts/s)
    local lp cp vp fp=""
    python3 "$HERE/view_poll.py" http://127.0.0.1:40086 "$TOKEN" "$S/messages.txt" \
        "$S/views.jsonl" "$S/view.stop" "$S/view.fast" 2>"$S/view_poll.err" &
    vp=$!
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
    # recovery: every request has an outcome, the phones' callbacks are all delivered, the
    # ledgers have applied every partition to its end (lag 0)
    wait_for 90 outcomes_done || log "$NAME: not every request has an outcome after 90 s"
    now_ms >"$S/outcomes_done_ms"
    wait_for 60 callbacks_idle || log "$NAME: simulator callbacks still queued after 60 s"
    ledger_caught_up 90 >"$S/ledger_caught_up.txt" 2>&1 ||
        log "$NAME: the ledgers are not caught up after 90 s"
    now_ms >"$S/ledger_caught_ms"
    : >"$S/view.stop"
    wait "$vp"
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
    # invariant 5: the live projections against a rebuild from the Kafka log
    ldriver dump "$S/live.dump" >/dev/null 2>&1 || log "$NAME: dump of db $DB failed"
    rebuild_projections || log "$NAME: the rebuild did not catch up"
    dur=$((($(now_ms) - t0) / 1000))
    python3 - "$S" "$NAME" "$fault" "$W" "$ACK_TIMEOUT_MS" "$dur" "${BASELINE_PER_S:-}" \
        "$(known_failure "$NAME")" <<'PY'
import glob, json, os, re, sys
d, name, fault, w, ack, dur, base, known = sys.argv[1:9]
def num(f):
    p = os.path.join(d, f)
    return int(open(p).read().split()[0]) if os.path.exists(p) and os.path.getsize(p) else None
faults = [l.rstrip("\n").split(None, 3) for l in open(os.path.join(d, "faults.log")) if l.strip()]
status = {l.split()[0]: l.split() for l in open(os.path.join(d, "status")) if l.strip()}
kills = {}
for f in faults:
    if f[1] == "killed":
        k = re.sub(r"-[0-9]+$", "", f[2])
        kills[k] = kills.get(k, 0) + 1
killed = [f for f in faults if f[1] == "killed"]
back = [f for f in faults if f[1] == "back"]
other = [f for f in faults if f[1] == "fault"]
unobserved = [" ".join(f[2:]) for f in faults if f[1] == "unobserved"]
expect = num("expect_faults") or 0
observed, detail = True, "none"
if fault != "none":
    exits = {k: sum(int(s[3]) for n, s in status.items() if re.sub(r"-[0-9]+$", "", n) == k)
             for k in kills if k not in ("kafka", "redis")}
    observed = len(killed) + len(other) == expect and len(back) >= len(killed) and \
        all(exits[k] >= kills[k] for k in exits) and not unobserved
    outage = [int(b[0]) - int(k[0]) for k, b in zip(killed, back)]
    detail = f"{fault}: {len(killed)} SIGKILL (back after {outage} ms), " \
        f"{len(other)} other faults {[' '.join(f[2:]) for f in other][:4]}, exits {exits}" + \
        (f", NOT observed: {unobserved}" if unobserved else "")
read_off = [l.strip() for l in open(os.path.join(d, "read_off.txt")) if l.strip()]
no_receipts = [l.strip() for l in open(os.path.join(d, "no_receipts.txt")) if l.strip()]
extra = {}
if os.path.exists(os.path.join(d, "meta_extra.json")):
    extra = json.load(open(os.path.join(d, "meta_extra.json")))
meta = {"scenario": name, "W": int(w), "kills": kills, "deadline_ms": int(ack),
        "view_bound_ms": 1500, "min_ops": 500, "min_view_polls": 100,
        "fault_observed": observed, "fault_detail": detail, "heal_ms": num("heal_ms"),
        "outcomes_done_ms": num("outcomes_done_ms"), "ledger_caught_ms": num("ledger_caught_ms"),
        "baseline_per_s": float(base) if base else None,
        "read_off": read_off, "no_receipts": no_receipts, "duration_s": int(dur),
        "require_outbound_dedupe": fault == "gwout_kill", "exit_allowance": 0,
        "known_failure": known or None}
# records the ledgers dead-lettered (distinct topic/partition/offset): outside ledger-kill's
# poison records every one is a valid event whose effect the projections lack (invariant 5)
dead = set()
for p in glob.glob(os.path.join(d, "state", "ledger-*.log")):
    for line in open(p, errors="replace"):
        if '"ledger.dead_letter"' in line:
            m = re.search(r'"msg":"(\S+) \[(\d+)\] offset (\d+): ([^"]{0,120})', line)
            key = m.groups()[:3] if m else line
            if m and key not in dead and len(dead) < 3:
                meta.setdefault("dead_letter_sample", []).append(" ".join(m.groups()))
            dead.add(key)
meta["ledger_dead_letters"] = len(dead)
meta["max_dead_letters"] = None if name == "ledger-kill" else 0
meta.update(extra)
json.dump(meta, open(os.path.join(d, "meta.json"), "w"), indent=1)
PY
    local v rc known
    v=$(python3 "$HERE/check.py" "$S")
    rc=$?
    echo "verdict $v"
    # a known failure (a bug found and reported, not fixed yet) fails only its invariants
    known=$(known_failure "$NAME")
    if [ $rc -ne 0 ] && [ -n "$known" ] && printf '%s' "$v" | python3 -c '
import json, sys
v = json.load(sys.stdin)
bad = {k for k, x in v["invariants"].items() if not x["ok"]}
sys.exit(0 if bad and bad <= set(sys.argv[1].split(",")) else 1)' "${known%%:*}"; then
        KNOWN=$((KNOWN + 1))
        KNOWN_NAMES="$KNOWN_NAMES $NAME"
        log "$NAME: KNOWN FAILURE of invariant ${known%%:*} (${known#*:}); history kept in $S"
        return 0
    fi
    [ $rc -ne 0 ] || [ -z "$known" ] || log "$NAME: the known failure did not occur this time"
    # the fault-free throughput the other scenarios must get back to (invariant 7)
    [ "$fault" != none ] || BASELINE_PER_S=$(printf '%s' "$v" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["invariants"]["7"]["outcomes_per_s"])')
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

# fresh_kafka: the suite's broker starts without the topics of earlier suite runs (their
# histories live in runs/, never in Kafka). Each scenario adds 50 partitions and nothing
# deletes them: a kept chaos stack had 5,451 in session 7. broker-pause's 12 s SIGSTOP outlasts
# the controller's broker.session.timeout.ms (9 s), so the broker is fenced and unfenced on
# SIGCONT and every partition changes leader twice; with 5,451 of them on two busy cores the
# group coordinator came back 17.6 s after the unfence, and gateway-out got its partitions 27 s
# after SIGCONT (invariant 7 failed). Kept when a broker of this stack still runs.
fresh_kafka() {
    local kdir=$LST_STACK_DIR/kafka pid
    pid=$(cat "$kdir/kafka.pid" 2>/dev/null)
    if [ -n "$pid" ] && [ -e "/proc/$pid" ]; then
        log "the broker of $LST_STACK_DIR still runs (pid $pid): earlier topics kept"
        return 0
    fi
    rm -rf "$kdir/data"
}

cleanup() {
    stop_services
    disk_redis_down
    proj_redis_down
    # a run interrupted during a pause fault must not leave the broker or Redis stopped
    local f
    for f in "$LST_STACK_DIR/kafka/kafka.pid" "$LST_STACK_DIR/redis/redis.pid"; do
        [ ! -s "$f" ] || kill -CONT "$(cat "$f")" 2>/dev/null
    done
    stack down >"$CHAOS_DIR/stack-down.log" 2>&1
}

# known_failure SCENARIO: "invariants:reason" of a bug a scenario found in a service (reported,
# not fixed here; the checker stays as strict as ever), empty otherwise.
known_failure() {
    case "$1" in
    # none at present (the four found so far are fixed; docs/chaos.md, findings)
    esac
}

# run_one SCENARIO DB: the scenario's knobs, then the scenario.
run_one() {
    local fault=${1//-/_}
    GWOUT_EXTRA="" GWIN_EXTRA="" LEDGER_EXTRA="" AS_UID1="" AS_UID2="" MESSAGE_SKEW_MS=0 SC_SETUP="" SC_TEARDOWN=""
    case "$1" in
    baseline) fault=none ;;
    gwout-kill | gwin-kill | broker-kill | redis-restart | broker-pause | redis-snapshot | stale) ;;
    cold-boot) ;;
    redis-pause) ;;
    redis-disk-full) SC_SETUP=disk_redis_up SC_TEARDOWN=disk_redis_down ;;
    proj-redis-loss) SC_SETUP=proj_redis_up SC_TEARDOWN=proj_redis_down ;;
    ledger-kill) LEDGER_EXTRA="LST_LEDGER_BATCH=50 LST_LEDGER_SCRIPT_EVENTS=8" ;;
    gateway-faults) # both gateways share the account's rate (one setting, as in deploy/.env)
        GWOUT_EXTRA="LST_GATEWAY_OUT_RATE_LIMIT=$GW_RATE"
        GWIN_EXTRA="LST_GATEWAY_OUT_RATE_LIMIT=$GW_RATE"
        ;;
    net-drop)
        if [ -z "${CHAOS_IN_NS:-}" ]; then
            log "net-drop needs the suite's network namespace; skipped"
            setup_failed net-drop
            return
        fi
        AS_UID1="setpriv --reuid=65533 --regid=65533 --clear-groups "
        AS_UID2="setpriv --reuid=65534 --regid=65534 --clear-groups "
        ;;
    clock-skew) MESSAGE_SKEW_MS=300000 ;;
    *)
        log "unknown scenario $1"
        FAILED=$((FAILED + 1))
        return
        ;;
    esac
    scenario "$1" "$2" "$fault" || setup_failed "$1"
    [ -z "$SC_TEARDOWN" ] || $SC_TEARDOWN
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
    fresh_kafka
    log "stack up in $LST_STACK_DIR${CHAOS_IN_NS:+ (network namespace $CHAOS_IN_NS)}"
    stack up >"$CHAOS_DIR/stack-up.log" 2>&1 || {
        tail -20 "$CHAOS_DIR/stack-up.log"
        echo "0 passed, 1 failed"
        exit 1
    }
    # Each scenario gets its own Redis database, flushed when it starts: 1 to 14 in turn (Redis
    # has 16, 0 is left alone, 15 is the rebuild's), so a list longer than 14 (--full has 16)
    # reuses them. The sixteenth once got database 16 and no service started.
    local db=1 s
    for s in $SCENARIOS; do
        run_one "$s" "$db"
        db=$((db % 14 + 1))
    done
    log "suite took $((($(now_ms) - t0) / 1000)) s"
    [ "$KNOWN" -eq 0 ] || log "known failures ($KNOWN, not counted as failed):$KNOWN_NAMES"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
main; exit $?  # one line: bash has parsed everything it runs, so editing this file mid-run is safe
