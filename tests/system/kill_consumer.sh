#!/usr/bin/env bash
# System test against the REAL stack (Kafka + Redis, e.g. `scripts/stack.sh up`): records
# produced through the shared producer are consumed in another process through the shared
# consumer and counted in Redis; the consumer is SIGKILLed in the middle of a stream of N
# records and restarted. Afterwards every record must be in Redis (lost = 0); duplicates (the
# price of at-least-once after a crash) are counted and reported.
#
#   kill_consumer.sh PRODUCER_BIN CONSUMER_BIN      (ctest passes the built binaries)
#
# Environment: LST_KAFKA_BROKERS [127.0.0.1:19092], LST_REDIS_PORT [16379],
# KILL_TEST_N [10000], KILL_TEST_SLEEP_US [300] (per-record pace of the first consumer, so the
# kill lands mid-stream), KILL_TEST_WAIT_S [120], KILL_TEST_KEEP=1 keeps the Redis key, the
# topic and the work folder, KILL_TEST_DEBUG [cgrp,topic,fetch] are the librdkafka debug
# contexts of consumers 1 and 2 (KILL_TEST_PRODUCER_DEBUG [eos,topic,msg] the producer's; "" for
# none), logged into the work folder, which is kept only when a check fails. A lost id is
# located: its partition and offset (from the producer's acknowledgements) and what each
# consumer read of that partition (from their traces). Every run uses its own topic (6
# partitions), group and key.
# Finally a third consumer joins the group after the clean close of the second and must get
# nothing (close committed every done record).
# Prints one JSON summary line and "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail

PRODUCER=${1:?usage: kill_consumer.sh PRODUCER_BIN CONSUMER_BIN}
CONSUMER=${2:?usage: kill_consumer.sh PRODUCER_BIN CONSUMER_BIN}
export LST_KAFKA_BROKERS=${LST_KAFKA_BROKERS:-127.0.0.1:19092}
export LST_REDIS_PORT=${LST_REDIS_PORT:-16379}
N=${KILL_TEST_N:-10000}
SLEEP_US=${KILL_TEST_SLEEP_US:-300}
WAIT_S=${KILL_TEST_WAIT_S:-120}
DEBUG=${KILL_TEST_DEBUG-cgrp,topic,fetch}
PRODUCER_DEBUG=${KILL_TEST_PRODUCER_DEBUG-eos,topic,msg}
PARTITIONS=6
LOW=$((N / 5))       # kill when at least 20 % ...
HIGH=$((N * 4 / 5))  # ... and less than 80 % of the ids were seen
RUN="$(date +%s)-$$-$RANDOM"
TOPIC="lst.systest.kill.$RUN"
GROUP="systest-kill-$RUN"
KEY="lst:systest:kill:$RUN:seen"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kill_consumer.XXXXXX")

# shellcheck source=tests/system/kafka_check_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/kafka_check_lib.sh"
C1="" C2="" C3="" PROD=""

cleanup() {
    local pid
    for pid in "$C1" "$C2" "$C3" "$PROD"; do stop_pid "$pid"; done
    wait 2>/dev/null
    if [ "${KILL_TEST_KEEP:-0}" != 1 ]; then
        rcli DEL "$KEY" >/dev/null 2>&1
        # Only now, with no consumer left on it (deleting under a consumer can hang it).
        "$PRODUCER" delete-topic "$TOPIC" >/dev/null 2>&1
        [ "$FAILED" -ne 0 ] || rm -rf "$WORK"
    fi
}
trap cleanup EXIT

T0=$(now_ms)
# Commands that could take a counted id away again, server-wide (anything else sharing this
# Redis shows here): compared with the end when an id is lost.
deleters() {
    rcli INFO commandstats 2>/dev/null | tr -d '\r' |
        grep -E '^cmdstat_(flushdb|flushall|hdel|del|unlink|debug|swapdb|restore|rename):' |
        sed 's/,usec=.*//' | tr '\n' ' '
}
DELETERS_BEFORE=$(deleters)
echo "kill_consumer: N=$N topic=$TOPIC group=$GROUP brokers=$LST_KAFKA_BROKERS redis=:$LST_REDIS_PORT"

# --- the stack must be there -------------------------------------------------------------
if [ "$(rcli ping 2>/dev/null)" = PONG ]; then pass "redis reachable"; else
    fail "redis reachable" "no PONG on 127.0.0.1:$LST_REDIS_PORT (start the stack: scripts/stack.sh up)"
    finish
fi
if "$PRODUCER" ready 2>"$WORK/ready.err"; then pass "kafka reachable"; else
    fail "kafka reachable" "no metadata from $LST_KAFKA_BROKERS (start the stack: scripts/stack.sh up)"
    finish
fi
"$PRODUCER" create-topic "$TOPIC" "$PARTITIONS" 2>"$WORK/create.err"
expect "topic created ($PARTITIONS partitions)" $? "$(tail -3 "$WORK/create.err")"

