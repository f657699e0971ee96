#!/usr/bin/env bash
# Imports the demo ERP export (demo/erp-export.csv, 250 drivers) through the view API.
#
#   LST_VIEW_ADMIN_TOKEN=<admin token> scripts/demo-import.sh [--full] [URL]
#
# URL defaults to http://127.0.0.1:${LST_VIEW_API_HTTP_PORT:-18080}, the port
# scripts/services.sh starts the view-api on. The token is one whose sha256
# is in the view-api's token file with the role admin (docs/view-api.md, "Tokens"). --full
# deactivates employees that are not in the file. Prints the import report (what was
# created, updated, deactivated, unchanged); exits non-zero on an HTTP error.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=upsert
if [ "${1:-}" = "--full" ]; then
    MODE=full
    shift
fi
URL=${1:-http://127.0.0.1:${LST_VIEW_API_HTTP_PORT:-18080}}
: "${LST_VIEW_ADMIN_TOKEN:?set LST_VIEW_ADMIN_TOKEN to an admin token of the view-api}"
curl --fail-with-body --silent --show-error --max-time 120 \
    -H "Authorization: Bearer $LST_VIEW_ADMIN_TOKEN" \
    -H 'Content-Type: text/csv' \
    --data-binary @"$ROOT/demo/erp-export.csv" \
    "$URL/api/admin/erp-import?mode=$MODE"
echo
