#!/usr/bin/env python3
"""run_py.py over TLS: the same players, with wss:// on both sides.

usage: run_py_tls.py ROLE SCENARIO.json RAW_TRUTH.jsonl [READY_FILE]
Environment: TLS_CERT, TLS_KEY (PEM, self-signed), TLS_KEYLOG (the client
writes the NSS key log there through SSLContext.keylog_filename). TLS 1.3
suites come from OPENSSL_CONF (set by record_tls.sh), TLS 1.2 ones from
set_ciphers.
"""
import json
import os
import ssl
import sys

import run_py


def load_tls(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)["tls"]


def contexts(tls):
    version = ssl.TLSVersion.TLSv1_2 if tls["max_version"] == "1.2" else ssl.TLSVersion.TLSv1_3
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(os.environ["TLS_CERT"], os.environ["TLS_KEY"])
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.keylog_filename = os.environ["TLS_KEYLOG"]
    for ctx in (server, client):
        ctx.maximum_version = version
        if tls.get("ciphers"):
            ctx.set_ciphers(tls["ciphers"])
    return server, client


def main():
    tls = load_tls(sys.argv[2])
    server_ctx, client_ctx = contexts(tls)
    plain_server, plain_client = run_py.server_kwargs, run_py.client_kwargs
    run_py.server_kwargs = lambda sc: {**plain_server(sc), "ssl": server_ctx}
    run_py.client_kwargs = lambda spec: {**plain_client(spec), "ssl": client_ctx,
                                         "server_hostname": "localhost"}
    plain_uri = run_py.uri
    run_py.uri = lambda sc, i: "wss" + plain_uri(sc, i)[2:]
    run_py.asyncio.run(run_py.main())


if __name__ == "__main__":
    main()
