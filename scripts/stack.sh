#!/usr/bin/env bash
# The local stack: a single-node Apache Kafka 3.9 (KRaft, broker+controller in one JVM), two
# redis-servers and the Threema Gateway simulator, all on 127.0.0.1, all state in one ignored
# folder. The two Redis:
#   redis       the state (AOF everysec + RDB): gateway-out's and gateway-in's dedupe marks, key
#               caches and rate limiter, the view API's idempotency keys; Kafka cannot rebuild
#               them. The services' LST_REDIS_PORT.
#   redis-proj  the ledger's projections, which the view API reads (RDB snapshots, no AOF: the
#               ledger refills them from Kafka when this Redis goes back in time). The ledger's
#               and the view API's LST_REDIS_PORT (scripts/services.sh).
#
#   scripts/stack.sh up | down | status | restart-kafka | restart-redis | restart-redis-proj
#                    | restart-sim | logs [kafka|redis|redis-proj|sim] [N]
#
# up and down start and stop everything; restart-redis restarts the state Redis only,
# restart-redis-proj the projections' only.
#
# Environment (defaults in brackets):
#   LST_STACK_DIR               state folder [<repo>/.stack]
#   LST_KAFKA_PORT              Kafka client port [19092]
#   LST_KAFKA_CONTROLLER_PORT   KRaft controller port [19093]
#   LST_REDIS_PORT              the state Redis's port [16379]
#   LST_PROJ_REDIS_PORT         the projections Redis's port [LST_REDIS_PORT + 1, so 16380]
#   LST_TOPIC_PREFIX            prefix of every topic of proto/topics.tsv [none]
#   LST_BUILD_DIR               where lst-admin was built [build]
#   LST_KAFKA_LIBS              the Kafka jars [<repo>/.stack/kafka/libs] (scripts/setup.sh)
#   LST_KAFKA_READY_TIMEOUT_MS  how long `up` waits for the broker [90000]
#   LST_KAFKA_STOP_TIMEOUT_S    SIGTERM grace before SIGKILL [30]
#   LST_SIM_PORT                Threema Gateway simulator port [18090]
#   LST_SIM_*                   every other simulator setting (threema-sim --help); by default
#                               the demo directory and the demo Gateway key of demo/
#
# Only processes this script started (pid files in the stack folder, checked against their
# command line before any signal) are ever stopped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/detach.sh
. "$ROOT/scripts/lib/detach.sh"
STACK="${LST_STACK_DIR:-$ROOT/.stack}"
KAFKA_PORT="${LST_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${LST_KAFKA_CONTROLLER_PORT:-19093}"
REDIS_PORT="${LST_REDIS_PORT:-16379}"
# Its default follows LST_REDIS_PORT (set after the check below): a caller that moves only the
# state Redis (tests/system/gateway_in_outage.sh, bench/gateway_in/run.sh run stacks of their
# own beside the developer's) must not get the projections Redis of the developer's port.
PROJ_REDIS_PORT="${LST_PROJ_REDIS_PORT:-}"
TOPIC_PREFIX="${LST_TOPIC_PREFIX:-}"
BUILD_DIR="${LST_BUILD_DIR:-build}"
KAFKA_LIBS="${LST_KAFKA_LIBS:-$ROOT/.stack/kafka/libs}"
READY_TIMEOUT_MS="${LST_KAFKA_READY_TIMEOUT_MS:-90000}"
STOP_TIMEOUT_S="${LST_KAFKA_STOP_TIMEOUT_S:-30}"
SIM_PORT="${LST_SIM_PORT:-18090}"

case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
mkdir -p "$STACK"
STACK="$(cd "$STACK" && pwd)"
LST_ADMIN="$BUILD_DIR/tools/lst-admin/lst-admin"
SIM_BIN="$BUILD_DIR/tools/threema-sim/threema-sim"
BROKERS="127.0.0.1:$KAFKA_PORT"

KDIR="$STACK/kafka"
KAFKA_PID="$KDIR/kafka.pid"
KAFKA_DATA="$KDIR/data"
KAFKA_CONF="$KDIR/server.properties"
KAFKA_LOG="$KDIR/logs/server.log"
# The Redis folders are "$STACK/<name>" (redis, redis-proj), each with redis.conf, redis.pid,
# redis.log and redis.out: see the Redis section.
SDIR="$STACK/sim"
SIM_PID="$SDIR/sim.pid"
SIM_LOG="$SDIR/sim.log"

log() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
elapsed() {
    local t=$(($(now_ms) - $1))
    printf '%d.%03d s' $((t / 1000)) $((t % 1000))
}

check_port() { # check_port VAR: dies unless $VAR is a port number
    if ! [[ "${!1}" =~ ^[0-9]{1,5}$ ]] || [ "${!1}" -lt 1 ] || [ "${!1}" -gt 65535 ]; then
        die "LST_${1/CONTROLLER/KAFKA_CONTROLLER} '${!1}' is not a port number"
    fi
}
for v in KAFKA_PORT CONTROLLER_PORT REDIS_PORT SIM_PORT; do
    check_port "$v"
done
[ -n "$PROJ_REDIS_PORT" ] || PROJ_REDIS_PORT=$((10#$REDIS_PORT + 1))
check_port PROJ_REDIS_PORT
if [ "$(printf '%s\n' "$KAFKA_PORT" "$CONTROLLER_PORT" "$REDIS_PORT" "$PROJ_REDIS_PORT" "$SIM_PORT" |
    sort -u | wc -l)" -ne 5 ]; then
    die "the five ports (Kafka, controller, Redis, projections Redis, simulator) must differ"
fi

need_admin() {
    [ -x "$LST_ADMIN" ] ||
        die "lst-admin not found at $LST_ADMIN; run scripts/setup.sh (or set LST_BUILD_DIR)"
}

# --- process bookkeeping ----------------------------------------------------------------

# Prints the recorded pid of a pid file when that process still runs the expected command:
# its command line must contain every given pattern. Never trusts a bare pid (pids recycle).
owned_pid() {
    local file="$1" pid cmd pat
    shift
    [ -f "$file" ] || return 1
    pid="$(cat "$file" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    for pat in "$@"; do
        [[ "$cmd" == *"$pat"* ]] || return 1
    done
    echo "$pid"
}

kafka_pid() { owned_pid "$KAFKA_PID" kafka.Kafka "$KAFKA_CONF"; }
# redis_pid NAME (redis, redis-proj). Redis rewrites its process title; proc-title-template in
# redis.conf keeps the config path (and so the stack folder and NAME) in it.
redis_pid() { owned_pid "$STACK/$1/redis.pid" redis-server "$STACK/$1/redis.conf"; }
# The simulator's argv[0] carries the stack folder (see start_sim). Matched without the build
# folder: a stack started from one build is still found (and stopped) by a call whose
# LST_BUILD_DIR names another.
sim_pid() { owned_pid "$SIM_PID" "/threema-sim --stack $SDIR"; }

port_busy() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# Waits until pid is gone, at most $2 seconds; polls every 0.1 s.
wait_gone() {
    local pid="$1" i
    for ((i = 0; i < $2 * 10; i++)); do
        [ -e "/proc/$pid" ] || return 0
        # A zombie child of ours still has /proc/pid; it is gone for our purposes.
        [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ] || return 0
        sleep 0.1
    done
    return 1
}

# signal_owned SIGNAL PID GETTER [ARG...]: sends SIGNAL only while GETTER (kafka_pid,
# redis_pid NAME, sim_pid) still names PID, i.e. the pid has not been recycled by an unrelated
# process in the meantime.
signal_owned() {
    if [ "$("${@:3}" || true)" = "$2" ]; then
        kill "-$1" "$2" 2>/dev/null || true
    fi
}

# Starts "$@" detached (own session, no stdin, output to $1) and records its pid in $2.
spawn() {
    local out="$1" pidfile="$2"
    shift 2
    # A daemon inherits no descriptor of ours: not fd 9, the stack lock, nor any lock or pipe
    # of our caller (scripts/lib/detach.sh); either would be held as long as the daemon runs.
    (
        close_inherited_fds
        exec setsid "$@" </dev/null >"$out" 2>&1
    ) &
    echo $! >"$pidfile"
}

# --- Kafka -------------------------------------------------------------------------------

# A small fixed heap: the dev broker holds little, and CI machines have 2 cores.
KAFKA_JVM=(-Xms256m -Xmx512m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true)

render_kafka_conf() {
    mkdir -p "$KDIR/logs" "$KAFKA_DATA"
    sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$KAFKA_DATA|g" "$ROOT/stack/server.properties.in" >"$KAFKA_CONF.tmp"
    mv "$KAFKA_CONF.tmp" "$KAFKA_CONF"
}

# Formats the storage once. The cluster id is made once and kept: a different id makes the
# broker refuse an already formatted directory.
format_kafka() {
    [ -f "$KAFKA_DATA/meta.properties" ] && return 0
    # An id that starts with '-' reads as an option to StorageTool ("-t -x..." fails): one in
    # 64 ids did, and a kept one failed every start. Nothing was formatted with such an id, so
    # it is replaced.
    while [ ! -s "$KDIR/cluster.id" ] || [ "$(head -c 1 "$KDIR/cluster.id")" = - ]; do
        # 16 random bytes, base64url without padding: the 22-character form Kafka uses.
        head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$KDIR/cluster.id"
    done
    log "kafka: formatting storage (cluster id $(cat "$KDIR/cluster.id"))"
    java "${KAFKA_JVM[@]}" -Dlog4j.configuration="file:$ROOT/stack/log4j-tools.properties" \
        -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format -t "$(cat "$KDIR/cluster.id")" \
        -c "$KAFKA_CONF" >"$KDIR/format.log" 2>&1 || {
        cat "$KDIR/format.log" >&2
        die "kafka: formatting $KAFKA_DATA failed"
    }
}

kafka_log_tail() {
    echo "---- last lines of $KAFKA_LOG ----" >&2
    tail -n 40 "$KAFKA_LOG" >&2 2>/dev/null || true
    echo "---- last lines of $KDIR/kafka.out ----" >&2
    tail -n 20 "$KDIR/kafka.out" >&2 2>/dev/null || true
}

start_kafka() {
    need_admin
    local t0 pid
    t0=$(now_ms)
    pid="$(kafka_pid)" && {
        if "$LST_ADMIN" wait-ready --brokers "$BROKERS" --timeout-ms 5000 2>/dev/null; then
            log "kafka: already up (pid $pid, port $KAFKA_PORT)"
            return 0
        fi
        die "kafka: pid $pid runs but does not answer on $BROKERS; try scripts/stack.sh restart-kafka"
    }
    ls "$KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 ||
        die "Kafka jars missing in $KAFKA_LIBS; run scripts/setup.sh"
    port_busy "$KAFKA_PORT" && die "port $KAFKA_PORT is in use by another process (LST_KAFKA_PORT)"
    port_busy "$CONTROLLER_PORT" &&
        die "port $CONTROLLER_PORT is in use by another process (LST_KAFKA_CONTROLLER_PORT)"
    rm -f "$KAFKA_PID"
    render_kafka_conf
    format_kafka
    spawn "$KDIR/kafka.out" "$KAFKA_PID" \
        java "${KAFKA_JVM[@]}" -Dkafka.logs.dir="$KDIR/logs" \
        -Dlog4j.configuration="file:$ROOT/stack/log4j.properties" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF"
    pid="$(cat "$KAFKA_PID")"
    # A real metadata request, polled until the deadline; lst-admin gives up at once when the
    # JVM exits (bad config, port taken), so a dead broker fails in seconds, not 90.
    if ! "$LST_ADMIN" wait-ready --brokers "$BROKERS" --timeout-ms "$READY_TIMEOUT_MS" \
        --pid "$pid" 2>"$KDIR/wait-ready.err"; then
        cat "$KDIR/wait-ready.err" >&2
        kafka_log_tail
        stop_kafka >/dev/null 2>&1 || true
        die "kafka did not become ready on $BROKERS"
    fi
    log "kafka: up (pid $pid, port $KAFKA_PORT, controller $CONTROLLER_PORT) in $(elapsed "$t0")"
}

stop_kafka() {
    local pid t0
    t0=$(now_ms)
    if ! pid="$(kafka_pid)"; then
        rm -f "$KAFKA_PID"
        log "kafka: not running"
        return 0
    fi
    # SIGTERM makes the broker shut down in a controlled way (flushes, closes the log cleanly,
    # so the next start needs no recovery); SIGKILL only when it hangs.
    signal_owned TERM "$pid" kafka_pid
    if ! wait_gone "$pid" "$STOP_TIMEOUT_S"; then
        log "kafka: no exit after ${STOP_TIMEOUT_S} s, sending SIGKILL to $pid"
        # Re-check ownership: the pid must still be our broker before a second signal.
        signal_owned KILL "$pid" kafka_pid
        wait_gone "$pid" 10 || die "kafka: pid $pid survived SIGKILL"
    fi
    rm -f "$KAFKA_PID"
    log "kafka: stopped (pid $pid) in $(elapsed "$t0")"
}

# --- Redis -------------------------------------------------------------------------------

# Both redis-servers run through the same functions; NAME (redis, redis-proj) is the server's
# folder under the stack folder, its name in `logs` and its restart command (restart-NAME).
redis_port() {
    case "$1" in
    redis) echo "$REDIS_PORT" ;;
    redis-proj) echo "$PROJ_REDIS_PORT" ;;
    *) die "no Redis named '$1'" ;;
    esac
}
# The setting that chose the port, for messages.
redis_port_var() { if [ "$1" = redis-proj ]; then echo LST_PROJ_REDIS_PORT; else echo LST_REDIS_PORT; fi; }
redis_ping() { redis-cli -h 127.0.0.1 -p "$(redis_port "$1")" ping 2>/dev/null | grep -qx PONG; }

