#!/usr/bin/env bash
# System test of the ledger against the real Kafka and Redis of the test stack
# (scripts/test.sh exports LST_KAFKA_BROKERS and LST_REDIS_PORT):
#
#  1. topics with this test's own prefix, this test's own Redis database (flushed first)
#  2. phase A records (directory, 100 messages with fan-out and outcomes) produced; the ledger
#     starts and is killed with SIGKILL mid-stream, then restarted
#  3. phase B records (100 more messages, every receipt, replies, a broken record, an erasure)
#     while the ledger runs; meanwhile Redis "loses" recent progress (every watermark is moved
#     back by 25) and the ledger must refill from Kafka
#  4. caught up: the projections are checked (aggregates, indexes, read receipts off, erasure,
#     credits) and dumped; the broken record is on lst.sent.dlq
#  5. `ledger --rebuild` drops everything and replays Kafka: the dump is identical
#
#   tests/system/ledger_sys.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
BUILD=${1:?usage: ledger_sys.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: ledger_sys.sh BUILD_DIR SOURCE_DIR}
: "${LST_KAFKA_BROKERS:?LST_KAFKA_BROKERS must point at the test stack}"
: "${LST_REDIS_PORT:?LST_REDIS_PORT must point at the test stack}"

export LST_TOPIC_PREFIX="ledgersys$$."
export LST_REDIS_DB=${LST_LEDGER_SYS_DB:-11}
export LST_LEDGER_GROUP_ID="ledgersys$$"
export LST_KAFKA_SESSION_TIMEOUT_MS=6000
export LST_LOG_LEVEL=info
export LST_LEDGER_RULES="damage=keyword:unfall,schaden;werkstatt=department:Werkstatt"
LEDGER=$BUILD/services/ledger/ledger
DRIVER=$BUILD/services/ledger/ledger_sys_driver
ADMIN=$BUILD/tools/lst-admin/lst-admin
WORK=$(mktemp -d /tmp/ledger-sys-XXXXXX)
pid=""

rcli() { redis-cli -h 127.0.0.1 -p "$LST_REDIS_PORT" -n "$LST_REDIS_DB" "$@"; }
fail() {
    echo "FAIL: $*"
    echo "--- ledger log (last 30 lines)"
    tail -n 30 "$WORK/ledger.log" 2>/dev/null
    exit 1
}
stop_ledger() { # SIGTERM, bounded, then SIGKILL; only our own pid
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=""
}
cleanup() {
    stop_ledger
    rcli FLUSHDB >/dev/null 2>&1
    [ -n "${LEDGER_SYS_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=scripts/lib/free_port.sh
. "$SRC/scripts/lib/free_port.sh"
start_ledger() { # retried on another port when the HTTP port was taken meanwhile
    local deadline
    touch "$WORK/ledger.log" # the started ledger opens it a moment after the first grep below
    for _ in 1 2 3; do
        local before
        before=$(grep -c '"event":"service.started"' "$WORK/ledger.log" 2>/dev/null)
        LST_HTTP_PORT=$(free_port) "$LEDGER" "$@" >>"$WORK/ledger.log" 2>&1 &
        pid=$!
        deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            [ "$(grep -c '"event":"service.started"' "$WORK/ledger.log")" -gt "${before:-0}" ] &&
                return 0
            sleep 0.05
        done
        wait "$pid" 2>/dev/null
    done
    fail "the ledger did not start"
}
progress() { "$DRIVER" progress 2>/dev/null || echo 0; }
wait_progress() { # wait until at least $1 records are applied
    local deadline=$((SECONDS + 120))
    while [ "$(progress)" -lt "$1" ]; do
        [ $SECONDS -lt $deadline ] || fail "the ledger did not apply $1 records in time"
        kill -0 "$pid" 2>/dev/null || fail "the ledger exited"
        sleep 0.05
    done
}

echo "== topics (prefix $LST_TOPIC_PREFIX), Redis db $LST_REDIS_DB"
rcli FLUSHDB >/dev/null || fail "redis unreachable"
"$ADMIN" create-topics --brokers "$LST_KAFKA_BROKERS" --file "$SRC/proto/topics.tsv" \
    --prefix "$LST_TOPIC_PREFIX" >/dev/null || fail "create-topics"

echo "== phase A, then SIGKILL of the ledger mid-stream"
start_ledger
"$DRIVER" produce A || fail "produce A"
wait_progress 600
kill -KILL "$pid"
wait "$pid" 2>/dev/null
pid=""
echo "killed at $(progress) records applied"

echo "== restart; phase B while running; Redis loses recent progress"
start_ledger
"$DRIVER" produce B || fail "produce B"
wait_progress 6000
rcli EVAL "local h = redis.call('HGETALL', KEYS[1]) for i = 1, #h, 2 do local v = tonumber(h[i+1]) - 25 if v < -1 then v = -1 end redis.call('HSET', KEYS[1], h[i], v) end return #h / 2" 1 lst:lg:wm >/dev/null
# and the ledger's connections drop, as after a Redis restart from an older snapshot
for id in $(rcli CLIENT LIST | awk -v db="db=$LST_REDIS_DB" '$0 ~ db && $0 !~ /cmd=client/ {sub("id=", "", $1); print $1}'); do
    rcli CLIENT KILL ID "$id" >/dev/null
done
echo "watermarks moved back at $(progress) records"
"$DRIVER" caught-up 240 || fail "not caught up"

echo "== checks"
"$DRIVER" check || fail "projection checks"
dlq=$("$DRIVER" high lst.sent.dlq 0) || fail "dlq offsets"
[ "$dlq" -ge 1 ] || fail "the broken record is not on lst.sent.dlq"
echo "lst.sent.dlq holds $dlq record(s)"
# lost progress is noticed either by a script (a gap) or, when idle, by the reconnect; either
# way the ledger reassigns from the watermarks (the identical dumps below prove the refill)
grep -q '"event":"redis.connected".*(connection 2)' "$WORK/ledger.log" ||
    fail "the ledger did not reconnect to Redis"
if grep -q '"event":"ledger.script_failed"' "$WORK/ledger.log"; then
    fail "a script failed"
fi
"$DRIVER" dump "$WORK/before.txt" || fail "dump"
stop_ledger

echo "== ledger --rebuild: drop every projection, replay Kafka"
start_ledger --rebuild
deadline=$((SECONDS + 60))
until grep -q '"event":"ledger.rebuild"' "$WORK/ledger.log"; do # the drop is done
    [ $SECONDS -lt $deadline ] || fail "the rebuild did not drop the projections"
    kill -0 "$pid" 2>/dev/null || fail "the ledger exited"
    sleep 0.05
done
"$DRIVER" caught-up 240 || fail "rebuild not caught up"
"$DRIVER" dump "$WORK/after.txt" || fail "dump"
stop_ledger
if ! cmp -s "$WORK/before.txt" "$WORK/after.txt"; then
    diff "$WORK/before.txt" "$WORK/after.txt" | head -n 20 | cut -c1-300
    fail "the rebuilt projections differ"
fi
echo "rebuilt projections identical ($(wc -l <"$WORK/after.txt") keys)"
echo "PASS"
