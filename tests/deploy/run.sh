#!/usr/bin/env bash
# Checks of the deployment (deploy/, docs/configuration.md), run by scripts/test.sh:
#
#   tests/deploy/run.sh [BUILD_DIR]      (default: $LST_BUILD_DIR or build)
#
#  1. docs/configuration.md and deploy/.env.example are what the built programs print now
#     (scripts/gen-config-docs.sh --check)
#  2. `docker-compose config` passes for the default, demo and monitoring profiles (throwaway
#     .env made from .env.example the way the README says, secrets files in a temp dir), and
#     fails with a clear message while a required setting is left empty
#  3. check_deploy.py: every variable compose.yaml sets is in the program's config table, every
#     required one is set, secrets only as Compose secrets via *_FILE, healthchecks, restart
#     policies, depends_on on health, profiles, scaling, the shared blob store, the Dockerfile's
#     stages/user/packages (against the libraries the built programs really link), the metric
#     names of the alerts and the dashboard against the code
#  4. the image healthcheck script against a real threema-sim (healthy, and a closed port)
#  5. systemd-analyze verify of the unit files; shellcheck of the scripts when installed
#
# No Docker engine is needed. Prints "deploy checks: N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-${LST_BUILD_DIR:-build}}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
DEPLOY=$ROOT/deploy
WORK=$(mktemp -d)
SIM_PID=
cleanup() {
    if [ -n "$SIM_PID" ]; then
        kill "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "  ok   $*"; }
ko() { failed=$((failed + 1)); echo "  FAIL $*"; }
PROGRAMS="gateway-out:services/gateway-out/gateway-out gateway-in:services/gateway-in/gateway-in
ledger:services/ledger/ledger view-api:services/view-api/view-api threema-sim:tools/threema-sim/threema-sim"

for p in $PROGRAMS; do
    [ -x "$BUILD/${p#*:}" ] || { echo "deploy checks: $BUILD/${p#*:} missing; build first" >&2; exit 1; }
done
command -v docker-compose >/dev/null || { echo "deploy checks: docker-compose missing (scripts/setup.sh)" >&2; exit 1; }
python3 -c 'import yaml' 2>/dev/null || { echo "deploy checks: python3-yaml missing (scripts/setup.sh)" >&2; exit 1; }

echo "--- generated files"
if "$ROOT/scripts/gen-config-docs.sh" --check "$BUILD"; then
    ok "docs/configuration.md and deploy/.env.example match the programs' config tables"
else
    ko "generated files are stale"
fi

echo "--- docker-compose config"
# The operator's path: copy .env.example, fill in the required lines, secrets as files.
mkdir -p "$WORK/secrets"
for f in gateway.secret gateway.private.key api-tokens grafana-admin-password; do
    echo "throwaway-$f" >"$WORK/secrets/$f"
done
cp "$DEPLOY/.env.example" "$WORK/unfilled.env"
echo "DEPLOY_ENV_FILE=$WORK/unfilled.env" >>"$WORK/unfilled.env"
sed -e 's/^LST_GATEWAY_ID=$/LST_GATEWAY_ID=*TESTGW1/' \
    -e 's/^DEPLOY_CALLBACK_DOMAIN=$/DEPLOY_CALLBACK_DOMAIN=callback.example.com/' \
    -e 's/^DEPLOY_API_DOMAIN=$/DEPLOY_API_DOMAIN=leitstand.example.com/' \
    -e 's/^DEPLOY_ACME_EMAIL=$/DEPLOY_ACME_EMAIL=ops@example.com/' \
    "$DEPLOY/.env.example" >"$WORK/.env"
cat >>"$WORK/.env" <<EOF
DEPLOY_ENV_FILE=$WORK/.env
DEPLOY_GATEWAY_SECRET_FILE=$WORK/secrets/gateway.secret
DEPLOY_PRIVATE_KEY_FILE=$WORK/secrets/gateway.private.key
DEPLOY_API_TOKENS_FILE=$WORK/secrets/api-tokens
DEPLOY_GRAFANA_PASSWORD_FILE=$WORK/secrets/grafana-admin-password
EOF
if grep -q '^[A-Z0-9_]*=$' "$WORK/.env"; then
    ko "filling .env.example left empty required lines: $(grep '^[A-Z0-9_]*=$' "$WORK/.env" | tr '\n' ' ')"
fi
compose() { (cd "$DEPLOY" && docker-compose "$@"); }
# The environment must not leak into the interpolation.
unset_env() { env -u LST_GATEWAY_ID -u LST_GATEWAY_URL -u LST_TOPIC_PREFIX -u LST_CALLBACK_PATH "$@"; }
run_config() { # name, compose options...
    local name=$1
    shift
    if unset_env docker-compose --project-directory "$DEPLOY" -f "$DEPLOY/compose.yaml" "$@" config \
        >"$WORK/config-$name.yaml" 2>"$WORK/config-$name.err"; then
        ok "docker-compose config ($name)"
    else
        ko "docker-compose config ($name): $(cat "$WORK/config-$name.err")"
    fi
}
run_config default --env-file "$WORK/.env"
run_config demo --env-file "$DEPLOY/demo/demo.env" --profile demo
run_config monitoring --env-file "$WORK/.env" --profile monitoring
# The demo's own secret files exist (they are published demo keys).
while read -r f; do
    case "$f" in /*) ;; *) f=$DEPLOY/$f ;; esac
    if [ -r "$f" ]; then ok "demo file $(basename "$f") exists"; else ko "demo file $f missing"; fi
done < <(sed -n 's/^DEPLOY_[A-Z_]*_FILE=//p' "$DEPLOY/demo/demo.env")
# Profiles: what runs without a profile and with demo.
services_of() { unset_env docker-compose --project-directory "$DEPLOY" -f "$DEPLOY/compose.yaml" "$@" config --services 2>/dev/null | sort | tr '\n' ' '; }
# A required setting left empty must stop compose with the variable's name.
if unset_env docker-compose --project-directory "$DEPLOY" -f "$DEPLOY/compose.yaml" \
    --env-file "$WORK/unfilled.env" config >/dev/null 2>"$WORK/unfilled.err"; then
    ko "docker-compose config accepted an .env without LST_GATEWAY_ID"
elif grep -q 'set [A-Z_]* in deploy/.env' "$WORK/unfilled.err"; then
    ok "an unfilled .env is refused: $(grep -o 'set [A-Z_]* in deploy/.env' "$WORK/unfilled.err" | head -n 1)"
else
    ko "an unfilled .env fails without naming the setting: $(cat "$WORK/unfilled.err")"
fi
[ -n "$(services_of --env-file "$WORK/.env")" ] || ko "docker-compose config --services printed nothing"

echo "--- compose file against the config tables, Dockerfile, alerts, dashboard"
for p in $PROGRAMS; do
    env -i "$BUILD/${p#*:}" --env-example >"$WORK/${p%%:*}.env"
done
# Metric names the code registers: the name argument of every lst_metrics_* call and of the
# services' labelled-counter helpers.
python3 - "$ROOT" >"$WORK/metrics.txt" <<'PY'
import glob, re, sys
root = sys.argv[1]
names = set()
pat = re.compile(r'(?:lst_metrics_(?:counter|gauge|histogram)|labelled)\s*\(\s*[^,()]+,\s*"(lst_[a-z0-9_]+)"')
for d in ("lib/src", "services", "tools"):
    for path in glob.glob("%s/%s/**/*.c" % (root, d), recursive=True):
        names.update(pat.findall(open(path, encoding="utf-8", errors="replace").read()))
print("\n".join(sorted(names)))
PY
# The Debian packages of the shared libraries the programs link directly (NEEDED).
for p in $PROGRAMS; do
    objdump -p "$BUILD/${p#*:}" 2>/dev/null | awk '$1 == "NEEDED" { print $2 }'
done | sort -u | while read -r lib; do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
    [ -n "$path" ] || { echo "unresolved:$lib"; continue; }
    # dpkg knows a file under the path it installed (/lib or /usr/lib: usrmerge).
    owner=$({ dpkg -S "$path" || dpkg -S "$(readlink -f "$path")"; } 2>/dev/null | head -n 1 | cut -d: -f1)
    echo "${owner:-unresolved:$lib}"
done | sort -u >"$WORK/needed-packages.txt"
if grep -q '^unresolved:' "$WORK/needed-packages.txt"; then
    ko "libraries not found: $(grep '^unresolved:' "$WORK/needed-packages.txt" | tr '\n' ' ')"
fi
if [ -s "$WORK/config-default.yaml" ] && [ -s "$WORK/config-demo.yaml" ] &&
    [ -s "$WORK/config-monitoring.yaml" ]; then
    if python3 "$ROOT/tests/deploy/check_deploy.py" "$WORK" "$ROOT"; then
        ok "check_deploy.py (runtime packages: $(tr '\n' ' ' <"$WORK/needed-packages.txt"))"
    else
        ko "check_deploy.py"
    fi
else
    ko "check_deploy.py skipped: a docker-compose config failed"
fi

# The checker itself must catch what it is there for: each mutation of a copy of deploy/
# must make it fail with the expected message.
mutate() { # description, expected message, sed expression on compose.yaml
    rm -rf "$WORK/mut" && mkdir -p "$WORK/mut" && cp -r "$DEPLOY" "$WORK/mut/deploy" &&
        cp "$ROOT/CMakeLists.txt" "$WORK/mut/"
    sed -i "$3" "$WORK/mut/deploy/compose.yaml"
    if python3 "$ROOT/tests/deploy/check_deploy.py" "$WORK" "$WORK/mut" >"$WORK/mut.out" 2>&1; then
        ko "checker missed: $1"
    elif grep -q "$2" "$WORK/mut.out"; then
        ok "checker catches: $1"
    else
        ko "checker failed for another reason on: $1 ($(grep FAIL "$WORK/mut.out" | head -n 3))"
    fi
}
mutate "a variable in no config table" "sets LST_LEDGER_BOGUS, which is in no config table" \
    's/^      LST_REDIS_PORT: "6379"$/      LST_REDIS_PORT: "6379"\n      LST_LEDGER_BOGUS: "1"/'
mutate "a plain secret" "secret LST_GATEWAY_SECRET as a plain environment value" \
    's|LST_GATEWAY_SECRET_FILE: /run/secrets/gateway_secret|LST_GATEWAY_SECRET: hunter2|'
mutate "a required variable not set" "required LST_GATEWAY_ID" '/LST_GATEWAY_ID: /d'
mutate "a fixed container name on gateway-out" "prevent --scale" \
    's/^  gateway-out:$/  gateway-out:\n    container_name: gwo/'
mutate "a secret file the service does not mount" "does not mount" \
    's/^    secrets: \[api_tokens\]$/    secrets: []/'

echo "--- image healthcheck script against a real threema-sim"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
LST_SIM_PORT=$port LST_SIM_DIRECTORY="$ROOT/demo/erp-export.csv" LST_LOG_LEVEL=warn \
    "$BUILD/tools/threema-sim/threema-sim" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
healthy=1
for _ in $(seq 1 100); do # at most ~10 s
    if LEITSTAND_PROGRAM=threema-sim LST_SIM_PORT=$port "$DEPLOY/healthcheck.sh" 2>/dev/null; then
        healthy=0
        break
    fi
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1
done
if [ $healthy -eq 0 ]; then
    ok "healthcheck: 0 for a serving threema-sim on :$port"
else
    ko "healthcheck never succeeded against threema-sim on :$port ($(tail -n 3 "$WORK/sim.log"))"
fi
kill "$SIM_PID" 2>/dev/null
wait "$SIM_PID" 2>/dev/null
SIM_PID=
if LEITSTAND_PROGRAM=threema-sim LST_SIM_PORT=$port timeout 10 "$DEPLOY/healthcheck.sh" 2>/dev/null; then
    ko "healthcheck: 0 for a stopped service"
else
    ok "healthcheck: non-zero once the service is gone"
fi
if LEITSTAND_PROGRAM=ledger LST_HTTP_PORT=$port timeout 10 "$DEPLOY/healthcheck.sh" 2>/dev/null; then
    ko "healthcheck: 0 for a closed port (ledger)"
else
    ok "healthcheck: non-zero for a closed port (ledger)"
fi

echo "--- systemd units"
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$WORK/units" "$WORK/bin"
    for b in ledger gateway-in gateway-out view-api threema-sim; do ln -s /bin/true "$WORK/bin/$b"; done
    for f in "$DEPLOY"/systemd/*.service "$DEPLOY"/systemd/*.target; do
        # Installed paths replaced by stand-ins: verify checks that ExecStart is executable.
        sed -e "s|/opt/leitstand/bin/|$WORK/bin/|" -e "s|/opt/leitstand/src/scripts/|$ROOT/scripts/|" \
            "$f" >"$WORK/units/$(basename "$f")"
    done
    mv "$WORK/units/leitstand-gateway-out@.service" "$WORK/units/leitstand-gateway-out@18081.service"
    if (cd "$WORK/units" && systemd-analyze verify --man=no ./*.service ./*.target) >"$WORK/verify.log" 2>&1 &&
        ! grep -q . "$WORK/verify.log"; then
        ok "systemd-analyze verify: $(find "$DEPLOY/systemd" -name '*.service' -o -name '*.target' | wc -l) units"
    else
        ko "systemd-analyze verify: $(cat "$WORK/verify.log")"
    fi
else
    echo "  skip systemd-analyze not installed"
fi

if command -v shellcheck >/dev/null; then
    if shellcheck -x "$DEPLOY/healthcheck.sh" "$ROOT/scripts/gen-config-docs.sh" "$ROOT/tests/deploy/run.sh"; then
        ok "shellcheck"
    else
        ko "shellcheck"
    fi
fi

echo "deploy checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