# What differs between the two: persistence.
redis_persistence_conf() {
    case "$1" in
    redis)
        cat <<'EOF'
# AOF: every write is logged and fsynced once per second (at most ~1 s lost on a crash). What
# lives here (dedupe marks, key caches, rate limiter, idempotency keys) is not in Kafka. RDB
# snapshots (Redis's default save points) stay on as a second copy.
appendonly yes
appendfsync everysec
appendfilename "appendonly.aof"
EOF
        ;;
    redis-proj)
        cat <<'EOF'
# RDB snapshots only, no AOF: the projections are rebuilt from Kafka when this Redis goes back
# in time (the ledger's watermarks and refill markers, docs/ledger.md), and AOF cost the ledger
# about a fifth of its throughput (bench/ledger/run.sh, means of four runs: 23,788 events/s
# with it, 30,511 without).
appendonly no
save 900 1
save 300 100
save 60 10000
EOF
        ;;
    esac
}

render_redis_conf() {
    local name="$1" dir="$STACK/$1" port
    port="$(redis_port "$name")"
    mkdir -p "$dir"
    {
        cat <<EOF
# Rendered by scripts/stack.sh; edit the script, not this copy.
bind 127.0.0.1
port $port
protected-mode yes
daemonize no
dir $dir
logfile $dir/redis.log
# The command line names this file, so stack.sh can tell its own redis-server from others.
proc-title-template "{title} {listen-addr} {server-mode} {config-file}"
EOF
        redis_persistence_conf "$name"
        cat <<'EOF'
# Small hashes stay listpack-encoded up to 256-byte values: the ledger's per-recipient state
# JSON (r:<mid>) and message hashes (m:<id>) exceed the default 64 (docs/ledger.md, Memory).
hash-max-listpack-value 256
# DEBUG SLEEP / DEBUG RELOAD for failure tests, from loopback only.
enable-debug-command local
EOF
    } >"$dir/redis.conf.tmp"
    mv "$dir/redis.conf.tmp" "$dir/redis.conf"
}

