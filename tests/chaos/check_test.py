#!/usr/bin/env python3
"""Tests the checker before it judges anything: a synthetic passing history must pass, and
doctored copies of it (a lost record, an extra one, a state that went backwards, a callback
answered 200 but missing in lst.inbound, a dropped callback, a 500, an undeclared duplicate
send, a crash loop, a fault never observed) must each fail the right invariant. Runs without
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
            "heal_ms": None}
    status = [["gateway-out-1", "10", "1", "0", "0"], ["gateway-in", "11", "1", "0", "0"]]
    return {"meta": meta, "requests": reqs, "sent": sent, "inbound": inbound,
            "simlog": simlog, "callbacks": callbacks, "status": status,
            "sim_stats": {"callbacks": {"dropped": 0}}}


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
    if v["passed"] and v["invariants"]["5"].startswith("not checked"):
        passed += 1
        print("ok   the passing history passes (5 and 6 reported not checked)")
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
