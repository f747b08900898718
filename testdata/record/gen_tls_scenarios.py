#!/usr/bin/env python3
"""Writes the wss:// scenarios of record_tls.sh (same format as
gen_scenarios.py, plus a "tls" object) into OUTDIR and prints
`name port server_impl client_impl` per scenario.

  "tls": {"max_version": "1.2"|"1.3",
          "ciphers": OpenSSL TLS 1.2 cipher list or null,
          "ciphersuites": TLS 1.3 suite name or null}

Python applies TLS 1.3 suites through an OPENSSL_CONF file (its ssl module
has no set_ciphersuites); Node takes both kinds of name in `ciphers`.
"""
import json
import os
import random
import sys

from gen_scenarios import Conn, compressible_text, deflate_mix, json_text, scenario, unicode_text


def tls_conns(rng, deflate, big):
    """Three connections: one with messages spanning many records and TCP
    segments, two smaller ones, talking at once."""
    c = Conn(client_deflate=deflate)
    c.text("c", "GET over TLS: hello").text("s", "hello from the TLS server")
    c.text("c", unicode_text(rng, 40)).text("s", json_text(rng, 4))
    c.binary("c", rng.randbytes(big)).binary("s", rng.randbytes(big // 3))
    c.text("c", compressible_text(rng, 40000)).text("s", compressible_text(rng, 20000))
    c.frag_binary("c", [rng.randbytes(17000), rng.randbytes(100), rng.randbytes(5)])
    c.ping("c", b"tls ping").text("c", "after ping")
    c.ping("s", b"server ping").text("s", "after server ping")
    c.close("c", 1000, "tls done")
    c1 = Conn(client_deflate=deflate)
    c1.text("c", "second connection").binary("s", rng.randbytes(3000))
    c1.close("s", 1001, "server going away")
    c2 = Conn(client_deflate=deflate)
    for i in range(10):
        c2.text("c", f"c2 message {i} " + "x" * i).text("s", json_text(rng, 1, start=i))
    c2.close("c", 1000, "")
    return [c, c1, c2]


def tls_scenario(name, port, impl, tls, deflate=None, big=100_000):
    rng = random.Random(name)
    s = scenario(name, port, impl, impl, tls_conns(rng, deflate, big),
                 server_deflate=deflate, concurrent=True)
    s["tls"] = tls
    return s


def T(max_version, ciphers=None, ciphersuites=None):
    return {"max_version": max_version, "ciphers": ciphers, "ciphersuites": ciphersuites}


SCENARIOS = [
    lambda: tls_scenario("py-tls13-aes128gcm", 18401, "python",
                         T("1.3", ciphersuites="TLS_AES_128_GCM_SHA256")),
    lambda: tls_scenario("py-tls13-aes256gcm-deflate", 18402, "python",
                         T("1.3", ciphersuites="TLS_AES_256_GCM_SHA384"), deflate="default"),
    lambda: tls_scenario("py-tls13-chacha20", 18403, "python",
                         T("1.3", ciphersuites="TLS_CHACHA20_POLY1305_SHA256")),
    lambda: tls_scenario("py-tls12-aes128gcm", 18404, "python",
                         T("1.2", ciphers="ECDHE-RSA-AES128-GCM-SHA256")),
    lambda: tls_scenario("py-tls12-chacha20-deflate", 18405, "python",
                         T("1.2", ciphers="ECDHE-RSA-CHACHA20-POLY1305"), deflate="default"),
    lambda: tls_scenario("node-tls13-deflate", 18406, "node", T("1.3"), deflate={}),
    lambda: tls_scenario("node-tls12-aes256gcm", 18407, "node",
                         T("1.2", ciphers="ECDHE-RSA-AES256-GCM-SHA384")),
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
