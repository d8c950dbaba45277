#!/usr/bin/env python3
"""One abuser against the example server: what a bystander's ping sees, and
what memory the server process holds.

Each attack runs against a fresh server process per binary given, the
binaries interleaved, `--runs` times; each run prints one JSON line (and
appends it to `--out`), and the end prints the medians per binary and
attack. Loopback only; every loop is bounded.

Attacks (`--only` picks some):
  quiet      none: the bystander's pings alone, for the machine's load now
  users      USERS registered users, idle, and no attack: what select()
             over that many descriptors costs the bystander on this machine
  who        USERS registered users; one client writes FLOOD `who` frames in
             one burst and never reads (each answer lists every user)
  join       JOIN_USERS users in one room; one client writes FLOOD `join`s of it
  firehose   one client breaks the framing, then writes 4 MB buffers
             without pause for SECONDS
  crowd      CROWD connections break the framing and keep their sockets
             open, while LEGIT clients try to register, at --max-clients
             CROWD_MAX_CLIENTS: who gets in, and the server's peak count of
             descriptors (/proc/PID/fd, a few of them its own)
  idle_rss   IDLE clients each send four 64 KiB frames, then idle: the
             server's RSS per client, before and after the big frames
  nonreaders NONREADERS clients with the smallest receive buffer, sent tiny
             unicasts until all are dropped: the server's peak RSS (VmHWM)
             against cap x clients

During quiet, users, who, join, firehose and crowd a registered bystander pings every
10 ms and the round trips are reported as p50/p99/max (ms).

    python3 bench/attacks.py --server before=/path/to/old/chat_server \\
        --server after=target/release/examples/chat_server --runs 3
    python3 bench/attacks.py --summary bench/results/attacks.jsonl
"""

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

DEADLINE = 20.0


def frame(obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(data)) + data


