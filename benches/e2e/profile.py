#!/usr/bin/env python3
"""Shares of a perf profile by area, for benches/e2e/profile.sh (issue #21).

Reads `perf script -F period,ip,sym,dso` output (each sample: a header line, then its
call chain, innermost frame first, then a blank line) on stdin. Each sample goes to the
area of its innermost frame (where the CPU was), except for frames that say nothing of
who asked (memcpy, SHA-256, generic core/alloc code): those go to the first caller up
the chain that has an area, when the chain reaches one. Prints the share of samples per
area and the functions with the most samples.
"""

import argparse
import collections
import re
import sys

# (area, pattern on the demangled symbol), first match wins; see classify().
AREAS = [
    ("TLS (rustls, ring AES-GCM/ChaCha, X25519)",
     r"rustls::|tokio_rustls::|hyper_rustls::|aes_|aesni|gcm_|_gcm|ghash|chacha|poly1305|x25519|"
     r"ecp_nistz|p256|bn_mul|ring::aead|ring::agreement|ring::ec"),
    ("auth (cache, login, hash check)", r"registry_gate::auth::"),
    ("headers (src/proxy/headers.rs)", r"registry_gate::proxy::headers::"),
    ("logging (tracing, the access line)",
     r"tracing_subscriber::|tracing_core::|tracing::|registry_gate::proxy::record::|"
     r"registry_gate::cli::logging|nu_ansi_term|core::fmt::|<.* as core::fmt::|alloc::fmt::"),
    ("metrics (prometheus-client)", r"prometheus_client::|registry_gate::metrics"),
    ("upstream pool (hyper-util client)", r"hyper_util::client::|registry_gate::proxy::upstream"),
    ("HTTP parsing and writing (hyper, h2, httparse, http)",
     r"hyper::|h2::|httparse::|http::|hyper_util::|http_body"),
    ("tokio runtime (scheduler, timers, I/O driver)", r"tokio::|mio::"),
    ("gate pipeline (other src/)", r"registry_gate::"),
]
AREAS = [(name, re.compile(p)) for name, p in AREAS]
ALLOC = re.compile(
    r"^(malloc|free|cfree|realloc|calloc|_int_malloc|_int_free|_int_realloc|malloc_consolidate|"
    r"tcache_|__libc_malloc|__libc_free|__libc_calloc|__libc_realloc|unlink_chunk|"
    r"__rust_alloc|__rust_dealloc|__rust_realloc|__rdl_|alloc::alloc::|"
    r"<alloc::alloc::Global as core::alloc::Allocator>)")
# Frames that say nothing of who asked: charged to the first caller with an area.
NEUTRAL = re.compile(
    r"^(__memcpy|__memmove|__memset|memcpy|memmove|memset|__memcmp|memcmp|__strlen|bcmp|"
    r"ring_core_[0-9_]+sha|sha256_|sha512_|ring::digest|ring::hmac|ring::hkdf|"
    r"core::|alloc::|std::|<core::|<alloc::|<std::|\[unknown\])")

KERNEL = "kernel (syscalls, TCP, scheduler)"
ALLOCATION = "allocation (malloc/free)"
LIBC = "libc (memcpy, memset, ...)"
HASH = "SHA-256 (ring; caller not on the stack)"
GENERIC = "generic core/alloc/std code (caller not on the stack)"
OTHER = "other"

FRAME = re.compile(r"^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")


def frame_area(sym, dso):
    """The area a frame itself belongs to, or None for a neutral frame."""
    if "kernel" in dso or dso.startswith("[") and dso not in ("[unknown]", "[vdso]"):
        return KERNEL
    if ALLOC.search(sym):
        return ALLOCATION
    if NEUTRAL.search(sym):
        return None
    for name, pattern in AREAS:
        if pattern.search(sym):
            return name
    if "libc" in dso or "ld-linux" in dso or dso == "[vdso]":
        return LIBC
    return OTHER


def neutral_kind(sym, dso):
    if re.search(r"sha256|sha512|ring::digest|ring::hmac|ring::hkdf", sym):
        return HASH
    if "libc" in dso or re.match(r"^_*(mem|str|bcmp)", sym):
        return LIBC
    return GENERIC


def classify(chain):
    """The area of one sample, from its chain of (symbol, dso), innermost first."""
    sym, dso = chain[0]
    area = frame_area(sym, dso)
    if area is not None:
        return area
    for caller_sym, caller_dso in chain[1:]:
        caller = frame_area(caller_sym, caller_dso)
        if caller not in (None, OTHER, KERNEL):
            return caller
    return neutral_kind(sym, dso)


def strip_offset(sym):
    return re.sub(r"\+0x[0-9a-f]+$", "", sym)


def samples(lines):
    """(period, chain) per sample of `perf script -F period,ip,sym,dso` output."""
    period, chain = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if period is not None and chain:
                yield period, chain
            period, chain = None, []
            continue
        m = FRAME.match(line)
        if m and period is not None:
            chain.append((strip_offset(m.group(2)), m.group(3)))
        else:
            fields = line.split()
            period = int(fields[-1]) if fields and fields[-1].isdigit() else 1
    if period is not None and chain:
        yield period, chain


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--top", type=int, default=25, help="functions to list")
    args = ap.parse_args()
    by_area = collections.Counter()
    by_function = collections.Counter()
    area_of_function = {}
    total = 0
    for period, chain in samples(sys.stdin):
        area = classify(chain)
        by_area[area] += period
        sym, dso = chain[0]
        key = (sym, dso.rsplit("/", 1)[-1])
        by_function[key] += period
        area_of_function.setdefault(key, area)
        total += period
    if total == 0:
        print("profile.py: no samples (was perf attached to the gate?)", file=sys.stderr)
        return 1
    print(f"\nShare of the gate's samples by area ({total} samples' worth of period):\n")
    print("| area | share |")
    print("|---|---:|")
    for area, n in by_area.most_common():
        print(f"| {area} | {100 * n / total:.1f} % |")
    print(f"\nTop {args.top} functions (self):\n")
    print("| share | function | object | area |")
    print("|---:|---|---|---|")
    for (sym, dso), n in by_function.most_common(args.top):
        short = sym if len(sym) <= 110 else sym[:107] + "..."
        print(f"| {100 * n / total:.1f} % | `{short}` | {dso} | {area_of_function[(sym, dso)]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
