"""Interoperability of Leitstand with the official Threema Gateway SDK (threema.gateway 8.0.0).

The two sides share no code: the SDK side is the SDK (library and its `threema-gateway` CLI)
plus Python's hmac/urllib; the Leitstand side is `lstctl` (liblst's threema.h and gateway.h)
and the Gateway simulator `threema-sim`. run.sh passes the binaries in the environment:

  LSTCTL        path of lstctl
  THREEMA_SIM   path of threema-sim (the simulator tests are skipped when unset)
  LST_SOURCE_DIR the repository (for demo/erp-export.csv)

(a) SDK-encrypted text and file messages open with `lstctl decrypt` and through the callback
    path (`lstctl callback-verify` / `callback-decode`, a form body signed with hmac here);
(b) texts encrypted by `lstctl encrypt` open with the SDK (library and CLI);
(c) the SDK's send-e2e / send-file against the simulator reach the simulated phone, which
    decrypts them; the SDK's lookups, capabilities and credits get the directory's answers;
    lstctl's network commands agree with the SDK on the same simulator.
"""
import asyncio
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import libnacl
import pytest
from threema.gateway import Connection, e2e
from threema.gateway._gateway import ReceptionCapability
from threema.gateway.key import Key

LSTCTL = os.environ.get("LSTCTL", "")
SIM = os.environ.get("THREEMA_SIM", "")
SOURCE = os.environ.get("LST_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SDK_CLI = os.path.join(os.path.dirname(sys.executable), "threema-gateway")
CMD_TIMEOUT = 30  # seconds for any one subprocess

FILE_NONCE = b"\x00" * 23 + b"\x01"
THUMB_NONCE = b"\x00" * 23 + b"\x02"


def lstctl(*args, stdin=None, env=None, check=True):
    """Runs lstctl; returns the CompletedProcess (text mode)."""
    assert LSTCTL, "LSTCTL is not set"
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run([LSTCTL, *args], input=stdin, capture_output=True, text=True,
                       env=full_env, timeout=CMD_TIMEOUT)
    if check and p.returncode != 0:
        raise AssertionError(f"lstctl {args[0]} failed ({p.returncode}): {p.stderr}")
    return p


def sdk_cli(*args, stdin=None, port=None, check=True):
    """Runs the SDK's threema-gateway CLI, against the simulator when port is given."""
    env = {k: v for k, v in os.environ.items() if k not in ("GATEWAY_API_URL", "THREEMA_TEST_API")}
    if port is not None:
        env["THREEMA_TEST_API"] = str(port)
    p = subprocess.run([SDK_CLI, *args], input=stdin, capture_output=True, text=True, env=env,
                       timeout=CMD_TIMEOUT)
    if check and p.returncode != 0:
        raise AssertionError(f"threema-gateway {args[0]} failed ({p.returncode}): {p.stderr}")
    return p


def sdk_pair():
    sk, pk = Key.generate_pair()
    return Key.encode(sk), Key.encode(pk)


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """Leitstand's key pair, made by lstctl keygen (files)."""
    d = tmp_path_factory.mktemp("keys")
    sk_file, pk_file = str(d / "lst.key"), str(d / "lst.pub")
    lstctl("keygen", sk_file, pk_file)
    with open(sk_file) as f:
        sk = f.readline().strip()
    with open(pk_file) as f:
        pk = f.readline().strip()
    return {"sk": sk, "pk": pk, "sk_file": sk_file, "pk_file": pk_file}


@pytest.fixture(scope="module")
def peer():
    """The SDK side's key pair (an app or another Gateway ID)."""
    sk, pk = sdk_pair()
    return {"sk": sk, "pk": pk}


def sdk_seal(message_factory, sender_sk):
    """Builds a message with the SDK offline; returns (nonce, box, uploaded blobs)."""
    blobs = {}

    async def run():
        conn = Connection(identity="*SDKPEER", secret="unused", key=sender_sk)

        async def upload(data):  # file messages upload their blobs: keep them here
            blob_id = secrets.token_hex(16)
            blobs[blob_id] = bytes(data)
            return blob_id

        async def capabilities(_id):
            return {ReceptionCapability.text, ReceptionCapability.file}

        conn.upload = upload
        conn.get_reception_capabilities = capabilities
        try:
            return await message_factory(conn).send(get_data_only=True)
        finally:
            await conn.close()

    nonce, box = asyncio.run(run())
    return nonce, box, blobs


def unpad(container):
    """Checks the padding rules of the reference doc; returns (type, body)."""
    p = container[-1]
    assert 1 <= p < len(container), f"padding {p} of {len(container)}"
    assert container[-p:] == bytes([p]) * p
    body = container[1:-p]
    assert len(body) + p >= 32
    return container[0], body


# ---- (a) SDK -> lstctl -----------------------------------------------------------------

TEXTS = ["Hallo", "Grüße aus Lübeck 🚚 — Tür 3\nzweite Zeile", "x" * 3500, "  spaces  "]


@pytest.mark.parametrize("text", TEXTS, ids=["short", "unicode", "max", "spaces"])
def test_sdk_text_decrypts_with_lstctl(ours, peer, text):
    nonce, box, _ = sdk_seal(
        lambda c: e2e.TextMessage(c, to_id="ECHOECHO", key=ours["pk"], text=text), peer["sk"])
    p = lstctl("decrypt", ours["sk_file"], peer["pk"], nonce.hex(), box.hex())
    assert p.stdout == text + "\n"
    j = json.loads(lstctl("decrypt", "--json", ours["sk"], peer["pk"], nonce.hex(),
                          stdin=box.hex() + "\n").stdout)
    assert j == {"type": "text", "typeByte": 1, "text": text}


def test_sdk_file_decrypts_with_lstctl(ours, peer):
    content = os.urandom(3000)
    thumb = os.urandom(200)

    def make(c):
        return e2e.FileMessage(c, to_id="ECHOECHO", key=ours["pk"], file_content=content,
                               mime_type="image/jpeg", file_name="Schaden Tür.jpg",
                               thumbnail_content=thumb, caption="Schaden an Tür 3")

    nonce, box, blobs = sdk_seal(make, peer["sk"])
    j = json.loads(lstctl("decrypt", ours["sk"], peer["pk"], nonce.hex(), box.hex()).stdout)
    assert j["type"] == "file" and j["typeByte"] == 0x17
    assert j["mime"] == "image/jpeg" and j["size"] == len(content)
    assert j["name"] == "Schaden Tür.jpg" and j["caption"] == "Schaden an Tür 3"
    assert j["legacyRendering"] == 0 and "rendering" not in j  # the SDK writes "i", not "j"
    assert set(blobs) == {j["blobId"], j["thumbnailBlobId"]}
    # The key lstctl extracted opens the blobs the SDK uploaded (fixed nonces 1 and 2).
    key = bytes.fromhex(j["key"])
    assert libnacl.crypto_secretbox_open(blobs[j["blobId"]], FILE_NONCE, key) == content
    assert libnacl.crypto_secretbox_open(blobs[j["thumbnailBlobId"]], THUMB_NONCE, key) == thumb


def callback_body(secret, frm, to, nonce, box, nickname=None, message_id=None, date=None):
    """A Gateway callback as the Gateway sends it, MAC by Python's hmac."""
    fields = {
        "from": frm,
        "to": to,
        "messageId": message_id or secrets.token_hex(8),
        "date": str(date or int(time.time())),
        "nonce": nonce.hex(),
        "box": box.hex(),
    }
    msg = "".join(fields[k] for k in ("from", "to", "messageId", "date", "nonce", "box"))
    fields["mac"] = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()
    if nickname is not None:
        fields["nickname"] = nickname
    return urllib.parse.urlencode(fields), fields  # quote_plus: '*' -> %2A, ' ' -> '+'


def test_sdk_text_through_callback_path(ours, peer):
    secret = "cb-" + secrets.token_hex(12)
    nonce, box, _ = sdk_seal(
        lambda c: e2e.TextMessage(c, to_id="*LSTDEMO", key=ours["pk"], text="Bin in 10 min da"),
        peer["sk"])
    body, f = callback_body(secret, "ABCD1234", "*LSTDEMO", nonce, box, nickname="Jürgen K.")
    assert lstctl("callback-verify", secret, body).stdout == "valid\n"
    assert lstctl("callback-verify", secret, stdin=body + "\n").stdout == "valid\n"
    j = json.loads(lstctl("callback-decode", secret, ours["sk_file"], peer["pk"], body).stdout)
    assert j == {"from": "ABCD1234", "to": "*LSTDEMO", "messageId": f["messageId"],
                 "date": int(f["date"]), "nickname": "Jürgen K.",
                 "message": {"type": "text", "typeByte": 1, "text": "Bin in 10 min da"}}
    # Not authentic: wrong secret, a changed box, a changed date.
    for bad_secret, bad_body in [
        ("wrong-secret", body),
        (secret, body.replace("box=" + f["box"][:2], "box=" + ("00" if f["box"][:2] != "00" else "11"))),
        (secret, body.replace("date=" + f["date"], "date=" + str(int(f["date"]) + 1))),
    ]:
        p = lstctl("callback-verify", bad_secret, bad_body, check=False)
        assert (p.returncode, p.stdout) == (1, "invalid\n")
        p = lstctl("callback-decode", bad_secret, ours["sk"], peer["pk"], bad_body, check=False)
        assert (p.returncode, p.stdout) == (1, "invalid\n")


def test_sdk_file_through_callback_path(ours, peer):
    secret = "cb-" + secrets.token_hex(12)
    content = b"%PDF-1.4 lieferschein"

    def make(c):
        return e2e.FileMessage(c, to_id="*LSTDEMO", key=ours["pk"], file_content=content,
                               mime_type="application/pdf", file_name="lieferschein.pdf")

    nonce, box, blobs = sdk_seal(make, peer["sk"])
    body, f = callback_body(secret, "ABCD1234", "*LSTDEMO", nonce, box)
    j = json.loads(lstctl("callback-decode", secret, ours["sk"], peer["pk"], body).stdout)
    assert j["messageId"] == f["messageId"] and "nickname" not in j
    m = j["message"]
    assert (m["type"], m["mime"], m["name"], m["size"]) == \
        ("file", "application/pdf", "lieferschein.pdf", len(content))
    assert libnacl.crypto_secretbox_open(blobs[m["blobId"]], FILE_NONCE,
                                         bytes.fromhex(m["key"])) == content


# ---- (b) lstctl -> SDK -----------------------------------------------------------------

@pytest.mark.parametrize("text", TEXTS, ids=["short", "unicode", "max", "spaces"])
def test_lstctl_text_decrypts_with_sdk(ours, peer, text):
    sk = Key.decode(peer["sk"], Key.Type.private)
    pk = Key.decode(ours["pk"], Key.Type.public)
    seen_padding = set()
    for _ in range(8):  # random padding each time: every one must be valid for the SDK
        out = lstctl("encrypt", ours["sk"], peer["pk"], text).stdout.splitlines()
        assert len(out) == 2 and re.fullmatch(r"[0-9a-f]{48}", out[0])
        container = e2e.Message.decrypt(bytes.fromhex(out[0]), bytes.fromhex(out[1]), (sk, pk))
        typ, body = unpad(container)
        assert typ == 0x01 and body.decode("utf-8") == text
        seen_padding.add(container[-1])
    assert len(seen_padding) > 1
    # The SDK's CLI decrypt (its Message.receive path) prints the text.
    out = lstctl("encrypt", ours["sk_file"], peer["pk"], text).stdout.splitlines()
    p = sdk_cli("decrypt", peer["sk"], ours["pk"], out[0], out[1])
    assert p.stdout == text + "\n"


def test_cli_stdin_semantics_match(ours, peer):
    # `encrypt` takes stdin verbatim in both tools: the trailing newline is part of the text.
    sdk = sdk_cli("encrypt", peer["sk"], ours["pk"], stdin="hi\n").stdout.split()
    j = json.loads(lstctl("decrypt", "--json", ours["sk"], peer["pk"], sdk[0], sdk[1]).stdout)
    assert j["text"] == "hi\n"
    ours_out = lstctl("encrypt", ours["sk"], peer["pk"], stdin="hi\n").stdout.split()
    # The SDK's decrypt reads stdin without stripping, so give it the box without a newline.
    p = sdk_cli("decrypt", peer["sk"], ours["pk"], ours_out[0], stdin=ours_out[1])
    assert p.stdout == "hi\n\n"


def test_keys_and_hashes_agree(ours, tmp_path):
    # lstctl's key files read by the SDK, the SDK's keys read by lstctl.
    assert sdk_cli("derive", ours["sk_file"]).stdout.strip() == ours["pk"]
    sdk_sk, sdk_pk = str(tmp_path / "sdk.key"), str(tmp_path / "sdk.pub")
    sdk_cli("generate", sdk_sk, sdk_pk)
    with open(sdk_pk) as f:
        assert lstctl("derive", sdk_sk).stdout.strip() == f.readline().strip()
    for email in ["test@threema.ch", " Fahrer.Eins@Spedition-Example.DE "]:
        assert lstctl("hash", "-e", email).stdout == sdk_cli("hash", "-e", email).stdout
    for phone in ["41791234567", "+49 151 05866844"]:
        assert lstctl("hash", "-p", phone).stdout == sdk_cli("hash", "-p", phone).stdout


# ---- (c) against the simulator -----------------------------------------------------------

class Sim:
    def __init__(self, tmp):
        self.gw_id = "*SDKTEST"
        self.secret = "interop-" + secrets.token_hex(16)
        self.gw_sk, self.gw_pk = sdk_pair()  # the Gateway ID's key pair, made by the SDK
        self.log_path = os.path.join(tmp, "sim.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LST_SIM_")}
        env.update({
            "LST_SIM_ADDR": "127.0.0.1",
            "LST_SIM_PORT": "0",
            "LST_SIM_DIRECTORY": os.path.join(SOURCE, "demo", "erp-export.csv"),
            "LST_SIM_GATEWAY_ID": self.gw_id,
            "LST_SIM_SECRET": self.secret,
            "LST_SIM_GATEWAY_PUBLIC_KEY": self.gw_pk,
            "LST_SIM_CREDITS": "5000",
            "LST_LOG_LEVEL": "info",
        })
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([SIM], stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        self.port = self._wait_port(20.0)
        self.base = f"http://127.0.0.1:{self.port}"

    def _wait_port(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("threema-sim exited: " + open(self.log_path).read())
            with open(self.log_path) as f:
                m = re.search(r'"sim\.started".* port (\d+)', f.read())
            if m:
                return int(m.group(1))
            time.sleep(0.05)
        raise RuntimeError("threema-sim did not start: " + open(self.log_path).read())

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            return json.loads(r.read())

    def inbox_entry(self, identity, message_id, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = self.get(f"/_sim/inbox/{identity}")
            entries = entries.get("messages", entries) if isinstance(entries, dict) else entries
            for e in entries:
                if e.get("messageId") == message_id:
                    return e
            time.sleep(0.05)
        raise AssertionError(f"message {message_id} not in the inbox of {identity}")

    def lst_env(self, **extra):
        env = {"LST_GATEWAY_URL": self.base, "LST_GATEWAY_ID": self.gw_id,
               "LST_GATEWAY_SECRET": self.secret, "LST_PRIVATE_KEY": self.gw_sk}
        env.update(extra)
        return env

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    if not SIM:
        pytest.skip("THREEMA_SIM is not set")
    s = Sim(str(tmp_path_factory.mktemp("sim")))
    yield s
    s.stop()


def pick_user(sim, want_caps="file", read_receipts=None):
    """A simulated user with phone and e-mail (details incl. phone/email from /_sim/users/ID)."""
    for u in sim.get("/_sim/users"):
        if not (u["hasPhone"] and u["hasEmail"]) or want_caps not in u["capabilities"].split(","):
            continue
        if want_caps == "text" and u["capabilities"] != "text":
            continue
        return sim.get(f"/_sim/users/{u['identity']}")
    pytest.skip(f"no simulated user with capabilities {want_caps}")


def test_sdk_send_e2e_reaches_simulated_phone(sim):
    u = pick_user(sim)
    text = "Tour 17: bitte Rampe 4 anfahren — Grüße 🚚"
    # Public key fetched by the SDK from /pubkeys/{id}.
    p = sdk_cli("send-e2e", u["identity"], sim.gw_id, sim.secret, sim.gw_sk, text, port=sim.port)
    msg_id = p.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{16}", msg_id), p.stdout
    e = sim.inbox_entry(u["identity"], msg_id)
    assert e["ok"] is True, e
    assert (e["type"], e["text"]) == ("text", text)
    # Text from stdin, and the recipient key given with -k.
    p = sdk_cli("send-e2e", u["identity"], sim.gw_id, sim.secret, sim.gw_sk, "-k",
                u["publicKey"], stdin="  von stdin \n", port=sim.port)
    e = sim.inbox_entry(u["identity"], p.stdout.strip())
    assert (e["ok"], e["text"]) == (True, "von stdin")


def test_sdk_send_file_reaches_simulated_phone(sim, tmp_path):
    u = pick_user(sim)
    photo = tmp_path / "schaden.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(5000))
    thumb = tmp_path / "thumb.jpg"
    thumb.write_bytes(b"\xff\xd8\xff" + os.urandom(300))
    before = sim.get("/_sim/credits")["credits"]
    p = sdk_cli("send-file", u["identity"], sim.gw_id, sim.secret, sim.gw_sk, str(photo),
                "-t", str(thumb), "-c", "Delle hinten links", port=sim.port)
    e = sim.inbox_entry(u["identity"], p.stdout.strip())
    assert e["ok"] is True and e["type"] == "file", e
    f = e["file"]
    assert f["blobCheck"] == "ok", f  # the phone fetched and decrypted file and thumbnail
    assert (f["mime"], f["name"], f["size"], f["caption"]) == \
        ("image/png", "schaden.png", photo.stat().st_size, "Delle hinten links")
    assert f.get("thumbnailBlobId")
    # Two uploads and one send, one credit each.
    assert sim.get("/_sim/credits")["credits"] == before - 3


def test_sdk_library_send_to_simulator(sim):
    """The library with Connection.urls rewritten (the second way the doc names)."""
    u = pick_user(sim)

    async def run():
        conn = Connection(identity=sim.gw_id, secret=sim.secret, key=sim.gw_sk)
        conn.urls = {k: v.replace("https://msgapi.threema.ch", sim.base)
                     for k, v in Connection.urls.items()}
        try:
            return await e2e.TextMessage(conn, to_id=u["identity"], text="via library").send()
        finally:
            await conn.close()

    msg_id = asyncio.run(run())
    assert sim.inbox_entry(u["identity"], msg_id)["text"] == "via library"


def test_sdk_lookups(sim):
    u = pick_user(sim)
    auth = (sim.gw_id, sim.secret)
    assert sdk_cli("lookup", *auth, "-p", u["phone"], port=sim.port).stdout.strip() == u["identity"]
    assert sdk_cli("lookup", *auth, "-e", u["email"], port=sim.port).stdout.strip() == u["identity"]
    assert sdk_cli("lookup", *auth, "-i", u["identity"], port=sim.port).stdout.strip() == \
        u["publicKey"]
    p = sdk_cli("lookup", *auth, "-p", "491510000000", port=sim.port, check=False)
    assert p.returncode != 0  # unknown number: 404

    async def by_hash():
        conn = Connection(identity=sim.gw_id, secret=sim.secret)
        conn.urls = {k: v.replace("https://msgapi.threema.ch", sim.base)
                     for k, v in Connection.urls.items()}
        try:
            ph = hmac.new(bytes.fromhex(
                "85adf8226953f3d96cfd5d09bf29555eb955fcd8aa5ec4f9fcd869e258370723"),
                u["phone"].encode(), hashlib.sha256).hexdigest()
            eh = hmac.new(bytes.fromhex(
                "30a5500fed9701fa6defdb610841900febb8e430881f7ad816826264ec09bad7"),
                u["email"].strip().lower().encode(), hashlib.sha256).hexdigest()
            return (await conn.get_id(phone_hash=ph), await conn.get_id(email_hash=eh))
        finally:
            await conn.close()

    assert asyncio.run(by_hash()) == (u["identity"], u["identity"])


def test_sdk_capabilities(sim):
    auth = (sim.gw_id, sim.secret)
    u = pick_user(sim)
    assert sdk_cli("capabilities", *auth, u["identity"], port=sim.port).stdout.strip() == \
        "audio, file, image, text, video"
    t = pick_user(sim, want_caps="text")
    assert sdk_cli("capabilities", *auth, t["identity"], port=sim.port).stdout.strip() == "text"


def test_sdk_credits(sim):
    auth = (sim.gw_id, sim.secret)
    p = sdk_cli("credits", *auth, port=sim.port)
    assert int(p.stdout.strip()) == sim.get("/_sim/credits")["credits"]
    p = sdk_cli("credits", sim.gw_id, "wrong-secret", port=sim.port, check=False)
    assert p.returncode != 0  # 401


def test_lstctl_agrees_with_sdk_on_simulator(sim):
    u = pick_user(sim)
    env = sim.lst_env()
    auth = (sim.gw_id, sim.secret)
    # send: key looked up, and key given; text from stdin trimmed like send-e2e.
    msg_id = lstctl("send", u["identity"], "von lstctl", env=env).stdout.strip()
    assert sim.inbox_entry(u["identity"], msg_id)["text"] == "von lstctl"
    msg_id = lstctl("send", "-k", u["publicKey"], u["identity"], stdin=" stdin \n",
                    env=env).stdout.strip()
    assert sim.inbox_entry(u["identity"], msg_id)["text"] == "stdin"
    # lookups, capabilities, credits: the same answers as the SDK's CLI.
    for opt, sdk_opt, value in [("--phone", "-p", u["phone"]), ("--email", "-e", u["email"]),
                                ("--id", "-i", u["identity"])]:
        assert lstctl("lookup", opt, value, env=env).stdout == \
            sdk_cli("lookup", *auth, sdk_opt, value, port=sim.port).stdout
    ph = lstctl("hash", "-p", u["phone"]).stdout.strip()
    assert lstctl("lookup", "--phone-hash", ph, env=env).stdout.strip() == u["identity"]
    for who in [u, pick_user(sim, want_caps="text")]:
        assert lstctl("capabilities", who["identity"], env=env).stdout == \
            sdk_cli("capabilities", *auth, who["identity"], port=sim.port).stdout
    assert lstctl("credits", env=env).stdout == sdk_cli("credits", *auth, port=sim.port).stdout
    # Exit codes: unknown number permanent (1), wrong secret fatal (1), no credits pause (3).
    p = lstctl("lookup", "--phone", "491510000000", env=env, check=False)
    assert p.returncode == 1 and "404" in p.stderr
    p = lstctl("credits", env=sim.lst_env(LST_GATEWAY_SECRET="wrong-secret"), check=False)
    assert p.returncode == 1 and "401" in p.stderr


def test_lstctl_exit_code_on_no_credits(sim):
    u = pick_user(sim)
    req = urllib.request.Request(sim.base + "/_sim/faults", data=b'{"credits":0}',
                                 headers={"Content-Type": "application/json"}, method="POST")
    before = sim.get("/_sim/credits")["credits"]
    urllib.request.urlopen(req, timeout=10).read()
    try:
        p = lstctl("send", "-k", u["publicKey"], u["identity"], "teuer", env=sim.lst_env(),
                   check=False)
        assert p.returncode == 3 and "402" in p.stderr, p.stderr
        p = sdk_cli("send-e2e", u["identity"], sim.gw_id, sim.secret, sim.gw_sk, "-k",
                    u["publicKey"], "teuer", port=sim.port, check=False)
        assert p.returncode != 0
    finally:
        body = json.dumps({"credits": before}).encode()
        req = urllib.request.Request(sim.base + "/_sim/faults", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=10).read()
