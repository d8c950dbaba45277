#!/usr/bin/env bash
# Our chat server against Redis pub/sub, side by side in one run (issue 5):
# the same load generator (examples/chat_bench.rs), the same clients, sizes,
# counts and windows, runs of the two servers interleaved, medians of 3.
#
#   bench/compare.sh            # the full comparison, about 10 minutes
#   QUICK=1 bench/compare.sh    # a smoke run: 1 run per case, 1/10 counts
#
# It installs what it needs when missing: redis-server and linux-perf with
# apt-get, matplotlib with pip. It builds the release examples, starts a
# fresh server (ours: chat_server on port 0; Redis: a free loopback port, no
# persistence, no output-buffer limit for pub/sub) for every measured run
# and stops it after, appends every JSON line to bench/results.jsonl (each
# labelled RUN_ID/case/target/run), prints the table of medians and ratios
# (also saved as bench/results/summary-RUN_ID.md) and draws
# docs/perf-clients.png. Loopback only; every run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
QUICK=${QUICK:-0}
SCALE=1
if [ "$QUICK" = 1 ]; then
    RUNS=1
    SCALE=10
fi
RESULTS=${RESULTS:-bench/results.jsonl}
# No slow-consumer drops under a benchmark's bounded window: the same as
# Redis with its pub/sub output-buffer limit off.
QUEUE_BYTES=$((64 << 20))
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$CARGO_TARGET_DIR/release/examples
WORK=$(mktemp -d /tmp/chat-compare.XXXXXX)
mkdir -p bench/results docs
# 1000 clients and their sockets in one generator process.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

say() { printf '\n== %s\n' "$*" >&2; }

# ----- tools -----
APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v redis-server >/dev/null || { say "installing redis-server"; apt_install redis-server; }
command -v redis-cli >/dev/null || apt_install redis-tools
command -v perf >/dev/null || { say "installing linux-perf"; apt_install linux-perf || true; }
python3 -c 'import matplotlib' 2>/dev/null || {
    say "installing matplotlib"
    python3 -m pip install -q matplotlib 2>/dev/null || python3 -m pip install -q --break-system-packages matplotlib
}
SYSCALLS=perf
if ! perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
    command -v strace >/dev/null || apt_install strace || true
    SYSCALLS=strace
fi

say "building (release)"
cargo build --release --example chat_server --example chat_bench

# ----- servers -----
SERVER_PID=
SERVER_ADDR=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() { # seconds, command...: polls the command until it succeeds
    local until=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$until" ]; then
            echo "timed out waiting for: $*" >&2
            return 1
        fi
        sleep 0.05
    done
}