start_redis() {
    local name="$1" dir="$STACK/$1" t0 pid port i
    t0=$(now_ms)
    port="$(redis_port "$name")"
    if pid="$(redis_pid "$name")"; then
        if redis_ping "$name"; then
            log "$name: already up (pid $pid, port $port)"
            return 0
        fi
        die "$name: pid $pid runs but does not answer PING on $port; try restart-$name"
    fi
    port_busy "$port" && die "port $port is in use by another process ($(redis_port_var "$name"))"
    rm -f "$dir/redis.pid"
    render_redis_conf "$name"
    spawn "$dir/redis.out" "$dir/redis.pid" redis-server "$dir/redis.conf"
    pid="$(cat "$dir/redis.pid")"
    for ((i = 0; i < 200; i++)); do # at most ~20 s: loading a large AOF or RDB takes a while
        if redis_ping "$name"; then
            log "$name: up (pid $pid, port $port) in $(elapsed "$t0")"
            return 0
        fi
        if [ ! -e "/proc/$pid" ]; then
            break
        fi
        sleep 0.1
    done
    tail -n 20 "$dir/redis.log" "$dir/redis.out" >&2 2>/dev/null || true
    stop_redis "$name" >/dev/null 2>&1 || true
    die "$name did not answer PING on port $port"
}

