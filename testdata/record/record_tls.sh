#!/usr/bin/env bash
# Records the wss:// captures of testdata/tls/ (see testdata/README.md):
# Python websockets and Node ws over TLS 1.2 and 1.3, several suites, with
# the NSS key log each client wrote and the applications' own truth logs.
#
#   bash testdata/record/record_tls.sh                     # every scenario
#   bash testdata/record/record_tls.sh py-tls13-aes128gcm  # only the named ones
#
# Needs root (tcpdump on lo), tcpdump, editcap, openssl, python3 with
# websockets 17.x, node + npm (ws from package-lock.json, in $NODE_DIR).
# Per scenario: a fresh self-signed RSA certificate, tcpdump on lo filtered
# on the port, the applications play gen_tls_scenarios.py's script (all
# over 127.0.0.1), then NAME.pcap, NAME.keys (key log), NAME.truth.jsonl.
# The first scenario also gets NAME.dsb.pcapng: the keys embedded by
# `editcap --inject-secrets`.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE/../tls}
NODE_DIR=${NODE_DIR:-/tmp/rec-node}
WORK=$(mktemp -d /tmp/wssrec.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# die, setup_node, wait_for_line.
. "$HERE/lib.sh"

# openssl_conf SUITE: an OpenSSL config restricting TLS 1.3 to one suite
# (Python's ssl module cannot set TLS 1.3 suites itself).
openssl_conf() {
    cat <<CONF
openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Ciphersuites = $1
CONF
}

record() {
    local name=$1 port=$2 impl=$3 scen="$WORK/$1.json" pcap="$OUT/$1.pcap" err="$WORK/$1.tcpdump.err" pid
    local keys="$OUT/$name.keys" raw="$WORK/$name.raw.jsonl"
    rm -f "$pcap" "$keys" "$OUT/$name.truth.jsonl"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
    export TLS_CERT="$WORK/cert.pem" TLS_KEY="$WORK/key.pem" TLS_KEYLOG="$keys"
    local suites
    suites=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tls"]["ciphersuites"] or "")' "$scen")
    tcpdump -Z root --immediate-mode -B 131072 -i lo -s 0 -U -w "$pcap" "tcp port $port" 2>"$err" &
    pid=$!
    wait_for_line "$err" "listening on"
    local ok=yes
    if [ "$impl" = python ]; then
        if [ -n "$suites" ]; then
            openssl_conf "$suites" >"$WORK/openssl.cnf"
            OPENSSL_CONF="$WORK/openssl.cnf" timeout 120 python3 "$HERE/run_py_tls.py" both "$scen" "$raw" || ok=no
        else
            timeout 120 python3 "$HERE/run_py_tls.py" both "$scen" "$raw" || ok=no
        fi
    else
        timeout 120 node --tls-keylog="$keys" "$HERE/run_node.js" both "$scen" "$raw" || ok=no
    fi
    sleep 0.5
    kill -INT "$pid"
    wait "$pid" || true
    [ "$ok" = yes ] || die "$name: the applications failed"
    grep -q "^0 packets dropped by kernel" "$err" || die "$name: tcpdump dropped packets: $(cat "$err")"
    grep "packets captured" "$err" | sed "s/^/  $name: /"
    python3 "$HERE/merge_truth.py" "$OUT/$name.truth.jsonl" "$raw"
}

main() {
    [ "$(id -u)" = 0 ] || die "run as root (tcpdump on lo)"
    mkdir -p "$OUT"
    setup_node
    python3 "$HERE/gen_tls_scenarios.py" "$WORK" >"$WORK/scenarios.txt"
    local name port server client wanted first=""
    while read -r name port server client; do
        [ -n "$first" ] || first=$name
        if [ $# -gt 0 ]; then
            wanted=no
            for w in "$@"; do [ "$w" = "$name" ] && wanted=yes; done
            [ "$wanted" = yes ] || continue
        fi
        record "$name" "$port" "$server" </dev/null
        if [ "$name" = "$first" ]; then
            editcap --inject-secrets "tls,$OUT/$name.keys" "$OUT/$name.pcap" "$OUT/$name.dsb.pcapng"
        fi
    done <"$WORK/scenarios.txt"
}

main "$@"
