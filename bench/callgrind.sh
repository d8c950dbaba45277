#!/usr/bin/env bash
# User-space instructions per delivery of one chat_server build, with
# valgrind's callgrind (independent of the machine's load; the kernel's
# copies are not in it): the server under callgrind, the load generator
# outside it, two runs of different message counts so that set-up cancels
# out, the difference divided by the difference in deliveries.
#
#   bench/callgrind.sh SERVER_BIN [GENERATOR FLAGS...]
#   bench/callgrind.sh target/release/examples/chat_server --scenario fanout --clients 100 --size 64 --window 64
#   OUT=/tmp/cg bench/callgrind.sh BIN ...   # keeps the callgrind files there
#
# Prints `Ir/delivery N` and the top functions of the larger run
# (callgrind_annotate). MESSAGES (default "2000 4000") sets the two counts;
# BENCH the generator (default target/release/examples/chat_bench);
# SERVER_ARGS more server flags; LISTEN_LINE the line that names the
# address to connect to ("listening on", or "websocket on"); GEN_ARGS more
# generator flags placed first (e.g. "--transport ws").
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$1
shift
BENCH=${BENCH:-target/release/examples/chat_bench}
MESSAGES=${MESSAGES:-2000 4000}
OUT=${OUT:-$(mktemp -d /tmp/chat-callgrind.XXXXXX)}
LISTEN_LINE=${LISTEN_LINE:-listening on}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
mkdir -p "$OUT"
declare -A IR DELIV
for n in $MESSAGES; do
    rm -f "$OUT/server.out"
    # shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$n" "$BIN" --listen 127.0.0.1:0 \
        --max-queue-bytes 67108864 ${SERVER_ARGS:-} >"$OUT/server.out" 2>"$OUT/valgrind.$n.err" &
    pid=$!
    for _ in $(seq 600); do
        grep -q "^$LISTEN_LINE " "$OUT/server.out" 2>/dev/null && break
        sleep 0.1
    done
    addr=$(sed -n "s/^$LISTEN_LINE //p" "$OUT/server.out" | head -1)
    # shellcheck disable=SC2086 # GEN_ARGS is a list of flags
    "$BENCH" ${GEN_ARGS:-} --target chat --addr "$addr" --messages "$n" \
        --duration-secs 600 --json "$@" >"$OUT/bench.$n" 2>&1
    kill -INT "$pid"
    wait "$pid" || true
    IR[$n]=$(sed -n 's/^summary: //p' "$OUT/cg.$n")
    DELIV[$n]=$(grep '^{' "$OUT/bench.$n" | python3 -c 'import json,sys; print(json.load(sys.stdin)["deliveries"])')
done
read -r a b <<<"$MESSAGES"
python3 -c "print('Ir/delivery', round(($((IR[$b])) - $((IR[$a]))) / ($((DELIV[$b])) - $((DELIV[$a]))), 1))"
callgrind_annotate "$OUT/cg.$b" 2>/dev/null | sed -n '1,40p' | grep -E '^ *[0-9,]+ \(' | head -25
echo "callgrind files in $OUT" >&2
