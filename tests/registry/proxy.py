#!/usr/bin/env python3
"""A byte-counting TCP proxy on 127.0.0.1 (python3 stdlib only), for the pull benchmark.

    proxy.py LISTEN_PORT UPSTREAM_PORT CONTROL_PORT [--rate BYTES_PER_SEC] [--cut-after BYTES]

Forwards 127.0.0.1:LISTEN_PORT to 127.0.0.1:UPSTREAM_PORT and counts the bytes
sent to clients (responses, headers included), in total and per request path.
A connection to 127.0.0.1:CONTROL_PORT gets one JSON line back and is closed:
{"sent": N, "requests": R, "paths": {"/v2/...": bytes, ...}}.
--rate throttles every connection; --cut-after closes every connection once
that many bytes were sent and refuses later ones ("the registry dies").
The tests use the Rust proxy in tests/src/registry.rs; this one is for
bench/pull.sh. Stop it with SIGTERM.
"""
import json
import socket
import sys
import threading
import time

lock = threading.Lock()
sent = 0
requests = 0
paths = {}
down = False
conns = set()


def parse_args(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    opts = {"rate": 0, "cut": None}
    rest = argv[4:]
    while rest:
        if rest[0] == "--rate":
            opts["rate"] = int(rest[1])
        elif rest[0] == "--cut-after":
            opts["cut"] = int(rest[1])
        else:
            sys.exit("unknown option " + rest[0])
        rest = rest[2:]
    return int(argv[1]), int(argv[2]), int(argv[3]), opts


def cut_all():
    global down
    down = True
    for s in list(conns):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client, upstream_port, opts):
    global sent, requests
    try:
        up = socket.create_connection(("127.0.0.1", upstream_port), timeout=5)
    except OSError:
        client.close()
        return
    up.settimeout(None)
    with lock:
        conns.update((client, up))
    current = {"path": "?"}

    def c2u():
        global requests
        head = b""
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                head += data
                while b"\r\n\r\n" in head:
                    h, head = head.split(b"\r\n\r\n", 1)
                    first = h.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
                    with lock:
                        requests += 1
                        current["path"] = first[1] if len(first) > 1 else "?"
                up.sendall(data)
        except OSError:
            pass
        try:
            up.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=c2u, daemon=True)
    t.start()
    rate, cut = opts["rate"], opts["cut"]
    try:
        while not down:
            data = up.recv(max(1024, rate // 20) if rate else 65536)
            if not data:
                break
            with lock:
                allowed = len(data) if cut is None else max(0, min(len(data), cut - sent))
                sent += allowed
                p = current["path"]
                paths[p] = paths.get(p, 0) + allowed
            if allowed:
                client.sendall(data[:allowed])
            if allowed < len(data):
                cut_all()
                break
            if rate:
                time.sleep(len(data) / rate)
    except OSError:
        pass
    for s in (client, up):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
    with lock:
        conns.discard(client)
        conns.discard(up)


def control(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(8)
    while True:
        c, _ = srv.accept()
        with lock:
            msg = json.dumps({"sent": sent, "requests": requests, "paths": paths})
        try:
            c.sendall(msg.encode() + b"\n")
        except OSError:
            pass
        c.close()


def main():
    listen_port, upstream_port, control_port, opts = parse_args(sys.argv)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(64)
    threading.Thread(target=control, args=(control_port,), daemon=True).start()
    while True:
        c, _ = srv.accept()
        if down:
            c.close()
            continue
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(c, upstream_port, opts), daemon=True).start()


if __name__ == "__main__":
    main()
