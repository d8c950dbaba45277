#!/usr/bin/env python3
"""The tables of one compare.sh run, as Markdown: medians per case and
target, ratios of ours to Redis, to the floor (the relay, bench/relay.c)
and to the build before (target "before", when measured), the window
sweep, and the targets.

    python3 bench/summarize.py bench/results.jsonl [RUN_ID]

RUN_ID defaults to the run of the file's last line. Labels look like
RUN_ID/case/target/run; the target is the label's (chat, redis, relay,
before), not the protocol the generator spoke.
"""
import json
import re
import statistics
import sys

# Columns, in this order, when the run has them.
TARGETS = [("chat", "ours"), ("redis", "Redis"), ("relay", "relay"), ("relaywide", "relay, our frames' length"),
           ("before", "before")]
# Ratios of ours to each of these.
RATIO_TO = [("redis", "ours / Redis"), ("relay", "ours / relay"),
            ("relaywide", "ours / relay at our frames' length"), ("before", "ours / before")]


def load(path, run_id):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    rows = [r for r in rows if r.get("label", "").count("/") == 3]
    if not rows:
        sys.exit("no labelled results in " + path)
    run_id = run_id or rows[-1]["label"].split("/")[0]
    return run_id, [r for r in rows if r["label"].split("/")[0] == run_id]


def derived(r, key):
    """A figure of one JSON line, including the ones computed here."""
    if key == "server_cpu_share" and r.get("server_cpu_s") is not None and r.get("elapsed_s"):
        return r["server_cpu_s"] / r["elapsed_s"]
    if key == "syscalls_per_delivery" and r.get(key) is None and r.get("syscalls") and r.get("deliveries"):
        return r["syscalls"] / r["deliveries"]
    return r.get(key)


class Run:
    def __init__(self, rows):
        self.groups = {}
        for r in rows:
            _, case, target, _ = r["label"].split("/")
            self.groups.setdefault((case, target), []).append(r)
        self.targets = [t for t in TARGETS if any(k[1] == t[0] for k in self.groups)]
        self.ratios = [t for t in RATIO_TO if any(k[1] == t[0] for k in self.groups)]

    def med(self, case, target, key):
        values = [v for v in (derived(r, key) for r in self.groups.get((case, target), [])) if v is not None]
        return statistics.median(values) if values else None

    def count(self, case):
        return max((len(v) for (c, _), v in self.groups.items() if c == case), default=0)

    def has(self, case):
        return self.count(case) > 0

    def rows_of(self, case, target):
        return self.groups.get((case, target), [])


def fmt(v, scale=1.0, digits=2):
    if v is None:
        return "n/a"
    v = v * scale
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


