#!/usr/bin/env python3
"""Turns the records of benches/e2e/run.sh (one JSON object a line) into the markdown report:
machine facts, the command, a summary of the headline rows (proxy overhead and CPU per
request first), medians with min-max over repetitions, ratios of the gate to the nginx recipe,
a tuned nginx, HAProxy, Caddy and the registry directly (and, for LDAP sign-in, to Apache
httpd), and the issues' targets marked met or missed.

A cell is "—" where the run (or, in a merged report, the run of that part) had no such
subject, as reports written before it was added; "n/a" where the subject took part but the
row does not apply to it (apr1 for Caddy and HAProxy).

The report ends with its records and the run's settings ("meta"), so that a later run of some
parts only can be merged into it (--merge-into): that run's records replace those of the same
parts, the rest are kept, and the report names the run each part's figures come from.
"""

import argparse
import json
import platform
import statistics
import subprocess

TARGETS = ["gate", "nginx", "nginx-tuned", "haproxy", "caddy", "direct"]
# The proxies among them (every target but the registry directly).
PROXIES = [t for t in TARGETS if t != "direct"]
# The LDAP part's targets: the gate with [ldap] and Apache httpd with mod_authnz_ldap.
LDAP_TARGETS = ["gate", "apache"]
TITLES = {"gate": "gate", "nginx": "nginx (recipe)", "nginx-tuned": "nginx (tuned)",
          "haproxy": "HAProxy", "caddy": "Caddy", "direct": "direct",
          "apache": "Apache httpd (recipe)"}
# The other side of a ratio column's title, "gate/<name>".
RATIO_TITLES = {"nginx": "nginx", "nginx-tuned": "nginx tuned", "haproxy": "HAProxy",
                "caddy": "Caddy", "direct": "direct", "apache": "Apache"}
# The subjects as the report's title names them, and what each one is.
SUBJECT_NAMES = {"gate": "the gate", "nginx": "the nginx recipe", "nginx-tuned": "a tuned nginx",
                 "haproxy": "HAProxy", "caddy": "Caddy"}
SUBJECTS = {
    "gate": "the gate (default config: login cache and throttle on)",
    "nginx": "nginx with the recipe's config (as the tests run it, `benches/e2e/nginx-recipe.conf`)",
    "nginx-tuned": "nginx with the recipe tuned (`benches/e2e/nginx-tuned.conf`: HTTP/1.1 keep-alive "
                   "to the registry, `proxy_request_buffering off`, `proxy_buffering off`, a worker "
                   "per CPU, TLS 1.3)",
    "haproxy": "HAProxy 2.6 (`benches/e2e/haproxy.cfg`: a `userlist` checked with `http_auth`, "
               "keep-alive to the registry with `http-reuse safe`, a thread per CPU, TLS 1.3)",
    "caddy": "Caddy 2.6 with `basicauth` + `reverse_proxy` and the same certificate and bcrypt users",
}
# Not measured: the subject was not in the run that measured this row.
ABSENT = "—"
# run.sh's parts (PARTS) and the tests their records carry.
PART_TESTS = {
    "idle": {"idle", "idle-small"},
    "get": {"get"},
    "overhead": {"overhead"},
    "handshake": {"handshake", "handshake-registry"},
    "resume": {"resume", "resume-registry"},
    "blobs": {"up", "down"},
    "ldap": {"ldap"},
    "token": {"token"},
}
PART_TITLES = {"idle": "idle-connection", "get": "`GET /v2/`", "overhead": "proxy-overhead",
               "handshake": "full-handshake", "resume": "reconnect", "blobs": "blob",
               "ldap": "LDAP sign-in", "token": "token issuance"}
MAIN_TESTS = set().union(*(t for p, t in PART_TESTS.items() if p not in ("ldap", "token")))
USERS = {
    "u10": "bcrypt cost 10",
    "u5": "bcrypt cost 5",
    "uapr": "apr1",
    "usha": "{SHA} (one SHA-1)",
    "none": "no auth",
}


