#!/usr/bin/env bash
# What the ledger's script costs Redis per event, in CPU instructions: deterministic, unlike
# events/s on a shared machine (callgrind counts instructions whatever else runs).
#
#   bench/ledger/lua_cost.sh BUILD_DIR [MESSAGES]
#
# Starts redis-server under valgrind's callgrind, counting only inside EVALSHA (the scripts,
# the commands they call and the glue between them), then applies the workload of
# bench/ledger/run.sh (MESSAGES dispatch messages, default 300, of 1 message, 10 outbound, 10
# sent, 10 delivered and 7 read records) kind by kind through the ledger's core
# (`bench_ledger apply`, no Kafka) and prints Redis's instructions per event of each kind and
# of the mix, and the share spent in the commands themselves (INFO commandstats: the rest is
# Lua and the redis.call glue). The kinds come in that order (message first, the live order);
# the Kafka benchmark interleaves topics, so its mix differs. Compare two builds of the ledger's
# scripts with the same MESSAGES: the counts repeat to within a fraction of a percent.
set -uo pipefail
BUILD=${1:?usage: bench/ledger/lua_cost.sh BUILD_DIR [MESSAGES]}
MESSAGES=${2:-300}
BENCH=$BUILD/bench/ledger/bench_ledger
for tool in valgrind callgrind_control callgrind_annotate; do
    command -v "$tool" >/dev/null || { echo "lua cost: skipped ($tool is not installed)"; exit 0; }
done
WORK=$(mktemp -d /tmp/ledger-lua-cost-XXXXXX)
vg_pid=""
cleanup() {
    if [ -n "$vg_pid" ]; then
        redis-cli -p "$PORT" SHUTDOWN NOSAVE >/dev/null 2>&1
        wait "$vg_pid" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/free_port.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/free_port.sh"
PORT=${BENCH_LEDGER_REDIS_PORT:-$(free_port)}
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" --collect-atstart=no \
    --toggle-collect=evalShaCommand redis-server --port "$PORT" --bind 127.0.0.1 \
    --dir "$WORK" --save '' --appendonly no >"$WORK/valgrind.log" 2>&1 &
vg_pid=$!
for _ in $(seq 1 300); do
    redis-cli -p "$PORT" PING >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$PORT" PING >/dev/null 2>&1 || { echo "lua cost: redis-server did not start"; exit 1; }
# the pid callgrind_control talks to is redis-server's own (valgrind runs it in its process)
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}'; }
cmd_usec() { # microseconds inside the commands the scripts called (everything but EVALSHA)
    redis-cli -p "$PORT" INFO commandstats | tr -d '\r' |
        awk -F'[:=,]' '/^cmdstat_/ && $1 !~ /evalsha|info|config|ping/ {s += $5} END {print s + 0}'
}
all_ir=0
all_n=0
printf 'lua cost: %d messages; Redis instructions per event, callgrind\n' "$MESSAGES"
for kind in message outbound sent delivered read; do
    callgrind_control -z "$vg_pid" >/dev/null 2>&1
    redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
    n=$(LST_REDIS_PORT=$PORT "$BENCH" apply "$MESSAGES" "$kind") || { echo "lua cost: apply $kind failed"; exit 1; }
    ev_usec=$(redis-cli -p "$PORT" INFO commandstats | tr -d '\r' |
        awk -F'[:=,]' '/^cmdstat_evalsha/ {print $5}')
    inner=$(cmd_usec)
    rm -f "$WORK"/cg.out.*
    callgrind_control -d "$kind" "$vg_pid" >/dev/null 2>&1
    dump=$(ls -t "$WORK"/cg.out.* 2>/dev/null | head -n 1)
    # LUA_COST_KEEP=DIR keeps each kind's callgrind dump (callgrind_annotate shows where it went)
    if [ -n "${LUA_COST_KEEP:-}" ] && [ -n "$dump" ]; then cp "$dump" "$LUA_COST_KEEP/cg.$kind"; fi
    ir=$(total "$dump")
    [ -n "$ir" ] || { echo "lua cost: no callgrind dump for $kind"; exit 1; }
    all_ir=$((all_ir + ir))
    all_n=$((all_n + n))
    awk -v k="$kind" -v ir="$ir" -v n="$n" -v e="${ev_usec:-0}" -v c="$inner" 'BEGIN {
        printf "lua cost: %-9s %7d events  %9.0f instructions/event  commands %4.1f %% of the script time\n",
            k, n, ir / n, (e > 0 ? 100 * c / e : 0) }'
done
awk -v ir="$all_ir" -v n="$all_n" 'BEGIN {
    printf "lua cost: the mix     %7d events  %9.0f instructions/event\n", n, ir / n }'
