#!/usr/bin/env python3
"""Idle keep-alive TLS connections, for benches/e2e/run.sh.

Opens COUNT TLS connections to 127.0.0.1:PORT (at most CONCURRENCY handshakes at once),
sends one authenticated `GET /v2/` on each and reads the answer, keeps them all open for
HOLD seconds while sampling the resident memory of the given processes, then closes
them. Prints one JSON object. Everything is bounded: each connection by --timeout, the
opening phase by --deadline, and opening stops after 2 x CONCURRENCY failures in a row
(a server out of connection slots leaves handshakes hanging).
"""

import argparse
import asyncio
import json
import resource
import ssl
import sys
import time


def rss_kib(pids):
    """Sum of VmRSS over pids, in KiB (processes that are gone count 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


async def open_one(args, ctx, request):
    reader, writer = await asyncio.open_connection("127.0.0.1", args.port, ssl=ctx)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await reader.readexactly(length)
        return reader, writer, status
    except BaseException:
        writer.close()
        raise


async def main(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.count + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    request = (
        f"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        f"Authorization: {args.auth}\r\nUser-Agent: e2e-idle\r\n\r\n"
    ).encode()
    pids = [int(p) for p in args.pids.split(",") if p]
    base = rss_kib(pids)

    conns, errors, statuses = [], {}, {}
    sem = asyncio.Semaphore(args.concurrency)
    state = {"streak": 0, "stop": False}
    started = time.monotonic()

    async def worker():
        if state["stop"]:
            return
        async with sem:
            if state["stop"] or time.monotonic() - started > args.deadline:
                state["stop"] = True
                return
            try:
                reader, writer, status = await asyncio.wait_for(
                    open_one(args, ctx, request), args.timeout
                )
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    ssl.SSLError, ValueError, IndexError) as e:
                key = type(e).__name__
                errors[key] = errors.get(key, 0) + 1
                state["streak"] += 1
                if state["streak"] >= 2 * args.concurrency:
                    state["stop"] = True
                return
            state["streak"] = 0
            statuses[status] = statuses.get(status, 0) + 1
            conns.append((reader, writer))

    await asyncio.gather(*(worker() for _ in range(args.count)))
    open_seconds = time.monotonic() - started

    # Hold them; sample memory while they are idle. A server may close idle connections to
    # make room for new ones (nginx does when worker_connections run out): count only those
    # still open, i.e. without an end-of-stream from the server, at the end.
    peak = 0
    samples = max(1, int(args.hold / 0.5))
    for _ in range(samples):
        await asyncio.sleep(args.hold / samples)
        peak = max(peak, rss_kib(pids))
    alive = sum(1 for r, w in conns if not r.at_eof() and not w.is_closing())
    for _, writer in conns:
        writer.close()
    for _, writer in conns:
        try:
            await asyncio.wait_for(writer.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            pass
    print(json.dumps({
        "requested": args.count,
        "answered": len(conns),
        "held": alive,
        "status": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "open_seconds": round(open_seconds, 2),
        "rss_base_kib": base,
        "rss_kib": peak,
        "per_conn_kib": round((peak - base) / alive, 2) if alive else None,
    }))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--auth", required=True, help='Authorization value, "Basic ..."')
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--deadline", type=float, default=90.0)
    p.add_argument("--hold", type=float, default=5.0)
    p.add_argument("--pids", required=True, help="comma-separated pids whose RSS is summed")
    args = p.parse_args()
    if args.count > 20000:
        sys.exit("idle.py: at most 20000 connections")
    asyncio.run(main(args))