def run(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine(ldap_run):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    nproc = run(["nproc"])
    return [
        ("CPUs (nproc)", nproc),
        ("CPU model", cpu),
        ("memory", f"{mem_kib / 1048576:.1f} GiB"),
        ("kernel", platform.release()),
        ("OS", run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"])),
        ("nginx", run(["nginx", "-v"])),
        ("Caddy", run(["caddy", "version"])),
        ("HAProxy", run(["haproxy", "-v"])),
        ("registry", run(["docker-registry", "--version"])),
        ("wrk", run(["wrk", "-v"])),
        ("h2load", run(["h2load", "--version"]) + " (installed; not used: every load is HTTP/1.1, as the recipe offers no h2)"),
        ("curl", run(["curl", "--version"])),
        ("OpenSSL", run(["openssl", "version"])),
        ("Python", run(["python3", "--version"])),
        ("rustc", run(["rustc", "--version"])),
    ] + ([
        ("Apache httpd", run(["/usr/sbin/apache2", "-v"])),
        ("slapd", run(["/usr/sbin/slapd", "-VV"]).removeprefix("@(#) $").removesuffix(" $")),
    ] if ldap_run else [])


def cpu_us(record):
    """The server's CPU time per request of a load record, in µs (None if it has none)."""
    sv, rate = record.get("server_cpu_pct"), record.get("rps")
    if sv is None or not rate:
        return None
    return sv * 1e4 / rate


class Data:
    def __init__(self, records):
        self.records = records
        # (target, part) pairs that some record has: the subjects each part's run had.
        self.ran_parts = {(r.get("target"), part_of(r)) for r in records if "rep" in r}

    def ran(self, target, test):
        """Whether the run that measured `test` had `target` at all."""
        return (target, part_of({"test": test})) in self.ran_parts

    def values(self, target, test, user=None, field="rps"):
        """Per repetition, `field` of the records of (target, test, user); the field "cpu_us"
        is derived: the server's CPU time per request."""
        out = {}
        for r in self.records:
            if r.get("target") == target and r.get("test") == test and (user is None or r.get("user") == user):
                v = cpu_us(r) if field == "cpu_us" else r.get(field)
                if v is not None:
                    out[r["rep"]] = v
        return out

    def stat(self, target, test, user=None, field="rps"):
        v = list(self.values(target, test, user, field).values())
        if not v:
            return None
        return statistics.median(v), min(v), max(v)

    def ratio(self, a, b, test, user_a=None, user_b=None, field="rps", invert=False):
        """Ratio of medians and the min-max of the per-repetition ratios."""
        sa, sb = self.stat(a, test, user_a, field), self.stat(b, test, user_b, field)
        if not sa or not sb or sb[0] == 0 or sa[0] == 0:
            return None
        med = sb[0] / sa[0] if invert else sa[0] / sb[0]
        va, vb = self.values(a, test, user_a, field), self.values(b, test, user_b, field)
        per = []
        for rep in va:
            x, y = va[rep], vb.get(rep)
            if y is None:
                continue
            if invert and x:
                per.append(y / x)
            elif not invert and y:
                per.append(x / y)
        return med, (min(per) if per else med), (max(per) if per else med)

    def cell(self, target, test, user, field, kind, reps):
        """A table cell: the median (min-max), or ABSENT if the run had no such target."""
        if not self.ran(target, test):
            return ABSENT
        return cell(self.stat(target, test, user, field), kind, reps)

    def rcell(self, other, test, user, other_user, field, reps, invert=False):
        """The gate's ratio to `other` as a cell, or ABSENT if the run had no `other`."""
        if not self.ran(other, test) or not self.ran("gate", test):
            return ABSENT
        return rcell(self.ratio("gate", other, test, user, other_user, field, invert), reps)


def num(x, kind):
    if x is None:
        return "n/a"
    if kind == "int":
        return f"{x:,.0f}"
    if kind == "ms":
        return f"{x:.2f}" if x < 10 else f"{x:,.0f}"
    if kind == "s":
        return f"{x:.2f}"
    if kind == "mib":
        return f"{x / 1024:.1f}"  # KiB -> MiB
    if kind == "bytes":
        if x == 0:
            return "0"
        return f"{x / 1048576:,.1f} MiB" if x >= 1048576 else f"{x / 1024:,.0f} KiB"
    if kind == "pct":
        return f"{x:.0f} %"
    if kind == "kib":
        return f"{x:,.1f}"
    return str(x)


def cell(s, kind, reps):
    if not s:
        return "n/a"
    med, lo, hi = s
    if reps == 1 or num(lo, kind) == num(hi, kind):
        return num(med, kind)
    return f"{num(med, kind)} ({num(lo, kind)}–{num(hi, kind)})"


def rcell(r, reps):
    if not r:
        return "n/a"
    med, lo, hi = r
    fmt = (lambda x: f"{x:,.0f}×") if med >= 100 else (lambda x: f"{x:.2f}×")
    if reps == 1 or abs(hi - lo) < 1e-9:
        return fmt(med)
    return f"**{fmt(med)}** ({fmt(lo)}–{fmt(hi)})"


def part_of(record):
    for part, tests in PART_TESTS.items():
        if record.get("test") in tests:
            return part
    return None


def read_report(path):
    """The meta and the records of a report written by this script (its raw-records block)."""
    meta, records, inside = None, [], False
    with open(path) as f:
        for line in f:
            if line.startswith("```json"):
                inside = True
            elif inside and line.startswith("```"):
                break
            elif inside and line.strip():
                r = json.loads(line)
                if "meta" in r:
                    meta = r["meta"]
                else:
                    records.append(r)
    if meta is None:
        raise SystemExit(f"{path}: no meta line among its raw records, so nothing to merge into")
    return meta, records


def merge(base_meta, base_records, meta, records):
    """A report's meta and records with a later run of some parts merged in: that run's records
    replace those of its parts, and its measurements without repetitions (TLS versions, physical
    bounds) replace the same ones; its meta becomes a supplement, replacing earlier supplements
    of the same parts or fewer."""
    parts = set(meta["parts"].split())
    if meta["smoke"] and not base_meta["smoke"]:
        raise SystemExit("a smoke run is not merged into a measurement")

    def key(r):
        return r.get("test"), r.get("target"), r.get("what")

    new_keys = {key(r) for r in records if "rep" not in r}
    kept = [r for r in base_records
            if ("rep" in r and part_of(r) not in parts) or ("rep" not in r and key(r) not in new_keys)]
    added = [r for r in records if "rep" not in r or part_of(r) in parts]
    what = "the " + ", ".join(PART_TITLES[p] for p in PART_TESTS if p in parts) + " figures"
    supplements = [s for s in base_meta.get("supplements", []) if not set(s["parts"].split()) <= parts]
    supplements.append(dict(meta, what=what))
    return dict(base_meta, supplements=supplements), kept + added


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", required=True, nargs="+", help="one or more JSONL files")
    p.add_argument("--meta", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--merge-into", metavar="REPORT",
                   help="an earlier report: keep its figures of the parts this run did not measure")
    args = p.parse_args()
    records = []
    for path in args.results:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    with open(args.meta) as f:
        meta = json.load(f)
    if args.merge_into:
        meta, records = merge(*read_report(args.merge_into), meta, records)
    d = Data(records)
    main_run = any(r.get("test") in MAIN_TESTS for r in records)
    ldap_run = any(r.get("test") == "ldap" for r in records)
    token_run = any(r.get("test") == "token" for r in records)

    def run_of(part):
        """The meta of the run that measured `part`: a supplement's or the report's own."""
        for sup in meta.get("supplements", []):
            if part in sup["parts"].split():
                return sup
        return meta
    reps = meta["reps"]
    dur, conns, threads = meta["duration_s"], meta["conns"], meta["threads"]
    blob = meta["blob_mib"]
    blob_text = f"{blob // 1024} GiB" if blob % 1024 == 0 else f"{blob} MiB"
    o = []
    w = o.append

    # The proxies the main loop's records have (the gate first), and what each one is.
    subjects = [t for t in PROXIES if any(r.get("target") == t and r.get("test") in MAIN_TESTS for r in records)]
    rivals = [SUBJECT_NAMES[t] for t in subjects if t != "gate"] or [SUBJECT_NAMES["nginx"]]
    w("# Benchmark: registry-gate against "
      + (", ".join(rivals[:-1]) + " and " + rivals[-1] if len(rivals) > 1 else rivals[0])
      + (", and with LDAP sign-in against Apache httpd" if ldap_run else ""))
    w("")
    if meta["smoke"]:
        w("**Smoke run** (`--smoke`): one repetition, tiny loads. These numbers only show that the "
          "script works; they are not a measurement.")
        w("")
    w(f"Generated by `benches/e2e/run.sh` on {meta['started']} in {meta['elapsed_s'] // 60} min "
      f"{meta['elapsed_s'] % 60} s. Everything ran on this one machine over 127.0.0.1: one "
      "`docker-registry` (plain HTTP, filesystem storage), and in front of it, "
      + (f"each started afresh in each of {reps} repetition(s) in the order *{meta['targets']}*: "
         + "; ".join(SUBJECTS[t] for t in subjects) + "." if main_run else
         "the gate and Apache httpd, each asking one slapd (see LDAP sign-in below)."))
    w("")
    w(f"Cells are the **median** over repetitions with (min–max); ratios are ratios of medians, "
      f"with the range of the per-repetition ratios. Load average (1, 5, 15 min) before: "
      f"{meta['load_before']}; after: {meta['load_after']}.")
    w("")
    for sup in meta.get("supplements", []):
        commit = (f" of commit `{sup['commit']}`" if "commit" in sup else "") + (
            f" (plus {sup['dirty_files']} uncommitted change(s) in src/ or Cargo.*)" if sup.get("dirty_files") else "")
        w(f"**Supplement**: {sup['what']} come from a second run{commit}, `{sup['command']}`, started "
          f"{sup['started']}, {sup['elapsed_s'] // 60} min {sup['elapsed_s'] % 60} s, load average "
          f"before {sup['load_before']}, after {sup['load_after']}. {sup.get('note', '')}".rstrip())
        w("")
    w("## Machine and versions")
    w("")
    w("| | |")
    w("|---|---|")
    for k, v in machine(ldap_run):
        w(f"| {k} | {v.replace('|', '/')} |")
    dirty = f" (plus {meta['dirty_files']} uncommitted change(s) in src/ or Cargo.*)" if meta["dirty_files"] else ""
    w(f"| registry-gate | commit `{meta['commit']}`{dirty}, `cargo build --release` |")
    w("")
    w("Command:")
    w("")
    w(f"    {meta['command']}")
    w("")
    w(f"with REPS={reps} DURATION={dur} CONNS={conns} THREADS={threads} BLOB_MIB={blob} "
      f"IDLE={meta['idle']} HOLD={meta['hold_s']}.")
    w("")
    if main_run:
        w("How each row is measured:")
        w("")
        w(f"- **Requests**: `wrk -t {threads} -c {conns} -d {dur}s --timeout 10s -s benches/e2e/wrk.lua "
          "https://127.0.0.1:PORT/v2/`, HTTP/1.1 over TLS keep-alive, the `Authorization` header set by "
          "the Lua script; p50/p99 are wrk's. *direct* is plain HTTP to the registry without auth.")
        w("- **Proxy overhead**: the same load through a second instance of each proxy whose upstream is "
          "a separate nginx answering `return 200 '{}'`, so the proxy is the bottleneck; *direct* is "
          "that nginx over plain HTTP. The `{SHA}` user costs nginx one SHA-1 and HAProxy one string "
          "comparison (it has the plain password, `insecure-password`, as crypt(3) reads no `{SHA}`), "
          "so that row is their proxying at its cheapest; Caddy cannot read `{SHA}`. HAProxy cannot "
          "read apr1 (crypt(3) has no `$apr1$`).")
        w(f"- **Full handshakes**: {conns} parallel `openssl s_time -new` processes for {dur} s, each "
          "connection a new TLS session carrying one authenticated `GET /v2/`. **Reconnects**: the "
          "request load with `Connection: close`; wrk then resumes the TLS session on every reconnect.")
        w("- **Blobs** go over HTTP/1.1 for every target (`curl --http1.1`): the recipe offers no h2, "
          "and curl would otherwise pick h2 with the gate and Caddy, which frames the body differently.")
        w(f"- **Upload**: curl, as the cost-5 user: `POST .../blobs/uploads/`, one `PATCH` of a {blob_text} "
          "random file with `Transfer-Encoding: chunked` (`-T FILE`, `Expect:` off), `PUT ?digest=`; time "
          "is all three. Disk bytes: `write_bytes` of `/proc/PID/io` over the proxy's processes (logs are "
          "on tmpfs so they do not count); peak RSS: `VmHWM` after resetting it (`echo 5 > "
          "/proc/PID/clear_refs`) just before, summed over the proxy's processes (nginx: master + worker). "
          "The registry's HEAD must then report the blob with its full size.")
        w(f"- **Download**: `curl -o /dev/null` of the {blob_text} blob, as the cost-5 user.")
        w(f"- **Idle connections**: `benches/e2e/idle.py` opens {meta['idle']:,} TLS connections "
          "(200 handshakes at a time), sends one authenticated `GET /v2/` (cost-5 user) on each, holds "
          f"them {meta['hold_s']} s while sampling the proxy's RSS (`VmRSS`, summed over its processes), "
          "then closes them. Run first after the proxy starts.")
        w("- **CPU**: the load generator's CPU (`/usr/bin/time`: user + system over elapsed, in % of one "
          "core; this machine has the number of cores above, shared by client, proxy and registry) and "
          "the server's and the backend's (`/proc/PID/stat` ticks over the run).")
        w("")

    # A load row: (label, test, user); "direct" runs the same test as user "none".
    def present(rows, targets):
        return [r for r in rows if any(d.values(t, r[1], r[2]) for t in targets if t != "direct")]

    # A table of loads: the first target is the gate, compared with each other one. With
    # `directory`, the CPU table also shows slapd's (the records' directory_cpu_pct).
    def loads(title, rows, note, unit="requests/s", client="wrk", targets=TARGETS, directory=False,
              n_reps=reps):
        rows = present(rows, targets)
        if not rows:
            return
        others = targets[1:]
        w(f"### {title}")
        w("")
        w(note)
        w("")
        w(f"| {unit} | " + " | ".join([TITLES[t] for t in targets]
                                      + [f"gate/{RATIO_TITLES[t]}" for t in others]) + " |")
        w("|---" * (len(targets) + len(others) + 1) + "|")
        for label, test, user in rows:
            row = [label]
            for t in targets:
                row.append(d.cell(t, test, "none" if t == "direct" else user, "rps", "int", n_reps))
            for t in others:
                row.append(d.rcell(t, test, user, "none" if t == "direct" else user, "rps", n_reps))
            w("| " + " | ".join(row) + " |")
        w("")
        if any(d.values(t, test, user, "p50_ms") for _, test, user in rows for t in targets):
            w("| p50 / p99 (ms) | " + " | ".join(TITLES[t] for t in targets) + " |")
            w("|---" * (1 + len(targets)) + "|")
            for label, test, user in rows:
                row = [label]
                for t in targets:
                    u = "none" if t == "direct" else user
                    a, b, n = d.stat(t, test, u, "p50_ms"), d.stat(t, test, u, "p99_ms"), d.stat(t, test, u, "requests")
                    if not d.ran(t, test):
                        row.append(ABSENT)
                    else:
                        row.append("n/a" if not a or not n[0] else f"{num(a[0], 'ms')} / {num(b[0], 'ms')}")
                w("| " + " | ".join(row) + " |")
            w("")
        parts = f"{client} / server (its CPU time per request) / backend" + (" / directory" if directory else "")
        w(f"| CPU, % of one core: {parts} | " + " | ".join(TITLES[t] for t in targets) + " |")
        w("|---" * (1 + len(targets)) + "|")
        for label, test, user in rows:
            row = [label]
            for t in targets:
                u = "none" if t == "direct" else user
                g = d.stat(t, test, u, "gen_cpu_pct")
                sv = d.stat(t, test, u, "server_cpu_pct")
                bk = d.stat(t, test, u, "backend_cpu_pct")
                dc = d.stat(t, test, u, "directory_cpu_pct")
                rate = d.stat(t, test, u, "rps")
                per = f" ({sv[0] * 1e4 / rate[0]:,.0f} µs)" if g and rate and rate[0] else ""
                if not d.ran(t, test):
                    row.append(ABSENT)
                elif not g:
                    row.append("n/a")
                elif t == "direct":
                    row.append(f"{g[0]:.0f} / {sv[0]:.0f}{per} / –")
                else:
                    row.append(f"{g[0]:.0f} / {sv[0]:.0f}{per} / {bk[0]:.0f}"
                               + (f" / {dc[0]:.0f}" if directory and dc else ""))
            w("| " + " | ".join(row) + " |")
        w("")
        busy, gen = [], []
        for label, test, user in rows:
            for t in targets:
                u = "none" if t == "direct" else user
                g, sv = d.stat(t, test, u, "gen_cpu_pct"), d.stat(t, test, u, "server_cpu_pct")
                bk = d.stat(t, test, u, "backend_cpu_pct")
                dc = d.stat(t, test, u, "directory_cpu_pct") if directory else None
                if not g:
                    continue
                total = g[0] + sv[0] + (bk[0] if t != "direct" else 0) + (dc[0] if dc else 0)
                if total >= 170:
                    busy.append(f"{label} / {TITLES[t]} ({total:.0f} %)")
                if g[0] >= 80:
                    gen.append(f"{label} / {TITLES[t]} ({g[0]:.0f} %)")
        summed = f"{client} + server + backend" + (" + directory" if directory else "")
        w(f"Machine saturated ({summed} ≥ 170 % of the 200 % of two cores): "
          + (", ".join(busy) if busy else "none") + f". {client} itself at ≥ 80 % of a core (the load "
          "generator is then a bottleneck too): " + (", ".join(gen) if gen else "none") + ".")
        tests = {r[1] for r in rows}
        errs = sum(r.get("errors", 0) for r in records if r.get("test") in tests)
        total = sum(r.get("requests", 0) for r in records if r.get("test") in tests)
        w("")
        w(f"Answers that were not 200, and socket errors or timeouts: {errs:,} in {total:,} requests.")
        w("")

    if main_run:
        summary(w, d, reps, blob_text, meta)
        w("## Results")
        w("")
    loads("1. Authenticated `GET /v2/` over TLS keep-alive",
          [("bcrypt cost 10", "get", "u10"), ("bcrypt cost 5", "get", "u5"), ("apr1", "get", "uapr")],
          "*direct*: the registry over plain HTTP without auth (the same runs in every row). "
          "Caddy cannot read apr1. The backend is the registry.")
    loads("2. Proxy overhead against a trivially fast upstream",
          [("bcrypt cost 5", "overhead", "u5"), ("{SHA} (nginx: one SHA-1; HAProxy: plain)", "overhead", "usha")],
          "*direct*: the fast nginx over plain HTTP. The backend is the fast nginx.")

    for num_, test, title in [("3", "up", f"{blob_text} blob upload (POST, chunked PATCH, PUT)"),
                              ("4", "down", f"{blob_text} blob download")]:
        if not any(r.get("test") == test for r in records):
            continue
        w(f"### {num_}. {title}")
        w("")
        w("| | " + " | ".join(TITLES[t] for t in TARGETS) + " | "
          + " | ".join(f"gate/{RATIO_TITLES[t]}" for t in TARGETS[1:]) + " |")
        w("|---" * (2 * len(TARGETS)) + "|")
        rows = [("MiB/s", "mib_s", "int", True), ("seconds", "seconds", "s", False),
                ("bytes written to disk by the proxy", "disk_bytes", "bytes", False),
                ("RSS of the proxy just before (MiB)", "rss_before_kib", "mib", False),
                ("peak RSS of the proxy (MiB)", "peak_rss_kib", "mib", True),
                ("proxy CPU (s)", "server_cpu_s", "s", True),
                ("curl CPU (% of one core)", "gen_cpu_pct", "pct", False)]
        for label, field, kind, with_ratio in rows:
            if not any(d.values(t, test, None, field) for t in TARGETS):
                continue
            row = [label] + [d.cell(t, test, None, field, kind, reps) for t in TARGETS]
            for t in TARGETS[1:]:
                row.append(d.rcell(t, test, None, None, field, reps) if with_ratio else "")
            w("| " + " | ".join(row) + " |")
        bad = [f"{r['target']} rep {r['rep']}" for r in records if r.get("test") == test and not r.get("ok")]
        w("")
        w(f"Transfers not served correctly: {', '.join(bad) if bad else 'none'}.")
        w("")

    loads("5. Full TLS handshakes per second, one authenticated request on each",
          [("bcrypt cost 5, fast upstream", "handshake", "u5"),
           ("{SHA}, fast upstream", "handshake", "usha"),
           ("bcrypt cost 5, the registry upstream", "handshake-registry", "u5")],
          f"{conns} parallel `openssl s_time -new -time {dur}` (a new session every time), each connection "
          "sending `GET /v2/` with `Authorization` and `Connection: close`; the rate is connections "
          "over wall time. s_time reports no latency. The client column shows s_time's CPU. With "
          "the fast upstream the proxy is the bottleneck; the registry row shows what a client sees. "
          "*direct* has no TLS, so no entry.", unit="handshakes/s", client="s_time")
    loads("5b. Reconnects with TLS session resumption",
          [("bcrypt cost 5, fast upstream", "resume", "u5"),
           ("{SHA}, fast upstream", "resume", "usha"),
           ("bcrypt cost 5, the registry upstream", "resume-registry", "u5")],
          "wrk with `Connection: close`: wrk reconnects after every answer and **resumes** the TLS "
          "session (checked in nginx's log with `$ssl_session_reused`: all but the first connection "
          "of each of the 16 are resumed). That is what a returning client does, but it is not a full "
          "handshake: TLS 1.2 resumption (the nginx recipe) skips the key exchange, TLS 1.3 "
          "resumption (the others; OpenSSL clients offer only `psk_dhe_ke`) still does an X25519 "
          "exchange. *direct*: plain TCP reconnects.", unit="connections/s")

    for test, count in [("idle", meta["idle"]), ("idle-small", meta.get("idle_small", 0))]:
        if not count or not any(r.get("test") == test for r in records):
            continue
        w(f"### 6{'' if test == 'idle' else 'b'}. RSS with {count:,} idle keep-alive TLS connections")
        w("")
        w("| | " + " | ".join(TITLES[t] for t in PROXIES) + " | "
          + " | ".join(f"gate/{RATIO_TITLES[t]}" for t in PROXIES[1:]) + " |")
        w("|---" * (2 * len(PROXIES)) + "|")
        for label, field, kind in [("requests answered", "answered", "int"),
                                   ("connections still open at the end", "held", "int"),
                                   ("RSS before (MiB)", "rss_base_kib", "mib"),
                                   ("RSS with the connections (MiB)", "rss_kib", "mib"),
                                   ("RSS increase per open connection (KiB)", "per_conn_kib", "kib"),
                                   ("seconds to open them", "open_seconds", "s")]:
            row = [label] + [d.cell(t, test, None, field, kind, reps) for t in PROXIES]
            for t in PROXIES[1:]:
                row.append(d.rcell(t, test, None, None, field, reps)
                           if field in ("rss_kib", "per_conn_kib") else "")
            w("| " + " | ".join(row) + " |")
        errors = {}
        for r in records:
            if r.get("test") == test and r.get("errors"):
                errors.setdefault(r["target"], []).append(r["errors"])
        w("")
        w("Connection failures: " + ("; ".join(f"{t}: {e}" for t, e in errors.items()) if errors else "none") + ".")
        w("")
    if any(r.get("test") == "idle" for r in records):
        w("The recipe's `worker_connections 1024` (one worker) caps nginx at about 1,020 connections; "
          "when they run out, nginx closes idle keep-alive connections to accept new ones, so beyond "
          "that it answers every request but keeps only about a thousand open. Compare per open "
          "connection. At the smaller count (6b) nginx drains a few idle connections too (while "
          "the requests are in flight each also holds an upstream connection).")
        w("")

    bounds = [r for r in records if r.get("test") == "bound"]
    if bounds:
        w("### 7. Physical bounds of this machine")
        w("")
        w("| | MB/s |")
        w("|---|---|")
    lo_mib = None
    aes = {}
    for r in bounds:
        if "mb_s" in r:
            w(f"| `{r['what']}` | {r['mb_s']:,.0f} (MiB/s: {r['mb_s'] * 1e6 / 1048576:,.0f}) |")
            aes[r["what"].split()[3]] = r["mb_s"] * 1e6 / 1048576
        else:
            w(f"| {r['what']} | MiB/s: {r['mib_s']:,.0f} |")
            lo_mib = r["mib_s"]
    if bounds:
        w("")
    tls = {r["target"]: r["info"] for r in records if r.get("test") == "tls" and r["target"] in TARGETS}
    if tls:
        w("Negotiated with OpenSSL 3 clients (wrk, curl): " +
          "; ".join(f"{TITLES[t]}: {i}" for t, i in tls.items()) + ".")
        w("")
    if lo_mib:
        w("Transfers as a fraction of the loopback copy rate (one core sends, one receives; a TLS "
          "proxy adds a decrypt and an encrypt per byte on top):")
        w("")
        w("| | " + " | ".join(TITLES[t] for t in TARGETS) + " |")
        w("|---" * (1 + len(TARGETS)) + "|")
        for test, label in [("up", "upload"), ("down", "download")]:
            row = [label]
            for t in TARGETS:
                s = d.stat(t, test, None, "mib_s")
                row.append(ABSENT if not d.ran(t, test) else "n/a" if not s else f"{s[0] / lo_mib:.0%}")
            w("| " + " | ".join(row) + " |")
        w("")

    if ldap_run:
        ldap_section(w, d, records, run_of("ldap"), meta, loads)
    if token_run:
        token_section(w, run_of("token"), meta, loads)

    # --- targets -------------------------------------------------------------------------
    if not main_run:
        raw(w, meta, records, kept_section(args.merge_into or args.out))
        with open(args.out, "w") as f:
            f.write("\n".join(o))
        return
    w("## The issue's targets")
    w("")
    w("| target | measured (median, per-repetition range) | met? |")
    w("|---|---|---|")

    def target(label, r, ok):
        if r is None:
            w(f"| {label} | n/a | not measured |")
            return
        w(f"| {label} | {rcell(r, reps)} | {'met' if ok(r[0]) else '**missed**'} |")

    target("cost 10: ≥ 100× nginx", d.ratio("gate", "nginx", "get", "u10", "u10"), lambda x: x >= 100)
    target("cost 10: ≥ 1.3× Caddy", d.ratio("gate", "caddy", "get", "u10", "u10"), lambda x: x >= 1.3)
    target("cost 5: ≥ 3× nginx", d.ratio("gate", "nginx", "get", "u5", "u5"), lambda x: x >= 3)
    target("cost 5: ≥ 1.3× Caddy", d.ratio("gate", "caddy", "get", "u5", "u5"), lambda x: x >= 1.3)
    target("cost 10: ≥ 0.8× direct", d.ratio("gate", "direct", "get", "u10", "none"), lambda x: x >= 0.8)
    target("cost 5: ≥ 0.8× direct", d.ratio("gate", "direct", "get", "u5", "none"), lambda x: x >= 0.8)
    target("overhead, {SHA} user: ≥ 1.0× nginx req/s", d.ratio("gate", "nginx", "overhead", "usha", "usha"),
           lambda x: x >= 1.0)
    target("overhead, {SHA} user: p99 no worse than nginx (nginx p99 / gate p99 ≥ 1)",
           d.ratio("gate", "nginx", "overhead", "usha", "usha", "p99_ms", invert=True), lambda x: x >= 1.0)
    target("overhead, cost-5 user: ≥ 1.0× nginx req/s", d.ratio("gate", "nginx", "overhead", "u5", "u5"),
           lambda x: x >= 1.0)
    target("overhead, cost-5 user: p99 no worse than nginx (nginx p99 / gate p99 ≥ 1)",
           d.ratio("gate", "nginx", "overhead", "u5", "u5", "p99_ms", invert=True), lambda x: x >= 1.0)
    target("upload: ≥ 1.5× nginx", d.ratio("gate", "nginx", "up", field="mib_s"), lambda x: x >= 1.5)
    target("upload: ≥ 0.9× direct", d.ratio("gate", "direct", "up", field="mib_s"), lambda x: x >= 0.9)
    disk = d.stat("gate", "up", None, "disk_bytes")
    w(f"| upload: 0 bytes to disk | {'n/a' if not disk else num(disk[2], 'bytes') + ' (largest)'} | "
      f"{'not measured' if not disk else ('met' if disk[2] == 0 else '**missed**')} |")
    rss = d.stat("gate", "up", None, "peak_rss_kib")
    w(f"| upload: peak RSS ≤ 64 MiB | {'n/a' if not rss else num(rss[2], 'mib') + ' MiB (largest)'} | "
      f"{'not measured' if not rss else ('met' if rss[2] <= 65536 else '**missed**')} |")
    target("download: ≥ 1.3× nginx", d.ratio("gate", "nginx", "down", field="mib_s"), lambda x: x >= 1.3)
    target("full handshakes/s, {SHA} user, fast upstream: ≥ 1.0× nginx",
           d.ratio("gate", "nginx", "handshake", "usha", "usha"), lambda x: x >= 1.0)
    target("full handshakes/s, cost-5 user, fast upstream: ≥ 1.0× nginx",
           d.ratio("gate", "nginx", "handshake", "u5", "u5"), lambda x: x >= 1.0)
    target("full handshakes/s, cost-5 user, registry upstream: ≥ 1.0× nginx",
           d.ratio("gate", "nginx", "handshake-registry", "u5", "u5"), lambda x: x >= 1.0)
    target("(resumed reconnects, {SHA} user, fast upstream: ≥ 1.0× nginx)",
           d.ratio("gate", "nginx", "resume", "usha", "usha"), lambda x: x >= 1.0)
    target("(resumed reconnects, cost-5 user, fast upstream: ≥ 1.0× nginx)",
           d.ratio("gate", "nginx", "resume", "u5", "u5"), lambda x: x >= 1.0)
    target("(resumed reconnects, cost-5 user, registry upstream: ≥ 1.0× nginx)",
           d.ratio("gate", "nginx", "resume-registry", "u5", "u5"), lambda x: x >= 1.0)
    target(f"idle connections ({meta['idle']:,}): RSS increase per open connection ≤ nginx's",
           d.ratio("gate", "nginx", "idle", field="per_conn_kib"), lambda x: x <= 1.0)
    if meta.get("idle_small"):
        target(f"idle connections ({meta['idle_small']:,}; nginx keeps fewer open, see 6b): total RSS ≤ nginx's",
               d.ratio("gate", "nginx", "idle-small", field="rss_kib"), lambda x: x <= 1.0)
    # Issue #21: against the proxies a user who cares about speed would pick.
    target("overhead, {SHA} user: ≥ 1.0× HAProxy req/s", d.ratio("gate", "haproxy", "overhead", "usha", "usha"),
           lambda x: x >= 1.0)
    target("overhead, {SHA} user: ≥ 1.2× tuned nginx req/s",
           d.ratio("gate", "nginx-tuned", "overhead", "usha", "usha"), lambda x: x >= 1.2)
    target("overhead, {SHA} user: server CPU per request ≤ HAProxy's (gate/HAProxy ≤ 1)",
           d.ratio("gate", "haproxy", "overhead", "usha", "usha", "cpu_us"), lambda x: x <= 1.0)
    target("cost 10: ≥ 20× HAProxy", d.ratio("gate", "haproxy", "get", "u10", "u10"), lambda x: x >= 20)
    target("cost 10: ≥ 20× tuned nginx", d.ratio("gate", "nginx-tuned", "get", "u10", "u10"), lambda x: x >= 20)
    for test, label in [("up", "upload"), ("down", "download")]:
        target(f"{label}: ≥ 1.0× HAProxy", d.ratio("gate", "haproxy", test, field="mib_s"), lambda x: x >= 1.0)
        target(f"{label}: ≥ 1.0× tuned nginx", d.ratio("gate", "nginx-tuned", test, field="mib_s"),
               lambda x: x >= 1.0)
    disk = d.stat("gate", "down", None, "disk_bytes")
    w(f"| download: 0 bytes to disk | {'n/a' if not disk else num(disk[2], 'bytes') + ' (largest)'} | "
      f"{'not measured' if not disk else ('met' if disk[2] == 0 else '**missed**')} |")
    target(f"idle connections ({meta['idle']:,}): RSS increase per open connection ≤ HAProxy's",
           d.ratio("gate", "haproxy", "idle", field="per_conn_kib"), lambda x: x <= 1.0)
    w("")
    w("Why the missed targets are missed, and what would close them: "
      "[`benchmark-targets.md`](benchmark-targets.md), written by hand against one run "
      "(it names which; check its figures against this one).")
    w("")

    raw(w, meta, records, kept_section(args.merge_into or args.out))
    with open(args.out, "w") as f:
        f.write("\n".join(o))


def summary(w, d, reps, blob_text, meta):
    """The headline rows, side by side for every proxy: first the proxy's own cost with nothing
    else in the way (proxy overhead with the cheap credential, and the CPU time each request
    costs the proxy there), then one row of each other kind."""
    rows = [
        ("proxy overhead, {SHA} user: requests/s", "overhead", "usha", "rps", "int"),
        ("proxy overhead, {SHA} user: server CPU per request (µs)", "overhead", "usha", "cpu_us", "int"),
        ("proxy overhead, cost-5 user: requests/s", "overhead", "u5", "rps", "int"),
        ("proxy overhead, cost-5 user: server CPU per request (µs)", "overhead", "u5", "cpu_us", "int"),
        ("`GET /v2/` from the registry, cost-10 user: requests/s", "get", "u10", "rps", "int"),
        (f"{blob_text} upload: MiB/s", "up", None, "mib_s", "int"),
        (f"{blob_text} download: MiB/s", "down", None, "mib_s", "int"),
        (f"{meta['idle']:,} idle connections: RSS per open connection (KiB)", "idle", None, "per_conn_kib", "kib"),
    ]
    rows = [r for r in rows if any(d.values(t, r[1], r[2], r[3]) for t in PROXIES)]
    if not rows:
        return
    w("## Summary")
    w("")
    w("The headline first: the proxy-overhead row (a trivially fast upstream, the cheapest "
      "credential each proxy can check, so the proxy is the bottleneck) and the CPU time each "
      "request costs the proxy there, which is its own cost with nothing else in the way. Then "
      "one row of each other table below. Ratios are the gate's over the other's medians: above 1 "
      "is better for requests/s and MiB/s, below 1 is better for CPU per request and RSS.")
    w("")
    w("| | " + " | ".join(TITLES[t] for t in PROXIES) + " | "
      + " | ".join(f"gate/{RATIO_TITLES[t]}" for t in PROXIES[1:]) + " |")
    w("|---" * (2 * len(PROXIES)) + "|")
    for label, test, user, field, kind in rows:
        row = [label] + [d.cell(t, test, user, field, kind, reps) for t in PROXIES]
        row += [d.rcell(t, test, user, user, field, reps) for t in PROXIES[1:]]
        w("| " + " | ".join(row) + " |")
    w("")


KEPT_BEGIN = "<!-- benches/e2e/profile.sh: kept by report.py from here -->"
KEPT_END = "<!-- benches/e2e/profile.sh: to here -->"


def kept_section(path):
    """The hand-written profile section of an earlier report (between the KEPT markers,
    markers included), so that a new run does not erase it; "" when there is none."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return ""
    start, end = text.find(KEPT_BEGIN), text.find(KEPT_END)
    if start < 0 or end < start:
        return ""
    return text[start:end + len(KEPT_END)]


def raw(w, meta, records, kept=""):
    """The records and, first, the settings of the run(s): what --merge-into reads back.
    Before them, `kept`: the profile section of the report this one replaces."""
    if kept:
        w(kept)
        w("")
    w("<details><summary>Raw records (benches/e2e/run.sh output, one JSON object a line; the "
      "first is the run's settings)</summary>")
    w("")
    w("```json")
    w(json.dumps({"meta": meta}, separators=(",", ":")))
    for r in records:
        r = dict(r)
        r.pop("wrk", None)
        w(json.dumps(r, separators=(",", ":")))
    w("```")
    w("")
    w("</details>")
    w("")


def supplement_note(w, m, meta):
    """Where a section's figures come from when another run than the report's own measured them."""
    if m is meta:
        return
    dirty = f" plus {m['dirty_files']} uncommitted change(s)" if m.get("dirty_files") else ""
    w(f"From a separate run (see **Supplement** above): `{m['command']}` on commit "
      f"`{m['commit']}`{dirty}, with REPS={m['reps']} DURATION={m['duration_s']} CONNS={m['conns']} "
      f"THREADS={m['threads']}, on the same machine.")
    w("")


def token_section(w, m, meta, loads):
    """Issue #10's row: tokens issued per second by the gate in token mode, measured by the
    run `m` (the report's own or a supplement)."""
    reps = m["reps"]
    w("## Token mode: tokens issued")
    w("")
    supplement_note(w, m, meta)
    w("The gate as a token server alone (`[auth] mode = \"token\"`, no `[upstream]`, every other "
      f"key at its default), started afresh in each of {reps} repetition(s). Before each load the "
      "user's token must grant `pull,push` and a wrong password must get 401 (run.sh stops "
      "otherwise); that check leaves the login cache warm, so the load measures what every "
      "token after a client's first costs: TLS, the cache lookup, the grant and one ES256 "
      "signature. There is no rival here: docker_auth is not packaged for Debian.")
    w("")
    loads("9. Token requests over TLS keep-alive, for a cached user",
          [("bcrypt cost 5 user", "token", "u5")],
          f"`wrk -t {m['threads']} -c {m['conns']} -d {m['duration_s']}s --timeout 10s -s "
          "benches/e2e/wrk.lua 'https://127.0.0.1:PORT/auth?service=registry.bench&"
          "scope=repository:bench/app:pull,push'`: HTTP/1.1 over TLS keep-alive, each answer a "
          "newly signed JWT. No backend.",
          unit="tokens/s", targets=["gate"], n_reps=reps)


def ldap_section(w, d, records, m, meta, loads):
    """Issue #9's row: the gate with [ldap] against Apache httpd with mod_authnz_ldap, as one
    directory user, measured by the run `m` (the report's own or a supplement)."""
    reps = m["reps"]
    w("## LDAP sign-in: the gate against Apache httpd with mod_authnz_ldap")
    w("")
    supplement_note(w, m, meta)
    tls = [r["info"] for r in records if r.get("test") == "tls" and r.get("target") == "apache"]
    w("One OpenLDAP `slapd` (plain `ldap://` on 127.0.0.1, an mdb database, passwords stored as "
      "`{SSHA}`) serves both proxies, in front of the same registry. Both search `ou=people` as a "
      "reader account for `(&(uid=USER)(objectClass=inetOrgPerson))`, then bind as the entry found "
      "with the user's password. The two start afresh in each of "
      f"{reps} repetition(s), in the order *gate apache*:")
    w("")
    w("- **gate**: `[ldap]` with that filter and no htpasswd; everything else at its default (a "
      "verified login is remembered for 5 min, `auth.cache_ttl`; 4 + 4 pooled LDAP connections).")
    w("- **Apache httpd (recipe)**: httpd 2.4 (event MPM) with the distribution docs' Apache "
      "recipe (`benches/e2e/apache-recipe.conf`), its htpasswd and group files swapped for "
      "`AuthBasicProvider ldap`, `AuthLDAPURL \"ldap://127.0.0.1:PORT/ou=people,dc=example,dc=org?uid?sub?"
      "(objectClass=inetOrgPerson)\"` and the same reader as `AuthLDAPBindDN`. mod_ldap, the MPM and "
      "keep-alive are left at their defaults, as someone following the recipe would: mod_ldap's "
      "login cache is on (`LDAPCacheTTL` 600 s, `LDAPCacheEntries` 1024), and "
      "`MaxKeepAliveRequests 100` closes a connection after its 101st request, so wrk reconnects "
      "that often, resuming the TLS session (seen with `%k` and `%{SSL_SESSION_RESUMED}x` in "
      "Apache's log in a trial run)." + (f" TLS with OpenSSL 3 clients: {tls[0]}." if tls else ""))
    w("")
    w("Before each load each proxy must answer 200 to the user's password, 401 to a wrong one and "
      "401 without one (run.sh stops otherwise). That check leaves both login caches warm, as a "
      "client's second and later requests find them (`docker pull` sends many requests with the "
      "same credentials); the table of directory operations below shows what each proxy still "
      "asked slapd during the load.")
    w("")
    loads("8. Authenticated `GET /v2/` over TLS keep-alive, as a directory user",
          [("LDAP user", "ldap", "uldap")],
          f"`wrk -t {m['threads']} -c {m['conns']} -d {m['duration_s']}s --timeout 10s -s "
          "benches/e2e/wrk.lua https://127.0.0.1:PORT/v2/` as the directory user: HTTP/1.1 over TLS "
          "keep-alive. The backend is the registry; *directory* is slapd's CPU.",
          targets=LDAP_TARGETS, directory=True, n_reps=reps)
    w("| LDAP operations slapd logged during one load (median) | "
      + " | ".join(TITLES[t] for t in LDAP_TARGETS) + " |")
    w("|---" * (1 + len(LDAP_TARGETS)) + "|")
    for label, field in [("searches", "ldap_searches"), ("binds as the user", "ldap_user_binds"),
                         ("binds as the reader", "ldap_reader_binds")]:
        w(f"| {label} | " + " | ".join(cell(d.stat(t, "ldap", "uldap", field), "int", reps)
                                        for t in LDAP_TARGETS) + " |")
    w("")
    loads_ = [r for r in records if r.get("test") == "ldap"]
    if loads_ and all(r.get(f, 0) == 0 for r in loads_
                      for f in ("ldap_searches", "ldap_user_binds", "ldap_reader_binds")):
        busy = all((d.stat(t, "ldap", "uldap", "backend_cpu_pct") or (0,))[0] >= 120 for t in LDAP_TARGETS)
        w("slapd logged no search and no bind during any load: after the check, both proxies "
          "answered every request from their own login cache (Apache's mod_ldap caches by default, "
          "as the gate does). So this row compares TLS, Basic-auth parsing, the cache lookup and "
          "proxying" + (", with the registry as the bottleneck (the backend column); the server's "
          "CPU time per request is the more direct comparison of the two proxies." if busy else "."))
        w("")


if __name__ == "__main__":
    main()