stop_redis() {
    local name="$1" pid t0
    t0=$(now_ms)
    if ! pid="$(redis_pid "$name")"; then
        rm -f "$STACK/$name/redis.pid"
        log "$name: not running"
        return 0
    fi
    # SHUTDOWN fsyncs the AOF (if any) and writes a snapshot before exiting; SIGTERM does the
    # same when the command cannot get through.
    redis-cli -h 127.0.0.1 -p "$(redis_port "$name")" shutdown >/dev/null 2>&1 || true
    if ! wait_gone "$pid" 10; then
        signal_owned TERM "$pid" redis_pid "$name"
        if ! wait_gone "$pid" 10; then
            signal_owned KILL "$pid" redis_pid "$name"
            wait_gone "$pid" 5 || die "$name: pid $pid survived SIGKILL"
        fi
    fi
    rm -f "$STACK/$name/redis.pid"
    log "$name: stopped (pid $pid) in $(elapsed "$t0")"
}

# --- Threema Gateway simulator ----------------------------------------------------------

sim_healthy() { curl -fsS -m 2 "http://127.0.0.1:$SIM_PORT/healthz" >/dev/null 2>&1; }

start_sim() {
    local t0 pid i
    t0=$(now_ms)
    [ -x "$SIM_BIN" ] || die "threema-sim not found at $SIM_BIN; build first (or set LST_BUILD_DIR)"
    if pid="$(sim_pid)"; then
        sim_healthy && { log "sim: already up (pid $pid, port $SIM_PORT)"; return 0; }
        die "sim: pid $pid runs but /healthz does not answer on $SIM_PORT; try restart-sim"
    fi
    port_busy "$SIM_PORT" && die "port $SIM_PORT is in use by another process (LST_SIM_PORT)"
    mkdir -p "$SDIR"
    rm -f "$SIM_PID"
    (
        # Demo defaults unless the caller configured these (NAME and NAME_FILE together are an
        # error in the config loader, so a default is only added when neither is set).
        export LST_SIM_PORT="$SIM_PORT"
        [ -n "${LST_SIM_DIRECTORY:-}${LST_SIM_DIRECTORY_FILE:-}" ] ||
            export LST_SIM_DIRECTORY="$ROOT/demo/erp-export.csv"
        [ -n "${LST_SIM_GATEWAY_PUBLIC_KEY:-}${LST_SIM_GATEWAY_PUBLIC_KEY_FILE:-}" ] ||
            export LST_SIM_GATEWAY_PUBLIC_KEY_FILE="$ROOT/demo/DEMO-ONLY-gateway.public.key"
        # The simulator takes no arguments; its argv[0] names the stack folder instead, so that
        # sim_pid (and anyone listing this stack's processes) can tell it from another stack's.
        spawn "$SIM_LOG" "$SIM_PID" bash -c 'exec -a "$0" "$1"' "$SIM_BIN --stack $SDIR" "$SIM_BIN"
    )
    pid="$(cat "$SIM_PID")"
    for ((i = 0; i < 100; i++)); do # at most ~10 s
        if sim_healthy; then
            log "sim: up (pid $pid, port $SIM_PORT) in $(elapsed "$t0")"
            return 0
        fi
        [ -e "/proc/$pid" ] || break
        sleep 0.1
    done
    tail -n 20 "$SIM_LOG" >&2 2>/dev/null || true
    stop_sim >/dev/null 2>&1 || true
    die "the simulator did not answer /healthz on port $SIM_PORT"
}

stop_sim() {
    local pid t0
    t0=$(now_ms)
    if ! pid="$(sim_pid)"; then
        rm -f "$SIM_PID"
        log "sim: not running"
        return 0
    fi
    signal_owned TERM "$pid" sim_pid
    if ! wait_gone "$pid" 10; then
        signal_owned KILL "$pid" sim_pid
        wait_gone "$pid" 5 || die "sim: pid $pid survived SIGKILL"
    fi
    rm -f "$SIM_PID"
    log "sim: stopped (pid $pid) in $(elapsed "$t0")"
}

# --- commands ----------------------------------------------------------------------------

