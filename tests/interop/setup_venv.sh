#!/usr/bin/env bash
# Creates the virtual environment of the interoperability tests in BUILD_DIR/interop-venv with
# the official Threema Gateway SDK (threema.gateway, PyPI) and pytest. Idempotent: when the
# venv already holds exactly these versions it returns at once.
#
#   tests/interop/setup_venv.sh BUILD_DIR      prints the venv's python path on stdout
#
# Environment: LST_PYTHON (python3), PIP_INDEX_URL etc. as pip reads them. The SDK loads the
# system libsodium (libsodium23, installed by scripts/setup.sh) through libnacl.
set -euo pipefail
BUILD=${1:?usage: setup_venv.sh BUILD_DIR}
PY=${LST_PYTHON:-python3}
SDK_VERSION=8.0.0
PYTEST_VERSION=8.3.5
VENV=$BUILD/interop-venv
STAMP=$VENV/.lst-interop-stamp
PACKAGES=("threema.gateway==$SDK_VERSION" "pytest==$PYTEST_VERSION")
WANT="${PACKAGES[*]}"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c 'import threema.gateway, pytest' 2>/dev/null; then
    echo "$VENV/bin/python"
    exit 0
fi

echo "interop: creating $VENV ($WANT)" >&2
mkdir -p "$BUILD"
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
# A bounded install: a hanging index must fail the set-up, not the whole test run.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 60 --retries 3 \
    "${PACKAGES[@]}" >&2
"$VENV/bin/python" -c 'import threema.gateway, pytest' >&2
echo "$WANT" >"$STAMP"
echo "$VENV/bin/python"
