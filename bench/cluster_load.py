#!/usr/bin/env python3
"""A load generator that can split its clients over two servers.

chat_bench talks to one address; measuring a cluster needs the receivers on
one node and the senders on another. This one does that with raw sockets
and the wire protocol (4-byte big-endian length, then JSON), all clients in
one process around one selector, so a send stamp (time.monotonic_ns in the
text) can be compared with the receive time directly.

  fanout:  1 sender on --send-addr broadcasts (`all`); --clients receivers
           on --recv-addr. Window: at most --window messages that receiver 0
           has not yet seen.
  unicast: --clients pairs; sender i on --send-addr sends `msg` to receiver
           i on --recv-addr. Window per pair.

Warm-up first (untimed): senders repeat a warm-up frame every 50 ms until
every receiver has one, so in a cluster the directory has every node and
nick before the clock starts. Then --messages per sender, or until
--seconds, whichever comes first. Prints one JSON line: deliveries,
seconds, deliveries/s, latency p50/p99/max in microseconds.

Loopback only; every phase has a deadline.
"""

import argparse
import json
import os
import selectors
import socket
import struct
import sys
import time


def cpu_ticks(pids):
    """utime + stime of each process, in clock ticks."""
    out = []
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out.append(int(fields[11]) + int(fields[12]))
    return out


def parse_addr(text):
    host, port = text.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost"):
        sys.exit("loopback only: " + text)
    return ("127.0.0.1", int(port))