# (case, what it is, kind of figures)
CASES = [
    ("fanout100", "fan-out, 100 clients, 1 sender, 64 B, window 64", "fanout"),
    ("fanout1000", "fan-out, 1000 clients, 1 sender, 64 B, window 64", "fanout"),
    ("unicast100pairs", "unicast, 100 pairs, 64 B, window 64", "fanout"),
    ("rtt100", "ping under load: fan-out to 100, 4 pingers", "rtt"),
    ("big16k1", "16 KiB text, 1 sender to 1 client, window 16", "big"),
    ("big16k10", "16 KiB text, 1 sender to 10 clients, window 16", "big"),
    ("idle1000", "1000 idle registered clients", "idle"),
    ("sys_fanout100", "system calls: fan-out, 100 clients (short run)", "sys"),
    ("sys_fanout1000", "system calls: fan-out, 1000 clients (short run)", "sys"),
]
METRICS = {
    "fanout": [
        ("deliveries_per_s", "deliveries/s (M)", 1e-6, 3),
        ("payload_mb_per_s", "payload MB/s", 1, 1),
        ("lat_p50_us", "latency p50 µs", 1, 0),
        ("lat_p99_us", "latency p99 µs", 1, 0),
        ("lat_p999_us", "latency p99.9 µs", 1, 0),
        ("server_cpu_s", "server CPU s", 1, 2),
        ("server_cpu_share", "server CPU, share of a core", 1, 2),
        ("server_cpu_ns_per_delivery", "server CPU ns/delivery", 1, 0),
        ("deliveries_per_server_cpu_s", "deliveries per server CPU-s (M)", 1e-6, 3),
        ("server_hwm_kib", "server peak RSS MiB", 1 / 1024, 1),
        ("generator_cpu_s", "generator CPU s", 1, 2),
    ],
    "rtt": [
        ("rtt_p50_us", "ping rtt p50 µs", 1, 0),
        ("rtt_p99_us", "ping rtt p99 µs", 1, 0),
        ("rtt_p999_us", "ping rtt p99.9 µs", 1, 0),
        ("deliveries_per_s", "fan-out deliveries/s (M)", 1e-6, 3),
        ("lat_p99_us", "fan-out latency p99 µs", 1, 0),
    ],
    "big": [
        ("payload_mb_per_s", "payload MB/s", 1, 0),
        ("deliveries_per_s", "deliveries/s (K)", 1e-3, 1),
        ("lat_p99_us", "latency p99 µs", 1, 0),
        ("server_cpu_s", "server CPU s", 1, 2),
        ("server_cpu_share", "server CPU, share of a core", 1, 2),
        ("server_cpu_ns_per_delivery", "server CPU µs/delivery", 1e-3, 2),
    ],
    "idle": [
        ("server_rss_per_client_bytes", "server RSS per client, B", 1, 0),
        ("server_rss_setup_kib", "server RSS with clients, MiB", 1 / 1024, 1),
        ("setup_s", "set-up s", 1, 2),
    ],
    "sys": [
        ("syscalls_per_delivery", "system calls per delivery", 1, 4),
        ("deliveries_per_s", "deliveries/s (M), traced", 1e-6, 3),
    ],
}
# The window sweep: a family's own case and its FAMILYwN cases.
SWEEPS = [
    ("big16k1", "16 KiB text, 1 sender to 1 client", "big"),
    ("big16k10", "16 KiB text, 1 sender to 10 clients", "big"),
    ("fanout100", "64 B fan-out, 1 sender to 100 clients", "fanout"),
]
SWEEP_METRICS = {
    "big": ["payload_mb_per_s", "server_cpu_ns_per_delivery", "server_cpu_share", "lat_p99_us"],
    "fanout": ["deliveries_per_s", "deliveries_per_server_cpu_s", "server_cpu_share", "lat_p99_us"],
}


def header(run, first=("case", "figure")):
    cols = list(first) + [name for _, name in run.targets] + [name for _, name in run.ratios]
    print("| " + " | ".join(cols) + " |")
    print("| " + " | ".join(["---"] * len(first) + ["---:"] * (len(cols) - len(first))) + " |")


def cells(run, case, key, scale, digits):
    vals = {t: run.med(case, t, key) for t, _ in run.targets}
    return [fmt(vals[t], scale, digits) for t, _ in run.targets] + [
        ratio(vals.get("chat"), vals.get(t)) for t, _ in run.ratios
    ]


def metric(kind, key):
    return next(m for m in METRICS[kind] if m[0] == key)


