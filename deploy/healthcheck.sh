#!/bin/bash
# Container healthcheck of the Leitstand images: GET /healthz on the program's own HTTP port
# (LST_HTTP_PORT, LST_SIM_PORT for the simulator, else the program's default) must answer 200.
# bash's /dev/tcp keeps curl out of the runtime image. Exit 0 healthy, 1 unhealthy.
set -u
case "${LEITSTAND_PROGRAM:-}" in
gateway-out) port=${LST_HTTP_PORT:-18081} ;;
gateway-in) port=${LST_HTTP_PORT:-18082} ;;
ledger) port=${LST_HTTP_PORT:-18083} ;;
view-api) port=${LST_HTTP_PORT:-18080} ;;
threema-sim) port=${LST_SIM_PORT:-18090} ;;
*) echo "healthcheck: unknown program '${LEITSTAND_PROGRAM:-}'" >&2; exit 1 ;;
esac
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
# The status line, read with a bound so a hung server cannot hang the check.
IFS= read -r -t 4 status <&3 || exit 1
exec 3<&-
case "$status" in
"HTTP/1."?" 200 "*) exit 0 ;;
*) echo "healthcheck: /healthz on :$port answered '${status%$'\r'}'" >&2; exit 1 ;;
esac
