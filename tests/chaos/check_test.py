#!/usr/bin/env python3
"""Tests the checker before it judges anything: a synthetic passing history must pass, and
doctored copies of it (a lost record, an extra one, a state that went backwards, a callback
answered 200 but missing in lst.inbound, a dropped callback, a 500, an undeclared duplicate
send, a crash loop, a fault never observed, Redis differing from the Kafka fold, a status read
through the view API going backwards, a slow view API, a lagging ledger, throughput not
back) must each fail the right invariant. Runs without
the stack:  python3 tests/chaos/check_test.py  -> "N passed, N failed"."""
import copy
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402

T0 = 1_700_000_000_000


def passing_history():
    reqs = {f"r{i:04d}": T0 + i * 10 for i in range(100)}
    sent, inbound, simlog, callbacks = [], [], [], []
    for i, rid in enumerate(reqs):
        mid = f"{i:016x}"
        sent.append((T0 + i * 10 + 50, {"v": 1, "request_id": rid, "outcome": "accepted",
                                        "threema_message_id": mid, "possible_duplicate": False}))
        simlog.append({"seq": i + 1, "endpoint": "/send_e2e", "status": 200, "requestId": rid})
        # the simulated phone's "received" receipt (and read unless read receipts are off)
        frm = "OFFREAD1" if i % 5 == 0 else f"USER{i:04d}"
        inbound.append((T0 + i * 10 + 400, {"kind": "receipt", "from": frm,
                                            "threema_message_id": f"a{i:015x}",
                                            "receipt": {"status": 1, "message_ids": [mid]}}))
        if i % 5:
            inbound.append((T0 + i * 10 + 900, {"kind": "receipt", "from": frm,
                                                "threema_message_id": f"b{i:015x}",
                                                "receipt": {"status": 2, "message_ids": [mid]}}))
    for j in range(10):  # hand-made callbacks, each posted twice, read before received
        for st in (2, 1):
            cb = f"c{j:013x}{st:02x}"
            for copy_ in ("orig", "dup"):
                callbacks.append({"msgid": cb, "from": "USER0001", "ref": f"{j:016x}",
                                  "status": st, "copy": copy_, "attempt": 0, "http": 200,
                                  "latency": 5, "wall": T0 + j})
            inbound.append((T0 + j, {"kind": "receipt", "from": "USER0001",
                                     "threema_message_id": cb,
                                     "receipt": {"status": st, "message_ids": [f"{j:016x}"]}}))
    meta = {"scenario": "synthetic", "W": 4, "kills": {}, "deadline_ms": 3000, "min_ops": 50,
            "fault_observed": True, "read_off": ["OFFREAD1"], "no_receipts": [],
            "heal_ms": None,
            # a fault window the callbacks and view reads met (redis-pause, redis-disk-full)
            "fault_window": [T0, T0 + 5000], "min_in_fault": {"callbacks": 5, "views": 5}}
    status = [["gateway-out-1", "10", "1", "0", "0"], ["gateway-in", "11", "1", "0", "0"],
              ["ledger-1", "12", "1", "0", "0"], ["view-api", "13", "1", "0", "0"]]
    # the view API's reads: ten messages of ten recipients polled five times while their
    # states move forward (queued, sent, delivered, read, read)
    views = []
    steps = ["queued", "sent", "delivered", "read", "read"]
    for k, st in enumerate(steps):
        for m in range(10):
            views.append({"t": T0 + k * 1000 + m, "mid": f"M{m:02d}", "http": 200, "ms": 12,
                          "st": {f"E{m}{e}": st for e in range(10)}})
    # canonical ledger dumps: live and rebuilt identical
    dump = ["lst:lg:m:M%02d hash: n=10\x1fs:read=10\x1f" % m for m in range(10)] + \
        ["lst:lg:wm hash: p:0=99\x1f"]
    return {"meta": meta, "requests": reqs, "sent": sent, "inbound": inbound,
            "simlog": simlog, "callbacks": callbacks, "status": status,
            "sim_stats": {"callbacks": {"dropped": 0}}, "views": views,
            "live": list(dump), "rebuilt": list(dump), "caught_up": "caught up: yes"}


