#!/usr/bin/env python3
"""Writes one JSON scenario file per capture into OUTDIR and prints a table
(name port server_impl client_impl) on stdout for record.sh.

Both runners (run_py.py, run_node.js) execute the same scenario file, so the
payloads of a cross-implementation capture are identical on both sides and
every payload comes from a PRNG seeded with the capture's name.

Scenario format:
  {"name", "host", "port",
   "server": {"impl": "python"|"node", "deflate": null|"default"|{options}},
   "client_impl": "python"|"node",
   "concurrent": bool,            # connect all in order, then talk at once
   "connections": [{"client_deflate": null|"default"|{options},
                    "actions": [action, ...]}]}
  action: {"from": "c"|"s", "op": "text"|"binary"|"ping"|"pong"|"close",
           "frags": [b64, ...],   # data ops: the message split into frames
           "compress": false,     # optional: send this message uncompressed
           "code": int|null, "reason": str}   # close only
Deflate options are passed as-is to the implementation: keyword arguments of
websockets' {Server,Client}PerMessageDeflateFactory, or ws' perMessageDeflate.
"""
import base64
import json
import os
import random
import sys

MIB = 1 << 20


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Conn:
    def __init__(self, client_deflate=None):
        self.client_deflate = client_deflate
        self.actions = []

    def msg(self, frm, op, payload, frags=None, compress=None):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if frags is None:
            frags = [payload]
        frags = [f.encode("utf-8") if isinstance(f, str) else f for f in frags]
        assert b"".join(frags) == payload
        a = {"from": frm, "op": op, "frags": [b64(f) for f in frags]}
        if compress is not None:
            a["compress"] = compress
        self.actions.append(a)
        return self

    def text(self, frm, s, **kw):
        return self.msg(frm, "text", s, **kw)

    def binary(self, frm, b, **kw):
        return self.msg(frm, "binary", b, **kw)

    def frag_text(self, frm, parts, **kw):
        return self.msg(frm, "text", "".join(parts), frags=parts, **kw)

    def frag_binary(self, frm, parts, **kw):
        return self.msg(frm, "binary", b"".join(parts), frags=parts, **kw)

    def ping(self, frm, payload: bytes):
        self.actions.append({"from": frm, "op": "ping", "frags": [b64(payload)]})
        return self

    def pong(self, frm, payload: bytes):
        self.actions.append({"from": frm, "op": "pong", "frags": [b64(payload)]})
        return self

    def close(self, frm, code, reason=""):
        self.actions.append({"from": frm, "op": "close", "code": code, "reason": reason})
        return self

    def to_json(self):
        return {"client_deflate": self.client_deflate, "actions": self.actions}


def scenario(name, port, server_impl, client_impl, conns, server_deflate=None,
             host="127.0.0.1", concurrent=False):
    return {
        "name": name,
        "host": host,
        "port": port,
        "server": {"impl": server_impl, "deflate": server_deflate},
        "client_impl": client_impl,
        "concurrent": concurrent,
        "connections": [c.to_json() for c in conns],
    }


# ---------------------------------------------------------------- payloads

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo "
         "lima mike november oscar papa quebec romeo sierra tango uniform").split()
UNICODE = ["Grüße", "Καλημέρα", "こんにちは", "Здравствуйте", "مرحبا", "😀", "🚀",
           "𝄞", "€", "ß", "√", "中文"]


def ascii_text(rng, n):
    out = []
    while sum(len(w) + 1 for w in out) < n:
        out.append(rng.choice(WORDS))
    return " ".join(out)[:n]


def unicode_text(rng, n_tokens):
    return " ".join(rng.choice(UNICODE + WORDS) for _ in range(n_tokens))


def json_record(rng, i):
    return json.dumps({
        "id": i,
        "user": rng.choice(WORDS),
        "event": rng.choice(["login", "logout", "click", "view", "purchase"]),
        "ts": 1700000000 + rng.randint(0, 10**6),
        "ok": rng.random() < 0.8,
        "tags": rng.sample(WORDS, 3),
    }, separators=(",", ":"))


def json_text(rng, n_records, start=0):
    return "[" + ",".join(json_record(rng, start + i) for i in range(n_records)) + "]"


def compressible_text(rng, size):
    """Exactly `size` ASCII bytes of JSON-like lines."""
    parts, total, i = [], 0, 0
    while total < size:
        line = json_record(rng, i) + "\n"
        parts.append(line)
        total += len(line)
        i += 1
    return "".join(parts)[:size]


