#!/usr/bin/env bash
# Runs a view-api test binary with its exchanges dumped, then checks every response against
# proto/openapi.yaml (tests/system/view_api_openapi_check.py).
#
#   view_api_openapi.sh TEST_BINARY SOURCE_DIR BUILD_DIR
#
# The checker needs PyYAML and jsonschema (with referencing): the system's python3 when it
# has them, else a venv in BUILD_DIR/openapi-venv with both from PyPI. Exit 77 (skipped)
# when neither is possible (offline without the Debian packages).
set -uo pipefail
BIN=${1:?usage}
SRC=${2:?usage}
BUILD=${3:?usage}
PY=python3
CHECK='import yaml, jsonschema, referencing'
if ! "$PY" -c "$CHECK" 2>/dev/null; then
    VENV=$BUILD/openapi-venv
    if ! "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
        rm -rf "$VENV"
        python3 -m venv "$VENV" >&2 &&
            "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 60 \
                --retries 3 'PyYAML>=6' 'jsonschema>=4.18' >&2 || {
            echo "openapi check skipped: no PyYAML/jsonschema and no way to install them"
            exit 77
        }
    fi
    PY=$VENV/bin/python
fi
DUMP=$(mktemp /tmp/lst-view-api-dump.XXXXXX)
trap 'rm -f "$DUMP"' EXIT
LST_VIEW_API_DUMP=$DUMP "$BIN"
rc=$?
"$PY" "$SRC/tests/system/view_api_openapi_check.py" "$SRC/proto/openapi.yaml" "$DUMP"
check=$?
[ $rc -eq 0 ] && [ $check -eq 0 ]
