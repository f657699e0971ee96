"""The official Threema Gateway SDK (threema.gateway 8.0.0) sending N end-to-end text
messages to the simulator with its async API at a given concurrency, for the gateway-out
benchmark. The recipients' public keys are passed in, so the SDK spends its time on what
gateway-out does per message: encrypt, POST /send_e2e, read the message ID.

    python sdk_send.py BASE_URL SECRET PRIVATE_KEY_FILE RECIPIENTS_JSON N CONCURRENCY

RECIPIENTS_JSON: [{"identity": .., "publicKey": "public:.."}, ...]. Prints one JSON line:
{"sent": N, "failed": F, "seconds": S, "per_second": R}.
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
    failed = 0

    async def one(i):
        nonlocal failed
        r = rcpts[i % len(rcpts)]
        async with sem:
            try:
                await e2e.TextMessage(conn, to_id=r["identity"], key=r["publicKey"],
                                      text=f"Leitstand test message {i}: please confirm the tour."
                                      ).send()
            except Exception:  # counted, the figure only uses successful sends
                failed += 1

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    dt = time.monotonic() - t0
    await conn.close()
    print(json.dumps({"sent": n - failed, "failed": failed, "seconds": round(dt, 3),
                      "per_second": round((n - failed) / dt, 1)}))


asyncio.run(main())
