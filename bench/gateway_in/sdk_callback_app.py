"""The official Threema Gateway SDK's own callback application (threema.gateway 8.0.0,
aiohttp), used as-is as the baseline of bench/gateway_in: MAC check, decryption with the
sender's public key (fetched from the simulator, memoised by the SDK), container decoding.
The message handler only counts; nothing is stored.

usage: sdk_callback_app.py PORT SIM_BASE_URL SECRET PRIVATE_KEY_FILE
"""
import sys

from aiohttp import web
from threema.gateway import Connection
from threema.gateway.e2e import add_callback_route, create_application


def main():
    port, sim, secret, key_file = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    received = {"n": 0}

    async def on_message(message):
        received["n"] += 1

    async def make_app():
        conn = Connection("*LSTDEMO", secret, key_file=key_file)
        # The SDK's documented way to use another Gateway: rewrite its URL table.
        conn.urls = {k: v.replace("https://msgapi.threema.ch", sim)
                     for k, v in Connection.urls.items()}
        app = create_application(conn)
        add_callback_route(conn, app, on_message, path="/callback")

        async def close(_app):
            await conn.close()

        app.on_cleanup.append(close)
        return app

    web.run_app(make_app(), host="127.0.0.1", port=int(port), access_log=None,
                print=lambda *_: None)


if __name__ == "__main__":
    main()
