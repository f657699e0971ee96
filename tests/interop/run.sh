#!/usr/bin/env bash
# Interoperability tests with the official Threema Gateway SDK (see test_sdk_interop.py).
#
#   tests/interop/run.sh BUILD_DIR [pytest args...]
#
# Sets up the venv (setup_venv.sh, fast when present), then runs pytest against BUILD_DIR's
# lstctl and threema-sim. Bounded: every subprocess has a timeout, the whole run at most
# LST_INTEROP_TIMEOUT_S (300) seconds. Ends with pytest's "N passed, N failed" summary line;
# exits non-zero on any failure.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:?usage: run.sh BUILD_DIR [pytest args...]}
shift
BUILD=$(cd "$BUILD" && pwd)
LSTCTL=$BUILD/tools/lstctl/lstctl
SIM=$BUILD/tools/threema-sim/threema-sim
[ -x "$LSTCTL" ] || { echo "interop: $LSTCTL not built"; echo "0 passed, 1 failed"; exit 1; }

PY=$("$HERE/setup_venv.sh" "$BUILD") || {
    echo "interop: venv set-up failed"
    echo "0 passed, 1 failed"
    exit 1
}
export LSTCTL LST_SOURCE_DIR=$ROOT
if [ -x "$SIM" ]; then
    export THREEMA_SIM=$SIM
else
    echo "interop: $SIM not built, simulator tests are skipped"
fi
# The SDK warns about unclosed aiohttp sessions in its own CLI; not ours to fix.
RESULTS=$BUILD/interop-results.xml
rm -f "$RESULTS"
rc=0
timeout --kill-after=10 "${LST_INTEROP_TIMEOUT_S:-300}" "$PY" -m pytest -p no:cacheprovider \
    -W ignore::DeprecationWarning -q -rfEs --junitxml="$RESULTS" "$HERE/test_sdk_interop.py" "$@" ||
    rc=$?
# One summary line in the project's format, from pytest's JUnit report.
"$PY" - "$RESULTS" "$rc" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
rc = int(sys.argv[2])
try:
    suite = ET.parse(sys.argv[1]).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    total, fail = int(suite.get("tests")), int(suite.get("failures")) + int(suite.get("errors"))
    skipped = int(suite.get("skipped"))
    note = f" ({skipped} skipped)" if skipped else ""
    print(f"{total - fail - skipped} passed, {max(fail, 1 if rc else 0)} failed{note}")
except (OSError, ET.ParseError, TypeError):
    print(f"0 passed, 1 failed (no results, pytest exit {rc})")
PYEOF
exit $rc
