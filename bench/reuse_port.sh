#!/usr/bin/env bash
# Several chat_server processes behind one port (SO_REUSEPORT), joined by
# one Redis: fan-out to 1000 clients (the kernel spreads them over the
# processes), with 1, 2 and 4 processes. Reports total deliveries/s and the
# server CPU per delivery summed over every process (and Redis' own CPU
# beside it), medians of RUNS.
#
#   bench/reuse_port.sh                   # 1, 2 and 4 processes, 3 runs each
#   PROCS="1 2" RUNS=1 bench/reuse_port.sh
#
# Needs chat_server --listen ADDR --reuse-port --redis URL --cluster NAME
# (one cluster name for every process)
# (it stops with a message if the build has no --reuse-port). Installs
# redis-server if missing. Loopback only; every run stops by itself.
# Environment: PROCS, RUNS, CLIENTS (1000), MESSAGES (10000), CHAT_BIN,
# RESULTS (default bench/results/reuse-port.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."

PROCS=${PROCS:-1 2 4}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-1000}
MESSAGES=${MESSAGES:-10000}
RESULTS=${RESULTS:-bench/results/reuse-port.jsonl}
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$CARGO_TARGET_DIR/release/examples
CHAT_BIN=${CHAT_BIN:-$BIN/chat_server}
QUEUE_BYTES=$((64 << 20))

command -v redis-server >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}
cargo build --release --example chat_server --example chat_bench
if ! "$CHAT_BIN" --help | grep -q -- --reuse-port; then
    echo "this chat_server has no --reuse-port: nothing to measure" >&2
    exit 2
fi
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d /tmp/chat-reuse.XXXXXX)
mkdir -p "$(dirname "$RESULTS")"
PIDS=()
REDIS_PID=
cleanup() {
    for p in "${PIDS[@]}" $REDIS_PID; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() { # seconds, command...
    local until=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$until" ] || { echo "timed out waiting for: $*" >&2; return 1; }
        sleep 0.05
    done
}
# CPU seconds (user + system) of the given pids, from /proc.
cpu_of() {
    python3 - "$@" <<'EOF'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
total = 0
for pid in sys.argv[1:]:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    total += int(fields[11]) + int(fields[12])
print(total / tick)
EOF
}

uptime >&2
for run in $(seq 1 "$RUNS"); do
    for n in $PROCS; do
        rport=$(free_port)
        redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --protected-mode no \
            --client-output-buffer-limit 'pubsub 0 0 0' --daemonize no --logfile "$WORK/redis.log" &
        REDIS_PID=$!
        wait_for 10 redis-cli -p "$rport" ping
        port=$(free_port)
        PIDS=()
        for i in $(seq 1 "$n"); do
            "$CHAT_BIN" --listen "127.0.0.1:$port" --reuse-port --redis "redis://127.0.0.1:$rport" \
                --cluster bench --max-queue-bytes "$QUEUE_BYTES" \
                >"$WORK/s$i.out" 2>"$WORK/s$i.err" &
            PIDS+=($!)
            wait_for 10 grep -q '^listening on ' "$WORK/s$i.out"
        done
        cpu0=$(cpu_of "${PIDS[@]}")
        rcpu0=$(cpu_of "$REDIS_PID")
        ok=1
        "$BIN/chat_bench" --target chat --addr "127.0.0.1:$port" --scenario fanout --senders 1 \
            --clients "$CLIENTS" --size 64 --window 64 --messages "$MESSAGES" --duration-secs 120 \
            --json --label "$RUN_ID/reuse$n/chat/$run" >"$WORK/out.txt" 2>&1 || ok=0
        cpu1=$(cpu_of "${PIDS[@]}")
        rcpu1=$(cpu_of "$REDIS_PID")
        grep -v '^{' "$WORK/out.txt" >&2
        if [ "$ok" = 1 ]; then
            # The servers' and Redis' CPU over the whole run (set-up
            # included: the generator's --server-pid takes one process).
            grep '^{' "$WORK/out.txt" | python3 -c "
import json, sys
r = json.load(sys.stdin)
r['processes'] = $n
r['servers_cpu_s'] = $cpu1 - $cpu0
r['redis_cpu_s'] = $rcpu1 - $rcpu0
d = r.get('deliveries') or 0
r['servers_cpu_ns_per_delivery'] = r['servers_cpu_s'] * 1e9 / d if d else None
print(json.dumps(r))" | tee -a "$RESULTS" >/dev/null
        else
            echo "FAILED: $n processes, run $run" >&2
        fi
        for p in "${PIDS[@]}" "$REDIS_PID"; do
            kill "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        done
        PIDS=()
        REDIS_PID=
    done
done
uptime >&2
python3 - "$RESULTS" "$RUN_ID" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rows = [r for r in rows if r["label"].startswith(sys.argv[2] + "/")]
print(f"### SO_REUSEPORT run {sys.argv[2]}\n")
print("| processes | runs | deliveries/s (M) | servers' CPU ns/delivery | Redis CPU s | latency p99 µs |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
for n in sorted({r["processes"] for r in rows}):
    g = [r for r in rows if r["processes"] == n]
    med = lambda k: statistics.median(r[k] for r in g if r.get(k) is not None)
    print(f"| {n} | {len(g)} | {med('deliveries_per_s') / 1e6:.3f} | {med('servers_cpu_ns_per_delivery'):.0f} "
          f"| {med('redis_cpu_s'):.2f} | {med('lat_p99_us'):.0f} |")
EOF
