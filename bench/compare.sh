#!/usr/bin/env bash
# Our chat server against Redis pub/sub and against the floor (bench/relay.c,
# a bare select() relay of frames), side by side in one run: the same load
# generator (examples/chat_bench.rs), the same clients, sizes, counts and
# windows, the targets of each case interleaved (their order rotating from
# run to run), medians of 3. Every figure is then also a ratio to Redis, to
# the floor and, with BEFORE_BIN, to the build before a change.
#
#   bench/compare.sh                         # everything: 10 to 30 minutes, by the load
#   QUICK=1 bench/compare.sh                 # a smoke run: 1 run per case, 1/10 counts
#   CASES="big16k1 big16k1w64" bench/compare.sh   # only these cases (see `list` below)
#   BEFORE_BIN=/path/to/chat_server bench/compare.sh   # one more target: "before"
#   TARGETS="chat before" CASES=big16k1w64 RUNS=5 BEFORE_BIN=... bench/compare.sh
#   CASES=list bench/compare.sh              # print the case names and stop
#   TARGETS=chat CASES="fanout100 tls_fanout100 ws_fanout100 big16k1 tls_big16k1 ws_big16k1" bench/compare.sh
#                                            # TLS and WebSocket against plain TCP, in one run
#
# Environment: RUNS (default 3), QUICK, CASES (space-separated case names;
# default all), TARGETS (default "chat redis relay", plus "before" when
# BEFORE_BIN is set; also "relaywide": the relay with frames as long as
# ours, the floor for the same bytes on the wire), BEFORE_BIN (another chat_server binary, measured as
# the target "before"), CHAT_BIN (the chat_server measured as "chat";
# default: built from this tree), CHAT_ARGS (more flags for it, e.g.
# "--read-budget 65536"), RESULTS (default bench/results.jsonl),
# CARGO_TARGET_DIR.
#
# It installs what it needs when missing: redis-server, gcc and linux-perf
# with apt-get, matplotlib with pip. It builds the release examples and the
# relay (gcc -O2), starts a fresh server for every measured run (ours:
# chat_server on port 0; Redis: a free loopback port, no persistence, no
# output-buffer limit for pub/sub; the relay on port 0) and stops it after,
# appends every JSON line to RESULTS (each labelled RUN_ID/case/target/run),
# prints the table of medians and ratios (also saved as
# bench/results/summary-RUN_ID.md, or beside another RESULTS file) and,
# when the clients sweep ran, draws docs/perf-clients.png (a QUICK run's
# plot goes beside its summary instead). Loopback only; every run stops by itself.
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
BEFORE_BIN=${BEFORE_BIN:-}
DEFAULT_TARGETS="chat redis relay${BEFORE_BIN:+ before}"
TARGETS=${TARGETS:-$DEFAULT_TARGETS}
CASES=${CASES:-}
# No slow-consumer drops under a benchmark's bounded window: the same as
# Redis with its pub/sub output-buffer limit off.
QUEUE_BYTES=$((64 << 20))
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$CARGO_TARGET_DIR/release/examples
CHAT_BIN=${CHAT_BIN:-$BIN/chat_server}

say() { printf '\n== %s\n' "$*" >&2; }

