#!/usr/bin/env python3
"""Raw TCP copy rate over 127.0.0.1, for benches/e2e/run.sh: one connection, one direction,
1 MiB send/recv calls, no TLS, no HTTP. Prints one JSON object with the best of --tries.
"""

import argparse
import json
import socket
import threading
import time

CHUNK = 1 << 20


def sink(server, got):
    conn, _ = server.accept()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    while True:
        n = conn.recv_into(view)
        if n == 0:
            break
        total += n
    conn.close()
    got.append(total)


def once(size):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got = []
    thread = threading.Thread(target=sink, args=(server, got), daemon=True)
    thread.start()
    client = socket.create_connection(server.getsockname(), timeout=60)
    data = memoryview(bytes(CHUNK))
    start = time.perf_counter()
    sent = 0
    while sent < size:
        client.sendall(data[: min(CHUNK, size - sent)])
        sent += min(CHUNK, size - sent)
    client.shutdown(socket.SHUT_WR)
    thread.join(60)
    seconds = time.perf_counter() - start
    client.close()
    server.close()
    if not got or got[0] != size:
        raise SystemExit(f"loopback.py: received {got} of {size} bytes")
    return seconds


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bytes", type=int, default=1 << 30)
    p.add_argument("--tries", type=int, default=3)
    args = p.parse_args()
    best = min(once(args.bytes) for _ in range(max(1, min(args.tries, 10))))
    print(json.dumps({"bytes": args.bytes, "seconds": round(best, 3),
                      "mib_s": round(args.bytes / best / (1 << 20), 1)}))
