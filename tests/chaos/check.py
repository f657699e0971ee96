#!/usr/bin/env python3
"""The chaos suite's checker: reconciles one scenario's recorded history with what Kafka and
the Gateway simulator saw, and prints one JSON verdict.

    check.py HISTORY_DIR        -> verdict JSON on stdout; exit 0 when every checked invariant holds

HISTORY_DIR (written by run.sh; check_test.py writes doctored copies):
    meta.json       scenario, W, kills {gateway-out, gateway-in}, fault windows [start_ms, end_ms]
                    (wall clock), heal_ms, deadline_ms (gateway-in's ack timeout), min_ops,
                    fault_observed (bool + what), require_outbound_dedupe, read_off (IDs of
                    recipients with read receipts off), no_receipts (request IDs sent with
                    no_delivery_receipts)
    requests.tsv    request_id TAB produce_wall_ms         (what the workload submitted)
    sent.tsv        kafka_ts_ms TAB lst.sent JSON           (kcat dump, every record)
    inbound.tsv     kafka_ts_ms TAB lst.inbound JSON
    simlog.jsonl    the simulator's /_sim/log entries of the scenario (X-Request-Id attributed)
    callbacks.tsv   chaos_cb's posts: msgid from ref status copy attempt http latency_ms wall_ms
    sim_stats.json  /_sim/stats at the end (callbacks.dropped must stay 0)
    status          the supervisor's "name pid starts exits last_status [crashloop]" lines

Also views.jsonl (view_poll.py's reads), live.dump / rebuilt.dump (canonical ledger dumps),
ledger_caught_up.txt, optional meta: gateway_rate_limit, expect_gateway_faults, require {what:
bool}, in_doubt_allowance, baseline_per_s, known_failure, fault_window [start_ms, end_ms] with
min_in_fault {callbacks: n, views: n} (operations that must have been in flight during it).

Invariants checked (numbers of issue 7): 1 lost = 0 and no final outcome changes afterwards;
2 nothing unsubmitted; 3 duplicate sends <= kills x W + in-doubt sends, every one flagged, the
configured Gateway rate kept; 4 every callback answered 200 is in lst.inbound, none dropped,
every accepted send's delivery receipt arrived; 5 the live projections equal a rebuild from
Kafka, and no valid record dead-lettered (ledger_dead_letters <= max_dead_letters); 6 no
per-recipient status read through the view API goes backwards; 7 recovery and
throughput back within 20 s, ledger lag 0, no crash loop; 8 gateway-in answers within deadline
+ 1 s, the view API within 1.5 s, never a 5xx but 503; 9 anti-vacuity.
"""
import bisect
import json
import os
import sys

RECOVERY_LIMIT_MS = 20000


