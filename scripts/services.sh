#!/usr/bin/env bash
# Starts and stops the four Leitstand services natively (no Docker), each in the background
# with its log in $LST_STACK_DIR/logs and its pid in $LST_STACK_DIR/run.
#
#   scripts/services.sh start|stop|status
#
# Services read their configuration from the environment (see each binary's --help); this
# script only points them at the stack started by scripts/stack.sh: gateway-out and gateway-in
# at its state Redis (LST_REDIS_PORT), the ledger and the view-api at its projections Redis
# (LST_PROJ_REDIS_PORT), the view-api's own keys (idempotency) at the state Redis
# (LST_VIEW_STATE_REDIS_*).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/detach.sh
. "$ROOT/scripts/lib/detach.sh"
STACK_DIR=${LST_STACK_DIR:-$ROOT/.stack}
BUILD_DIR=${LST_BUILD_DIR:-$ROOT/build}
RUN_DIR=$STACK_DIR/run
LOG_DIR=$STACK_DIR/logs

export LST_KAFKA_BROKERS=${LST_KAFKA_BROKERS:-127.0.0.1:${LST_KAFKA_PORT:-19092}}
export LST_REDIS_PORT=${LST_REDIS_PORT:-16379}
[[ "$LST_REDIS_PORT" =~ ^[0-9]{1,5}$ ]] || {
    echo "services: LST_REDIS_PORT '$LST_REDIS_PORT' is not a port number" >&2
    exit 2
}
STATE_REDIS_PORT=$LST_REDIS_PORT
# The same default as scripts/stack.sh's: the port after the state Redis's.
PROJ_REDIS_PORT=${LST_PROJ_REDIS_PORT:-$((10#$LST_REDIS_PORT + 1))}
export LST_BLOB_DIR=${LST_BLOB_DIR:-$STACK_DIR/blobs}
SIM_PORT=${LST_SIM_PORT:-18090}

# The embedded defaults: the simulator stands in for the Threema Gateway, with the demo-only
# account in demo/. A real Gateway is this configuration and nothing else: set LST_GATEWAY_URL,
# LST_GATEWAY_ID and the secret and key files (see docs/operations or each service's --help).
if [ -z "${LST_GATEWAY_ID:-}${LST_GATEWAY_ID_FILE:-}" ]; then
    export LST_GATEWAY_URL=${LST_GATEWAY_URL:-http://127.0.0.1:$SIM_PORT}
    export LST_GATEWAY_ID='*LSTDEMO'
    [ -n "${LST_GATEWAY_SECRET:-}" ] || export LST_GATEWAY_SECRET_FILE=${LST_GATEWAY_SECRET_FILE:-$ROOT/demo/DEMO-ONLY-gateway.secret}
    [ -n "${LST_PRIVATE_KEY:-}" ] || export LST_PRIVATE_KEY_FILE=${LST_PRIVATE_KEY_FILE:-$ROOT/demo/DEMO-ONLY-gateway.private.key}
    DEMO_GATEWAY=1
fi

# name and default HTTP port, in start order (consumers of a topic before its producers does
# not matter with Kafka, but the view-api last means the API answers only when all is up).
SERVICES="ledger:18083 gateway-in:18082 gateway-out:18081 view-api:18080"

port_of() {
    local name=$1 var
    var="LST_$(echo "${name//-/_}" | tr '[:lower:]' '[:upper:]')_HTTP_PORT"
    echo "${!var:-${2}}"
}

# True while pid runs; a zombie (exited, not yet reaped by PID 1) counts as gone.
running() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

pid_alive() {
    local pidfile=$1 pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    running "$pid" || return 1
    # Only a pid whose command line is ours counts: pids are reused.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$BUILD_DIR/services/" || return 1
}

wait_healthy() {
    local name=$1 port=$2 pidfile=$3 deadline=$((SECONDS + 30)) pid
    pid=$(cat "$pidfile")
    while [ $SECONDS -lt $deadline ]; do
        # running, not pid_alive: until the forked shell has exec'd nohup, the child's command
        # line is still this script's, and pid_alive's check of it took a healthy start for a
        # crash (`./leitstand up` stopped after gateway-out once, view-api never started).
        if ! running "$pid"; then
            echo "services: $name exited during start-up; last log lines:" >&2
            tail -n 20 "$LOG_DIR/$name.log" >&2 || true
            return 1
        fi
        if curl -fsS -m 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "services: $name did not answer /healthz on port $port within 30 s" >&2
    return 1
}

start_one() {
    local name=$1 port=$2 bin=$BUILD_DIR/services/$1/$1 pidfile=$RUN_DIR/$1.pid
    if pid_alive "$pidfile"; then
        echo "services: $name already running (pid $(cat "$pidfile"))"
        return 0
    fi
    [ -x "$bin" ] || { echo "services: $bin missing; run scripts/setup.sh" >&2; return 1; }
    # The service gets stdin, stdout and stderr and nothing else of ours (scripts/lib/detach.sh).
    (
        close_inherited_fds
        # The projections (the ledger writes them, the view-api reads them) are in the Redis
        # without AOF; the view-api's idempotency keys, which Kafka cannot rebuild, are not.
        case "$name" in
        ledger | view-api) export LST_REDIS_PORT=$PROJ_REDIS_PORT ;;
        esac
        if [ "$name" = view-api ]; then
            export LST_VIEW_STATE_REDIS_HOST=${LST_VIEW_STATE_REDIS_HOST:-${LST_REDIS_HOST:-127.0.0.1}}
            export LST_VIEW_STATE_REDIS_PORT=${LST_VIEW_STATE_REDIS_PORT:-$STATE_REDIS_PORT}
            export LST_VIEW_STATE_REDIS_DB=${LST_VIEW_STATE_REDIS_DB:-${LST_REDIS_DB:-0}}
        fi
        LST_HTTP_PORT=$port exec nohup "$bin" >>"$LOG_DIR/$name.log" 2>&1 </dev/null
    ) &
    echo $! >"$pidfile"
    wait_healthy "$name" "$port" "$pidfile"
    echo "services: $name up on http://127.0.0.1:$port (pid $(cat "$pidfile"))"
}

stop_one() {
    local name=$1 pidfile=$RUN_DIR/$1.pid pid deadline
    if ! pid_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    deadline=$((SECONDS + 20))
    while running "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    if running "$pid"; then
        echo "services: $name ignored SIGTERM for 20 s, killing" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    echo "services: $name stopped"
}

# With the simulator as the Gateway, its phones' callbacks (receipts, replies) go to
# gateway-in, as the real Gateway's would go to the callback URL configured at Threema.
point_simulator_at_gateway_in() {
    [ "${DEMO_GATEWAY:-0}" = 1 ] || return 0
    local url
    url="http://127.0.0.1:$(port_of gateway-in 18082)${LST_CALLBACK_PATH:-/threema/callback}"
    if curl -fsS -m 5 -X POST -H 'Content-Type: application/json' \
        -d "{\"callbackUrl\":\"$url\"}" "http://127.0.0.1:$SIM_PORT/_sim/faults" >/dev/null; then
        echo "services: simulator sends its callbacks to $url"
    else
        echo "services: warning: could not set the simulator's callback URL (is it up on $SIM_PORT?)" >&2
    fi
}

# The view API refuses every request without a token file. For the demo, two tokens are made
# once per stack folder: the plain tokens go to demo-tokens.env (mode 600) for the user, their
# sha256 hashes (with a display name each, docs/view-api.md "Tokens and roles") to the token
# file the view-api reads (it stores no plain token).
demo_tokens() {
    [ -z "${LST_VIEW_TOKENS_FILE:-}" ] || return 0
    local hashed=$STACK_DIR/view-tokens plain=$STACK_DIR/demo-tokens.env admin dispatcher
    if [ ! -s "$hashed" ] || [ ! -s "$plain" ]; then
        admin=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
        dispatcher=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
        (
            umask 077
            printf 'LST_VIEW_ADMIN_TOKEN=%s\nLST_VIEW_DISPATCHER_TOKEN=%s\n' "$admin" "$dispatcher" >"$plain"
            printf '%s admin demo-admin - Demo Admin\n%s dispatcher demo-dispatcher - Demo Dispatcher\n' \
                "$(printf %s "$admin" | sha256sum | cut -d' ' -f1)" \
                "$(printf %s "$dispatcher" | sha256sum | cut -d' ' -f1)" >"$hashed"
        )
    fi
    export LST_VIEW_TOKENS_FILE=$hashed
}

mkdir -p "$RUN_DIR" "$LOG_DIR" "$LST_BLOB_DIR"
demo_tokens
case "${1:-}" in
start)
    for s in $SERVICES; do start_one "${s%%:*}" "$(port_of "${s%%:*}" "${s##*:}")"; done
    point_simulator_at_gateway_in
    ;;
stop)
    for s in $(echo "$SERVICES" | tr ' ' '\n' | tac); do stop_one "${s%%:*}"; done
    ;;
status)
    rc=0
    for s in $SERVICES; do
        name=${s%%:*}
        port=$(port_of "$name" "${s##*:}")
        if pid_alive "$RUN_DIR/$name.pid"; then
            ready=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
            printf '%-12s up    pid %-7s http://127.0.0.1:%s  readyz=%s\n' "$name" \
                "$(cat "$RUN_DIR/$name.pid")" "$port" "$ready"
        else
            printf '%-12s down\n' "$name"
            rc=1
        fi
    done
    exit $rc
    ;;
*)
    echo "usage: scripts/services.sh start|stop|status" >&2
    exit 2
    ;;
esac
