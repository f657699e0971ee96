#!/usr/bin/env bash
# Runs the benchmarks and prints their figures.
#
#   bench/run.sh BUILD_DIR [--quick]
#
#   bench_crypto  encrypt+encode / decode+decrypt ops/s of a 200-byte text on one core, next
#                 to raw libsodium (crypto_box_easy, crypto_box_easy_afternm); median of 5
#                 runs of ~1 s (--quick: 1 run of 0.05 s)
#   bench_sim     the simulator's sustainable send_e2e req/s with 8 client threads, p50/p99
#                 latency (--quick: 2000 requests)
#
# BENCH_SIM_ARGS adds arguments to bench_sim (e.g. "--threads 16 --requests 100000").
set -uo pipefail
BUILD=${1:?usage: bench/run.sh BUILD_DIR [--quick]}
QUICK=${2:-}
case "$QUICK" in "" | --quick) ;; *)
    echo "usage: bench/run.sh BUILD_DIR [--quick]" >&2
    exit 2
    ;;
esac
rc=0
# shellcheck disable=SC2086
timeout --kill-after=5 120 "$BUILD/bench/bench_crypto" $QUICK || rc=1
echo
# shellcheck disable=SC2086
timeout --kill-after=5 120 "$BUILD/bench/bench_sim" $QUICK ${BENCH_SIM_ARGS:-} || rc=1
exit $rc
