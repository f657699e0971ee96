# shellcheck shell=bash
# Sourced by the ledger's Redis cost probes (layout_probe.sh, script_replay.sh): a fresh
# redis-server per measurement and its main thread's CPU. The caller sets WORK (a scratch
# directory), PORT and PERSIST (persist.sh) and calls stop_redis on exit.
redis_pid=""

start_redis() { # a fresh server with production's settings for the projections
    rm -rf "$WORK/data" && mkdir -p "$WORK/data"
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK/data" "${PERSIST[@]}" \
        --hash-max-listpack-value 256 --daemonize no >"$WORK/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 1 100); do
        redis-cli -p "$PORT" PING >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "$(basename "$0"): redis-server did not start"
    exit 1
}

stop_redis() {
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null
        wait "$redis_pid" 2>/dev/null
        redis_pid=""
    fi
}

info() { # a field of INFO (all sections)
    redis-cli -p "$PORT" INFO everything | tr -d '\r' | awk -F: -v f="$1" '$1 == f {print $2}'
}

main_cpu() { # seconds of CPU of Redis's main thread so far
    awk -v u="$(info used_cpu_user_main_thread)" -v s="$(info used_cpu_sys_main_thread)" \
        'BEGIN {printf "%.6f", u + s}'
}