class Conn:
    """A framed-JSON client over a blocking socket."""

    def __init__(self, addr, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(DEADLINE)
        self.sock.connect(addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, obj):
        self.sock.sendall(frame(obj))

    def recv(self):
        """The next frame, or None when the server closed."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    payload, self.buf = self.buf[4 : 4 + n], self.buf[4 + n :]
                    return json.loads(payload)
            try:
                chunk = self.sock.recv(1 << 20)
            except (ConnectionResetError, socket.timeout):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def recv_type(self, kind):
        while True:
            v = self.recv()
            if v is None or v.get("type") == kind:
                return v

    def hello(self, nick):
        self.send({"type": "hello", "nick": nick})
        return self.recv_type("welcome")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Server:
    """The example server as a process on a free loopback port."""

    def __init__(self, binary, args):
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0"] + args,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        host, port = line.split()[-1].rsplit(":", 1)
        self.addr = (host, int(port))

    def status(self, field):
        """A /proc/PID/status figure, in KiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Bystander(threading.Thread):
    """Pings every 10 ms until stopped; keeps the round trips."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.conn = Conn(addr)
        assert self.conn.hello("bystander") is not None
        self.rtts = []
        self.lost = False
        self.stopping = threading.Event()

    def run(self):
        k = 0
        while not self.stopping.is_set() and k < 100_000:
            k += 1
            t0 = time.perf_counter()
            self.conn.send({"type": "ping", "id": k})
            while True:
                v = self.conn.recv()
                if v is None:
                    self.lost = True
                    return
                if v.get("type") == "pong" and v.get("id") == k:
                    break
            self.rtts.append((time.perf_counter() - t0) * 1000)
            self.stopping.wait(0.01)

    def finish(self):
        self.stopping.set()
        self.join(DEADLINE)
        self.conn.close()
        r = sorted(self.rtts)
        if not r:
            return {"pings": 0, "lost": self.lost}
        return {
            "pings": len(r),
            "p50_ms": round(r[len(r) // 2], 2),
            "p99_ms": round(r[min(len(r) - 1, int(len(r) * 0.99))], 2),
            "max_ms": round(r[-1], 2),
            "lost": self.lost,
        }


def _send_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass


def register_users(addr, n, room=None):
    users = []
    for i in range(n):
        c = Conn(addr)
        assert c.hello(f"user{i:04d}") is not None, f"user {i} not registered"
        if room:
            c.send({"type": "join", "room": room})
            assert c.recv_type("joined") is not None
        users.append(c)
    return users


def amplified(binary, args, request, users, flood, room=None):
    srv = Server(binary, args)
    try:
        crowd = register_users(srv.addr, users, room)
        by = Bystander(srv.addr)
        by.start()
        time.sleep(0.5)
        abuser = Conn(srv.addr)
        abuser.hello("abuser")
        burst = frame(request) * flood if request else b""
        t0 = time.time()
        # A thread writes the burst: a server that stops reading the
        # abuser pushes back on it through TCP.
        writer = threading.Thread(target=lambda: _send_quietly(abuser.sock, burst), daemon=True)
        writer.start()
        time.sleep(max(0.0, 3.0 - (time.time() - t0)))
        out = by.finish()
        out["rss_kib"] = srv.status("VmHWM")
        abuser.close()
        for c in crowd:
            c.close()
        return out
    finally:
        srv.stop()


def quiet(binary, args, seconds):
    """No attack: the bystander's pings on this machine as loaded now."""
    srv = Server(binary, args)
    try:
        by = Bystander(srv.addr)
        by.start()
        time.sleep(seconds)
        return by.finish()
    finally:
        srv.stop()


def firehose(binary, args, seconds):
    srv = Server(binary, args)
    try:
        by = Bystander(srv.addr)
        by.start()
        time.sleep(0.5)
        abuser = Conn(srv.addr)
        abuser.sock.sendall(b"\xff\xff\xff\xff")
        chunk = b"x" * (4 << 20)
        end = time.time() + seconds
        sent = 0
        while time.time() < end:
            try:
                sent += abuser.sock.send(chunk)
            except (OSError, socket.timeout):
                # Released by the server (a reset): the attacker reconnects
                # and breaks the framing again.
                abuser.close()
                abuser = Conn(srv.addr)
                abuser.sock.sendall(b"\xff\xff\xff\xff")
        out = by.finish()
        out["sent_mb"] = round(sent / 1e6, 1)
        abuser.close()
        return out
    finally:
        srv.stop()


def crowd(binary, args, n_crowd, n_legit):
    srv = Server(binary, args)
    try:
        by = Bystander(srv.addr)
        by.start()
        time.sleep(0.5)
        # A thread opens n_crowd connections that break their framing and
        # stay open (the server drains each for up to 2 s), as fast as it
        # can; legitimate clients come meanwhile.
        stop = threading.Event()
        drains = []
        peak_fds = [0]

        def fds():
            peak_fds[0] = max(peak_fds[0], len(os.listdir(f"/proc/{srv.proc.pid}/fd")))

        def keep_crowd():
            while not stop.is_set() and len(drains) < n_crowd:
                try:
                    c = Conn(srv.addr)
                    c.sock.sendall(b"\xff\xff\xff\xff" + b"x" * 1000)
                    drains.append(c)
                except OSError:
                    pass
                if len(drains) % 25 == 0:
                    fds()

        crowd_thread = threading.Thread(target=keep_crowd, daemon=True)
        crowd_thread.start()
        end = time.time() + DEADLINE
        while len(drains) < n_crowd // 3 and time.time() < end:
            time.sleep(0.01)
        welcome = full = other = 0
        legit = []
        for i in range(n_legit):
            try:
                c = Conn(srv.addr)
                c.send({"type": "hello", "nick": f"legit{i}"})
                v = c.recv()
            except OSError:
                v = None
            if v is not None and v.get("type") == "welcome":
                welcome += 1
                legit.append(c)
            elif v is not None and v.get("code") == "server_full":
                full += 1
                c.close()
            else:
                other += 1
                c.close()
            if i % 10 == 0:
                fds()
        stop.set()
        crowd_thread.join(DEADLINE)
        out = by.finish()
        out.update({"welcome": welcome, "server_full": full, "other": other, "peak_fds": peak_fds[0]})
        for c in drains + legit:
            c.close()
        return out
    finally:
        srv.stop()


def idle_rss(binary, args, n):
    srv = Server(binary, args)
    try:
        base = srv.status("VmRSS")
        clients = []
        for i in range(n):
            c = Conn(srv.addr)
            assert c.hello(f"idle{i:04d}") is not None
            clients.append(c)
        fresh = srv.status("VmRSS")
        pad = "x" * (65536 - len(json.dumps({"type": "ping", "id": 0, "pad": ""}, separators=(",", ":"))))
        big = frame({"type": "ping", "id": 0, "pad": pad})
        assert len(big) == 65540
        for c in clients:
            c.sock.sendall(big * 4)
            for _ in range(4):
                assert c.recv_type("pong") is not None
        time.sleep(1.0)
        idle = srv.status("VmRSS")
        out = {
            "clients": n,
            "base_kib": base,
            "fresh_per_client_kib": round((fresh - base) / n, 2),
            "idle_per_client_kib": round((idle - base) / n, 2),
            "rss_idle_kib": idle,
        }
        for c in clients:
            c.close()
        return out
    finally:
        srv.stop()


def nonreaders(binary, args, n, cap):
    srv = Server(binary, args + ["--max-queue-bytes", str(cap)])
    try:
        sender = Conn(srv.addr)
        sender.hello("sender")
        stalled = []
        for i in range(n):
            c = Conn(srv.addr, rcvbuf=1)
            assert c.hello(f"nr{i:03d}") is not None
            stalled.append(c)
        base = srv.status("VmRSS")
        # The sender's answers (no_such_nick once a non-reader is gone,
        # presence, who) are read by a thread, so it is never the slow one.
        seen = {"left": None}

        def read_sender():
            while True:
                try:
                    v = sender.recv()
                except (OSError, ValueError):
                    return
                if v is None:
                    return
                if v.get("type") == "users":
                    seen["left"] = len(v["users"]) - 1

        threading.Thread(target=read_sender, daemon=True).start()
        batch = b"".join(frame({"type": "msg", "to": f"nr{i:03d}", "text": "x"}) for i in range(n)) * 100
        end = time.time() + 120
        sender_dropped = False
        while time.time() < end and seen["left"] != 0:
            try:
                for _ in range(20):
                    sender.sock.sendall(batch)
                sender.send({"type": "who"})
            except OSError:
                # The server dropped the sender (its own answers piled up
                # while this machine was too loaded for its reader): the
                # peak so far is the figure.
                sender_dropped = True
                break
        left = seen["left"]
        peak = srv.status("VmHWM")
        out = {
            "clients": n,
            "cap": cap,
            "left": left,
            "base_kib": base,
            "peak_kib": peak,
            "peak_over_base_mb": round((peak - base) / 1024, 1),
            "cap_x_clients_mb": round(cap * n / (1 << 20), 1),
            "sender_dropped": sender_dropped,
        }
        for c in stalled:
            c.close()
        sender.close()
        return out
    finally:
        srv.stop()


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def summary(path):
    """Markdown tables of the medians in a results file, per attack and
    server, with the runs and their load."""
    with open(path) as f:
        rs = [json.loads(line) for line in f if line.strip()]
    attacks = list(dict.fromkeys(r["attack"] for r in rs))
    servers = list(dict.fromkeys(r["server"] for r in rs))
    for attack in attacks:
        rows = [r for r in rs if r["attack"] == attack]
        keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "run"]
        print(f"\n{attack}\n\n| server | runs | load (1 min) | " + " | ".join(keys) + " |")
        print("| --- " * (3 + len(keys)) + "|")
        for name in servers:
            mine = [r for r in rows if r["server"] == name]
            if not mine:
                continue
            loads = ", ".join(r["load1"] for r in mine)
            med = [statistics.median(r[k] for r in mine if k in r) for k in keys]
            print(f"| {name} | {len(mine)} | {loads} | " + " | ".join(f"{v:g}" for v in med) + " |")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        return summary(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", action="append", required=True, help="NAME=PATH of a chat_server binary")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="quiet,who,join,firehose,crowd,idle_rss,nonreaders")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--join-users", type=int, default=500)
    ap.add_argument("--flood", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--crowd", type=int, default=900)
    ap.add_argument("--crowd-max-clients", type=int, default=300)
    ap.add_argument("--legit", type=int, default=100)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--nonreaders", type=int, default=100)
    ap.add_argument("--cap", type=int, default=1 << 20)
    ap.add_argument("--out", default="bench/results/attacks.jsonl")
    a = ap.parse_args()
    servers = [s.split("=", 1) for s in a.server]
    attacks = {
        "quiet": lambda b: quiet(b, [], a.seconds),
        "users": lambda b: amplified(b, [], None, a.users, 0),
        "who": lambda b: amplified(b, [], {"type": "who"}, a.users, a.flood),
        "join": lambda b: amplified(b, [], {"type": "join", "room": "#big"}, a.join_users, a.flood, "#big"),
        "firehose": lambda b: firehose(b, [], a.seconds),
        "crowd": lambda b: crowd(b, ["--max-clients", str(a.crowd_max_clients)], a.crowd, a.legit),
        "idle_rss": lambda b: idle_rss(b, [], a.idle),
        "nonreaders": lambda b: nonreaders(b, [], a.nonreaders, a.cap),
    }
    results = []
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "a") as out:
        for run in range(a.runs):
            for attack in a.only.split(","):
                for name, binary in servers:
                    before = load()
                    r = attacks[attack](binary)
                    r.update({"attack": attack, "server": name, "run": run, "load1": before, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
                    print(json.dumps(r), flush=True)
                    out.write(json.dumps(r) + "\n")
                    out.flush()
                    results.append(r)
    print("\nmedians:")
    for attack in a.only.split(","):
        for name, _ in servers:
            rs = [r for r in results if r["attack"] == attack and r["server"] == name]
            keys = [k for k, v in rs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "run"]
            med = {k: statistics.median(r[k] for r in rs if k in r) for k in keys}
            print(f"  {attack:10} {name:8} " + " ".join(f"{k}={v:g}" for k, v in med.items()))


if __name__ == "__main__":
    sys.exit(main())
