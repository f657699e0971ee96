# Shared by the Kafka system tests (kill_consumer.sh, producer_startup.sh); sourced, not run.
# The caller sets WORK (its work folder, kept when a check fails), LST_REDIS_PORT and, for
# hlen, KEY (the Redis hash its consumers count ids in).
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$1"; [ $# -lt 2 ] || printf '     %s\n' "$2"; }
expect() { # expect NAME CONDITION-RESULT(0/1) [DETAIL]
    if [ "$2" -eq 0 ]; then pass "$1"; else fail "$1" "${3:-}"; fi
}
now_ms() { date +%s%3N; }
rcli() { redis-cli -h 127.0.0.1 -p "$LST_REDIS_PORT" "$@"; }
hlen() { rcli HLEN "$KEY" 2>/dev/null || echo -1; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Stops one of OUR processes by its recorded pid: SIGTERM, then SIGKILL after a bound.
stop_pid() {
    local pid=$1 i
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 150); do
        alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
}

# Prints the verdict and exits: 0 only when no check failed.
finish() {
    [ "$FAILED" -eq 0 ] || printf 'logs in %s\n' "$WORK"
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    [ "$FAILED" -eq 0 ]
    exit $?
}

# Polls until "$@" succeeds or the deadline (ms) passes.
wait_until() {
    local deadline=$(($(now_ms) + $1))
    shift
    while ! "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}
