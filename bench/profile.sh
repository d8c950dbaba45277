#!/usr/bin/env bash
# A sampled profile of one chat_server build under one generator case:
# perf with the cpu-clock event (no hardware counters in a VM guest), the
# kernel and user space, the server's pid only. Prints the top symbols
# (self time) and the share by binary.
#
#   bench/profile.sh SERVER_BIN GENERATOR FLAGS...
#   bench/profile.sh target/release/examples/chat_server --scenario fanout --clients 100 --size 64 --window 64 --messages 30000
#
# OUT (default a fresh /tmp directory) keeps perf.data; TOP (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$1
shift
BENCH=${BENCH:-target/release/examples/chat_bench}
OUT=${OUT:-$(mktemp -d /tmp/chat-profile.XXXXXX)}
TOP=${TOP:-15}
mkdir -p "$OUT"
"$BIN" --listen 127.0.0.1:0 --max-queue-bytes 67108864 >"$OUT/server.out" 2>"$OUT/server.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^listening on ' "$OUT/server.out" && break; sleep 0.05; done
addr=$(sed -n 's/^listening on //p' "$OUT/server.out")
perf record -e cpu-clock -F 2999 -g -p "$pid" -o "$OUT/perf.data" 2>"$OUT/perf.err" &
perf_pid=$!
sleep 0.5
"$BENCH" --target chat --addr "$addr" --server-pid "$pid" --duration-secs 120 "$@" | sed -n 2,4p
kill -INT "$perf_pid"
wait "$perf_pid" || true
perf report -i "$OUT/perf.data" --no-children --sort symbol -g none --percent-limit 1 2>/dev/null \
    | grep -E '^ +[0-9]' | head -"$TOP"
echo "by binary:"
perf report -i "$OUT/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -E '^ +[0-9]' | head -5
echo "perf.data in $OUT" >&2
