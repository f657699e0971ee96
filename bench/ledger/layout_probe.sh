#!/usr/bin/env bash
# Would the read-free layout sketched in docs/ledger.md reach the issue's 50,000 events/s?
# Measures Redis's CPU per event of today's scripts and of that layout's commands for the same
# workload, on two fresh servers configured as production's projections Redis (no AOF, RDB
# snapshots; BENCH_LEDGER_REDIS_PERSIST=aof for AOF fsynced every second, persist.sh).
#
#   bench/ledger/layout_probe.sh BUILD_DIR [MESSAGES]
#
# Today's layout: `bench_ledger apply` (the ledger's core and scripts, no Kafka). The read-free
# layout: `bench_ledger probe` (probe.c: the commands it would send, pipelined, no scripts).
# Both apply the workload of bench/ledger/run.sh (MESSAGES dispatch messages, default 20000,
# of 1 message, 10 outbound, 10 sent, 10 delivered and 7 read records) kind by kind in that
# order, and the script prints Redis's main-thread CPU per event of each kind and of the mix.
# What the figures leave out on both sides: Kafka and the ledger's own CPU (~3 µs of Redis and
# ~6 µs of ledger per event in the no-op run of docs/ledger.md).
set -uo pipefail
BUILD=${1:?usage: bench/ledger/layout_probe.sh BUILD_DIR [MESSAGES]}
MESSAGES=${2:-20000}
BENCH=$BUILD/bench/ledger/bench_ledger
WORK=$(mktemp -d /tmp/ledger-layout-probe-XXXXXX)
# shellcheck source=bench/ledger/bench_redis.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench_redis.sh"
cleanup() {
    stop_redis
    rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/free_port.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/free_port.sh"
PORT=${BENCH_LEDGER_REDIS_PORT:-$(free_port)}
export LST_REDIS_PORT=$PORT LST_REDIS_DB=0 LST_LOG_LEVEL=warn

# shellcheck source=bench/ledger/persist.sh
. "$(dirname "${BASH_SOURCE[0]}")/persist.sh"
ledger_redis_persist || exit 2

declare -A US N CMDS
run_layout() { # $1: apply or probe
    start_redis
    for kind in message outbound sent delivered read; do
        c0=$(main_cpu)
        k0=$(info total_commands_processed)
        n=$("$BENCH" "$1" "$MESSAGES" "$kind") || { echo "layout probe: $1 $kind failed"; exit 1; }
        c1=$(main_cpu)
        k1=$(info total_commands_processed)
        N[$1.$kind]=$n
        US[$1.$kind]=$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN {printf "%.2f", (b - a) * 1e6 / n}')
        CMDS[$1.$kind]=$(awk -v a="$k0" -v b="$k1" -v n="$n" 'BEGIN {printf "%.2f", (b - a - 4) / n}')
    done
    stop_redis
}

run_layout apply
run_layout probe
printf 'layout probe: %d messages; Redis main-thread CPU per event (µs), persistence %s\n' "$MESSAGES" \
    "${BENCH_LEDGER_REDIS_PERSIST:-rdb}"
printf '%-10s %10s %14s %12s %18s\n' kind events "today's scripts" "read-free" "commands/event (read-free)"
tot_a=0
tot_p=0
events=0
for kind in message outbound sent delivered read; do
    n=${N[apply.$kind]}
    printf '%-10s %10s %14s %12s %18s\n' "$kind" "$n" "${US[apply.$kind]}" "${US[probe.$kind]}" \
        "${CMDS[probe.$kind]}"
    tot_a=$(awk -v t="$tot_a" -v u="${US[apply.$kind]}" -v n="$n" 'BEGIN {print t + u * n}')
    tot_p=$(awk -v t="$tot_p" -v u="${US[probe.$kind]}" -v n="$n" 'BEGIN {print t + u * n}')
    events=$((events + n))
done
awk -v a="$tot_a" -v p="$tot_p" -v n="$events" 'BEGIN {
    printf "%-10s %10d %14.2f %12.2f\n", "mix", n, a / n, p / n
    printf "layout probe: Redis alone could apply %.0f events/s today and %.0f with the read-free layout (1 s / CPU per event)\n", n * 1e6 / a, n * 1e6 / p
}'
