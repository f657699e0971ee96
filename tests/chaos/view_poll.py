#!/usr/bin/env python3
"""Reads the per-recipient states of the workload's messages through the view API for the
whole scenario (invariants 6 and 8 of the chaos suite).

    view_poll.py BASE_URL TOKEN MESSAGES_FILE OUT_JSONL STOP_FILE [FAST_FILE]

MESSAGES_FILE grows while the workload runs (one message ID per line). The poller cycles
through every message known so far with GET /api/messages/{id} (5 s client timeout, so a hang
shows as an answer of 5 s) and appends one line per request to OUT_JSONL:
    {"t": wall_ms, "mid": id, "http": code (0: no answer), "ms": latency, "st": {eid: state}}
plus "why": the problem type's last part (e.g. "projections-refilling") of an answer other
than 200 that carries one. About one round per second; while FAST_FILE exists (a scenario's
fault window it wants read closely) about five. It stops after one more full round once
STOP_FILE exists (or after 600 s).
"""
import http.client
import json
import os
import sys
import time
import urllib.parse


def get(conn_box, base, token, mid):
    u = urllib.parse.urlparse(base)
    t0 = time.monotonic()
    code, body = 0, b""
    for _ in range(2):  # one reconnect: a kept-alive connection may have been closed
        try:
            if conn_box[0] is None:
                conn_box[0] = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            conn_box[0].request("GET", f"/api/messages/{mid}",
                                headers={"Authorization": f"Bearer {token}"})
            r = conn_box[0].getresponse()
            code, body = r.status, r.read()
            break
        except (OSError, http.client.HTTPException):
            if conn_box[0] is not None:
                conn_box[0].close()
            conn_box[0] = None
            if time.monotonic() - t0 > 4:
                break
    return code, body, int((time.monotonic() - t0) * 1000)


def states(code, body):
    if code != 200:
        return {}
    try:
        d = json.loads(body)
    except ValueError:
        return {"_garbled": "?"}
    return {r["employee_id"]: (r.get("status") or {}).get("state", "?")
            for r in d.get("recipients", [])}


def why(code, body):
    """The problem type of an error answer (RFC 9457 JSON), its part after the last ':'."""
    if code in (0, 200):
        return None
    try:
        return str(json.loads(body).get("type", "")).rsplit(":", 1)[-1] or None
    except (ValueError, AttributeError):
        return None


def main():
    base, token, mfile, out, stop = sys.argv[1:6]
    fast = sys.argv[6] if len(sys.argv) > 6 else None
    conn = [None]
    end = time.time() + 600
    last_round = False
    with open(out, "a", encoding="utf-8") as f:
        while time.time() < end:
            stopping = os.path.exists(stop)
            mids = []
            if os.path.exists(mfile):
                mids = [l.strip() for l in open(mfile) if l.strip()]
            if not mids:
                time.sleep(0.2)
                continue
            t_round = time.monotonic()
            for mid in mids:
                code, body, ms = get(conn, base, token, mid)
                rec = {"t": int(time.time() * 1000), "mid": mid, "http": code, "ms": ms,
                       "st": states(code, body)}
                if why(code, body):
                    rec["why"] = why(code, body)
                f.write(json.dumps(rec) + "\n")
            f.flush()
            if last_round:
                break
            last_round = stopping
            # about one round per second at most: modest load on a 2-core box
            period = 0.2 if fast and os.path.exists(fast) else 1.0
            rest = period - (time.monotonic() - t_round)
            if rest > 0:
                time.sleep(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
