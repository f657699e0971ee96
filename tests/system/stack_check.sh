#!/usr/bin/env bash
# System check of scripts/stack.sh and lst-admin against a real Kafka broker and the real Redis
# servers (the state Redis with AOF, the projections Redis with RDB only).
# Brings a second stack up on alternate ports in a fresh folder under the build dir (never the
# developer's .stack on the default ports), checks it, and takes it down again, asserting that
# no process of it remains. Prints "N passed, N failed"; exits non-zero on any failure.
#
# Environment: LST_BUILD_DIR (default build), STACK_CHECK_KAFKA_PORT [29092],
# STACK_CHECK_CONTROLLER_PORT [29093], STACK_CHECK_REDIS_PORT [26379],
# STACK_CHECK_PROJ_REDIS_PORT [26380], STACK_CHECK_KEEP=1 keeps the stack folder afterwards (it
# is kept anyway when a check failed).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${LST_BUILD_DIR:-build}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export LST_BUILD_DIR="$BUILD_DIR"
export LST_KAFKA_PORT="${STACK_CHECK_KAFKA_PORT:-29092}"
export LST_KAFKA_CONTROLLER_PORT="${STACK_CHECK_CONTROLLER_PORT:-29093}"
export LST_REDIS_PORT="${STACK_CHECK_REDIS_PORT:-26379}"
export LST_PROJ_REDIS_PORT="${STACK_CHECK_PROJ_REDIS_PORT:-26380}"
export LST_SIM_PORT="${STACK_CHECK_SIM_PORT:-28090}"
export LST_TOPIC_PREFIX=""
STACK_SH="$ROOT/scripts/stack.sh"
ADMIN="$BUILD_DIR/tools/lst-admin/lst-admin"
BROKERS="127.0.0.1:$LST_KAFKA_PORT"

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$1"; [ $# -lt 2 ] || printf '     %s\n' "$2"; }
check() { # check NAME COMMAND...: passes when the command exits 0
    local name="$1"
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
quiet() { "$@" >/dev/null; }
now_ms() { date +%s%3N; }

if [ ! -x "$ADMIN" ]; then
    echo "stack_check: $ADMIN missing; run scripts/setup.sh first" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
# Data under /tmp can be cleaned away under a running broker: keep it in the build dir.
mkdir -p "$BUILD_DIR"
export LST_STACK_DIR
LST_STACK_DIR="$(mktemp -d "$BUILD_DIR/stack-check.XXXXXX")"
OUT="$LST_STACK_DIR.out"

cleanup() {
    # Whatever happened, take the stack down: a failed check must not leave a broker behind.
    "$STACK_SH" down >/dev/null 2>&1 || true
    if [ "$FAILED" -eq 0 ] && [ "${STACK_CHECK_KEEP:-0}" != 1 ]; then
        rm -rf "$LST_STACK_DIR" "$OUT" "$OUT".*
    else
        echo "stack_check: stack folder kept: $LST_STACK_DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Processes (not zombies) whose command line names the stack folder.
stack_processes() {
    local p
    for p in $(pgrep -f -- "$LST_STACK_DIR" || true); do
        [ "$p" != "$$" ] || continue
        [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] && continue
        [ -e "/proc/$p" ] && echo "$p"
    done
}
pid_alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
pid_gone() { ! pid_alive "$1"; }
cmdline_has_stack() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$LST_STACK_DIR"; }

# --- up ---------------------------------------------------------------------------------------
t0=$(now_ms)
if "$STACK_SH" up >"$OUT" 2>&1; then
    pass "up on ports $LST_KAFKA_PORT/$LST_KAFKA_CONTROLLER_PORT/$LST_REDIS_PORT/$LST_PROJ_REDIS_PORT ($(($(now_ms) - t0)) ms)"
else
    fail "up" "$(tail -n 30 "$OUT")"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
KPID="$(cat "$LST_STACK_DIR/kafka/kafka.pid" 2>/dev/null || echo none)"
RPID="$(cat "$LST_STACK_DIR/redis/redis.pid" 2>/dev/null || echo none)"
PROJ_PID="$(cat "$LST_STACK_DIR/redis-proj/redis.pid" 2>/dev/null || echo none)"
check "kafka pid $KPID runs with the stack folder in its command line" cmdline_has_stack "$KPID"
check "redis pid $RPID runs with the stack folder in its command line" cmdline_has_stack "$RPID"
check "redis-proj pid $PROJ_PID runs with the stack folder in its command line" cmdline_has_stack "$PROJ_PID"
# Java may show the IPv4 socket as ::ffff:127.0.0.1; either form is loopback only.
listen_loopback_only() {
    local addrs
    addrs="$(ss -Hltn "sport = :$1" | awk '{print $4}')"
    [ -n "$addrs" ] && ! grep -qvE "^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):$1\$" <<<"$addrs"
}
check "kafka listens on 127.0.0.1:$LST_KAFKA_PORT only" listen_loopback_only "$LST_KAFKA_PORT"
check "kafka controller listens on 127.0.0.1 only" listen_loopback_only "$LST_KAFKA_CONTROLLER_PORT"
check "redis listens on 127.0.0.1 only" listen_loopback_only "$LST_REDIS_PORT"
check "redis-proj listens on 127.0.0.1 only" listen_loopback_only "$LST_PROJ_REDIS_PORT"
check "kafka storage formatted in the stack folder" test -f "$LST_STACK_DIR/kafka/data/meta.properties"

# --- status -----------------------------------------------------------------------------------
if "$STACK_SH" status >"$OUT.status" 2>&1; then pass "status exits 0"; else fail "status exits 0" "$(cat "$OUT.status")"; fi
check "status shows kafka up" grep -q '^kafka  up' "$OUT.status"
check "status shows redis up" grep -q '^redis  up' "$OUT.status"
check "status shows redis-proj up" grep -q "^redis-proj up .* port $LST_PROJ_REDIS_PORT " "$OUT.status"

# Every topic of the table with exactly its partition count.
table_ok=1
while IFS=$'\t' read -r name parts _; do
    case "$name" in '' | \#*) continue ;; esac
    if ! grep -qP "^\s+\Q$name\E\t$parts\$" "$OUT.status"; then
        table_ok=0
        fail "status lists $name with $parts partitions" "$(grep -F "$name" "$OUT.status" || echo missing)"
    fi
done <"$ROOT/proto/topics.tsv"
[ $table_ok -eq 0 ] || pass "status lists every topic of proto/topics.tsv with its partition count"
outbound="$(awk -F'\t' '$1 ~ /lst\.outbound$/ {gsub(/ /, "", $1); print $2}' "$OUT.status" | head -n 1)"
check "lst.outbound has >= 6 partitions (${outbound:-none})" test "${outbound:-0}" -ge 6

# --- idempotent up ----------------------------------------------------------------------------
t0=$(now_ms)
if "$STACK_SH" up >"$OUT.up2" 2>&1; then pass "second up exits 0 ($(($(now_ms) - t0)) ms)"; else fail "second up exits 0" "$(cat "$OUT.up2")"; fi
check "second up finds kafka already up" grep -q 'kafka: already up' "$OUT.up2"
check "second up finds redis already up" grep -q 'redis: already up' "$OUT.up2"
check "second up finds redis-proj already up" grep -q 'redis-proj: already up' "$OUT.up2"
check "second up creates no topic" grep -q 'topics: 0 created' "$OUT.up2"
check "second up keeps the kafka pid" test "$(cat "$LST_STACK_DIR/kafka/kafka.pid")" = "$KPID"
check "second up keeps the redis pid" test "$(cat "$LST_STACK_DIR/redis/redis.pid")" = "$RPID"
check "second up keeps the redis-proj pid" test "$(cat "$LST_STACK_DIR/redis-proj/redis.pid")" = "$PROJ_PID"
check "second up takes < 10 s" test $(($(now_ms) - t0)) -lt 10000

# --- redis ------------------------------------------------------------------------------------
rcli() { redis-cli -h 127.0.0.1 -p "$LST_REDIS_PORT" "$@"; }
check "redis appendonly yes" test "$(rcli config get appendonly | sed -n 2p)" = yes
check "redis appendfsync everysec" test "$(rcli config get appendfsync | sed -n 2p)" = everysec
check "redis AOF folder in the stack folder" test -d "$LST_STACK_DIR/redis/appendonlydir"
rcli set stack_check:key survives >/dev/null
if "$STACK_SH" restart-redis >>"$OUT" 2>&1; then pass "restart-redis"; else fail "restart-redis" "$(tail "$OUT")"; fi
check "redis data survives restart-redis (AOF)" test "$(rcli get stack_check:key)" = survives
check "old redis pid $RPID is gone after restart" pid_gone "$RPID"
check "restart-redis leaves redis-proj alone" pid_alive "$PROJ_PID"
RPID2="$(cat "$LST_STACK_DIR/redis/redis.pid" 2>/dev/null || echo none)"

# --- redis-proj: the projections, RDB snapshots only ------------------------------------------
pcli() { redis-cli -h 127.0.0.1 -p "$LST_PROJ_REDIS_PORT" "$@"; }
check "redis-proj appendonly no" test "$(pcli config get appendonly | sed -n 2p)" = no
check "redis-proj save 900 1 300 100 60 10000" test "$(pcli config get save | sed -n 2p)" = "900 1 300 100 60 10000"
check "redis-proj hash-max-listpack-value 256" test "$(pcli config get hash-max-listpack-value | sed -n 2p)" = 256
check "redis-proj has no AOF folder" test ! -e "$LST_STACK_DIR/redis-proj/appendonlydir"
check "redis-proj is another server than redis" test "$(pcli get stack_check:key)" = ""
pcli set stack_check:proj snapshot >/dev/null
if "$STACK_SH" restart-redis-proj >>"$OUT" 2>&1; then pass "restart-redis-proj"; else fail "restart-redis-proj" "$(tail "$OUT")"; fi
check "redis-proj data survives restart-redis-proj (the RDB of its SHUTDOWN)" test "$(pcli get stack_check:proj)" = snapshot
check "redis-proj RDB in its own folder" test -f "$LST_STACK_DIR/redis-proj/dump.rdb"
check "old redis-proj pid $PROJ_PID is gone after restart" pid_gone "$PROJ_PID"
check "restart-redis-proj leaves redis alone" pid_alive "$RPID2"
PROJ_PID2="$(cat "$LST_STACK_DIR/redis-proj/redis.pid" 2>/dev/null || echo none)"
check "logs redis-proj shows its log" bash -c "'$STACK_SH' logs redis-proj 5 | grep -q ."
check "a projections port equal to the state port is refused" \
    bash -c "! LST_PROJ_REDIS_PORT='$LST_REDIS_PORT' '$STACK_SH' status >/dev/null 2>&1"

# --- lst-admin against the real broker --------------------------------------------------------
tsv="$LST_STACK_DIR/grow.tsv"
printf '# test table\nchk.grow\t2\tdelete\nchk.compact\t1\tcompact\n' >"$tsv"
check "create-topics with a prefix" quiet "$ADMIN" create-topics --brokers "$BROKERS" --file "$tsv" --prefix p1-
printf 'chk.grow\t4\tdelete\nchk.compact\t1\tcompact\n' >"$tsv"
check "create-topics grows an existing topic" quiet "$ADMIN" create-topics --brokers "$BROKERS" --file "$tsv" --prefix p1-
"$ADMIN" list-topics --brokers "$BROKERS" >"$OUT.list" 2>&1
check "list-topics shows p1-chk.grow with 4 partitions" grep -qx $'p1-chk.grow\t4' "$OUT.list"
check "list-topics is sorted" bash -c "LC_ALL=C sort -c '$OUT.list'"
check "list-topics hides internal topics" bash -c "! grep -q '^__' '$OUT.list'"
printf 'bad\t0\tdelete\n' >"$tsv"
check "create-topics rejects a bad table" bash -c "! '$ADMIN' create-topics --brokers '$BROKERS' --file '$tsv' 2>/dev/null"

# --- restart-kafka keeps data -----------------------------------------------------------------
if "$STACK_SH" restart-kafka >>"$OUT" 2>&1; then pass "restart-kafka"; else fail "restart-kafka" "$(tail "$OUT")"; fi
"$ADMIN" list-topics --brokers "$BROKERS" >"$OUT.list" 2>&1
check "topics survive restart-kafka" grep -qx $'p1-chk.grow\t4' "$OUT.list"
printf 'chk.grow\t4\tdelete\nchk.compact\t1\tcompact\n' >"$tsv"
check "delete-topics refuses a table without a prefix" bash -c \
    "'$ADMIN' delete-topics --brokers '$BROKERS' --file '$tsv' 2>/dev/null; [ \$? -eq 2 ]"
"$ADMIN" delete-topics --brokers "$BROKERS" --file "$tsv" --prefix p1- >"$OUT.del" 2>&1
check "delete-topics deletes the prefixed topics" grep -qx $'deleted\tp1-chk.grow' "$OUT.del"
# the broker's metadata may follow the controller a moment later: up to 5 s
check "list-topics no longer shows them" bash -c "for _ in \$(seq 50); do
    '$ADMIN' list-topics --brokers '$BROKERS' 2>/dev/null | grep -q '^p1-chk' || exit 0
    sleep 0.1; done; exit 1"
"$ADMIN" delete-topics --brokers "$BROKERS" --file "$tsv" --prefix p1- >"$OUT.del" 2>&1
check "delete-topics again: absent, exit 0" grep -qx $'absent\tp1-chk.compact' "$OUT.del"
KPID2="$(cat "$LST_STACK_DIR/kafka/kafka.pid" 2>/dev/null || echo none)"

# --- down -------------------------------------------------------------------------------------
t0=$(now_ms)
if "$STACK_SH" down >"$OUT.down" 2>&1; then pass "down exits 0 ($(($(now_ms) - t0)) ms)"; else fail "down exits 0" "$(cat "$OUT.down")"; fi
for p in "$KPID" "$KPID2" "$RPID" "$RPID2" "$PROJ_PID" "$PROJ_PID2"; do
    check "pid $p is gone" pid_gone "$p"
done
left="$(stack_processes)"
check "no process with the stack folder in its command line remains" test -z "$left"
[ -z "$left" ] || ps -o pid,cmd -p "$(echo "$left" | paste -sd,)" | cut -c1-200
check "kafka port $LST_KAFKA_PORT is free" test -z "$(ss -Hltn "sport = :$LST_KAFKA_PORT")"
check "redis port $LST_REDIS_PORT is free" test -z "$(ss -Hltn "sport = :$LST_REDIS_PORT")"
check "redis-proj port $LST_PROJ_REDIS_PORT is free" test -z "$(ss -Hltn "sport = :$LST_PROJ_REDIS_PORT")"
check "simulator port $LST_SIM_PORT is free" test -z "$(ss -Hltn "sport = :$LST_SIM_PORT")"
check "status after down exits non-zero" bash -c "! '$STACK_SH' status >/dev/null 2>&1"
check "down again is a no-op" quiet "$STACK_SH" down

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
