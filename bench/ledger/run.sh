#!/usr/bin/env bash
# Events applied per second from Kafka into Redis by the ledger.
#
#   bench/ledger/run.sh BUILD_DIR [--quick] [MESSAGES]
#
# Needs a Kafka broker (LST_KAFKA_BROKERS, e.g. the stack of scripts/stack.sh); starts its own
# redis-server (production's projections Redis: no AOF, RDB snapshots, hash-max-listpack-value
# 256; BENCH_LEDGER_REDIS_PERSIST=aof for one with AOF, bench/ledger/persist.sh) on
# a free port in a temporary folder, creates topics with a fresh prefix, produces MESSAGES dispatch messages (default
# 20000, --quick 2000) of 38 records each (message, 10 outbound, 10 sent, 10 delivered and 7
# read receipts), starts the ledger and measures until every record is applied. Prints the
# rate and Redis's memory for the projections. BENCH_LEDGER_STATS=1 adds Redis's per-command
# statistics, BENCH_LEDGER_PERF=1 a perf profile of Redis and the ledger
# (BENCH_LEDGER_PERF=<existing dir> also keeps the perf.data files there).
# BENCH_LEDGER_REDIS_PORT / BENCH_LEDGER_HTTP_PORT: fixed ports instead of free random ones
# (for runs that must stay in a given port range). BENCH_LEDGER_BIN=PATH runs another ledger
# binary (before/after comparisons on the same build's tools).
set -uo pipefail
BUILD=${1:?usage: bench/ledger/run.sh BUILD_DIR [--quick] [MESSAGES]}
QUICK=${2:-}
MESSAGES=${3:-20000}
[ "$QUICK" = --quick ] && MESSAGES=${3:-2000}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${LST_KAFKA_BROKERS:-}" ]; then
    echo "bench ledger: skipped (set LST_KAFKA_BROKERS to a running broker, e.g. scripts/stack.sh up)"
    exit 0
fi
BENCH=$BUILD/bench/ledger/bench_ledger
WORK=$(mktemp -d /tmp/bench-ledger-XXXXXX)
redis_pid=""
ledger_pid=""
topics=""
cleanup() {
    [ -n "$ledger_pid" ] && kill -TERM "$ledger_pid" 2>/dev/null && wait "$ledger_pid" 2>/dev/null
    [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    # the run's topics (~0.4 GB at the default size) would otherwise stay in the broker
    [ -n "$topics" ] && "$BUILD/tools/lst-admin/lst-admin" delete-topics --brokers \
        "$LST_KAFKA_BROKERS" --file "$ROOT/proto/topics.tsv" --prefix "$topics" >/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/free_port.sh
. "$ROOT/scripts/lib/free_port.sh"

export LST_REDIS_PORT=${BENCH_LEDGER_REDIS_PORT:-$(free_port)}
export LST_REDIS_DB=0
export LST_TOPIC_PREFIX="benchledger$$."
export LST_LOG_LEVEL=warn
# shellcheck source=bench/ledger/persist.sh
. "$ROOT/bench/ledger/persist.sh"
ledger_redis_persist || exit 2
redis-server --port "$LST_REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" "${PERSIST[@]}" \
    --hash-max-listpack-value 256 --daemonize no >"$WORK/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 100); do
    redis-cli -p "$LST_REDIS_PORT" PING >/dev/null 2>&1 && break
    sleep 0.05
done
topics=$LST_TOPIC_PREFIX
"$BUILD/tools/lst-admin/lst-admin" create-topics --brokers "$LST_KAFKA_BROKERS" \
    --file "$ROOT/proto/topics.tsv" --prefix "$LST_TOPIC_PREFIX" >/dev/null || exit 1
echo "bench ledger: producing $MESSAGES messages ..."
records=$("$BENCH" produce "$MESSAGES") || { echo "produce failed"; exit 1; }
echo "bench ledger: $records records in Kafka; starting the ledger"
LST_HTTP_PORT=${BENCH_LEDGER_HTTP_PORT:-$(free_port)} "${BENCH_LEDGER_BIN:-$BUILD/services/ledger/ledger}" >"$WORK/ledger.log" 2>&1 &
ledger_pid=$!
perf_pids=()
if [ -n "${BENCH_LEDGER_PERF:-}" ]; then # profiles of Redis and the ledger while they work
    for who in redis:$redis_pid ledger:$ledger_pid; do
        perf record -g -o "$WORK/${who%%:*}.perf" -p "${who#*:}" >/dev/null 2>&1 &
        perf_pids+=($!)
    done
fi
"$BENCH" wait "$records" 600 || { tail -n 20 "$WORK/ledger.log"; exit 1; }
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
rcpu=$(redis-cli -p "$LST_REDIS_PORT" INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.2f", s}')
echo "bench ledger: CPU seconds used: ledger $(cpu "$ledger_pid"), redis-server $rcpu"
if [ -n "${BENCH_LEDGER_STATS:-}" ]; then # where Redis spends its time, by command
    redis-cli -p "$LST_REDIS_PORT" INFO commandstats | tr -d '\r' | grep '^cmdstat' |
        sed 's/cmdstat_//; s/:calls=/ calls=/' | sort -t= -k3 -n -r | head -n 20
fi
if [ ${#perf_pids[@]} -gt 0 ]; then
    kill -INT "${perf_pids[@]}" 2>/dev/null
    wait "${perf_pids[@]}" 2>/dev/null
    for who in redis ledger; do
        [ -f "$WORK/$who.perf" ] || continue
        echo "bench ledger: profile of $who (self time, top 25)"
        perf report -i "$WORK/$who.perf" --no-children --sort sym -g none --percent-limit 0.7 \
            2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 25
        [ -d "$BENCH_LEDGER_PERF" ] && cp "$WORK/$who.perf" "$BENCH_LEDGER_PERF/"
    done
fi
mem=$(redis-cli -p "$LST_REDIS_PORT" INFO memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')
keys=$(redis-cli -p "$LST_REDIS_PORT" DBSIZE)
echo "bench ledger: Redis holds $keys keys, $((mem / 1048576)) MiB for $MESSAGES messages x 10 recipients"
