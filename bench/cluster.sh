#!/usr/bin/env bash
# Cross-node performance: each cluster figure measured in the same run as
# its single-server baseline, with the same load generator
# (bench/cluster_load.py, which can put receivers on one server and senders
# on another), the same clients, sizes and windows.
#
#   bench/cluster.sh                 # all three cases, a few seconds each
#   SECONDS_PER_RUN=3 bench/cluster.sh
#
# (1) fanout: 1 sender broadcasts to 50 receivers on ANOTHER node, vs the
#     same 50 receivers and sender on one plain server (no --redis).
# (2) unicast: 50 pairs, sender on node A, receiver on node B, vs the same
#     pairs on one plain server.
# (2b) hop: one pair, one message in flight (--window 1), across nodes vs
#     on one server: the latency of one relayed message with no queueing.
# (3) the cost of cluster mode on one server: the fanout of (1) on one
#     server started with --redis (alone in its cluster) vs without;
#     server CPU-seconds (utime+stime from /proc/PID/stat) per delivery.
#
# Environment: SECONDS_PER_RUN (default 4), CLIENTS (50), WINDOW (16),
# SIZE (64), RUNS (3), KEEP_RESULTS (a file to keep the JSON lines in:
# one per measured run), CHAT_BIN (the server to measure; default: the
# release example built from this tree), CARGO_TARGET_DIR. It installs
# redis-server with apt-get when missing, starts one redis-server on a
# free loopback port (no persistence), a fresh server per run, and stops
# everything on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_RUN:-4}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-50}
WINDOW=${WINDOW:-16}
SIZE=${SIZE:-64}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BUILD=0
[ -z "${CHAT_BIN:-}" ] && BUILD=1
CHAT_BIN=${CHAT_BIN:-$CARGO_TARGET_DIR/release/examples/chat_server}
LOAD="python3 bench/cluster_load.py"
QUEUE_BYTES=$((64 << 20))
WORK=$(mktemp -d /tmp/chat-clusterbench.XXXXXX)
PIDS=()

say() { printf '== %s\n' "$*" >&2; }
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v redis-server >/dev/null; then
    say "installing redis-server"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server ||
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; }
fi
# A no-op when the release build is up to date with the tree.
if [ "$BUILD" = 1 ]; then
    cargo build --release -p chat-examples --example chat_server
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" --client-output-buffer-limit 'pubsub 0 0 0' >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
REDIS=redis://127.0.0.1:$REDIS_PORT

# start_server NAME [flags...]: sets SERVER_PID and SERVER_ADDR.
start_server() {
    local name=$1
    shift
    "$CHAT_BIN" --listen 127.0.0.1:0 --max-queue-bytes "$QUEUE_BYTES" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for _ in $(seq 100); do
        SERVER_ADDR=$(sed -n 's/^listening on //p' "$WORK/$name.out" | head -1)
        [ -n "$SERVER_ADDR" ] && return
        sleep 0.1
    done
    echo "server $name did not start" >&2
    exit 1
}
stop_server() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_cluster_up() { # ERR_FILE: until the node logs `cluster: up`
    for _ in $(seq 100); do grep -q 'cluster: up' "$1" && return; sleep 0.1; done
    echo "node did not come up: $1" >&2
    exit 1
}
load() { # scenario recv send tag [more flags]
    $LOAD --scenario "$1" --recv-addr "$2" --send-addr "$3" --clients "$CLIENTS" \
        --seconds "$SECS" --window "$WINDOW" --size "$SIZE" --tag "$4" "${@:5}"
}

RUN=$(date +%s)
RESULTS=$WORK/results.jsonl
# measure CASE TARGET N SCENARIO RECV SEND PIDS...: one run, one JSON line
measure() {
    local case=$1 target=$2 n=$3 scenario=$4 recv=$5 send=$6
    shift 6
    local pidflags=() pid out
    for pid in "$@"; do pidflags+=(--cpu-pid "$pid"); done
    local l0
    l0=$(cut -d' ' -f1 /proc/loadavg)
    out=$(load "$scenario" "$recv" "$send" "$target$n$RUN" "${pidflags[@]}")
    printf '{"case":"%s","target":"%s","run":%s,"load":%s,"r":%s}\n' \
        "$case" "$target" "$n" "$l0" "$out" >>"$RESULTS"
    echo "$case $target run $n: $out (uptime:$(uptime | sed 's/.*load/ load/'))" >&2
}

single() { # case n scenario [server flags...]
    local case=$1 n=$2 scenario=$3
    shift 3
    start_server "$case-single-$n" "$@"
    [ $# -gt 0 ] && wait_cluster_up "$WORK/$case-single-$n.err"
    local pids=("$SERVER_PID")
    [ $# -gt 0 ] && pids+=("$REDIS_PID")
    measure "$case" "$( [ $# -gt 0 ] && echo node || echo single )" "$n" "$scenario" \
        "$SERVER_ADDR" "$SERVER_ADDR" "${pids[@]}"
    stop_server "$SERVER_PID"
}
two_nodes() { # case n scenario: receivers on node A, senders on node B
    local case=$1 n=$2 scenario=$3
    start_server "$case-A-$n" --redis "$REDIS" --cluster "b$RUN$case$n" --node-timeout-ms 3000
    local a_pid=$SERVER_PID a_addr=$SERVER_ADDR
    start_server "$case-B-$n" --redis "$REDIS" --cluster "b$RUN$case$n" --node-timeout-ms 3000
    local b_pid=$SERVER_PID b_addr=$SERVER_ADDR
    wait_cluster_up "$WORK/$case-A-$n.err"
    wait_cluster_up "$WORK/$case-B-$n.err"
    measure "$case" cluster "$n" "$scenario" "$a_addr" "$b_addr" "$a_pid" "$b_pid" "$REDIS_PID"
    stop_server "$a_pid"
    stop_server "$b_pid"
}

# The two targets of each case alternate, their order swapping each run.
for n in $(seq "$RUNS"); do
    for scenario in fanout unicast; do
        if [ $((n % 2)) = 1 ]; then
            single "$scenario" "$n" "$scenario"; two_nodes "$scenario" "$n" "$scenario"
        else
            two_nodes "$scenario" "$n" "$scenario"; single "$scenario" "$n" "$scenario"
        fi
    done
    # One pair, one message in flight: the latency of one hop, unqueued.
    if [ $((n % 2)) = 1 ]; then
        CLIENTS=1 WINDOW=1 single hop "$n" unicast; CLIENTS=1 WINDOW=1 two_nodes hop "$n" unicast
    else
        CLIENTS=1 WINDOW=1 two_nodes hop "$n" unicast; CLIENTS=1 WINDOW=1 single hop "$n" unicast
    fi
    if [ $((n % 2)) = 1 ]; then
        single cost "$n" fanout; single cost "$n" fanout --redis "$REDIS" --cluster "c$RUN$n" --node-timeout-ms 3000
    else
        single cost "$n" fanout --redis "$REDIS" --cluster "c$RUN$n" --node-timeout-ms 3000; single cost "$n" fanout
    fi
done

echo
echo "$(date -u +%FT%TZ), $(nproc) cores, uptime:$(uptime | sed 's/.*load/ load/')"
echo "clients $CLIENTS, window $WINDOW (hop: 1 pair, window 1), text $SIZE bytes, up to $SECS s per run, medians of $RUNS"
python3 bench/cluster_summary.py "$RESULTS"
if [ -n "${KEEP_RESULTS:-}" ]; then cp "$RESULTS" "$KEEP_RESULTS"; fi
