#!/usr/bin/env python3
"""The table of one compare.sh run: medians per case and server, ratios
(ours / Redis), and the targets of issue 5, as Markdown.

    python3 bench/summarize.py bench/results.jsonl [RUN_ID]

RUN_ID defaults to the run of the file's last line. Labels look like
RUN_ID/case/target/run.
"""
import json
import statistics
import sys


def load(path, run_id):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    rows = [r for r in rows if r.get("label", "").count("/") == 3]
    if not rows:
        sys.exit("no labelled results in " + path)
    run_id = run_id or rows[-1]["label"].split("/")[0]
    return run_id, [r for r in rows if r["label"].split("/")[0] == run_id]


class Run:
    def __init__(self, rows):
        self.groups = {}
        for r in rows:
            _, case, target, _ = r["label"].split("/")
            self.groups.setdefault((case, target), []).append(r)

    def med(self, case, target, key):
        values = []
        for r in self.groups.get((case, target), []):
            v = r.get(key)
            if v is None and key == "syscalls_per_delivery" and r.get("syscalls") and r.get("deliveries"):
                v = r["syscalls"] / r["deliveries"]
            if v is not None:
                values.append(v)
        return statistics.median(values) if values else None

    def count(self, case, target):
        return len(self.groups.get((case, target), []))


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


# (case, what it is, [(metric key, label, scale, digits)])
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


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/results.jsonl"
    run_id, rows = load(path, sys.argv[2] if len(sys.argv) > 2 else None)
    run = Run(rows)
    loads = sorted({r.get("loadavg", "") for r in rows if r.get("loadavg")})
    one_min = [float(l.split()[0]) for l in loads if l]
    print(f"### Run {run_id}\n")
    if one_min:
        print(f"1-minute load average during the runs: {min(one_min):.2f} to {max(one_min):.2f} (2 cores, shared).\n")
    print("| case | figure | ours | Redis | ours / Redis |")
    print("| --- | --- | ---: | ---: | ---: |")
    for case, title, kind in CASES:
        n = max(run.count(case, "chat"), run.count(case, "redis"))
        if n == 0:
            continue
        first = True
        for key, label, scale, digits in METRICS[kind]:
            a, b = run.med(case, "chat", key), run.med(case, "redis", key)
            name = f"{title} ({'median of ' + str(n) if n > 1 else '1 run'})" if first else ""
            first = False
            print(f"| {name} | {label} | {fmt(a, scale, digits)} | {fmt(b, scale, digits)} | {ratio(a, b)} |")
    tcp = run.med("tcp", "tcp", "payload_mb_per_s")
    if tcp:
        print(f"| loopback TCP, one stream, 1 MiB writes (median of {run.count('tcp', 'tcp')}) "
              f"| MB/s | {fmt(tcp, 1, 0)} | | |")
    for case in ("sys_fanout100", "sys_fanout1000"):
        for target in ("chat", "redis"):
            for r in run.groups.get((case, target), []):
                b = r.get("syscall_breakdown") or {}
                d = r.get("deliveries") or 0
                if b and d:
                    parts = ", ".join(f"{k} {v / d:.4f}" for k, v in b.items() if k != "total")
                    print(f"\n{case} {'ours' if target == 'chat' else 'Redis'}: per delivery: {parts}")

    print("\n### Targets of issue 5\n")
    print("| target | measured | met |")
    print("| --- | --- | --- |")

    def row(text, measured, ok):
        verdict = "n/a" if ok is None else ("met" if ok else "**not met**")
        print(f"| {text} | {measured} | {verdict} |")

    def cmp(case, key, factor=1.0, higher=True):
        a, b = run.med(case, "chat", key), run.med(case, "redis", key)
        if a is None or b is None:
            return None, "n/a"
        ok = a >= factor * b if higher else a <= factor * b
        return ok, f"ours {fmt(a, 1e-6 if 'deliveries' in key else 1, 3 if 'deliveries' in key else 0)}, " \
                   f"Redis {fmt(b, 1e-6 if 'deliveries' in key else 1, 3 if 'deliveries' in key else 0)} " \
                   f"(ratio {ratio(a, b)})"

    for clients in ("100", "1000"):
        ok, m = cmp("fanout" + clients, "deliveries_per_s")
        row(f"fan-out {clients}: deliveries/s ≥ Redis (M/s)", m, ok)
        ok, m = cmp("fanout" + clients, "deliveries_per_server_cpu_s", 1.5)
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


if __name__ == "__main__":
    main()