# --- consumer 1 and the producer run concurrently; kill consumer 1 mid-stream ---------------
# Consumers 1 and 2 trace every record they count and log librdkafka's debug contexts (or, with
# KILL_TEST_DEBUG="", their assignments).
consumer_env() { # consumer_env NUMBER: the environment of consumer NUMBER
    printf 'KAFKA_SYS_TRACE=%s\n' "$WORK/trace$1.txt"
    if [ -n "$DEBUG" ]; then
        printf 'KAFKA_SYS_DEBUG=%s\nKAFKA_SYS_LOG=debug\n' "$DEBUG"
    else
        printf 'KAFKA_SYS_LOG=info\n'
    fi
}
mapfile -t C1_ENV < <(consumer_env 1)
env "${C1_ENV[@]}" "$CONSUMER" "$TOPIC" "$GROUP" "$KEY" "$SLEEP_US" >"$WORK/consumer1.out" \
    2>"$WORK/consumer1.err" &
C1=$!
KAFKA_SYS_MAP="$WORK/map.txt" KAFKA_SYS_DEBUG="$PRODUCER_DEBUG" \
    "$PRODUCER" produce "$TOPIC" "$N" 16 >"$WORK/producer.out" 2>"$WORK/producer.err" &
PROD=$!

partway() {
    local n
    n=$(hlen)
    [ "$n" -ge "$LOW" ] || ! alive "$C1"
}
KILLED_AT=-1
if wait_until 90000 partway && alive "$C1"; then
    kill -KILL "$C1"
    KILLED_AT=$(hlen)
fi
wait "$C1" 2>/dev/null
C1_STATUS=$?
C1=""
T_KILL=$(now_ms)
[ "$KILLED_AT" -ge "$LOW" ] && [ "$KILLED_AT" -lt "$HIGH" ]
expect "consumer SIGKILLed mid-stream (seen $KILLED_AT of $N at the kill)" $? \
    "wanted $LOW <= seen < $HIGH; consumer1: $(tail -3 "$WORK/consumer1.err")"
[ "$C1_STATUS" -eq 137 ]
expect "consumer 1 died of SIGKILL (status $C1_STATUS)" $?
SUM_AT_KILL=$(rcli --raw EVAL "local s=0 for _,v in ipairs(redis.call('HVALS',KEYS[1])) do s=s+tonumber(v) end return s" 1 "$KEY")

# --- restart in the same group; wait for everything ---------------------------------------
mapfile -t C2_ENV < <(consumer_env 2)
env "${C2_ENV[@]}" "$CONSUMER" "$TOPIC" "$GROUP" "$KEY" 0 >"$WORK/consumer2.out" \
    2>"$WORK/consumer2.err" &
C2=$!

producer_done() { ! alive "$PROD"; }
wait_until $((WAIT_S * 1000)) producer_done
wait "$PROD" 2>/dev/null
PROD_STATUS=$?
PROD=""
[ "$PROD_STATUS" -eq 0 ]
expect "producer: every record acknowledged ($(cat "$WORK/producer.out" 2>/dev/null))" $? \
    "status $PROD_STATUS: $(tail -3 "$WORK/producer.err")"

all_seen() { [ "$(hlen)" -ge "$N" ] || ! alive "$C2"; }
wait_until $((WAIT_S * 1000)) all_seen
T_ALL=$(now_ms)

# Redelivered records of a partition may still be in progress after the last new id was
# seen; wait (bounded) until the sum of the counts stops moving before closing consumer 2.
sum() { rcli --raw EVAL "local s=0 for _,v in ipairs(redis.call('HVALS',KEYS[1])) do s=s+tonumber(v) end return s" 1 "$KEY"; }
last=$(sum) stable=0 deadline=$(($(now_ms) + 30000))
while [ "$stable" -lt 8 ] && [ "$(now_ms)" -lt "$deadline" ] && alive "$C2"; do
    sleep 0.25
    cur=$(sum)
    if [ "$cur" = "$last" ]; then stable=$((stable + 1)); else stable=0 last=$cur; fi
done
alive "$C2"
expect "consumer 2 still running after catching up" $? "$(tail -5 "$WORK/consumer2.err")"
stop_pid "$C2"
wait "$C2" 2>/dev/null
C2_STATUS=$?
C2=""
[ "$C2_STATUS" -eq 0 ]
expect "consumer 2 closed cleanly on SIGTERM (status $C2_STATUS)" $? "$(tail -5 "$WORK/consumer2.err")"

# --- a clean close committed everything: a third consumer in the group gets nothing -------
SUM_BEFORE=$(sum)
KAFKA_SYS_LOG=info "$CONSUMER" "$TOPIC" "$GROUP" "$KEY" 0 >"$WORK/consumer3.out" \
    2>"$WORK/consumer3.err" &