def write(h, d):
    os.makedirs(d, exist_ok=True)
    json.dump(h["meta"], open(os.path.join(d, "meta.json"), "w"))
    with open(os.path.join(d, "requests.tsv"), "w") as f:
        for rid, t in h["requests"].items():
            f.write(f"{rid}\t{t}\n")
    for name in ("sent", "inbound"):
        with open(os.path.join(d, name + ".tsv"), "w") as f:
            for ts, r in h[name]:
                f.write(f"{ts}\t{json.dumps(r)}\n")
    with open(os.path.join(d, "simlog.jsonl"), "w") as f:
        for e in h["simlog"]:
            f.write(json.dumps(e) + "\n")
    with open(os.path.join(d, "callbacks.tsv"), "w") as f:
        for c in h["callbacks"]:
            f.write("\t".join(str(c[k]) for k in ("msgid", "from", "ref", "status", "copy",
                                                  "attempt", "http", "latency", "wall")) + "\n")
    json.dump(h["sim_stats"], open(os.path.join(d, "sim_stats.json"), "w"))
    with open(os.path.join(d, "status"), "w") as f:
        for s in h["status"]:
            f.write(" ".join(s) + "\n")
    with open(os.path.join(d, "views.jsonl"), "w") as f:
        for v in h["views"]:
            f.write(json.dumps(v) + "\n")
    for k in ("live", "rebuilt"):
        if h[k] is not None:
            with open(os.path.join(d, k + ".dump"), "w") as f:
                f.write("".join(line + "\n" for line in h[k]))
    with open(os.path.join(d, "ledger_caught_up.txt"), "w") as f:
        f.write(h["caught_up"] + "\n")


def lost(h):
    del h["sent"][17]


def extra(h):
    h["sent"].append((T0 + 99999, {"request_id": "never-submitted", "outcome": "accepted",
                                   "threema_message_id": "ffffffffffffffff"}))


def backwards(h):
    _, r = h["sent"][3]
    h["sent"].append((T0 + 99999, dict(r, outcome="failed", threema_message_id=None)))


def extra_send(h):
    h["simlog"].append({"seq": 999, "endpoint": "/send_e2e", "status": 200,
                        "requestId": "ghost"})


def dup_unflagged(h):
    h["simlog"].append({"seq": 1000, "endpoint": "/send_e2e", "status": 200,
                        "requestId": "r0005"})


def inbound_missing(h):
    h["inbound"] = [x for x in h["inbound"] if x[1]["threema_message_id"] != "c000000000000201"]


def cb_dropped(h):
    for c in h["callbacks"]:
        if c["msgid"] == "c000000000000301":
            c["http"] = 503


def receipt_missing(h):
    h["inbound"] = [x for x in h["inbound"] if x[1]["threema_message_id"] != "a00000000000002a"]


def answer_500(h):
    h["callbacks"][0]["http"] = 500


def slow(h):
    h["callbacks"][1]["latency"] = 9000


def crashloop(h):
    h["status"][0].append("crashloop")


def not_observed(h):
    h["meta"]["fault_observed"] = False


def too_few(h):
    h["meta"]["min_ops"] = 100000


def read_off_read(h):
    h["inbound"].append((T0, {"kind": "receipt", "from": "OFFREAD1",
                              "threema_message_id": "d000000000000000",
                              "receipt": {"status": 2, "message_ids": ["0000000000000000"]}}))


def redis_missing_key(h):
    del h["live"][3]


def redis_extra_key(h):
    h["live"].append("lst:lg:r:GHOST hash: E1={\"st\":\"read\"}\x1f")


def redis_changed(h):
    h["live"][4] = h["live"][4].replace("s:read=10", "s:read=9\x1fs:delivered=1")


def no_rebuild(h):
    h["rebuilt"] = None


def view_backwards(h):
    h["views"].append({"t": T0 + 9000, "mid": "M03", "http": 200, "ms": 10,
                       "st": {"E30": "delivered"}})


def view_vanished(h):
    h["views"].append({"t": T0 + 9000, "mid": "M03", "http": 404, "ms": 10, "st": {}})


def view_unknown_state(h):
    h["views"].append({"t": T0 + 9000, "mid": "M03", "http": 200, "ms": 10,
                       "st": {"E30": "teleported"}})


def view_slow(h):
    h["views"][7]["ms"] = 1600


def view_500(h):
    h["views"][8]["http"] = 500


def ledger_lagging(h):
    h["caught_up"] = "caught up: no (3 partitions behind, 10 records applied)"


