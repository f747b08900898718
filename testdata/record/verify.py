#!/usr/bin/env python3
"""Cross-checks each testdata/real capture against its truth file with tshark.

usage: verify.py [DIR]   (default: testdata/real next to this script)

For every NAME.pcap: decodes it with tshark (HTTP forced on the server port),
counts the 101 handshakes and the WebSocket frames per connection, direction
and opcode, and compares them with the frames the truth file says were sent
(a message of n frames = its opcode once + n-1 continuations). Also writes
NAME.tshark.tsv (the same columns as ../shared/corpus/tshark/*.frames.tsv).
Exits non-zero on any mismatch.
"""
import collections
import glob
import json
import os
import subprocess
import sys

OPCODES = {"text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
FIELDS = ["frame.number", "tcp.stream", "tcp.srcport", "websocket.opcode", "websocket.fin",
          "websocket.rsv", "websocket.pmc", "websocket.mask", "websocket.payload_length",
          "websocket.payload_length_ext_16", "websocket.payload_length_ext_64"]


def tshark(pcap, port, fields, display_filter):
    cmd = ["tshark", "-r", pcap, "-d", f"tcp.port=={port},http", "-Y", display_filter,
           "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
    for f in fields:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return [line.split("\t") for line in res.stdout.splitlines() if line]


def expected_frames(truth):
    """(client_port, dir, opcode) -> frame count, from the senders' logs."""
    want = collections.Counter()
    for rec in truth:
        key = (rec["client_port"], rec["dir"])
        frames = rec.get("frames") or 1
        want[key + (OPCODES[rec["opcode"]],)] += 1
        if frames > 1:
            want[key + (0,)] += frames - 1
    return want


def check_sequences(truth, rows, streams, port, texts):
    """Per connection and direction, the first frames of the messages on the
    wire must follow the truth's order, opcode and compression flag (RSV1);
    an uncompressed single-frame message must have the logged length, and a
    single-frame text message tshark shows (unmasked, inflated) the logged text."""
    wire = collections.defaultdict(list)
    for row in rows:
        cols = [c.split("|") for c in row]
        key = (streams.get(row[1]), "s2c" if int(row[2]) == port else "c2s")
        for i, opcode in enumerate(cols[3]):
            if opcode == "0":
                continue
            pick = lambda c: cols[c][i] if i < len(cols[c]) else ""
            length = pick(8)
            if length == "126":
                length = pick(9)
            elif length == "127":
                length = pick(10)
            frame = row[0] if len(cols[3]) == 1 else None
            wire[key].append((int(opcode), int(pick(5), 16) & 4 != 0, int(length), frame))
    logged = collections.defaultdict(list)
    for rec in truth:
        logged[(rec["client_port"], rec["dir"])].append(rec)
    problems = []
    compared = 0
    for key, recs in sorted(logged.items(), key=str):
        frames = wire.get(key, [])
        if len(frames) != len(recs):
            problems.append(f"{key}: {len(recs)} messages logged, {len(frames)} on the wire")
            continue
        # tshark 4.0 loses the inflate context after a fragmented message, so
        # its text is only trusted before the first one in this direction.
        trust_text = True
        for n, (rec, (opcode, rsv1, length, frame)) in enumerate(zip(recs, frames)):
            if opcode != OPCODES[rec["opcode"]] or rsv1 != bool(rec["compressed"]):
                problems.append(f"{key} message {n}: logged {rec['opcode']} compressed={rec['compressed']}, "
                                f"wire opcode {opcode} rsv1={rsv1}")
            elif not rsv1 and (rec.get("frames") or 1) == 1 and length != rec["len"]:
                problems.append(f"{key} message {n}: logged {rec['len']} bytes, wire {length}")
            elif trust_text and "text" in rec and (rec.get("frames") or 1) == 1 and frame in texts:
                compared += 1
                if texts[frame] != rec["text"]:
                    problems.append(f"{key} message {n}: tshark text differs from the logged text")
            if (rec.get("frames") or 1) > 1:
                trust_text = False
    return problems, compared


def verify(pcap):
    name = os.path.basename(pcap)[:-len(".pcap")]
    base = pcap[:-len(".pcap")]
    with open(base + ".truth.jsonl", encoding="utf-8") as f:
        truth = [json.loads(line) for line in f]
    port = truth[0]["server_port"]
    handshakes = len(tshark(pcap, port, ["frame.number"], "http.response.code == 101"))
    rows = tshark(pcap, port, FIELDS, "websocket")
    tsv = ["frame\ttcp.stream\tsrcport\topcode\tfin\trsv\tpmc\tmask\tpayload_len"]
    for row in rows:
        # One packet can hold several frames: the per-frame fields are '|'-joined.
        cols = [c.split("|") for c in row]
        frame, stream, srcport = row[0], row[1], row[2]
        for i, opcode in enumerate(cols[3]):
            pick = lambda c: cols[c][i] if i < len(cols[c]) else ""
            length = pick(8)
            if length == "126":
                length = pick(9)
            elif length == "127":
                length = pick(10)
            tsv.append("\t".join([frame, stream, srcport, opcode, pick(4), pick(5),
                                  pick(6), pick(7), length]))
    with open(base + ".tshark.tsv", "w", encoding="utf-8") as f:
        f.write("\n".join(tsv) + "\n")
    # Count per client port: the client port of an s2c frame is its stream's.
    streams = {}
    for row in tshark(pcap, port, ["tcp.stream", "tcp.srcport", "tcp.dstport"], "tcp.flags.syn==1 && tcp.flags.ack==0"):
        streams[row[0]] = int(row[1])
    got = collections.Counter()
    for row in rows:
        cols = [c.split("|") for c in row]
        client_port = streams.get(row[1])
        direction = "s2c" if int(row[2]) == port else "c2s"
        for opcode in cols[3]:
            got[(client_port, direction, int(opcode))] += 1
    texts = {}
    for row in tshark(pcap, port, ["frame.number", "websocket.opcode", "websocket.payload.text"],
                      "websocket.opcode == 1"):
        if len(row) == 3 and row[1] == "1":
            texts[row[0]] = row[2]
    problems, compared = check_sequences(truth, rows, streams, port, texts)
    want = expected_frames(truth)
    conns = len({r["conn"] for r in truth})
    if handshakes != conns:
        problems.append(f"{handshakes} handshakes for {conns} connections")
    for key in sorted(set(want) | set(got), key=str):
        if want[key] != got[key]:
            problems.append(f"port {key[0]} {key[1]} opcode {key[2]}: truth {want[key]} frames, tshark {got[key]}")
    status = "OK" if not problems else "MISMATCH"
    print(f"{status} {name}: {handshakes} handshakes, {sum(got.values())} frames (truth {sum(want.values())}), {compared} texts compared")
    for p in problems[:10]:
        print("   ", p)
    return not problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "real")
    results = [verify(p) for p in sorted(glob.glob(os.path.join(directory, "*.pcap")))]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
