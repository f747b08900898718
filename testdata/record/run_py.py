#!/usr/bin/env python3
"""Plays one scenario (see gen_scenarios.py) with the Python `websockets`
library and logs every frame this process sends into a raw truth file.

usage: run_py.py ROLE SCENARIO.json RAW_TRUTH.jsonl [READY_FILE]
  ROLE: both | server | client

Both sides play the same action list in lock-step: the side named in `from`
sends, the other receives and checks the message is exactly what was sent, so
a recording that does not match its script fails loudly.

Who logs what (the truth is what was put on the wire):
  - every message, ping, pong and close an application sends, by its sender;
  - the automatic pong websockets sends for a ping is invisible to the
    application, so the pinging side logs it ("auto": true) once the pong
    has arrived;
  - the close websockets echoes on receiving a close is logged by the echoing
    side from `protocol.close_sent` ("auto": true).
"""
import asyncio
import base64
import hashlib
import json
import sys
import time

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Close

INLINE_LIMIT = 2048


class Truth:
    def __init__(self, path, server_port):
        self.file = open(path, "w", encoding="utf-8")
        self.server_port = server_port

    def log(self, conn, client_port, direction, opcode, payload, compressed=None,
            frames=None, auto=False, close=None):
        rec = {
            "t": time.time_ns(),
            "conn": conn,
            "client_port": client_port,
            "server_port": self.server_port,
            "dir": direction,
            "opcode": opcode,
            "len": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        if len(payload) <= INLINE_LIMIT:
            if opcode == "text":
                rec["text"] = payload.decode("utf-8")
            elif opcode in ("binary", "ping", "pong"):
                rec["b64"] = base64.b64encode(payload).decode("ascii")
        if close is not None:
            rec["close_code"], rec["close_reason"] = close
        rec["compressed"] = compressed
        if frames is not None:
            rec["frames"] = frames
        if auto:
            rec["auto"] = True
        rec["impl"] = f"python-websockets/{websockets.__version__}"
        self.file.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.file.flush()


def frags_of(action):
    return [base64.b64decode(f) for f in action["frags"]]


def close_payload(close):
    if close is None:
        return b"", (None, "")
    return close.serialize(), (close.code, close.reason)


class Player:
    def __init__(self, scenario, truth, role):
        self.sc = scenario
        self.truth = truth
        self.me = "c" if role == "client" else "s"
        self.peer_impl = scenario["client_impl"] if role == "server" else scenario["server"]["impl"]

    def dir_of(self, side):
        return "c2s" if side == "c" else "s2c"

    async def play(self, ws, conn, client_port, actions):
        peer = "s" if self.me == "c" else "c"
        for a in actions:
            if a["from"] == self.me:
                await self.send(ws, conn, client_port, a, peer)
            else:
                await self.receive(ws, conn, client_port, a)
        await ws.wait_closed()

    async def send(self, ws, conn, client_port, a, peer):
        op = a["op"]
        log = lambda *args, **kw: self.truth.log(conn, client_port, *args, **kw)
        mine = self.dir_of(self.me)
        if op in ("text", "binary"):
            frags = frags_of(a)
            payload = b"".join(frags)
            extensions = ws.protocol.extensions
            detach = a.get("compress") is False and bool(extensions)
            compressed = bool(extensions) and not detach
            # websockets ends an iterable message with an empty final frame.
            frames = 1 if len(frags) == 1 else len(frags) + 1
            log(mine, op, payload, compressed=compressed, frames=frames)
            if op == "text":
                parts = [f.decode("utf-8") for f in frags]
            else:
                parts = frags
            message = parts[0] if len(parts) == 1 else parts
            # websockets compresses every message once deflate is negotiated;
            # an uncompressed message is produced by serializing it without
            # the extension (it never touches the compressor's context).
            if detach:
                ws.protocol.extensions = []
            try:
                await ws.send(message)
            finally:
                if detach:
                    ws.protocol.extensions = extensions
        elif op == "ping":
            payload = frags_of(a)[0]
            log(mine, "ping", payload, compressed=False, frames=1)
            waiter = await ws.ping(payload)
            await waiter
            if self.peer_impl == "python":
                log(self.dir_of(peer), "pong", payload, compressed=False, frames=1, auto=True)
        elif op == "pong":
            payload = frags_of(a)[0]
            log(mine, "pong", payload, compressed=False, frames=1)
            await ws.pong(payload)
        elif op == "close":
            close = Close(a["code"], a["reason"])
            payload, info = close_payload(close)
            log(mine, "close", payload, compressed=False, frames=1, close=info)
            await ws.close(a["code"], a["reason"])
            await ws.wait_closed()
            rcvd = ws.protocol.close_rcvd
            if rcvd is None or (rcvd.code, rcvd.reason) != info:
                raise RuntimeError(f"conn {conn}: peer replied {rcvd!r} to close {info}")
        else:
            raise ValueError(op)

    async def receive(self, ws, conn, client_port, a):
        op = a["op"]
        if op in ("text", "binary"):
            expected = b"".join(frags_of(a))
            got = await ws.recv()
            if op == "text":
                ok = isinstance(got, str) and got.encode("utf-8") == expected
            else:
                ok = isinstance(got, bytes) and got == expected
            if not ok:
                raise RuntimeError(f"conn {conn}: unexpected {op} message ({len(got)} units)")
        elif op == "close":
            await ws.wait_closed()
            payload, info = close_payload(ws.protocol.close_sent)
            self.truth.log(conn, client_port, self.dir_of(self.me), "close", payload,
                           compressed=False, frames=1, auto=True, close=info)
            if info != (a["code"], a["reason"]):
                raise RuntimeError(f"conn {conn}: echoed close {info}, expected {a}")
        # Pings and pongs from the peer are handled inside websockets.


def server_kwargs(scenario):
    d = scenario["server"]["deflate"]
    kw = {"max_size": None, "ping_interval": None, "close_timeout": 10}
    if d is None:
        kw["compression"] = None
    elif d == "default":
        kw["compression"] = "deflate"
    else:
        kw["compression"] = None
        kw["extensions"] = [ServerPerMessageDeflateFactory(**d)]
    return kw


def client_kwargs(conn_spec):
    d = conn_spec["client_deflate"]
    kw = {"max_size": None, "ping_interval": None, "close_timeout": 10, "open_timeout": 10}
    if d is None:
        kw["compression"] = None
    elif d == "default":
        kw["compression"] = "deflate"
    else:
        kw["compression"] = None
        kw["extensions"] = [ClientPerMessageDeflateFactory(**d)]
    return kw


def uri(scenario, i):
    host = scenario["host"]
    if ":" in host:
        host = f"[{host}]"
    return f"ws://{host}:{scenario['port']}/c/{i}"


async def run_server(scenario, truth, ready_file=None, ready=None):
    player = Player(scenario, truth, "server")
    conns = scenario["connections"]
    done = asyncio.Event()
    finished = 0

    async def handler(ws):
        nonlocal finished
        i = int(ws.request.path.rsplit("/", 1)[-1])
        try:
            await player.play(ws, i, ws.remote_address[1], conns[i]["actions"])
        finally:
            finished += 1
            if finished == len(conns):
                done.set()

    async with serve(handler, scenario["host"], scenario["port"], **server_kwargs(scenario)):
        if ready_file:
            with open(ready_file, "w") as f:
                f.write("ready\n")
        if ready is not None:
            ready.set()
        await done.wait()


async def run_clients(scenario, truth):
    player = Player(scenario, truth, "client")
    conns = scenario["connections"]
    if scenario["concurrent"]:
        # Connect in index order so "connect order" is the index, then talk at once.
        sockets = []
        for i, spec in enumerate(conns):
            sockets.append(await connect(uri(scenario, i), **client_kwargs(spec)))
        await asyncio.gather(*(
            player.play(ws, i, ws.local_address[1], spec["actions"])
            for i, (ws, spec) in enumerate(zip(sockets, conns))))
    else:
        for i, spec in enumerate(conns):
            ws = await connect(uri(scenario, i), **client_kwargs(spec))
            await player.play(ws, i, ws.local_address[1], spec["actions"])


async def main():
    role, path, raw = sys.argv[1:4]
    ready_file = sys.argv[4] if len(sys.argv) > 4 else None
    with open(path, encoding="utf-8") as f:
        scenario = json.load(f)
    truth = Truth(raw, scenario["port"])
    if role == "server":
        await run_server(scenario, truth, ready_file)
    elif role == "client":
        await run_clients(scenario, truth)
    elif role == "both":
        ready = asyncio.Event()
        server = asyncio.create_task(run_server(scenario, truth, ready=ready))
        await asyncio.wait_for(ready.wait(), 10)
        await run_clients(scenario, truth)
        await asyncio.wait_for(server, 30)
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    asyncio.run(main())
