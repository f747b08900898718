#!/usr/bin/env bash
# Records the real WebSocket captures in testdata/real/ (see testdata/README.md).
#
#   bash testdata/record/record.sh            # every scenario
#   bash testdata/record/record.sh py-basic   # only the named ones
#
# Needs root (tcpdump on lo), tcpdump, python3 with websockets 17.x, node +
# npm (ws is installed from package-lock.json into $NODE_DIR, default
# /tmp/rec-node). Each scenario: tcpdump on lo filtered on the scenario's
# port, both applications play gen_scenarios.py's script and log what they
# send, tcpdump is stopped with SIGINT, the logs are merged into
# NAME.truth.jsonl. Payloads come from seeded PRNGs; only timing and the
# ephemeral client ports change between runs.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE/../real}
NODE_DIR=${NODE_DIR:-/tmp/rec-node}
WORK=$(mktemp -d /tmp/wsrec.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# die, setup_node, wait_for_line.
. "$HERE/lib.sh"

# play NAME SERVER_IMPL CLIENT_IMPL: run the applications of one scenario.
play() {
    local name=$1 server=$2 client=$3 scen="$WORK/$1.json"
    if [ "$server" = "$client" ]; then
        if [ "$server" = python ]; then
            timeout 120 python3 "$HERE/run_py.py" both "$scen" "$WORK/$name.raw.server+client.jsonl"
        else
            timeout 120 node "$HERE/run_node.js" both "$scen" "$WORK/$name.raw.server+client.jsonl"
        fi
        return
    fi
    local ready="$WORK/$name.ready" server_pid
    if [ "$server" = python ]; then
        timeout 120 python3 "$HERE/run_py.py" server "$scen" "$WORK/$name.raw.server.jsonl" "$ready" &
    else
        timeout 120 node "$HERE/run_node.js" server "$scen" "$WORK/$name.raw.server.jsonl" "$ready" &
    fi
    server_pid=$!
    wait_for_line "$ready" ready
    if [ "$client" = python ]; then
        timeout 120 python3 "$HERE/run_py.py" client "$scen" "$WORK/$name.raw.client.jsonl"
    else
        timeout 120 node "$HERE/run_node.js" client "$scen" "$WORK/$name.raw.client.jsonl"
    fi
    wait "$server_pid" || die "$name: server failed"
}

# record NAME PORT SERVER_IMPL CLIENT_IMPL
record() {
    local name=$1 port=$2 pcap="$OUT/$1.pcap" err="$WORK/$1.tcpdump.err" pid
    rm -f "$pcap" "$OUT/$name.truth.jsonl"
    tcpdump -Z root --immediate-mode -B 131072 -i lo -s 0 -U -w "$pcap" "tcp port $port" 2>"$err" &
    pid=$!
    wait_for_line "$err" "listening on"
    if ! play "$name" "$3" "$4"; then
        kill -INT "$pid"; wait "$pid" || true
        die "$name: the applications failed"
    fi
    sleep 0.5   # let the last FIN/ACKs reach the capture
    kill -INT "$pid"
    wait "$pid" || true
    grep -q "^0 packets dropped by kernel" "$err" || die "$name: tcpdump dropped packets: $(cat "$err")"
    grep "packets captured" "$err" | sed "s/^/  $name: /"
    python3 "$HERE/merge_truth.py" "$OUT/$name.truth.jsonl" "$WORK/$name".raw.*.jsonl
}

main() {
    [ "$(id -u)" = 0 ] || die "run as root (tcpdump on lo)"
    mkdir -p "$OUT"
    setup_node
    python3 "$HERE/gen_scenarios.py" "$WORK" >"$WORK/scenarios.txt"
    local name port server client wanted
    while read -r name port server client; do
        if [ $# -gt 0 ]; then
            wanted=no
            for w in "$@"; do [ "$w" = "$name" ] && wanted=yes; done
            [ "$wanted" = yes ] || continue
        fi
        record "$name" "$port" "$server" "$client" </dev/null
    done <"$WORK/scenarios.txt"
    python3 "$HERE/verify.py" "$OUT"
}

main "$@"
