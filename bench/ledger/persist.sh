# shellcheck shell=bash
# Sourced by the ledger's benchmarks: the persistence flags of their redis-server.
# BENCH_LEDGER_REDIS_PERSIST=rdb (default): production's projections Redis (deploy/compose.yaml
# `redis-projections`: no AOF, RDB snapshots); aof: one Redis with AOF fsynced every second
# (the single-server set-up, and production before session 14), for comparisons.
ledger_redis_persist() {
    case ${BENCH_LEDGER_REDIS_PERSIST:-rdb} in
    rdb) PERSIST=(--appendonly no --save '900 1 300 100 60 10000') ;;
    aof) PERSIST=(--appendonly yes --appendfsync everysec --save '') ;;
    *)
        echo "BENCH_LEDGER_REDIS_PERSIST must be rdb or aof, not '$BENCH_LEDGER_REDIS_PERSIST'" >&2
        return 1
        ;;
    esac
}
