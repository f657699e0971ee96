"""The official Threema Gateway SDK (threema.gateway 8.0.0) sending N end-to-end text
messages to the simulator with its async API at a given concurrency, for the gateway-out
benchmark. The recipients' public keys are passed in, so the SDK spends its time on what
gateway-out does per message: encrypt, POST /send_e2e, read the message ID.

    python sdk_send.py BASE_URL SECRET PRIVATE_KEY_FILE RECIPIENTS_JSON N CONCURRENCY

RECIPIENTS_JSON: [{"identity": .., "publicKey": "public:.."}, ...]. Prints one JSON line:
{"sent": N, "failed": F, "seconds": S, "per_second": R, "per_second_all": A}: R over the steady
window (from the N/10-th completed send to the last, as gateway-out is timed), A over the run.
"""
import asyncio
import json
import sys
import time

from threema.gateway import Connection, e2e


async def main():
    base, secret, key_file, rcpt_file, n, conc = sys.argv[1:7]
    n, conc = int(n), int(conc)
    key = open(key_file).read().strip()
    rcpts = json.load(open(rcpt_file))
    conn = Connection(identity="*LSTDEMO", secret=secret, key=key)
    conn.urls = {k: v.replace("https://msgapi.threema.ch", base) for k, v in Connection.urls.items()}
    sem = asyncio.Semaphore(conc)
    failed = ok = 0
    mark = None  # (time, successful sends) at the N/10-th completion

    async def one(i):
        nonlocal failed, ok, mark
        r = rcpts[i % len(rcpts)]
        async with sem:
            try:
                await e2e.TextMessage(conn, to_id=r["identity"], key=r["publicKey"],
                                      text=f"Leitstand test message {i}: please confirm the tour."
                                      ).send()
                ok += 1
            except Exception:  # counted, the figures only use successful sends
                failed += 1
            if mark is None and ok + failed >= max(n // 10, 1):
                mark = (time.monotonic(), ok)

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    t1 = time.monotonic()
    dt = t1 - t0
    await conn.close()
    steady = (ok - mark[1]) / max(t1 - mark[0], 1e-3)
    print(json.dumps({"sent": ok, "failed": failed, "seconds": round(dt, 3),
                      "per_second": round(steady, 1), "per_second_all": round(ok / dt, 1)}))


asyncio.run(main())