# ----- the cases -----
# name -> generator flags (message counts before QUICK's scaling). The order
# of CASE_ORDER is the order of a run. Cases named FAMILYwN are the window
# sweep: FAMILY's flags with --window N (FAMILY itself is one of the
# windows: 64 for fanout100, 16 for big16k1 and big16k10).
declare -A CASE_FLAGS
CASE_ORDER=()
add_case() { # name flags...
    CASE_FLAGS[$1]="${*:2}"
    CASE_ORDER+=("$1")
}
FANOUT="--scenario fanout --senders 1 --size 64"
BIG="--scenario fanout --senders 1 --size 16384"
add_case fanout100 "$FANOUT --window 64 --clients 100 --messages 100000"
add_case fanout1000 "$FANOUT --window 64 --clients 1000 --messages 10000"
add_case unicast100pairs "--scenario unicast --clients 200 --size 64 --window 64 --messages 10000"
add_case rtt100 "--scenario rtt --clients 100 --senders 1 --pingers 4 --size 64 --window 64 --messages 50000"
add_case big16k1 "$BIG --window 16 --clients 1 --messages 100000"
add_case big16k10 "$BIG --window 16 --clients 10 --messages 20000"
add_case idle1000 "--scenario idle --clients 1000"
# The window sweep: messages in flight per sender 1, 16, 64, 256. With one
# in flight every message is a round trip through the server: fewer of them.
add_case fanout100w1 "$FANOUT --window 1 --clients 100 --messages 2000"
add_case fanout100w16 "$FANOUT --window 16 --clients 100 --messages 30000"
add_case fanout100w256 "$FANOUT --window 256 --clients 100 --messages 100000"
add_case big16k1w1 "$BIG --window 1 --clients 1 --messages 10000"
add_case big16k1w64 "$BIG --window 64 --clients 1 --messages 100000"
add_case big16k1w256 "$BIG --window 256 --clients 1 --messages 100000"
add_case big16k10w1 "$BIG --window 1 --clients 10 --messages 2000"
add_case big16k10w64 "$BIG --window 64 --clients 10 --messages 20000"
add_case big16k10w256 "$BIG --window 256 --clients 10 --messages 20000"
# The transports: the same fan-out and 16 KiB cases over TLS (the server
# with --tls-cert, a self-signed certificate made here with openssl) and
# over WebSocket (its --ws-listen address); measured on "chat" only,
# beside the plain cases in the same run.
for t in tls ws; do
    add_case "${t}_fanout100" "$FANOUT --window 64 --clients 100 --messages 30000"
    add_case "${t}_big16k1" "$BIG --window 16 --clients 1 --messages 30000"
done
# Run once each, after the repeated cases: system calls counted, and the
# number of clients swept for the plot.
add_case sys_fanout100 "$FANOUT --window 64 --clients 100 --messages 30000"
add_case sys_fanout1000 "$FANOUT --window 64 --clients 1000 --messages 3000"
for n in 10 30 100 300 1000; do
    add_case "sweep$n" "$FANOUT --window 64 --clients $n --messages $((4000000 / n))"
done
# Several server processes behind one port (SO_REUSEPORT). This is where
# they go once chat_server has --reuse-port: cases reuse1, reuse2, reuse4
# (fan-out to 1000 clients spread over 1, 2 and 4 processes, one Redis as
# the peer), a start_chat_procs N beside start_chat below that starts N
# servers on one port, and the server CPU summed over their pids (the
# generator's --server-pid takes one today). Measured meanwhile by
# bench/reuse_port.sh, a script of its own.
REUSE_PORT_CASES=()
# The loopback TCP stream (no server), the ceiling for payload bytes.
add_case tcp "--scenario bandwidth --size 1048576 --messages 4096"

if [ "$CASES" = list ]; then
    for c in "${CASE_ORDER[@]}"; do printf '%-16s %s\n' "$c" "${CASE_FLAGS[$c]}"; done
    exit 0
fi
for c in $CASES; do
    [ -n "${CASE_FLAGS[$c]:-}" ] || { echo "unknown case $c (CASES=list shows them)" >&2; exit 2; }
done
wanted() { [ -z "$CASES" ] || [[ " $CASES " == *" $1 "* ]]; }
for t in $TARGETS; do
    case $t in
        chat | redis | relay | relaywide) ;;
        before) [ -x "$BEFORE_BIN" ] || { echo "TARGETS has before: set BEFORE_BIN to a chat_server binary" >&2; exit 2; } ;;
        *) echo "unknown target $t (chat, redis, relay, before)" >&2; exit 2 ;;
    esac
done
if [ "${#REUSE_PORT_CASES[@]}" -gt 0 ]; then
    echo "SO_REUSEPORT cases need chat_server --reuse-port" >&2
    exit 2
fi

WORK=$(mktemp -d /tmp/chat-compare.XXXXXX)
mkdir -p bench/results docs
# 1000 clients and their sockets in one generator process.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

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
command -v gcc >/dev/null || { say "installing gcc"; apt_install gcc libc6-dev; }
command -v openssl >/dev/null || { say "installing openssl"; apt_install openssl; }
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