def window_cases(run, family):
    """(window, case) of a family's sweep present in the run, by window."""
    found = []
    for (case, _), rows in run.groups.items():
        if (case == family or re.fullmatch(re.escape(family) + r"w\d+", case)) and rows:
            found.append((rows[0]["window"], case))
    return sorted(set(found))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/results.jsonl"
    run_id, rows = load(path, sys.argv[2] if len(sys.argv) > 2 else None)
    run = Run(rows)
    loads = sorted({r.get("loadavg", "") for r in rows if r.get("loadavg")})
    one_min = [float(l.split()[0]) for l in loads if l]
    print(f"### Run {run_id}\n")
    if one_min:
        print(f"1-minute load average during the runs: {min(one_min):.2f} to {max(one_min):.2f} (2 cores, shared).\n")
    print("relay: bench/relay.c, the floor (every frame copied unparsed to every other client)."
          + (" before: the build before the change (BEFORE_BIN)." if any(t == "before" for t, _ in run.targets) else "")
          + "\n")
    header(run)
    for case, title, kind in CASES:
        n = run.count(case)
        if n == 0:
            continue
        first = True
        for key, label, scale, digits in METRICS[kind]:
            name = f"{title} ({'median of ' + str(n) if n > 1 else '1 run'})" if first else ""
            first = False
            print("| " + " | ".join([name, label] + cells(run, case, key, scale, digits)) + " |")
    tcp = run.med("tcp", "tcp", "payload_mb_per_s")
    if tcp:
        pad = " |" * (len(run.targets) + len(run.ratios) - 1)
        print(f"| loopback TCP, one stream, 1 MiB writes (median of {len(run.rows_of('tcp', 'tcp'))}) "
              f"| MB/s | {fmt(tcp, 1, 0)} |{pad}")
    for case in ("sys_fanout100", "sys_fanout1000"):
        for target, name in run.targets:
            for r in run.rows_of(case, target):
                b = r.get("syscall_breakdown") or {}
                d = r.get("deliveries") or 0
                if b and d:
                    parts = ", ".join(f"{k} {v / d:.4f}" for k, v in b.items() if k != "total")
                    print(f"\n{case} {name}: per delivery: {parts}")

    for family, title, kind in SWEEPS:
        windows = window_cases(run, family)
        if len(windows) < 2:
            continue
        print(f"\n### Window sweep: {title} (messages in flight per sender)\n")
        header(run, ("window", "figure"))
        for window, case in windows:
            first = True
            for key in SWEEP_METRICS[kind]:
                _, label, scale, digits = metric(kind, key)
                name = f"{window} ({case}, {run.count(case)} runs)" if first else ""
                first = False
                print("| " + " | ".join([name, label] + cells(run, case, key, scale, digits)) + " |")

    transports(run)
    targets(run, tcp)


