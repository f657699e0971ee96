#!/usr/bin/env bash
# What would a port of today's ledger scripts to C cost Redis, keys and commands unchanged?
# The lower bound, measured: the commands the scripts run, sent by a client instead.
#
#   bench/ledger/script_replay.sh BUILD_DIR [MESSAGES]
#
# 1. `bench_ledger apply` (the ledger's core and scripts, no Kafka) applies the workload of
#    bench/ledger/run.sh (MESSAGES messages, default 2000, kind by kind) on a fresh server
#    configured as production's projections Redis (persist.sh), Redis's main-thread CPU per
#    event noted per kind;
# 2. the same again on another fresh server under `redis-cli MONITOR`, which records every
#    command the scripts run (client `lua`);
# 3. those commands, in their order, go to a third fresh server through `redis-cli --pipe`
#    (RESP, all pipelined: the cheapest way a client can send them), CPU per event per kind.
# A real port needs more than step 3 sends: reads whose results the scripts use in place
# (a client waits for them: round trips, not Redis CPU) and a WATCH or a script to keep two
# ledgers safe. So step 3 is what the port could reach at best. Neither side includes the
# ledger's own CPU, Kafka or the plumbing outside the scripts (watermark checks, refill).
set -uo pipefail
BUILD=${1:?usage: bench/ledger/script_replay.sh BUILD_DIR [MESSAGES]}
MESSAGES=${2:-2000}
BENCH=$BUILD/bench/ledger/bench_ledger
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d /tmp/ledger-script-replay-XXXXXX)
KINDS="message outbound sent delivered read"
# shellcheck source=bench/ledger/bench_redis.sh
. "$HERE/bench_redis.sh"
monitor_pid=""
stop_monitor() {
    [ -z "$monitor_pid" ] || kill "$monitor_pid" 2>/dev/null
    monitor_pid=""
}
cleanup() {
    stop_monitor
    stop_redis
    rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/free_port.sh
. "$HERE/../../scripts/lib/free_port.sh"
PORT=${BENCH_LEDGER_REDIS_PORT:-$(free_port)}
export LST_REDIS_PORT=$PORT LST_REDIS_DB=0 LST_LOG_LEVEL=warn
# shellcheck source=bench/ledger/persist.sh
. "$HERE/persist.sh"
ledger_redis_persist || exit 2

per_event() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {printf "%.2f", (b - a) * 1e6 / n}'; }

declare -A N US_SCRIPT US_REPLAY CMDS
# 1. today's scripts, measured
start_redis
for kind in $KINDS; do
    c0=$(main_cpu)
    N[$kind]=$("$BENCH" apply "$MESSAGES" "$kind") || { echo "script replay: apply $kind failed"; exit 1; }
    US_SCRIPT[$kind]=$(per_event "$c0" "$(main_cpu)" "${N[$kind]}")
done
stop_redis

# 2. the same, recorded
start_redis
redis-cli -p "$PORT" MONITOR >"$WORK/monitor.log" &
monitor_pid=$!
sleep 0.3
for kind in $KINDS; do
    redis-cli -p "$PORT" ECHO "mark:$kind" >/dev/null
    "$BENCH" apply "$MESSAGES" "$kind" >/dev/null || { echo "script replay: apply $kind failed"; exit 1; }
done
redis-cli -p "$PORT" ECHO "mark:end" >/dev/null
for _ in $(seq 1 100); do
    grep -q '"mark:end"' "$WORK/monitor.log" && break
    sleep 0.1
done
stop_monitor
stop_redis
mkdir -p "$WORK/resp"
while read -r part n; do
    CMDS[$part]=$n
done < <(python3 "$HERE/monitor_to_resp.py" "$WORK/resp" <"$WORK/monitor.log")
rm -f "$WORK/monitor.log"

# 3. the recorded commands sent by a client
start_redis
for kind in $KINDS; do
    c0=$(main_cpu)
    redis-cli -p "$PORT" --pipe <"$WORK/resp/$kind.resp" >"$WORK/pipe.$kind.log" 2>&1
    # every command recorded must be replayed without an error, or the figure is not theirs
    grep -q "errors: 0, replies: ${CMDS[$kind]:-x}\$" "$WORK/pipe.$kind.log" ||
        { echo "script replay: replay of $kind: $(tail -1 "$WORK/pipe.$kind.log"), ${CMDS[$kind]:-no} commands recorded"; exit 1; }
    US_REPLAY[$kind]=$(per_event "$c0" "$(main_cpu)" "${N[$kind]}")
done
stop_redis

printf 'script replay: %d messages; Redis main-thread CPU per event (µs), persistence %s\n' \
    "$MESSAGES" "${BENCH_LEDGER_REDIS_PERSIST:-rdb}"
printf '%-10s %8s %16s %18s %16s\n' kind events "today's scripts" "commands by client" "commands/event"
tot_s=0 tot_r=0 events=0
for kind in $KINDS; do
    n=${N[$kind]}
    printf '%-10s %8s %16s %18s %16s\n' "$kind" "$n" "${US_SCRIPT[$kind]}" "${US_REPLAY[$kind]}" \
        "$(awk -v c="${CMDS[$kind]:-0}" -v n="$n" 'BEGIN {printf "%.2f", c / n}')"
    tot_s=$(awk -v t="$tot_s" -v u="${US_SCRIPT[$kind]}" -v n="$n" 'BEGIN {print t + u * n}')
    tot_r=$(awk -v t="$tot_r" -v u="${US_REPLAY[$kind]}" -v n="$n" 'BEGIN {print t + u * n}')
    events=$((events + n))
done
awk -v s="$tot_s" -v r="$tot_r" -v n="$events" 'BEGIN {
    printf "%-10s %8d %16.2f %18.2f\n", "mix", n, s / n, r / n
    printf "script replay: Redis alone could apply %.0f events/s with the scripts and at best %.0f with their commands sent from C\n", n * 1e6 / s, n * 1e6 / r
}'
