#!/usr/bin/env python3
"""Records echo sessions for the wsreplay round-trip tests (tests/replay_e2e.rs).

    python3 testdata/record/record_echo.py   # as root: writes testdata/real/py-echo*.pcap

A Python `websockets` echo server and client talk over loopback while tcpdump
records them. The client sends a fixed script (text, UTF-8, binary, an empty
message, a fragmented message, a ping) and closes with 1000 "done"; the server
echoes every data message. Because the server is an echo, replaying the
client's side against any echo server must give back exactly the recorded
server messages. Written truth: NAME.truth.jsonl with one line per message the
client sent (dir, opcode, sha256, len).
"""
import asyncio, hashlib, json, os, signal, subprocess, sys, time
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "real")

SCRIPT = [
    ("text", "hello echo"),
    ("text", "grüße 🌍 " * 20),
    ("binary", bytes(range(256)) * 4),
    ("text", ""),
    ("text", '{"op":"subscribe","channel":"trades","id":42}' * 50),
    ("frag", ["part one, ", "part two, ", "part three"]),
    ("binary", os.urandom(0) + bytes((i * 7) & 0xFF for i in range(70000))),
]


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


async def client(port, compression, truth):
    async with connect(f"ws://127.0.0.1:{port}/echo", compression=compression,
                       ping_interval=None, max_size=None) as ws:
        for kind, payload in SCRIPT:
            if kind == "frag":
                await ws.send(iter(payload))
                data = "".join(payload).encode()
                op = "text"
            else:
                await ws.send(payload)
                data = payload.encode() if isinstance(payload, str) else payload
                op = kind
            truth.write(json.dumps({"dir": "c2s", "opcode": op, "len": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest()}) + "\n")
            await ws.recv()
        await ws.close(1000, "done")


async def run(port, compression, truth):
    async with serve(echo, "127.0.0.1", port, compression=compression,
                     ping_interval=None, max_size=None):
        await client(port, compression, truth)


def record(name, port, compression):
    pcap = os.path.join(OUT, name + ".pcap")
    err = open(f"/tmp/{name}.tcpdump.err", "w+")
    td = subprocess.Popen(["tcpdump", "-Z", "root", "--immediate-mode", "-B", "131072", "-i", "lo",
                           "-s", "0", "-U", "-w", pcap, f"tcp port {port}"], stderr=err)
    for _ in range(200):
        err.seek(0)
        if "listening on" in err.read():
            break
        time.sleep(0.05)
    with open(os.path.join(OUT, name + ".truth.jsonl"), "w") as truth:
        asyncio.run(run(port, compression, truth))
    time.sleep(0.5)
    td.send_signal(signal.SIGINT)
    td.wait(timeout=10)
    err.seek(0)
    print(name, err.read().strip().splitlines()[-1])


if __name__ == "__main__":
    print("websockets", websockets.__version__)
    record("py-echo", 18401, None)
    record("py-echo-deflate", 18402, "deflate")