create_topics() {
    local t0
    t0=$(now_ms)
    "$LST_ADMIN" create-topics --brokers "$BROKERS" --file "$ROOT/proto/topics.tsv" \
        --prefix "$TOPIC_PREFIX" >"$KDIR/topics.out" ||
        die "creating the topics of proto/topics.tsv failed"
    log "topics: $(grep -c '^created' "$KDIR/topics.out" || true) created," \
        "$(grep -c '^exists' "$KDIR/topics.out" || true) existed in $(elapsed "$t0")"
}

cmd_up() {
    local t0
    t0=$(now_ms)
    need_admin
    start_redis redis
    start_redis redis-proj
    start_kafka
    create_topics
    start_sim
    log "up in $(elapsed "$t0") (kafka $BROKERS, redis 127.0.0.1:$REDIS_PORT," \
        "redis-proj 127.0.0.1:$PROJ_REDIS_PORT, sim 127.0.0.1:$SIM_PORT, dir $STACK)"
}

cmd_down() {
    stop_sim
    stop_kafka
    stop_redis redis-proj
    stop_redis redis
}

cmd_status() {
    local ok=0 kafka_up=0 pid name port what
    if pid="$(kafka_pid)" && [ -x "$LST_ADMIN" ] &&
        "$LST_ADMIN" wait-ready --brokers "$BROKERS" --timeout-ms 5000 2>/dev/null; then
        printf 'kafka  up    pid %-8s port %s (controller %s)\n' "$pid" "$KAFKA_PORT" \
            "$CONTROLLER_PORT"
        kafka_up=1
    else
        printf 'kafka  down  port %s%s\n' "$KAFKA_PORT" "${pid:+ (pid $pid not answering)}"
        ok=1
    fi
    for name in redis redis-proj; do
        port="$(redis_port "$name")"
        what="state, AOF"
        [ "$name" = redis ] || what="projections, RDB"
        if pid="$(redis_pid "$name")" && redis_ping "$name"; then
            printf '%-6s up    pid %-8s port %s (%s)\n' "$name" "$pid" "$port" "$what"
        else
            printf '%-6s down  port %s (%s)%s\n' "$name" "$port" "$what" \
                "${pid:+ (pid $pid not answering)}"
            ok=1
        fi
    done
    if pid="$(sim_pid)" && sim_healthy; then
        printf 'sim    up    pid %-8s port %s\n' "$pid" "$SIM_PORT"
    else
        printf 'sim    down  port %s%s\n' "$SIM_PORT" "${pid:+ (pid $pid not answering)}"
        ok=1
    fi
    if [ $kafka_up -eq 1 ]; then
        echo "topics:"
        "$LST_ADMIN" list-topics --brokers "$BROKERS" --timeout-ms 10000 | sed 's/^/  /' || ok=1
    fi
    return $ok
}

cmd_logs() {
    local which="${1:-all}" n="${2:-50}" f
    [[ "$n" =~ ^[0-9]+$ ]] || die "logs: line count '$n' is not a number"
    case "$which" in
    kafka) tail -n "$n" "$KAFKA_LOG" ;;
    redis | redis-proj) tail -n "$n" "$STACK/$which/redis.log" ;;
    sim) tail -n "$n" "$SIM_LOG" ;;
    all)
        for f in "$KAFKA_LOG" "$STACK/redis/redis.log" "$STACK/redis-proj/redis.log" "$SIM_LOG"; do
            echo "==== $f"
            tail -n "$n" "$f" 2>/dev/null || true
        done
        ;;
    *) die "logs: expected kafka, redis, redis-proj or sim, got '$which'" ;;
    esac
}

usage() {
    # The header comment of this file, up to the first non-comment line.
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"
}

# One stack.sh at a time per stack folder: two concurrent `up`s would both start a broker.
lock() {
    exec 9>"$STACK/.lock"
    flock -w 180 9 || die "another scripts/stack.sh holds $STACK/.lock"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
up) lock; cmd_up ;;
down) lock; cmd_down ;;
status) cmd_status ;;
restart-kafka) lock; need_admin; stop_kafka; start_kafka ;;
restart-redis) lock; stop_redis redis; start_redis redis ;;
restart-redis-proj) lock; stop_redis redis-proj; start_redis redis-proj ;;
restart-sim) lock; stop_sim; start_sim ;;
logs) cmd_logs "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