start_chat() {
    # Removed first: the shell truncates it only once the server has
    # forked, and the wait below must not read the last server's line.
    rm -f "$WORK/chat.out"
    "$BIN/chat_server" --listen 127.0.0.1:0 --max-queue-bytes "$QUEUE_BYTES" \
        >"$WORK/chat.out" 2>"$WORK/chat.err" &
    SERVER_PID=$!
    wait_for 10 grep -q '^listening on ' "$WORK/chat.out"
    SERVER_ADDR=$(sed -n 's/^listening on //p' "$WORK/chat.out" | head -1)
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_redis() {
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --protected-mode no --maxclients 10000 --client-output-buffer-limit 'pubsub 0 0 0' \
        --daemonize no --logfile "$WORK/redis.log" &
    SERVER_PID=$!
    wait_for 10 redis-cli -p "$port" ping
    SERVER_ADDR=127.0.0.1:$port
}

# ----- runs -----
# bench CASE TARGET RUN [generator flags...]: one measured run against a
# fresh server; its JSON line goes to the results.
bench() {
    local case=$1 target=$2 run=$3
    shift 3
    "start_$target"
    local extra=()
    if [ "${COUNT_SYSCALLS:-0}" = 1 ] && [ "$SYSCALLS" = perf ]; then
        extra=(--syscalls)
    fi
    local strace_pid=
    if [ "${COUNT_SYSCALLS:-0}" = 1 ] && [ "$SYSCALLS" = strace ]; then
        strace -c -f -p "$SERVER_PID" -o "$WORK/strace.txt" 2>/dev/null &
        strace_pid=$!
    fi
    local ok=1
    "$BIN/chat_bench" --target "$target" --addr "$SERVER_ADDR" --server-pid "$SERVER_PID" \
        --json --label "$RUN_ID/$case/$target/$run" --duration-secs 120 "${extra[@]}" "$@" \
        >"$WORK/out.txt" 2>&1 || ok=0
    if [ -n "$strace_pid" ]; then
        kill -INT "$strace_pid"
        wait "$strace_pid" || true
        local calls
        calls=$(awk '$NF == "total" { print $4 }' "$WORK/strace.txt")
        # strace counts set-up too and slows the server: a rough fallback.
        sed -i "\$s/\"syscalls\":null/\"syscalls\":$calls,\"syscalls_by\":\"strace\"/" "$WORK/out.txt"
    fi
    stop_server
    grep -v '^{' "$WORK/out.txt" >&2
    if [ "$ok" = 0 ]; then
        echo "FAILED: $case $target run $run (left out of the results)" >&2
        return 0
    fi
    grep '^{' "$WORK/out.txt" | tee -a "$RESULTS" >"$WORK/last.json"
}

m() { echo $(($1 / SCALE)); }

say "run $RUN_ID on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
uptime >&2

FANOUT=(--scenario fanout --senders 1 --size 64 --window 64)
for run in $(seq 1 "$RUNS"); do
    for target in chat redis; do
        say "run $run/$RUNS: $target"
        bench fanout100 "$target" "$run" "${FANOUT[@]}" --clients 100 --messages "$(m 100000)"
        bench fanout1000 "$target" "$run" "${FANOUT[@]}" --clients 1000 --messages "$(m 10000)"
        bench unicast100pairs "$target" "$run" --scenario unicast --clients 200 --size 64 --window 64 \
            --messages "$(m 10000)"
        bench rtt100 "$target" "$run" --scenario rtt --clients 100 --senders 1 --pingers 4 --size 64 \
            --window 64 --messages "$(m 50000)"
        bench big16k1 "$target" "$run" --scenario fanout --clients 1 --senders 1 --size 16384 --window 16 \
            --messages "$(m 100000)"
        bench big16k10 "$target" "$run" --scenario fanout --clients 10 --senders 1 --size 16384 --window 16 \
            --messages "$(m 20000)"
        bench idle1000 "$target" "$run" --scenario idle --clients 1000
    done
    say "run $run/$RUNS: loopback TCP baseline"
    "$BIN/chat_bench" --scenario bandwidth --size 1048576 --messages "$(m 4096)" --json \
        --label "$RUN_ID/tcp/tcp/$run" | tee "$WORK/out.txt" >&2
    grep '^{' "$WORK/out.txt" >>"$RESULTS"
done

say "system calls per delivery ($SYSCALLS, short runs)"
for target in chat redis; do
    COUNT_SYSCALLS=1 bench sys_fanout100 "$target" 1 "${FANOUT[@]}" --clients 100 --messages "$(m 30000)"
    COUNT_SYSCALLS=1 bench sys_fanout1000 "$target" 1 "${FANOUT[@]}" --clients 1000 --messages "$(m 3000)"
done

say "clients sweep (for the plot)"
for clients in 10 30 100 300 1000; do
    for target in chat redis; do
        bench "sweep$clients" "$target" 1 "${FANOUT[@]}" --clients "$clients" \
            --messages "$(m $((4000000 / clients)))"
    done
done

uptime >&2
python3 bench/summarize.py "$RESULTS" "$RUN_ID" | tee "bench/results/summary-$RUN_ID.md"
python3 bench/plot.py "$RESULTS" "$RUN_ID" docs/perf-clients.png
