#!/usr/bin/env bash
# Installs everything Leitstand needs to build and run locally, then builds it.
#
#   scripts/setup.sh [--no-build] [--build-dir DIR]
#
# Steps: Debian packages (only the missing ones), Apache Kafka jars from Maven Central (only
# when the pom changed), CMake configure + build with Ninja. Idempotent: a second run on a
# complete machine takes a few seconds. On a fresh Debian 12 it must run as root (apt-get).
#
# Environment:
#   LST_BUILD_DIR     build directory (default: build, relative to the repo root)
#   LST_CMAKE_ARGS    extra arguments for the cmake configure step (word-split)
#   LST_KAFKA_LIBS    where the Kafka jars go (default: <repo>/.stack/kafka/libs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${LST_BUILD_DIR:-build}"
DO_BUILD=1

usage() {
    # The header comment of this file, up to the first non-comment line.
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"
}

while [ $# -gt 0 ]; do
    case "$1" in
    --no-build) DO_BUILD=0 ;;
    --build-dir)
        [ $# -ge 2 ] || { echo "setup: --build-dir needs a value" >&2; exit 2; }
        BUILD_DIR="$2"
        shift
        ;;
    -h | --help) usage; exit 0 ;;
    *) echo "setup: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
KAFKA_LIBS="${LST_KAFKA_LIBS:-$ROOT/.stack/kafka/libs}"

now_ms() { date +%s%3N; }
T_ALL=$(now_ms)
T_STEP=0
step() { T_STEP=$(now_ms); printf 'setup: %s ...\n' "$1"; }
done_step() {
    local t=$(($(now_ms) - T_STEP))
    printf 'setup:   %s (%d.%03d s)\n' "$1" $((t / 1000)) $((t % 1000))
}

# Packages the build, the tests and the local stack need. Java and Maven are checked by
# command: a machine that has them from elsewhere needs no Debian copy. libclang-rt-14-dev holds
# clang's sanitizer and libFuzzer runtimes, which Debian 12's clang does not pull in: without it
# the fuzz targets do not link (seen on a new machine).
PACKAGES=(gcc make cmake ninja-build pkg-config librdkafka-dev libcurl4-openssl-dev
    libsodium-dev libhiredis-dev libjson-c-dev libmicrohttpd-dev redis-server redis-tools clang
    clang-format docker-compose python3-venv python3-yaml python3-jsonschema curl procps iproute2
    wrk kcat nftables libclang-rt-14-dev)

install_packages() {
    step "Debian packages"
    local missing=() p
    command -v java >/dev/null 2>&1 || PACKAGES+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null 2>&1 || PACKAGES+=(maven)
    for p in "${PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        done_step "all ${#PACKAGES[@]} present"
        return
    fi
    echo "setup:   installing: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    done_step "installed ${#missing[@]}"
}

# The jar set is complete when the stamp holds the sha256 of the pom it was made from; jars
# are copied into a fresh folder and moved into place, so an interrupted run leaves no stamp.
fetch_kafka_jars() {
    step "Kafka jars"
    local pom="$ROOT/stack/pom.xml" stamp="$KAFKA_LIBS.stamp" sum
    sum="$(sha256sum "$pom" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && [ -d "$KAFKA_LIBS" ]; then
        done_step "up to date ($(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars)"
        return
    fi
    local tmp="$KAFKA_LIBS.tmp.$$"
    mkdir -p "$(dirname "$KAFKA_LIBS")"
    rm -rf "$tmp"
    if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$tmp"; then
        rm -rf "$tmp"
        echo "setup: mvn could not fetch the Kafka jars (see above)" >&2
        exit 1
    fi
    if ! ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1; then
        rm -rf "$tmp"
        echo "setup: mvn finished but kafka_2.13 is not among the jars" >&2
        exit 1
    fi
    rm -rf "$KAFKA_LIBS" "$stamp"
    mv "$tmp" "$KAFKA_LIBS"
    echo "$sum" >"$stamp"
    done_step "fetched $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars into ${KAFKA_LIBS#"$ROOT"/}"
}

build() {
    step "build in ${BUILD_DIR#"$ROOT"/}"
    # cmake re-configures only when something changed, so always running both is cheap.
    local extra=()
    # shellcheck disable=SC2206 # word-splitting of the extra arguments is intended
    [ -z "${LST_CMAKE_ARGS:-}" ] || extra=(${LST_CMAKE_ARGS})
    local gen=()
    [ -f "$BUILD_DIR/CMakeCache.txt" ] || gen=(-G Ninja)
    mkdir -p "$BUILD_DIR"
    # The configure output is long and only interesting when it fails.
    local log="$BUILD_DIR/setup-configure.log"
    if ! cmake -S "$ROOT" -B "$BUILD_DIR" "${gen[@]}" "${extra[@]}" >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup: cmake configure failed" >&2
        exit 1
    fi
    cmake --build "$BUILD_DIR"
    done_step "built"
}

install_packages
fetch_kafka_jars
if [ "$DO_BUILD" -eq 1 ]; then
    build
else
    echo "setup: build skipped (--no-build)"
fi
t=$(($(now_ms) - T_ALL))
printf 'setup: done in %d.%03d s\n' $((t / 1000)) $((t % 1000))