say "building (release) and the relay (gcc -O2)"
cargo build --release --example chat_server --example chat_bench
RELAY_BIN=$WORK/relay
gcc -O2 -Wall -o "$RELAY_BIN" bench/relay.c
# The TLS cases' certificate: self-signed, for localhost and 127.0.0.1
# (the generator accepts any certificate; this is about cost, not trust).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$WORK/tls-key.pem" -out "$WORK/tls-cert.pem" 2>/dev/null

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

# start_listening BIN ARGS...: a server that prints `listening on ADDR`.
start_listening() {
    # Removed first: the shell truncates it only once the server has
    # forked, and the wait below must not read the last server's line.
    rm -f "$WORK/server.out"
    "$@" >"$WORK/server.out" 2>"$WORK/server.err" &
    SERVER_PID=$!
    wait_for 10 grep -q '^listening on ' "$WORK/server.out"
    SERVER_ADDR=$(sed -n 's/^listening on //p' "$WORK/server.out" | head -1)
}
# The flags a case's transport needs on the server (TRANSPORT: plain, tls
# or ws, set by bench), and for ws the address to use: its second line.
transport_flags() {
    case $TRANSPORT in
        tls) echo "--tls-cert $WORK/tls-cert.pem --tls-key $WORK/tls-key.pem" ;;
        ws) echo "--ws-listen 127.0.0.1:0" ;;
    esac
}
use_transport_addr() {
    if [ "$TRANSPORT" = ws ]; then
        wait_for 10 grep -q '^websocket on ' "$WORK/server.out"
        SERVER_ADDR=$(sed -n 's/^websocket on //p' "$WORK/server.out" | head -1)
    fi
}
start_chat() {
    # shellcheck disable=SC2086,SC2046 # CHAT_ARGS and the transport's are lists of flags
    start_listening "$CHAT_BIN" --listen 127.0.0.1:0 --max-queue-bytes "$QUEUE_BYTES" ${CHAT_ARGS:-} $(transport_flags)
    use_transport_addr
}
start_before() {
    # shellcheck disable=SC2046 # a list of flags
    start_listening "$BEFORE_BIN" --listen 127.0.0.1:0 --max-queue-bytes "$QUEUE_BYTES" $(transport_flags)
    use_transport_addr
}
start_relay() { start_listening "$RELAY_BIN" --listen 127.0.0.1:0; }
# The relay again, its frames as long as the ones our server delivers: a
# message frame carries "type" and "from" around the text, 36 bytes more
# than the generator's own frame at its nicks (ours put 104 bytes on the
# wire per 64-byte delivery, the relay 68). The floor for the same bytes.
RELAY_WIDE_EXTRA=36
start_relaywide() { start_relay; }

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
# bench CASE TARGET RUN: one measured run of CASE against a fresh server of
# TARGET; its JSON line goes to the results.
bench() {
    local case=$1 target=$2 run=$3
    local flags
    read -r -a flags <<<"${CASE_FLAGS[$case]}"
    # Scale the message count (QUICK).
    local i
    for i in "${!flags[@]}"; do
        if [ "${flags[$i]}" = --messages ]; then
            flags[i + 1]=$((flags[i + 1] / SCALE))
        fi
    done
    if [ "$case" = tcp ]; then
        "$BIN/chat_bench" "${flags[@]}" --json --label "$RUN_ID/tcp/tcp/$run" >"$WORK/out.txt" 2>&1 || true
        grep -v '^{' "$WORK/out.txt" >&2
        grep '^{' "$WORK/out.txt" >>"$RESULTS" || echo "FAILED: tcp run $run" >&2
        return 0
    fi
    TRANSPORT=plain
    case $case in
        tls_* | ws_*)
            TRANSPORT=${case%%_*}
            # Only our server speaks them.
            [ "$target" = chat ] || return 0
            ;;
    esac
    # The relay copies every frame to everyone: no unicast, no ping.
    if [ "$target" = relay ] && [[ "${CASE_FLAGS[$case]}" == *"--scenario unicast"* || "${CASE_FLAGS[$case]}" == *"--scenario rtt"* ]]; then
        return 0
    fi
    # The relay copies every frame to everyone: no unicast, no ping.
    if [ "$target" = relaywide ] && [[ "${CASE_FLAGS[$case]}" == *"--scenario unicast"* || "${CASE_FLAGS[$case]}" == *"--scenario rtt"* || "${CASE_FLAGS[$case]}" == *"--scenario idle"* ]]; then
        return 0
    fi
    if [ "$target" = relaywide ]; then
        for i in "${!flags[@]}"; do
            if [ "${flags[$i]}" = --size ]; then
                flags[i + 1]=$((flags[i + 1] + RELAY_WIDE_EXTRA))
            fi
        done
    fi
    "start_$target"
    local speaks=$target
    [ "$target" = before ] && speaks=chat
    [ "$target" = relaywide ] && speaks=relay
    local extra=()
    if [[ "$case" == sys_* ]] && [ "$SYSCALLS" = perf ]; then
        extra=(--syscalls)
    fi
    local strace_pid=
    if [[ "$case" == sys_* ]] && [ "$SYSCALLS" = strace ]; then
        strace -c -f -p "$SERVER_PID" -o "$WORK/strace.txt" 2>/dev/null &
        strace_pid=$!
    fi
    local ok=1
    "$BIN/chat_bench" --target "$speaks" --addr "$SERVER_ADDR" --server-pid "$SERVER_PID" \
        --json --label "$RUN_ID/$case/$target/$run" --duration-secs 120 --transport "$TRANSPORT" \
        "${extra[@]}" "${flags[@]}" \
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
    echo "[$case $target run $run]" >&2
    grep -v '^{' "$WORK/out.txt" >&2
    if [ "$ok" = 0 ]; then
        echo "FAILED: $case $target run $run (left out of the results)" >&2
        return 0
    fi
    grep '^{' "$WORK/out.txt" | tee -a "$RESULTS" >"$WORK/last.json"
}