def far_repeats_text(rng, size, distance):
    """Text whose repeats are `distance` bytes apart, so the window size matters."""
    block = ascii_text(rng, distance)
    return (block * (size // distance + 1))[:size]


def split_bytes(data, n):
    step = max(1, len(data) // n)
    parts = [data[i * step:(i + 1) * step] for i in range(n - 1)]
    parts.append(data[(n - 1) * step:])
    return parts


# ---------------------------------------------------------------- scenarios

def py_basic():
    rng = random.Random("py-basic")
    c = Conn()
    c.text("c", "Hello, WebSocket!").text("s", "Hello from the server")
    c.text("c", "UTF-8: Grüße, Καλημέρα, こんにちは, 😀🚀 𝄞 (4-byte)")
    c.text("s", unicode_text(rng, 40))
    c.text("c", "").text("s", "")
    for size in (0, 1, 125, 126, 127, 65535, 65536, MIB):
        c.binary("c", rng.randbytes(size))
        c.binary("s", rng.randbytes(size))
    c.ping("c", b"ping-from-client").text("c", "after client ping")
    c.ping("s", bytes(range(125))).text("s", "after server ping (125-byte payload)")
    c.ping("c", b"").text("c", "after empty ping")
    c.pong("c", b"unsolicited pong").text("c", "after unsolicited pong")
    c.pong("s", b"server pong").text("s", "after server pong")
    c.frag_text("c", ["frag-one ", "frag-two ", "frag-three 😀"])
    c.frag_text("s", ["server ", "fragmented ", "text ", "Καλημέρα"])
    c.frag_binary("c", [rng.randbytes(100), rng.randbytes(200), rng.randbytes(300)])
    c.frag_binary("s", [rng.randbytes(70000), rng.randbytes(5)])
    c.text("s", "last message before close")
    c.close("c", 1000, "bye")
    return scenario("py-basic", 18101, "python", "python", [c])


def py_close_codes():
    closes = [("c", 1000, "normal closure"), ("s", 1001, "going away"),
              ("c", 1008, "policy violation"), ("s", 1011, "internal error"),
              ("c", 3000, "ünïcødé reason ✓ 😀"), ("s", 4999, "")]
    conns = []
    for i, (frm, code, reason) in enumerate(closes):
        c = Conn()
        c.text("c", f"conn {i} hello").text("s", f"conn {i} ack")
        c.close(frm, code, reason)
        conns.append(c)
    return scenario("py-close-codes", 18102, "python", "python", conns)


def py_concurrent():
    rng = random.Random("py-concurrent")
    conns = []
    for i in range(20):
        c = Conn()
        kinds = ["text"] * 10 + ["binary"] * 5
        order = [(frm, k) for k in kinds for frm in ("c", "s")]
        rng.shuffle(order)
        for n, (frm, k) in enumerate(order):
            if k == "text":
                c.text(frm, f"conn {i} msg {n}: " + ascii_text(rng, rng.randint(0, 300)))
            else:
                c.binary(frm, rng.randbytes(rng.randint(1, 4000)))
        c.close("c", 1000, f"conn {i} done")
        conns.append(c)
    return scenario("py-concurrent", 18103, "python", "python", conns, concurrent=True)


def py_ipv6():
    rng = random.Random("py-ipv6")
    c = Conn()
    c.text("c", "hello over ::1").text("s", "hello back over ::1 😀")
    c.binary("c", rng.randbytes(300)).binary("s", rng.randbytes(70000))
    c.ping("s", b"v6 ping").text("s", "after ping")
    c.close("s", 1000, "v6 done")
    return scenario("py-ipv6", 18104, "python", "python", [c], host="::1")


def deflate_mix(rng, c, big=False):
    """Compressible and incompressible messages both ways, in one connection."""
    for i in range(4):
        c.text("c", json_text(rng, 5, start=i * 5))
        c.text("s", json_text(rng, 5, start=100 + i * 5))
    # The same message twice: the second one is tiny with context takeover.
    again = json_text(rng, 20)
    c.text("c", again).text("c", again).text("s", again).text("s", again)
    c.binary("c", rng.randbytes(1000)).binary("s", rng.randbytes(5000))
    c.binary("c", b"\x00" * 10000).binary("s", bytes(range(256)) * 40)
    c.text("c", "").text("s", "").binary("c", b"").binary("s", b"")
    c.text("c", unicode_text(rng, 200)).text("s", unicode_text(rng, 200))
    c.ping("c", b"ping between compressed messages").text("c", json_text(rng, 3))
    c.frag_text("c", [json_text(rng, 10), json_text(rng, 10), "tail 😀"])
    c.frag_text("s", [compressible_text(rng, 3000), compressible_text(rng, 3000)])
    c.frag_binary("c", [b"A" * 5000, rng.randbytes(500), b"B" * 5000])
    c.frag_binary("s", [bytes(range(256)) * 20, b"\x00" * 3000])
    if big:
        c.text("c", compressible_text(rng, MIB))
        c.text("s", compressible_text(rng, 300000))
    return c


def py_deflate_default():
    rng = random.Random("py-deflate-default")
    c = deflate_mix(rng, Conn(client_deflate="default"), big=True)
    c.close("c", 1000, "deflate done")
    return scenario("py-deflate-default", 18105, "python", "python", [c],
                    server_deflate="default")


def py_deflate_wbits(bits, port):
    name = f"py-deflate-wbits{bits}"
    rng = random.Random(name)
    opts = {"server_max_window_bits": bits, "client_max_window_bits": bits}
    c = Conn(client_deflate=dict(opts))
    for dist in (200, 400, 1000, 3000, 20000):
        c.text("c", far_repeats_text(rng, 3 * dist + 100, dist))
        c.text("s", far_repeats_text(rng, 3 * dist + 100, dist))
    deflate_mix(rng, c)
    c.close("s", 1000, f"wbits {bits} done")
    return scenario(name, port, "python", "python", [c], server_deflate=dict(opts))


def py_deflate_no_ctx():
    rng = random.Random("py-deflate-no-ctx")
    opts = {"server_no_context_takeover": True, "client_no_context_takeover": True}
    c = Conn(client_deflate=dict(opts))
    same = json_text(rng, 30)
    for _ in range(3):
        c.text("c", same).text("s", same)
    deflate_mix(rng, c)
    c.close("c", 1000, "no context takeover done")
    return scenario("py-deflate-no-ctx", 18109, "python", "python", [c],
                    server_deflate=dict(opts))


def py_deflate_mixed():
    rng = random.Random("py-deflate-mixed")
    c = Conn(client_deflate="default")
    shared = json_text(rng, 10)
    for i in range(6):
        off = i % 2 == 1
        kw = {"compress": False} if off else {}
        c.text("c", shared if i % 3 == 0 else json_text(rng, 4), **kw)
        c.text("s", shared if i % 3 == 1 else json_text(rng, 4), **kw)
        c.binary("c", rng.randbytes(200 * (i + 1)), **kw)
        c.binary("s", b"Z" * (300 * (i + 1)), **kw)
    c.frag_text("c", ["uncompressed ", "fragmented ", "text"], compress=False)
    c.frag_text("s", [json_text(rng, 5), json_text(rng, 5)])
    c.frag_binary("s", [b"x" * 1000, b"y" * 1000], compress=False)
    c.text("c", shared).text("s", shared)
    c.close("c", 1000, "mixed done")
    return scenario("py-deflate-mixed", 18110, "python", "python", [c],
                    server_deflate="default")


def node_basic():
    rng = random.Random("node-basic")
    c = Conn()
    c.text("c", "Hello from ws client").text("s", "Hello from ws server")
    c.text("c", "UTF-8: Grüße, Καλημέρα, こんにちは, 😀🚀 𝄞").text("s", unicode_text(rng, 50))
    c.text("c", "").text("s", "")
    for size in (0, 1, 125, 126, 127, 65535, 65536):
        c.binary("c", rng.randbytes(size)).binary("s", rng.randbytes(size))
    c.binary("c", rng.randbytes(MIB))
    # A text message whose frames split multi-byte characters (valid as a whole).
    emoji = "😀🚀€ß".encode("utf-8")
    c.msg("c", "text", emoji, frags=[emoji[:1], emoji[1:5], emoji[5:9], emoji[9:]])
    c.msg("s", "text", "split 𝄞 here".encode(), frags=[b"split \xf0\x9d", b"\x84\x9e here"])
    c.frag_binary("c", [rng.randbytes(1000), b"", rng.randbytes(10)])
    c.frag_binary("s", [rng.randbytes(66000), rng.randbytes(126), rng.randbytes(1)])
    c.frag_text("s", ["a", "b", "c", "d", "e", "f", "g", "h"])
    c.ping("c", b"node ping").text("c", "after ping")
    c.ping("s", bytes(range(125))).binary("s", b"after server ping")
    c.ping("s", b"").text("s", "after empty ping")
    c.pong("c", b"unsolicited pong").text("c", "after unsolicited pong")
    c.close("c", 1000, "done")
    c1 = Conn()
    c1.text("c", "second connection").text("s", "server will close with 4000")
    c1.close("s", 4000, "custom close reason ✓")
    c2 = Conn()
    c2.text("c", "third connection: close without status code").close("c", None)
    return scenario("node-basic", 18201, "node", "node", [c, c1, c2])


def node_deflate():
    rng = random.Random("node-deflate")
    c = deflate_mix(rng, Conn(client_deflate={}))
    # ws ignores its threshold under context takeover, so the uncompressed
    # messages of this mixed session are sent with {compress: false}.
    shared = json_text(rng, 8)
    for i in range(4):
        kw = {"compress": False} if i % 2 else {}
        c.text("c", shared, **kw).text("s", shared, **kw)
        c.binary("c", b"q" * (500 * (i + 1)), **kw)
    c.frag_text("c", [json_text(rng, 10), json_text(rng, 10), json_text(rng, 10)])
    c.frag_binary("s", [b"r" * 3000, rng.randbytes(100), b"s" * 3000])
    c.frag_text("s", [json_text(rng, 3), json_text(rng, 3)], compress=False)
    c.close("c", 1000, "node deflate done")
    c1 = deflate_mix(rng, Conn(client_deflate={"serverMaxWindowBits": 10,
                                               "clientMaxWindowBits": 11}))
    for dist in (600, 1500, 3000):
        c1.text("c", far_repeats_text(rng, 3 * dist + 100, dist))
        c1.text("s", far_repeats_text(rng, 3 * dist + 100, dist))
    c1.close("s", 1000, "window bits 10/11 done")
    return scenario("node-deflate", 18202, "node", "node", [c, c1],
                    server_deflate={"threshold": 1024})


def node_deflate_no_ctx():
    rng = random.Random("node-deflate-no-ctx")
    c = Conn(client_deflate={"threshold": 1024, "clientNoContextTakeover": True,
                             "serverNoContextTakeover": True})
    same = json_text(rng, 30)
    for _ in range(3):
        c.text("c", same).text("s", same)
    # Below the 1024-byte threshold: sent uncompressed.
    c.text("c", json_text(rng, 2)).text("s", json_text(rng, 2))
    deflate_mix(rng, c)
    c.close("c", 1000, "no context takeover done")
    return scenario("node-deflate-no-ctx", 18203, "node", "node", [c],
                    server_deflate={"threshold": 1024, "serverNoContextTakeover": True,
                                    "clientNoContextTakeover": True})


def py_client_node_server():
    rng = random.Random("py-client-node-server")
    c = Conn(client_deflate="default")
    c.text("c", "hello from python").text("s", "hello from node")
    deflate_mix(rng, c)
    c.ping("s", b"node pings python").text("s", "after node ping")
    c.pong("s", b"node unsolicited pong").text("s", "after node pong")
    c.close("c", 1000, "cross done")
    c1 = Conn(client_deflate="default")
    c1.text("c", "second connection").binary("s", rng.randbytes(2000))
    c1.close("s", 1001, "node going away")
    return scenario("py-client-node-server", 18301, "node", "python", [c, c1],
                    server_deflate="default")


SCENARIOS = [
    py_basic, py_close_codes, py_concurrent, py_ipv6, py_deflate_default,
    lambda: py_deflate_wbits(9, 18106), lambda: py_deflate_wbits(12, 18107),
    lambda: py_deflate_wbits(15, 18108), py_deflate_no_ctx, py_deflate_mixed,
    node_basic, node_deflate, node_deflate_no_ctx, py_client_node_server,
]


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for make in SCENARIOS:
        s = make()
        with open(os.path.join(outdir, s["name"] + ".json"), "w") as f:
            json.dump(s, f)
        print(s["name"], s["port"], s["server"]["impl"], s["client_impl"])


if __name__ == "__main__":
    main()