class Client:
    def __init__(self, sel, addr, nick):
        self.sock = socket.create_connection(addr, timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.nick = nick
        self.inbuf = bytearray()
        self.out = bytearray()
        self.sel = sel
        self.welcomed = False
        self.received = 0
        self.warm = False
        sel.register(self.sock, selectors.EVENT_READ, self)
        self.send({"type": "hello", "nick": nick})

    def send(self, obj):
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.out += struct.pack(">I", len(body)) + body
        self.flush()

    def flush(self):
        if self.out:
            try:
                n = self.sock.send(self.out)
                del self.out[:n]
            except BlockingIOError:
                pass
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0)
        self.sel.modify(self.sock, events, self)

    def frames(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        if not data:
            raise SystemExit("server closed " + self.nick)
        self.inbuf += data
        while len(self.inbuf) >= 4:
            (n,) = struct.unpack_from(">I", self.inbuf)
            if len(self.inbuf) < 4 + n:
                break
            frame = bytes(self.inbuf[4 : 4 + n])
            del self.inbuf[: 4 + n]
            yield frame


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", choices=["fanout", "unicast"], default="fanout")
    ap.add_argument("--recv-addr", required=True)
    ap.add_argument("--send-addr", required=True)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--messages", type=int, default=20000, help="per sender, at most")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed phase, at most")
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--size", type=int, default=64, help="text bytes (>= 32)")
    ap.add_argument("--tag", default="x", help="nick prefix (unique per run)")
    ap.add_argument("--cpu-pid", type=int, action="append", default=[],
                    help="a process whose CPU time (utime+stime) over the timed phase is reported")
    args = ap.parse_args()

    sel = selectors.DefaultSelector()
    raddr, saddr = parse_addr(args.recv_addr), parse_addr(args.send_addr)
    receivers = [Client(sel, raddr, f"{args.tag}r{i}") for i in range(args.clients)]
    nsend = 1 if args.scenario == "fanout" else args.clients
    senders = [Client(sel, saddr, f"{args.tag}s{i}") for i in range(nsend)]
    everyone = receivers + senders
    lat = []  # microseconds, timed phase only
    timed = False
    errors = {}

    def pump(timeout):
        for key, mask in sel.select(timeout):
            c = key.data
            if mask & selectors.EVENT_WRITE:
                c.flush()
            if mask & selectors.EVENT_READ:
                for frame in c.frames():
                    # Relayed frames: the stamp is read without a JSON
                    # parse, so one Python process keeps up with more.
                    at = frame.find(b'"text":"t')
                    if at >= 0 and timed:
                        c.received += 1
                        stamp = int(frame[at + 9 : frame.index(b" ", at)])
                        lat.append((time.monotonic_ns() - stamp) / 1000)
                        continue
                    f = json.loads(frame)
                    t = f.get("type")
                    if t == "welcome":
                        c.welcomed = True
                    elif t in ("all", "msg"):
                        if f["text"].startswith("w"):
                            c.warm = True
                    elif t == "error":
                        errors[f.get("code")] = errors.get(f.get("code"), 0) + 1

    def wait(cond, seconds, what):
        end = time.monotonic() + seconds
        while not cond():
            if time.monotonic() > end:
                sys.exit(f"timed out waiting for {what}; errors {errors}")
            pump(0.05)

    wait(lambda: all(c.welcomed for c in everyone), 20, "welcome")

    # Warm-up: until every receiver has had a frame from its sender.
    def warm_round():
        if args.scenario == "fanout":
            senders[0].send({"type": "all", "text": "warm"})
        else:
            for s, r in zip(senders, receivers):
                if not r.warm:
                    s.send({"type": "msg", "to": r.nick, "text": "warm"})

    end = time.monotonic() + 20
    while not all(r.warm for r in receivers):
        if time.monotonic() > end:
            sys.exit(f"warm-up timed out; errors {errors}")
        warm_round()
        t_next = time.monotonic() + 0.05
        while time.monotonic() < t_next and not all(r.warm for r in receivers):
            pump(0.01)
    # Let stray warm-up frames drain, untimed.
    t_next = time.monotonic() + 0.2
    while time.monotonic() < t_next:
        pump(0.01)
    errors.clear()

    pad = "p" * max(0, args.size - 24)
    cpu0 = cpu_ticks(args.cpu_pid)
    gen0 = sum(os.times()[:2])
    timed = True
    sent = [0] * nsend
    start = time.monotonic()
    deadline = start + args.seconds

    def seen_by(i):  # frames the window counts as arrived, for sender i
        return receivers[0].received if args.scenario == "fanout" else receivers[i].received

    while time.monotonic() < deadline:
        busy = False
        for i, s in enumerate(senders):
            while sent[i] < args.messages and sent[i] - seen_by(i) < args.window:
                text = f"t{time.monotonic_ns()} {pad}"
                if args.scenario == "fanout":
                    s.send({"type": "all", "text": text})
                else:
                    s.send({"type": "msg", "to": receivers[i].nick, "text": text})
                sent[i] += 1
            busy |= sent[i] > seen_by(i) or sent[i] < args.messages
        if not busy:
            break
        pump(0.01)
    # Drain what is in flight (bounded).
    expect = sum(sent) * (args.clients if args.scenario == "fanout" else 1)
    drain_end = time.monotonic() + 2
    while len(lat) < expect and time.monotonic() < drain_end:
        pump(0.01)
    elapsed = time.monotonic() - start
    gen_cpu = sum(os.times()[:2]) - gen0
    cpu = [b - a for a, b in zip(cpu0, cpu_ticks(args.cpu_pid))]
    tick = os.sysconf("SC_CLK_TCK")
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else None

    print(json.dumps({
        "scenario": args.scenario, "clients": args.clients, "sent": sum(sent),
        "deliveries": len(lat), "expected": expect, "seconds": round(elapsed, 3),
        "deliveries_per_s": round(len(lat) / elapsed), "p50_us": pct(0.5),
        "p99_us": pct(0.99), "max_us": round(lat[-1]) if lat else None,
        "gen_cpu_s": round(gen_cpu, 2),
        "cpu_s": [t / tick for t in cpu],
        "cpu_us_per_delivery": round(sum(cpu) / tick / len(lat) * 1e6, 3) if lat else None,
        "errors": errors,
    }, separators=(",", ":")))
    for c in everyone:
        c.sock.close()


if __name__ == "__main__":
    main()