C3=$!
joined() { grep -q '"kafka.consumer.assigned"' "$WORK/consumer3.err" || ! alive "$C3"; }
wait_until 30000 joined
# Absence can only be shown by waiting: 3 s after the assignment is ample for a fetch.
sleep 3
stop_pid "$C3"
wait "$C3" 2>/dev/null
C3_STATUS=$?
C3=""
C3_CONSUMED=$(sed -n 's/.*"consumed":\([0-9]*\).*/\1/p' "$WORK/consumer3.out")
[ "$C3_STATUS" -eq 0 ] && [ "${C3_CONSUMED:--1}" -eq 0 ] && [ "$(sum)" = "$SUM_BEFORE" ] &&
    grep -q '"kafka.consumer.assigned"' "$WORK/consumer3.err"
expect "after a clean close the group resumes at the end (consumer 3 got ${C3_CONSUMED:-?})" $? \
    "status $C3_STATUS; $(tail -3 "$WORK/consumer3.err")"

# For each lost id (at most 5): where the producer's acknowledgement put it, and which offsets
# of that partition each consumer counted (first..last, and the ones next to the lost offset).
locate_lost() {
    python3 - "$N" "$WORK" <<'PY'
import os, sys
n, work = int(sys.argv[1]), sys.argv[2]
seen = set()
with open(os.path.join(work, "seen.txt")) as f:
    lines = f.read().split("\n")
    seen = {lines[i] for i in range(0, len(lines) - 1, 2)}
place = {}
try:
    with open(os.path.join(work, "map.txt")) as f:
        for line in f:
            i, p, o = line.split()
            place[i] = (int(p), int(o))
except OSError:
    print("no map.txt: the producer's acknowledgements are not known")
traces = {}
for c in (1, 2):
    try:
        with open(os.path.join(work, "trace%d.txt" % c)) as f:
            traces[c] = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
    except OSError:
        traces[c] = []
for i in [str(k) for k in range(n) if str(k) not in seen][:5]:
    p, o = place.get(i, (-1, -1))
    out = ["id %s: partition %d offset %d;" % (i, p, o)]
    for c, rows in traces.items():
        offs = sorted(r[1] for r in rows if r[0] == p)
        near = [x for x in offs if abs(x - o) <= 3]
        out.append("consumer %d read %d of it (%s..%s, near: %s);" % (
            c, len(offs), offs[0] if offs else "-", offs[-1] if offs else "-", near))
    print(" ".join(out))
    # What librdkafka said about that partition's start (with the debug contexts on).
    for c in (1, 2):
        try:
            with open(os.path.join(work, "consumer%d.err" % c), errors="replace") as f:
                said = [line.strip()[:300] for line in f
                        if "[%d]" % p in line and any(k in line for k in (
                            "offset reset", "returned offset", "start fetching",
                            "Skip", "dropping", "back to pending", "Committing"))]
        except OSError:
            said = []
        for line in said[:12]:
            print("  consumer %d: %s" % (c, line))
PY
}

# --- what Redis holds ---------------------------------------------------------------------
rcli --raw HGETALL "$KEY" >"$WORK/seen.txt"
read -r DISTINCT VALID SUM OUT DUP_IDS MAX < <(awk -v n="$N" '
    NR % 2 == 1 { id = $0; next }
    { d++; s += $0; if ($0 > m) m = $0
      if (id ~ /^[0-9]+$/ && id + 0 < n) v++; else o++
      if ($0 > 1) dup++ }
    END { printf "%d %d %d %d %d %d\n", d, v, s, o, dup, m }' "$WORK/seen.txt")
LOST=$((N - VALID))
DUPLICATES=$((SUM - DISTINCT))
[ "$LOST" -eq 0 ]
expect "every id 0..$((N - 1)) is in Redis (lost $LOST)" $? \
    "$(locate_lost; printf 'Redis deleting commands before: %s\n  after: %s' \
        "${DELETERS_BEFORE:-none}" "$(deleters)")"
[ "$OUT" -eq 0 ]
expect "no id outside 0..$((N - 1)) ($OUT)" $?
echo "duplicates: $DUPLICATES extra deliveries over $DUP_IDS ids (max count $MAX); first ones:"
awk 'NR % 2 == 1 { id = $0; next } $0 > 1 { printf " %s x%s", id, $0; if (++k == 30) exit } END { print "" }' \
    "$WORK/seen.txt"
T_END=$(now_ms)
printf '{"test":"kill_consumer","n":%d,"partitions":%d,"killed_at_seen":%d,"sum_at_kill":%s,"distinct":%d,"lost":%d,"duplicates":%d,"duplicate_ids":%d,"max_count":%d,"out_of_range":%d,"kill_to_all_seen_ms":%d,"elapsed_ms":%d}\n' \
    "$N" "$PARTITIONS" "$KILLED_AT" "${SUM_AT_KILL:-0}" "$DISTINCT" "$LOST" "$DUPLICATES" \
    "$DUP_IDS" "$MAX" "$OUT" $((T_ALL - T_KILL)) $((T_END - T0))
finish
