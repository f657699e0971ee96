#!/usr/bin/env bash
# System test of the refill markers (docs/ledger.md "Refill markers", docs/view-api.md): the
# real ledger and view-api binaries, the test stack's Kafka (LST_KAFKA_BROKERS) and a
# redis-server of this test's own (it is restarted from an older snapshot):
#
#  1. phase A records, caught up; Redis snapshot (SAVE, copy of dump.rdb); phase B, caught up
#  2. Redis killed and restarted from the snapshot (a new run_id, watermarks of phase A): the
#     view answers 503 projections-refilling from the first moment until the ledger refilled;
#     a message of phase B is never "not found"; the ledger logged the refill and its end; the
#     marker is gone, "run" names the new server
#  3. Redis restarted from the same snapshot while the ledger is down: the restarted ledger
#     learns from the group's committed offsets how far it had applied, marks the partitions
#     behind them, and the view answers 503 until they are refilled (never "not found")
#  4. a marker left behind by a crashed ledger (beyond the end of its partition): the next
#     ledger cuts it back and clears it
#  5. Redis emptied while the ledger is down: 503 until the restarted ledger rebuilt
#
#   tests/system/refill_sys.sh BUILD_DIR SOURCE_DIR
# LST_REFILL_SYS_REDIS_PORT / LST_REFILL_SYS_HTTP_PORT pin the ports (default: free ones).
set -uo pipefail
BUILD=${1:?usage: refill_sys.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: refill_sys.sh BUILD_DIR SOURCE_DIR}
: "${LST_KAFKA_BROKERS:?LST_KAFKA_BROKERS must point at the test stack}"

LEDGER=$BUILD/services/ledger/ledger
VIEW=$BUILD/services/view-api/view-api
DRIVER=$BUILD/services/ledger/ledger_sys_driver
ADMIN=$BUILD/tools/lst-admin/lst-admin
WORK=$(mktemp -d /tmp/refill-sys-XXXXXX)
TOKEN=refill-sys-token-1
lpid="" vpid="" rpid="" ppid=""

# shellcheck source=scripts/lib/free_port.sh
. "$SRC/scripts/lib/free_port.sh"

export LST_TOPIC_PREFIX="refillsys$$."
export LST_REDIS_PORT=${LST_REFILL_SYS_REDIS_PORT:-$(free_port)}
export LST_REDIS_DB=0
export LST_LEDGER_GROUP_ID="refillsys$$"
export LST_KAFKA_SESSION_TIMEOUT_MS=6000
export LST_LOG_LEVEL=info
HTTP_PORT=${LST_REFILL_SYS_HTTP_PORT:-$(free_port)}
LEDGER_HTTP_PORT=$(free_port)

