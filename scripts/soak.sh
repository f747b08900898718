#!/usr/bin/env bash
# Live soak: many short WebSocket connections through lo while
# `wssniff -i lo --stats` runs; samples wssniff's resident memory (VmRSS)
# every few seconds and prints the series, then stops wssniff with SIGINT
# and prints its final statistics and capture counters.
#
#   sudo scripts/soak.sh [SECONDS [SAMPLE_EVERY]]     # defaults: 60 5
#
# Environment: WSSNIFF (binary; default target/release/wssniff, or
# $CARGO_TARGET_DIR/release/wssniff), PORT (default 18765).
# Needs root (capture), python3 with `websockets`. Loopback only; the load
# is bounded in time (SECONDS) and in connections (at most 200 per second).
set -euo pipefail

secs=${1:-60}
every=${2:-5}
port=${PORT:-18765}
bin=${WSSNIFF:-${CARGO_TARGET_DIR:-target}/release/wssniff}
[ -x "$bin" ] || { echo "soak: no binary at $bin (cargo build --release, or set WSSNIFF)" >&2; exit 2; }
python3 -c 'import websockets' || { echo "soak: python3 websockets is needed" >&2; exit 2; }

tmp=$(mktemp -d)
cleanup() {
    [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null || true
    [ -n "${sniff_pid:-}" ] && kill "$sniff_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$bin" -i lo -B 65536 --stats tcp port "$port" >"$tmp/out" 2>"$tmp/err" &
sniff_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/err" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }

# Echo server and a client that opens a connection, exchanges a few
# messages (text, binary, deflate on: websockets' default), closes, repeats.
cat >"$tmp/load.py" <<'PY'
import asyncio, os, sys, time
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
port, secs = int(sys.argv[1]), float(sys.argv[2])
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    n = msgs = 0
    end = time.monotonic() + secs
    async with serve(echo, "127.0.0.1", port, ping_interval=None):
        while time.monotonic() < end:
            started = time.monotonic()
            async with connect(f"ws://127.0.0.1:{port}/soak/{n}", ping_interval=None) as ws:
                for i in range(5):
                    await ws.send(f"message {i} of connection {n} " * 10)
                    await ws.recv()
                    await ws.send(os.urandom(200 + 100 * i))
                    await ws.recv()
                    msgs += 2
            n += 1
            # At most 200 connections a second.
            await asyncio.sleep(max(0.0, 0.005 - (time.monotonic() - started)))
    print(f"connections {n}, messages sent {msgs} (each echoed)", flush=True)
asyncio.run(main())
PY
python3 "$tmp/load.py" "$port" "$secs" >"$tmp/load" &
load_pid=$!

echo "elapsed_s vmrss_kib"
start=$(date +%s)
while kill -0 "$load_pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$sniff_pid/status")
    echo "$(( $(date +%s) - start )) $rss"
    sleep "$every"
done
wait "$load_pid"
load_pid=
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$sniff_pid/status")
peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$sniff_pid/status")
echo "$(( $(date +%s) - start )) $rss"
echo "peak VmHWM ${peak} KiB"
sleep 0.5
kill -INT "$sniff_pid"
wait "$sniff_pid"
sniff_pid=
echo "load: $(cat "$tmp/load")"
head -n 1 "$tmp/out"
grep -E "packets (captured|received|dropped)" "$tmp/err"