def transports(run):
    """TLS and WebSocket beside plain TCP: server CPU per delivery, as
    ratios to plain TCP's in the same run."""
    pairs = [(base, kind) for base, kind in (("fanout100", "fanout"), ("big16k1", "big"))
             if any(run.has(f"{t}_{base}") for t in ("tls", "ws"))]
    if not pairs:
        return
    print("\n### Transports: server CPU per delivery against plain TCP (ours)\n")
    print("| case | transport | runs | deliveries/s | server CPU ns/delivery | ratio to plain TCP | server CPU, share of a core |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for base, kind in pairs:
        plain = run.med(base, "chat", "server_cpu_ns_per_delivery")
        for t, name in (("", "TCP"), ("tls_", "TLS"), ("ws_", "WebSocket")):
            case = t + base
            if not run.has(case):
                continue
            ns = run.med(case, "chat", "server_cpu_ns_per_delivery")
            print(f"| {base} | {name} | {len(run.rows_of(case, 'chat'))} "
                  f"| {fmt(run.med(case, 'chat', 'deliveries_per_s'), 1, 0)} | {fmt(ns, 1, 0)} "
                  f"| {ratio(ns, plain)} | {fmt(run.med(case, 'chat', 'server_cpu_share'))} |")


def targets(run, tcp):
    def row(text, measured, ok):
        verdict = "n/a" if ok is None else ("met" if ok else "**not met**")
        print(f"| {text} | {measured} | {verdict} |")

    def cmp(case, key, other="redis", factor=1.0, higher=True):
        a, b = run.med(case, "chat", key), run.med(case, other, key)
        if a is None or b is None:
            return None, "n/a"
        ok = a >= factor * b if higher else a <= factor * b
        scale, digits = (1e-6, 3) if "deliveries" in key else (1, 0)
        name = dict(TARGETS).get(other, other)
        return ok, f"ours {fmt(a, scale, digits)}, {name} {fmt(b, scale, digits)} (ratio {ratio(a, b)})"

    print("\n### Earlier targets\n")
    print("| target | measured | met |")
    print("| --- | --- | --- |")
    for clients in ("100", "1000"):
        ok, m = cmp("fanout" + clients, "deliveries_per_s")
        row(f"fan-out {clients}: deliveries/s ≥ Redis (M/s)", m, ok)
        ok, m = cmp("fanout" + clients, "deliveries_per_server_cpu_s", factor=1.5)
        row(f"fan-out {clients}: deliveries per server CPU-s ≥ 1.5 × Redis (M)", m, ok)
    for case in ("sys_fanout100", "sys_fanout1000"):
        s = run.med(case, "chat", "syscalls_per_delivery")
        row(f"{case[4:]}: system calls per delivery ≤ 0.02", fmt(s, 1, 4), None if s is None else s <= 0.02)
    ok, m = cmp("rtt100", "rtt_p99_us", higher=False)
    row("ping rtt p99 under load ≤ Redis PING (µs)", m, ok)
    ok, m = cmp("unicast100pairs", "deliveries_per_s")
    row("unicast 100 pairs: deliveries/s ≥ Redis (M/s)", m, ok)
    rss = run.med("idle1000", "chat", "server_rss_per_client_bytes")
    row("RSS per idle registered client at 1000 < 16 KiB", f"{fmt(rss, 1, 0)} B", None if rss is None else rss < 16384)
    for case, what in (("big16k1", "1 client"), ("big16k10", "10 clients")):
        p = run.med(case, "chat", "payload_mb_per_s")
        if p is not None and tcp:
            row(f"16 KiB payloads ({what}): payload bytes/s ≥ 50% of loopback TCP",
                f"{fmt(p, 1, 0)} MB/s = {100 * p / tcp:.0f}% of {fmt(tcp, 1, 0)} MB/s", p >= 0.5 * tcp)

    print("\n### Targets: the window and the floor\n")
    print("| target | measured | met |")
    print("| --- | --- | --- |")
    for window, case in window_cases(run, "big16k1"):
        ok, m = cmp(case, "payload_mb_per_s")
        row(f"16 KiB to 1 client, window {window}: payload MB/s ≥ Redis", m, ok)
        ok, m = cmp(case, "payload_mb_per_s", "relay", factor=0.9)
        row(f"16 KiB to 1 client, window {window}: payload MB/s ≥ 0.9 × relay", m, ok)
    for case in ("fanout100", "fanout1000"):
        ok, m = cmp(case, "deliveries_per_server_cpu_s", "relay", factor=0.85)
        row(f"{case}: deliveries per server CPU-s ≥ 0.85 × relay (M)", m, ok)
        ok, m = cmp(case, "deliveries_per_server_cpu_s", "relaywide", factor=0.85)
        row(f"{case}: deliveries per server CPU-s ≥ 0.85 × relay at our frames' length (M)", m, ok)
        ok, m = cmp(case, "deliveries_per_s")
        row(f"{case}: deliveries/s ahead of Redis (M/s)", m, ok)
    for case in ("fanout100", "fanout1000", "big16k1", "big16k10"):
        ok, m = cmp(case, "lat_p99_us", higher=False)
        row(f"{case}: delivery latency p99 ≤ Redis (µs)", m, ok)
    ok, m = cmp("rtt100", "rtt_p99_us", higher=False)
    row("rtt100: ping rtt p99 under load ≤ Redis (µs)", m, ok)
    row("RSS per idle registered client at 1000 < 16 KiB", f"{fmt(rss, 1, 0)} B", None if rss is None else rss < 16384)


if __name__ == "__main__":
    main()