def load_tsv_json(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            ts, _, doc = line.partition("\t")
            try:
                out.append((int(ts), json.loads(doc)))
            except ValueError:
                out.append((int(ts) if ts.isdigit() else 0, {"_garbled": doc}))
    return out


def load_dump(path):
    """A canonical ledger dump (tests/unit/test_ledger_dump.h): one line per key,
    "key type: content"."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                out[line.split(" ", 1)[0]] = line
    return out


def load_history(d):
    h = {"meta": json.load(open(os.path.join(d, "meta.json")))}
    h["requests"] = {}
    with open(os.path.join(d, "requests.tsv")) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                h["requests"][parts[0]] = int(parts[1])
    h["sent"] = load_tsv_json(os.path.join(d, "sent.tsv"))
    h["inbound"] = load_tsv_json(os.path.join(d, "inbound.tsv"))
    h["simlog"] = []
    p = os.path.join(d, "simlog.jsonl")
    if os.path.exists(p):
        h["simlog"] = [json.loads(l) for l in open(p) if l.strip()]
    h["callbacks"] = []
    p = os.path.join(d, "callbacks.tsv")
    if os.path.exists(p):
        for line in open(p):
            f = line.rstrip("\n").split("\t")
            if len(f) >= 9:
                h["callbacks"].append({"msgid": f[0], "from": f[1], "ref": f[2],
                                       "status": int(f[3]), "copy": f[4], "attempt": int(f[5]),
                                       "http": int(f[6]), "latency": int(f[7]),
                                       "wall": int(f[8])})
    h["views"] = []
    p = os.path.join(d, "views.jsonl")
    if os.path.exists(p):
        for line in open(p, encoding="utf-8"):
            try:
                h["views"].append(json.loads(line))
            except ValueError:
                pass  # a line cut by a kill of the poller: not an answer
    for k in ("live", "rebuilt"):
        p = os.path.join(d, k + ".dump")
        h[k] = load_dump(p) if os.path.exists(p) else None
    p = os.path.join(d, "ledger_caught_up.txt")
    h["ledger_caught_up"] = os.path.exists(p) and "caught up: yes" in open(p).read()
    p = os.path.join(d, "sim_stats.json")
    h["sim_stats"] = json.load(open(p)) if os.path.exists(p) else {}
    h["status"] = []
    p = os.path.join(d, "status")
    if os.path.exists(p):
        h["status"] = [l.split() for l in open(p) if l.strip()]
    return h


def inv1(h):
    """Every request has a final outcome; a final outcome never changes afterwards."""
    final = {}
    backwards = []
    for _, r in h["sent"]:
        rid = r.get("request_id")
        if r.get("outcome") not in ("accepted", "failed"):
            continue
        key = (r.get("outcome"), r.get("threema_message_id"))
        if rid in final and final[rid] != key:
            backwards.append(rid)
        final.setdefault(rid, key)
    lost = [rid for rid in h["requests"] if rid not in final]
    accepted = sum(1 for rid in h["requests"] if final.get(rid, ("",))[0] == "accepted")
    return {"ok": not lost and not backwards, "submitted": len(h["requests"]),
            "with_outcome": len(h["requests"]) - len(lost), "accepted": accepted,
            "lost": len(lost), "lost_sample": lost[:5], "changed_after_final": len(backwards),
            "changed_sample": backwards[:5]}, final


def sim_sends(h):
    """request_id -> number of send_e2e calls the simulator accepted (200) for it."""
    n = {}
    for e in h["simlog"]:
        if e.get("endpoint") in ("/send_e2e", "/send_e2e_bulk") and e.get("status") == 200:
            for rid in (e.get("requestId") or "").split(","):
                if rid:
                    n[rid] = n.get(rid, 0) + 1
    return n


def inv2(h, sends):
    # records without a request ID are the workload's poison records (undecodable on purpose)
    extra_sent = sorted({r.get("request_id") for _, r in h["sent"]
                         if r.get("request_id") is not None} - set(h["requests"]))
    extra_sends = sorted(set(sends) - set(h["requests"]))
    unattributed = sum(1 for e in h["simlog"] if e.get("endpoint") == "/send_e2e" and
                       e.get("status") == 200 and not e.get("requestId"))
    ok = not extra_sent and not extra_sends and unattributed == 0
    return {"ok": ok, "outcomes_never_submitted": len(extra_sent),
            "sends_never_submitted": len(extra_sends), "sends_without_request_id": unattributed,
            "sample": (extra_sent + extra_sends)[:5]}


def max_calls_per_s(h):
    """The most Gateway calls in any 1 s: every call of gateway-out (sends, lookups, uploads,
    credit polls) and gateway-in (public keys, blob downloads) takes a token of the account's
    shared rate. Only the simulator's own control routes are left out."""
    ts = sorted(e.get("timeMs", 0) for e in h["simlog"]
                if not str(e.get("endpoint", "")).startswith("/_sim"))
    best, j = 0, 0
    for i, t in enumerate(ts):
        while ts[j] <= t - 1000:
            j += 1
        best = max(best, i - j + 1)
    return best


def inv3(h, sends):
    meta = h["meta"]
    # a send whose answer came after the client timeout although it took effect (the
    # simulator's "timeout_after") is in doubt: gateway-out must retry it, flagged
    in_doubt = sum(1 for e in h["simlog"] if e.get("fault") == "timeout_after" and
                   e.get("endpoint") in ("/send_e2e", "/send_e2e_bulk"))
    bound = meta.get("kills", {}).get("gateway-out", 0) * meta.get("W", 0) + \
        meta.get("in_doubt_allowance", 0) + in_doubt
    flagged = {r.get("request_id") for _, r in h["sent"] if r.get("possible_duplicate")}
    dup_rids = [rid for rid, c in sends.items() if c > 1]
    dups = sum(c - 1 for c in sends.values() if c > 1)
    unflagged = [rid for rid in dup_rids if rid not in flagged]
    out = {"ok": dups <= bound and not unflagged, "duplicate_sends": dups, "bound": bound,
           "answers_after_timeout": in_doubt,
           "flagged_possible_duplicate": len(flagged & set(h["requests"])),
           "unflagged": len(unflagged), "sample": unflagged[:5]}
    rate = meta.get("gateway_rate_limit")
    if rate:
        # the shared limiter allows rate/10 per 100 ms window: a sliding second spans at
        # most 11 windows
        peak = max_calls_per_s(h)
        out.update({"rate_limit": rate, "max_calls_per_s": peak,
                    "rate_bound": int(rate * 1.1) + 1})
        out["ok"] = out["ok"] and peak <= out["rate_bound"]
    return out


def inv4(h, final):
    inbound = {}
    for _, r in h["inbound"]:
        k = (r.get("from"), r.get("threema_message_id"))
        inbound[k] = inbound.get(k, 0) + 1
    ours = {}
    for c in h["callbacks"]:
        o = ours.setdefault(c["msgid"], {"from": c["from"], "ok": False, "dup_ok": 0})
        if c["http"] == 200:
            o["ok"] = True
            o["dup_ok"] += 1
    missing = [m for m, o in ours.items() if o["ok"] and (o["from"], m) not in inbound]
    dropped = [m for m, o in ours.items() if not o["ok"]]
    sim_dropped = h["sim_stats"].get("callbacks", {}).get("dropped", 0)
    # Receipts the simulated phones sent for accepted sends: each must be in lst.inbound.
    received_for = set()
    read_for = set()
    for _, r in h["inbound"]:
        if r.get("kind") != "receipt" or r.get("threema_message_id") in ours:
            continue
        st = (r.get("receipt") or {}).get("status")
        for mid in (r.get("receipt") or {}).get("message_ids", []):
            if st in (1, "received"):
                received_for.add(mid)
            if st in (2, "read"):
                read_for.add((r.get("from"), mid))
    no_receipts = set(h["meta"].get("no_receipts", []))
    read_off = set(h["meta"].get("read_off", []))
    expect = [(rid, f[1]) for rid, f in final.items()
              if f[0] == "accepted" and rid in h["requests"] and rid not in no_receipts]
    no_receipt = [rid for rid, mid in expect if mid not in received_for]
    read_despite_off = [mid for (frm, mid) in read_for if frm in read_off]
    twice = sum(1 for v in inbound.values() if v > 1)
    dedupe_hits = sum(1 for m, o in ours.items() if o["dup_ok"] >= 2 and
                      inbound.get((o["from"], m), 0) == 1)
    ok = not missing and not dropped and sim_dropped == 0 and not no_receipt and \
        not read_despite_off
    return {"ok": ok, "callbacks": len(ours), "answered_200_missing_in_inbound": len(missing),
            "dropped": len(dropped), "sim_dropped": sim_dropped,
            "accepted_sends_without_received_receipt": len(no_receipt),
            "read_receipts_from_read_off_users": len(read_despite_off),
            "inbound_records": len(h["inbound"]), "inbound_duplicates": twice,
            "dedupe_hits": dedupe_hits, "sample": (missing + dropped + no_receipt)[:5]}


def inv5(h):
    """Redis (the live projections) equals the state folded from the Kafka log (a ledger that
    replayed the scenario's topics alone into an empty database)."""
    live, rebuilt = h["live"], h["rebuilt"]
    if live is None or rebuilt is None:
        return {"ok": False, "why": "dump missing (live %s, rebuilt %s)" %
                (live is not None, rebuilt is not None)}
    only_live = sorted(set(live) - set(rebuilt))
    only_rebuilt = sorted(set(rebuilt) - set(live))
    changed = sorted(k for k in set(live) & set(rebuilt) if live[k] != rebuilt[k])
    diff = len(only_live) + len(only_rebuilt) + len(changed)
    # a valid record the ledger dead-lettered is an event the projections skipped for good
    # (the rebuild, on a healthy Redis, may well apply it): none allowed outside the poison
    # records a scenario injects on purpose (max_dead_letters absent or null: not checked)
    dead, most = h["meta"].get("ledger_dead_letters", 0), h["meta"].get("max_dead_letters")
    dead_ok = most is None or dead <= most
    return {"ok": diff == 0 and len(live) > 0 and dead_ok, "keys": len(live),
            "differences": diff, "only_live": only_live[:5], "only_rebuilt": only_rebuilt[:5],
            "changed": changed[:5], "dead_lettered": dead, "dead_letters_allowed": most,
            "dead_letter_sample": h["meta"].get("dead_letter_sample", [])[:3]}


# The ledger's order of a recipient's states (docs/ledger.md): a later read never shows a
# lower one. acknowledged and declined are both final (the later one wins, a tie declines).
STATE_RANK = {"queued": 0, "retrying": 1, "failed": 2, "sent": 3, "delivered": 4, "read": 5,
              "acknowledged": 6, "declined": 6}


def inv6(h):
    """A per-recipient status read through the view API never goes backwards."""
    best = {}
    seen = {}
    backwards, unknown, vanished = [], [], []
    shown = set()
    for v in h["views"]:
        # a message once shown that is "not found" again went back to before "queued"
        if v.get("http") == 200:
            shown.add(v.get("mid"))
        elif v.get("http") == 404 and v.get("mid") in shown:
            vanished.append("%s vanished" % v.get("mid"))
            shown.discard(v.get("mid"))
        for eid, st in (v.get("st") or {}).items():
            key = (v.get("mid"), eid)
            rank = STATE_RANK.get(st)
            if rank is None:
                unknown.append("%s/%s=%s" % (key[0], eid, st))
                continue
            seen.setdefault(key, set()).add(st)
            if key in best and rank < best[key][0]:
                backwards.append("%s/%s %s->%s" % (key[0], eid, best[key][1], st))
            if key not in best or rank > best[key][0]:
                best[key] = (rank, st)
    moved = sum(1 for s in seen.values() if len(s) > 1)
    final = {}
    for rank, st in best.values():
        final[st] = final.get(st, 0) + 1
    return {"ok": not backwards and not unknown and not vanished, "polls": len(h["views"]),
            "recipients_watched": len(best), "recipients_seen_moving": moved,
            "went_backwards": len(backwards), "messages_vanished": len(vanished),
            "unknown_states": len(unknown), "last_states": final,
            "sample": (backwards + vanished + unknown)[:5]}


def recovery(h, final_ts):
    """ms from heal until the backlog (produced - completed) is down to one second of input."""
    meta = h["meta"]
    heal = meta.get("heal_ms")
    if not heal:
        return None, True
    produced = sorted(h["requests"].values())
    done = sorted(final_ts.values())
    if not produced:
        return None, False
    span = max(1, produced[-1] - produced[0])
    threshold = max(10, int(len(produced) * 1000 / span))
    # the backlog only falls when an outcome lands: test at heal and at every later outcome
    for t in [heal] + [x for x in done if x >= heal]:
        backlog = bisect.bisect_right(produced, t) - bisect.bisect_right(done, t)
        if backlog <= threshold:
            return t - heal, t - heal <= RECOVERY_LIMIT_MS
    return None, False


def inv7(h):
    final_ts = {}
    for ts, r in h["sent"]:
        rid = r.get("request_id")
        if rid in h["requests"] and rid not in final_ts:
            final_ts[rid] = ts
    rec_ms, rec_ok = recovery(h, final_ts)
    kills = h["meta"].get("kills", {})
    loops = [s[0] for s in h["status"] if "crashloop" in s]
    unexpected = {}
    for s in h["status"]:
        name, exits = s[0], int(s[3])
        allowed = sum(v for k, v in kills.items() if name.startswith(k))
        if exits > allowed + h["meta"].get("exit_allowance", 1):
            unexpected[name] = exits - allowed
    # throughput: outcomes per second over the scenario (first to last outcome)
    ts = sorted(final_ts.values())
    tput = round(len(ts) * 1000 / max(1, ts[-1] - ts[0]), 1) if len(ts) > 1 else 0
    tp_ms, tp_ok, base = throughput_back(h, ts)
    lag0 = h["ledger_caught_up"]
    meta = h["meta"]
    done = meta.get("outcomes_done_ms")
    caught = meta.get("ledger_caught_ms")
    last_req = max(h["requests"].values()) if h["requests"] else None
    return {"ok": rec_ok and tp_ok and lag0 and not loops and not unexpected,
            "recovery_ms": rec_ms, "throughput_back_ms": tp_ms, "baseline_per_s": base,
            "limit_ms": RECOVERY_LIMIT_MS, "crash_loops": loops,
            "unexpected_exits": unexpected, "outcomes_per_s": tput, "ledger_lag_0": lag0,
            "all_outcomes_after_last_request_ms": done - last_req if done and last_req else None,
            "ledger_caught_up_after_last_request_ms":
                caught - last_req if caught and last_req else None}


def throughput_back(h, done):
    """ms from heal until outcomes flow at >= 80 % of the fault-free rate again (a 2 s window),
    or until nothing produced so far waits any more (the input, not the system, limits the
    rate then). The fault-free rate is the baseline scenario's, else this workload's input
    rate (an open-loop load: without faults outcomes follow the input)."""
    heal = h["meta"].get("heal_ms")
    produced = sorted(h["requests"].values())
    if not produced:
        return None, False, None
    span = max(1, produced[-1] - produced[0])
    base = h["meta"].get("baseline_per_s") or round(len(produced) * 1000 / span, 1)
    if not heal:
        return None, True, base
    win = 2000
    for t in range(heal, heal + RECOVERY_LIMIT_MS + 1, 250):
        n = bisect.bisect_right(done, t + win) - bisect.bisect_left(done, t)
        backlog = bisect.bisect_right(produced, t) - bisect.bisect_right(done, t)
        if n * 1000 / win >= 0.8 * base or backlog <= 0:
            return t - heal, True, base
    return None, False, base


def inv8(h):
    dl = h["meta"].get("deadline_ms", 0) + 1000
    answered = [c for c in h["callbacks"] if c["http"] != 0]
    slow = [c for c in answered if c["latency"] > dl]
    e500 = [c for c in answered if c["http"] >= 500 and c["http"] != 503]
    codes = {}
    for c in h["callbacks"]:
        codes[str(c["http"])] = codes.get(str(c["http"]), 0) + 1
    lat = sorted(c["latency"] for c in answered)
    vb = h["meta"].get("view_bound_ms", 1500)
    # the view API: every poll answered within 1.5 s (a 5 s client timeout shows a hang as
    # 5 s), 503 allowed, never another 5xx; "no answer" is a refused connection or a hang
    vslow = [v for v in h["views"] if v.get("ms", 0) > vb]
    v500 = [v for v in h["views"] if v.get("http", 0) >= 500 and v.get("http") != 503]
    vcodes = {}
    for v in h["views"]:
        vcodes[str(v.get("http"))] = vcodes.get(str(v.get("http")), 0) + 1
    vlat = max((v.get("ms", 0) for v in h["views"]), default=None)
    ok = not slow and not e500 and not vslow and not v500
    return {"ok": ok, "bound_ms": dl, "over_bound": len(slow),
            "http_5xx_not_503": len(e500), "answers": codes,
            "max_latency_ms": lat[-1] if lat else None,
            "view_bound_ms": vb, "view_over_bound": len(vslow), "view_5xx_not_503": len(v500),
            "view_answers": vcodes, "view_max_latency_ms": vlat}


def in_fault(h):
    """The operations in flight during the fault window (meta fault_window [start_ms, end_ms],
    wall clock): callbacks and view reads whose request overlapped it, with their answers, so
    a scenario can require that its fault (a paused Redis, a full disk) met real traffic."""
    win = h["meta"].get("fault_window")
    if not win:
        return None
    lo, hi = win

    def during(end_ms, latency):
        return end_ms - latency <= hi and end_ms >= lo

    cbs = [c for c in h["callbacks"] if during(c["wall"], c["latency"])]
    views = [v for v in h["views"] if during(v.get("t", 0), v.get("ms", 0))]
    out = {"window_ms": hi - lo, "callbacks": len(cbs), "views": len(views),
           "callback_answers": {}, "view_answers": {},
           "callback_max_latency_ms": max((c["latency"] for c in cbs), default=None),
           "view_max_latency_ms": max((v.get("ms", 0) for v in views), default=None)}
    for c in cbs:
        k = str(c["http"])
        out["callback_answers"][k] = out["callback_answers"].get(k, 0) + 1
    for v in views:  # a 503 with its problem type: "503 projections-refilling"
        k = str(v.get("http")) + (" " + v["why"] if v.get("why") else "")
        out["view_answers"][k] = out["view_answers"].get(k, 0) + 1
    return out


def inv9(h, i1, i4, i5, i6):
    meta = h["meta"]
    ops = len(h["requests"]) + len(h["callbacks"])
    why = []
    if ops < meta.get("min_ops", 1):
        why.append(f"only {ops} operations (min {meta.get('min_ops')})")
    if not meta.get("fault_observed", True):
        why.append("fault not observed: " + str(meta.get("fault_detail", "")))
    if i4["dedupe_hits"] == 0:
        why.append("gateway-in's dedupe path not exercised")
    flagged = sum(1 for _, r in h["sent"] if r.get("possible_duplicate"))
    redelivered = len(h["sent"]) - len({r.get("request_id") for _, r in h["sent"]})
    if meta.get("require_outbound_dedupe") and flagged + redelivered == 0:
        why.append("gateway-out's redelivery/dedupe path not exercised")
    if i6["polls"] < meta.get("min_view_polls", 0):
        why.append(f"only {i6['polls']} view API reads (min {meta.get('min_view_polls')})")
    if i6["recipients_seen_moving"] == 0:
        why.append("no recipient state seen changing through the view API")
    if not i5.get("keys"):
        why.append("the ledger's projections are empty")
    seen = {}
    for f in meta.get("expect_gateway_faults", []):  # "429", "500", "timeout_after", "402"
        seen[f] = sum(1 for e in h["simlog"] if e.get("fault") == f or
                      (f == "402" and e.get("status") == 402))
        if seen[f] == 0:
            why.append(f"the Gateway fault {f} was never answered")
    for k, v in meta.get("require", {}).items():
        if not v:
            why.append("not exercised: " + k)
    during = in_fault(h)
    for k, n in meta.get("min_in_fault", {}).items():  # "callbacks", "views"
        if during is None or during.get(k, 0) < n:
            why.append(f"fewer than {n} {k} in flight during the fault")
    return {"ok": not why, "operations": ops, "fault": meta.get("fault_detail", "none"),
            "gateway_faults_answered": seen, "in_fault": during,
            "required": meta.get("require", {}),
            "sent_records_redelivered": redelivered, "why": why}


def check(d):
    h = load_history(d)
    i1, final = inv1(h)
    sends = sim_sends(h)
    i4 = inv4(h, final)
    i5, i6 = inv5(h), inv6(h)
    inv = {"1": i1, "2": inv2(h, sends), "3": inv3(h, sends), "4": i4, "5": i5, "6": i6,
           "7": inv7(h), "8": inv8(h), "9": inv9(h, i1, i4, i5, i6)}
    known = h["meta"].get("known_failure")
    passed = all(v["ok"] for v in inv.values() if isinstance(v, dict))
    m = h["meta"]
    return {"scenario": m.get("scenario"), "passed": passed, "known_failure": known,
            "duration_s": m.get("duration_s"),
            "figures": {"operations": inv["9"]["operations"], "lost": i1["lost"],
                        "duplicate_sends": inv["3"]["duplicate_sends"],
                        "inbound_duplicates": i4["inbound_duplicates"],
                        "recovery_ms": inv["7"]["recovery_ms"],
                        "throughput_back_ms": inv["7"]["throughput_back_ms"],
                        "redis_differences": i5.get("differences"),
                        "dead_lettered": i5.get("dead_lettered"),
                        "view_went_backwards": i6["went_backwards"] + i6["messages_vanished"],
                        "kills": m.get("kills", {}), "fault": m.get("fault_detail", "none"),
                        "in_fault": inv["9"]["in_fault"]},
            "invariants": inv}


def main():
    if len(sys.argv) != 2:
        print("usage: check.py HISTORY_DIR", file=sys.stderr)
        return 2
    v = check(sys.argv[1])
    print(json.dumps(v, sort_keys=True))
    return 0 if v["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