# The targets of run RUN, rotated by one per run so that none always goes
# first (the machine's load drifts).
rotated() {
    local -a ts
    read -r -a ts <<<"$TARGETS"
    local n=${#ts[@]} k=$(($1 % ${#ts[@]})) i
    for ((i = 0; i < n; i++)); do printf '%s ' "${ts[(i + k) % n]}"; done
}

say "run $RUN_ID on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
say "targets: $TARGETS${BEFORE_BIN:+ (before: $BEFORE_BIN)}; cases: ${CASES:-all}"
uptime >&2

# Once-only cases run after the repeated ones.
once() { [[ "$1" == sys_* || "$1" == sweep* ]]; }
for run in $(seq 1 "$RUNS"); do
    for case in "${CASE_ORDER[@]}"; do
        if once "$case" || ! wanted "$case"; then continue; fi
        if [ "$case" = tcp ]; then
            say "run $run/$RUNS: loopback TCP baseline"
            bench tcp tcp "$run"
            continue
        fi
        say "run $run/$RUNS: $case"
        for target in $(rotated "$run"); do
            bench "$case" "$target" "$run"
        done
    done
done
for case in "${CASE_ORDER[@]}"; do
    if ! once "$case" || ! wanted "$case"; then continue; fi
    say "$case (once)"
    for target in $(rotated 1); do
        bench "$case" "$target" 1
    done
done

uptime >&2
# The table goes beside the results (bench/results/ for the default file).
SUMMARY_DIR=bench/results
[ "$RESULTS" = bench/results.jsonl ] || SUMMARY_DIR=$(dirname "$RESULTS")
python3 bench/summarize.py "$RESULTS" "$RUN_ID" | tee "$SUMMARY_DIR/summary-$RUN_ID.md"
# The plot in docs/ only from a full run into the default results; a smoke
# run's or another file's goes beside its summary.
PLOT=docs/perf-clients.png
if [ "$QUICK" = 1 ] || [ "$RESULTS" != bench/results.jsonl ]; then
    PLOT=$SUMMARY_DIR/perf-clients-$RUN_ID.png
fi
if grep -q "\"$RUN_ID/sweep" "$RESULTS"; then
    python3 bench/plot.py "$RESULTS" "$RUN_ID" "$PLOT"
fi