def no_throughput(h):
    # a heal after which only a trickle of outcomes comes while the backlog stays
    h["meta"]["heal_ms"] = T0 + 100
    h["meta"]["baseline_per_s"] = 100.0
    late = {rid: T0 + 100 + 60000 + i for i, rid in enumerate(list(h["requests"])[10:])}
    h["sent"] = [(late.get(r["request_id"], ts), r) for ts, r in h["sent"]]


def rate_exceeded(h):
    h["meta"]["gateway_rate_limit"] = 20
    for i, e in enumerate(h["simlog"]):
        e["timeMs"] = T0 + i * 10  # 100 calls per second


def in_doubt_unflagged(h):
    h["simlog"][4]["fault"] = "timeout_after"
    h["simlog"].append({"seq": 1001, "endpoint": "/send_e2e", "status": 200,
                        "requestId": "r0004"})


def valid_dead_lettered(h):
    # the ledger gave up on a valid record (e.g. a transient Redis refusal taken for poison)
    h["meta"]["ledger_dead_letters"] = 1
    h["meta"]["max_dead_letters"] = 0


def window_missed(h):
    # the fault happened while no operation was in flight: it proved nothing
    h["meta"]["fault_window"] = [T0 + 500000, T0 + 510000]


def required_missing(h):
    h["meta"]["require"] = {"Redis refused writes (MISCONF) while the disk was full": False}


def view_never_moves(h):
    h["views"] = [dict(v, st={e: "read" for e in v["st"]}) for v in h["views"]]


CASES = [  # name, doctor, invariant that must fail
    ("a lost record", lost, "1"),
    ("an extra outcome", extra, "2"),
    ("a state that went backwards", backwards, "1"),
    ("a send never submitted", extra_send, "2"),
    ("a duplicate send not flagged", dup_unflagged, "3"),
    ("a 200 callback missing in lst.inbound", inbound_missing, "4"),
    ("a callback dropped", cb_dropped, "4"),
    ("a delivery receipt missing", receipt_missing, "4"),
    ("read receipt from a user with read receipts off", read_off_read, "4"),
    ("a 500 answer", answer_500, "8"),
    ("an answer after the deadline", slow, "8"),
    ("a crash loop", crashloop, "7"),
    ("fault not observed", not_observed, "9"),
    ("too few operations", too_few, "9"),
    ("Redis lacks a key the Kafka log makes", redis_missing_key, "5"),
    ("Redis holds a key the Kafka log does not make", redis_extra_key, "5"),
    ("Redis differs from the fold in one value", redis_changed, "5"),
    ("no rebuild to compare with", no_rebuild, "5"),
    ("a recipient status read went backwards", view_backwards, "6"),
    ("a recipient status the ledger does not know", view_unknown_state, "6"),
    ("a message shown, then not found through the view", view_vanished, "6"),
    ("a view API answer after 1.5 s", view_slow, "8"),
    ("a view API 500", view_500, "8"),
    ("the ledger not caught up (lag > 0)", ledger_lagging, "7"),
    ("throughput not back within 20 s", no_throughput, "7"),
    ("no state change seen through the view", view_never_moves, "9"),
    ("the configured Gateway rate exceeded", rate_exceeded, "3"),
    ("an in-doubt resend not flagged", in_doubt_unflagged, "3"),
    ("no operation in flight during the fault", window_missed, "9"),
    ("a valid record dead-lettered by the ledger", valid_dead_lettered, "5"),
    ("a scenario's required fault observation missing", required_missing, "9"),
]


def main():
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="chaos_check_test.")

    def verdict(h, name):
        d = os.path.join(tmp, name.replace(" ", "_"))
        write(h, d)
        return check.check(d)

    base = passing_history()
    v = verdict(base, "passing")
    if v["passed"]:
        passed += 1
        print("ok   the passing history passes")
    else:
        failed += 1
        print("FAIL the passing history passes:", json.dumps(v["invariants"])[:2000])
    for name, doctor, inv in CASES:
        h = copy.deepcopy(base)
        doctor(h)
        v = verdict(h, name)
        if not v["passed"] and not v["invariants"][inv]["ok"]:
            passed += 1
            print(f"ok   {name}: fails invariant {inv}")
        else:
            failed += 1
            print(f"FAIL {name}: expected invariant {inv} to fail; verdict passed={v['passed']}")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
