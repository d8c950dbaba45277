#!/usr/bin/env python3
"""Deliveries/s and p99 delivery latency against the number of clients, ours,
Redis', the floor's (bench/relay.c) and the build before's when measured,
from one compare.sh run's `sweep<N>` fan-out lines.

    python3 bench/plot.py bench/results.jsonl [RUN_ID] [OUT.png]
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/results.jsonl"
    run_id = sys.argv[2] if len(sys.argv) > 2 else None
    out = sys.argv[3] if len(sys.argv) > 3 else "docs/perf-clients.png"
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    rows = [r for r in rows if r.get("label", "").count("/") == 3 and r["label"].split("/")[1].startswith("sweep")]
    if not rows:
        sys.exit("no sweep lines in " + path)
    run_id = run_id or rows[-1]["label"].split("/")[0]
    rows = [r for r in rows if r["label"].split("/")[0] == run_id]
    series = {}
    for r in rows:
        # The label's target: "before" speaks the chat protocol too.
        series.setdefault(r["label"].split("/")[2], []).append(r)
    names = {
        "chat": "chat (ours, select)",
        "redis": "Redis 7 pub/sub (epoll)",
        "relay": "floor: bare frame relay (select)",
        "before": "chat, the build before",
        "relaywide": "floor, frames as long as ours",
    }
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for target, rs in sorted(series.items()):
        rs.sort(key=lambda r: r["clients"])
        x = [r["clients"] for r in rs]
        ax1.plot(x, [r["deliveries_per_s"] / 1e6 for r in rs], marker="o", label=names.get(target, target))
        ax2.plot(x, [r["lat_p99_us"] / 1000 for r in rs], marker="o", label=names.get(target, target))
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("receiving clients (1 sender, 64 B text, window 64)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    ax1.set_ylabel("deliveries/s (millions)")
    ax1.set_ylim(bottom=0)
    ax2.set_ylabel("delivery latency p99 (ms)")
    ax2.set_ylim(bottom=0)
    load = sorted({r.get("loadavg", "").split(" ")[0] for r in rows})
    fig.suptitle(f"Fan-out on loopback, run {run_id} (2 shared cores, load {load[0]} to {load[-1]})", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