rcli() { redis-cli -h 127.0.0.1 -p "$LST_REDIS_PORT" "$@"; }
fail() {
    echo "FAIL: $*"
    echo "--- ledger log (last 20 lines)"
    tail -n 20 "$WORK/ledger.log" 2>/dev/null | cut -c1-300
    echo "--- view-api log (last 10 lines)"
    tail -n 10 "$WORK/view.log" 2>/dev/null | cut -c1-300
    exit 1
}
stop_pid() { # SIGTERM, bounded, then SIGKILL; only our own pids
    local p=$1
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 1 100); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}
cleanup() {
    stop_pid "$ppid"
    stop_pid "$lpid"
    stop_pid "$vpid"
    [ -n "$rpid" ] && kill -KILL "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
    [ -n "${REFILL_SYS_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

start_redis() {
    redis-server --port "$LST_REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save "" \
        --appendonly no --dbfilename dump.rdb >>"$WORK/redis.log" 2>&1 &
    rpid=$!
    local deadline=$((SECONDS + 20))
    until [ "$(rcli PING 2>/dev/null)" = PONG ]; do
        [ $SECONDS -lt $deadline ] || fail "redis-server did not start"
        sleep 0.05
    done
}
kill_redis() {
    kill -KILL "$rpid" 2>/dev/null
    wait "$rpid" 2>/dev/null
    rpid=""
}
start_ledger() {
    # a port of its own: the default one belongs to a running `./leitstand up`
    LST_HTTP_PORT=$LEDGER_HTTP_PORT "$LEDGER" >>"$WORK/ledger.log" 2>&1 &
    lpid=$!
}
stop_ledger() {
    stop_pid "$lpid"
    lpid=""
}
view() { # view PATH [BODY_FILE] -> prints the HTTP status
    curl -s -o "${2:-$WORK/body}" -w '%{http_code}' -m 5 -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$HTTP_PORT$1"
}
wait_view() { # wait_view PATH STATUS SECS
    local deadline=$((SECONDS + $3))
    until [ "$(view "$1")" = "$2" ]; do
        [ $SECONDS -lt $deadline ] || fail "GET $1 did not answer $2 within $3 s (last: $(cat "$WORK/body"))"
        sleep 0.05
    done
}
refill_fields() { rcli HKEYS lst:lg:refill | grep -vx run | wc -l; }
run_id() { rcli INFO server | tr -d '\r' | sed -n 's/^run_id://p'; }
# Polls GET $1 every ~20 ms until stopped; one line per answer: status and the problem type.
poll_view() {
    while :; do
        local code type
        code=$(view "$1" "$WORK/poll.body")
        type=$(jq -r '.type // ""' "$WORK/poll.body" 2>/dev/null)
        echo "$code $type" >>"$WORK/poll.txt"
        sleep 0.02
    done
}

# After a refill: the markers are cleared and "run" confirmed, the newest message answers 200,
# and the poll of it ($ppid, stopped here) never saw it "not found" or a 500, and saw 503
# projections-refilling meanwhile. $1 names the moment in the output.
refilled_without_going_back() {
    local deadline=$((SECONDS + 10))
    until [ "$(refill_fields)" -eq 0 ] && [ "$(rcli HGET lst:lg:refill run)" = "$(run_id)" ]; do
        [ $SECONDS -lt $deadline ] || fail "markers not cleared: $(rcli HGETALL lst:lg:refill | tr '\n' ' ')"
        sleep 0.05
    done
    wait_view "/api/messages/$NEWEST" 200 10
    sleep 0.3
    stop_pid "$ppid"
    ppid=""
    echo "view answers $1: $(sort "$WORK/poll.txt" | uniq -c | tr '\n' ';')"
    grep -q '^404' "$WORK/poll.txt" &&
        fail "a message shown before was 'not found': the view served rolled-back projections"
    grep -q '^500' "$WORK/poll.txt" && fail "the view answered 500"
    grep -q '^503 urn:leitstand:problem:projections-refilling' "$WORK/poll.txt" ||
        fail "the view never said projections-refilling"
}

mkdir -p "$WORK/redis"
printf '%s dispatcher anna Dispo-Nord\n' "$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)" \
    >"$WORK/tokens"
echo "== own redis-server :$LST_REDIS_PORT, topics (prefix $LST_TOPIC_PREFIX)"
start_redis
"$ADMIN" create-topics --brokers "$LST_KAFKA_BROKERS" --file "$SRC/proto/topics.tsv" \
    --prefix "$LST_TOPIC_PREFIX" >/dev/null || fail "create-topics"
LST_HTTP_PORT=$HTTP_PORT LST_VIEW_TOKENS_FILE=$WORK/tokens LST_BLOB_DIR=$WORK/blobs \
    "$VIEW" >>"$WORK/view.log" 2>&1 &
vpid=$!

echo "== phase A, snapshot, phase B"
start_ledger
"$DRIVER" produce A || fail "produce A"
"$DRIVER" caught-up 120 || fail "A not caught up"
[ "$(rcli HGET lst:lg:refill run)" = "$(run_id)" ] || fail "the ledger did not confirm its check"
[ "$(refill_fields)" -eq 0 ] || fail "a refill marker after a normal start"
wait_view /api/timeline 200 20
rcli SAVE >/dev/null || fail "SAVE"
cp "$WORK/redis/dump.rdb" "$WORK/snap.rdb"
"$DRIVER" produce B || fail "produce B"
"$DRIVER" caught-up 120 || fail "B not caught up"
NEWEST=$(rcli ZREVRANGE lst:lg:x:all 0 0)
[ -n "$NEWEST" ] || fail "no timeline"
wait_view "/api/messages/$NEWEST" 200 10
echo "newest message $NEWEST"

echo "== Redis restarted from the snapshot of phase A"
poll_view "/api/messages/$NEWEST" &
ppid=$!
old_run=$(run_id)
kill_redis
cp "$WORK/snap.rdb" "$WORK/redis/dump.rdb"
start_redis
[ "$(run_id)" != "$old_run" ] || fail "the same run_id after a restart"
"$DRIVER" caught-up 120 || fail "not refilled"
refilled_without_going_back "during the restart"
grep -q '"event":"ledger.refill"' "$WORK/ledger.log" || fail "no ledger.refill logged"
grep -q '"event":"ledger.refill_done"' "$WORK/ledger.log" || fail "no ledger.refill_done logged"
echo "refill: $(grep -c '"event":"ledger.refill"' "$WORK/ledger.log") partitions marked"

echo "== Redis went back while the ledger was down"
# The restarted ledger has no memory of what it applied; the group's committed offsets (the
# reader commits on close) say it, and the ledger marks the partitions behind them.
stop_ledger
refills_before=$(grep -c '"event":"ledger.refill"' "$WORK/ledger.log")
kill_redis
cp "$WORK/snap.rdb" "$WORK/redis/dump.rdb"
start_redis
: >"$WORK/poll.txt"
poll_view "/api/messages/$NEWEST" &
ppid=$!
wait_view /api/timeline 503 5
start_ledger
"$DRIVER" caught-up 120 || fail "not refilled after the rollback"
refilled_without_going_back "after the rollback"
[ "$(grep -c '"event":"ledger.refill"' "$WORK/ledger.log")" -gt "$refills_before" ] ||
    fail "the restarted ledger marked no partition"

echo "== a marker left behind by a crashed ledger"
stop_ledger
rcli HSET lst:lg:refill "${LST_TOPIC_PREFIX}lst.sent:0" 999999999 >/dev/null
wait_view /api/timeline 503 5
start_ledger
deadline=$((SECONDS + 30))
until [ "$(refill_fields)" -eq 0 ]; do
    [ $SECONDS -lt $deadline ] || fail "the stale marker was not cleared"
    sleep 0.05
done
wait_view /api/timeline 200 10

echo "== Redis emptied while the ledger is down: a rebuild"
stop_ledger
: >"$WORK/poll.txt"
rcli FLUSHALL >/dev/null
poll_view "/api/messages/$NEWEST" &
ppid=$!
wait_view /api/timeline 503 5
start_ledger
"$DRIVER" caught-up 120 || fail "not rebuilt"
wait_view "/api/messages/$NEWEST" 200 15
sleep 0.3
stop_pid "$ppid"
ppid=""
echo "view answers during the rebuild: $(sort "$WORK/poll.txt" | uniq -c | tr '\n' ';')"
grep -q '^404' "$WORK/poll.txt" && fail "a message was 'not found' during the rebuild"
[ "$(refill_fields)" -eq 0 ] || fail "markers left after the rebuild"
if grep -q '"event":"ledger.script_failed"' "$WORK/ledger.log"; then
    fail "a script failed"
fi
echo "PASS"
