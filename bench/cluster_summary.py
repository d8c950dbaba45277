#!/usr/bin/env python3
"""The table of bench/cluster.sh: medians per case and target, and ratios.

Reads the JSON lines bench/cluster.sh wrote (one per run: case, target,
run, the 1-minute load at its start, and cluster_load.py's result r).
"""

import json
import statistics
import sys

CASES = {
    "fanout": ("single", "cluster", "1 sender, 50 receivers on another node"),
    "unicast": ("single", "cluster", "50 pairs, sender on node A, receiver on node B"),
    "hop": ("single", "cluster", "1 pair, 1 message in flight, across nodes"),
    "cost": ("single", "node", "fanout to 50 on one server: with --redis (alone) vs without"),
}


def servers_cpu_us(r, target):
    """Server CPU per delivery, Redis left out (its pid is listed last)."""
    n = 2 if target == "cluster" else 1
    return sum(r["cpu_s"][:n]) / r["deliveries"] * 1e6 if r["deliveries"] else None


def total_cpu_us(r):
    return sum(r["cpu_s"]) / r["deliveries"] * 1e6 if r["deliveries"] else None


METRICS = [
    ("deliveries/s", lambda r, t: r["deliveries_per_s"]),
    ("p50 latency, ms", lambda r, t: r["p50_us"] / 1000),
    ("p99 latency, ms", lambda r, t: r["p99_us"] / 1000),
    ("server CPU-us per delivery", servers_cpu_us),
    ("CPU-us per delivery, Redis included", lambda r, t: total_cpu_us(r)),
    # Near 100: the one-process Python generator, not the server, set the pace.
    ("load generator CPU, % of the run", lambda r, t: r["gen_cpu_s"] / r["seconds"] * 100),
]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


def main():
    rows = [json.loads(line) for line in open(sys.argv[1])]
    print("| case | figure | single server | cluster | cluster / single | load (1 min) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for case, (base, other, label) in CASES.items():
        runs = {t: [r for r in rows if r["case"] == case and r["target"] == t] for t in (base, other)}
        if not runs[base] or not runs[other]:
            continue
        load = f'{med([r["load"] for r in runs[base]]):.1f} / {med([r["load"] for r in runs[other]]):.1f}'
        for name, get in METRICS:
            if case == "cost" and name.startswith("p50"):
                continue
            b = med([get(r["r"], base) for r in runs[base]])
            o = med([get(r["r"], other) for r in runs[other]])
            if name.endswith("Redis included") and case != "cost" and b == o:
                continue
            ratio = f"{o / b:.2f}" if b and o is not None else "-"
            print(f"| {label} | {name} | {fmt(b)} | {fmt(o)} | {ratio} | {load} |")
    lost = [r for r in rows if r["r"]["deliveries"] != r["r"]["expected"] or r["r"]["errors"]]
    for r in lost:
        print(f'\n{r["case"]} {r["target"]} run {r["run"]}: {r["r"]["deliveries"]} of '
              f'{r["r"]["expected"]} delivered, errors {r["r"]["errors"]}')


if __name__ == "__main__":
    main()
