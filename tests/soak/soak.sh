#!/bin/sh
# soak.sh - the soak test of issue 7 (tests/README.md, "Load held").
#
#   make soak                      64 connections for 300 s (SOAK_CONNS, SOAK_SECONDS)
#   make soak-valgrind             the same mix for 60 s on 8 connections, server under Valgrind
#   BUILD=build tests/soak/soak.sh [--valgrind]
#
# Starts `emotiond serve` on 127.0.0.1 with the committed default model,
# drives it with tests/soak/loadgen (mixed valid, corrupt and oversize
# requests; every answer checked), samples the server's RSS every
# SOAK_SAMPLE seconds, then stops it with SIGTERM. Fails when an answer was
# unexpected (any 5xx included), when RSS grew after warm-up by more than
# SOAK_RSS_SLACK_KB (not under Valgrind, whose shadow memory grows), when the
# server did not exit cleanly, or (--valgrind) when Valgrind reports a definite
# leak or a memory error.
set -eu

BUILD=${BUILD:-build}
VALGRIND=0
[ "${1:-}" = "--valgrind" ] && VALGRIND=1
if [ $VALGRIND = 1 ]; then
    SECONDS_RUN=${SOAK_SECONDS:-60}
    CONNS=${SOAK_CONNS:-8}
else
    SECONDS_RUN=${SOAK_SECONDS:-300}
    CONNS=${SOAK_CONNS:-64}
fi
PORT=${SOAK_PORT:-18181}
SAMPLE=${SOAK_SAMPLE:-5}
MAX_BODY=${SOAK_MAX_BODY:-262144}
RSS_SLACK_KB=${SOAK_RSS_SLACK_KB:-4096}
MODEL=${SOAK_MODEL:-models/default.emod}
OUT=${SOAK_OUT:-$BUILD/soak}
mkdir -p "$OUT"

for f in "$BUILD/emotiond" "$BUILD/tests/soak/loadgen" "$MODEL"; do
    [ -e "$f" ] || { echo "soak: $f is missing (make soak builds it)"; exit 2; }
done
if curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; then
    echo "soak: port $PORT is in use; set SOAK_PORT"
    exit 2
fi

set -- "$BUILD/emotiond" serve --host 127.0.0.1 --port "$PORT" --model "$MODEL" \
    --max-body-bytes "$MAX_BODY" --log-requests false
if [ $VALGRIND = 1 ]; then
    command -v valgrind >/dev/null || { echo "soak: valgrind missing: apt-get install -y valgrind"; exit 2; }
    # Definite leaks and memory errors fail the run; "possibly lost" blocks
    # are the thread pools' stacks (OpenMP, OpenBLAS), alive until exit.
    # One OpenMP/OpenBLAS thread per worker, and no spinning: Valgrind runs
    # one thread at a time, so a spinning OpenMP thread would stall the rest.
    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive
    set -- valgrind --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite --error-exitcode=99 \
        --log-file="$OUT/valgrind.log" "$@"
fi
"$@" >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT INT TERM

# ready when /healthz answers (Valgrind takes a while to start)
i=0
until curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 $SERVER 2>/dev/null; then
        echo "soak: the server did not start; its log:"
        cat "$OUT/server.log"
        exit 1
    fi
    sleep 0.1
done

# With Valgrind the process is valgrind itself: its RSS is the guest's plus
# the tool's, still fine for "flat or not".
echo "t_s,rss_kb" >"$OUT/rss.csv"
(
    t=0
    while kill -0 $SERVER 2>/dev/null; do
        rss=$(awk '/^VmRSS:/ {print $2}' /proc/$SERVER/status 2>/dev/null || true)
        [ -n "$rss" ] && echo "$t,$rss" >>"$OUT/rss.csv"
        sleep "$SAMPLE"
        t=$((t + SAMPLE))
    done
) &
SAMPLER=$!

echo "soak: $CONNS connections for $SECONDS_RUN s against $MODEL (pid $SERVER), max body $MAX_BODY"
rc=0
"$BUILD/tests/soak/loadgen" --port "$PORT" --conns "$CONNS" --seconds "$SECONDS_RUN" \
    --max-body "$MAX_BODY" | tee "$OUT/loadgen.txt" || rc=1
# tee hides loadgen's status; read the verdict from its output instead
grep -q "unexpected 0; 5xx 0" "$OUT/loadgen.txt" || rc=1

curl -s "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics.txt" || true
kill -TERM $SERVER
server_rc=0
wait $SERVER || server_rc=$?
trap - EXIT INT TERM
kill $SAMPLER 2>/dev/null || true
wait $SAMPLER 2>/dev/null || true

# RSS: warm-up is the first fifth of the run (at least one sample); flat
# means the largest sample after it exceeds the first sample after it by at
# most the slack.
awk -F, -v total="$SECONDS_RUN" -v slack="$RSS_SLACK_KB" '
    NR == 1 { next }
    { t = $1; r = $2; if (r > peak) peak = r }
    t >= total / 5 && base == "" { base = r; base_t = t }
    base != "" { if (r > late) late = r; n++ }
    END {
        if (base == "") { print "soak: RSS: too few samples"; exit 1 }
        printf "soak: RSS after warm-up (t=%d s) %.1f MB, largest later %.1f MB " \
               "(growth %+.1f MB over %d samples), peak %.1f MB\n",
               base_t, base / 1024, late / 1024, (late - base) / 1024, n, peak / 1024
        exit (late - base > slack) ? 1 : 0
    }' "$OUT/rss.csv" || {
    # Under Valgrind the process's RSS includes the tool's own shadow memory,
    # which grows as more of the heap is touched: reported, not judged (the
    # plain soak judges RSS; Valgrind judges leaks).
    if [ $VALGRIND = 1 ]; then
        echo "soak: (under Valgrind the RSS includes Valgrind's shadow memory: not judged)"
    else
        echo "soak: RSS grew by more than $RSS_SLACK_KB KB after warm-up"
        rc=1
    fi
}

if [ $server_rc -ne 0 ]; then
    echo "soak: the server exited with status $server_rc (see $OUT/server.log)"
    [ $VALGRIND = 1 ] && grep -E "definitely lost|ERROR SUMMARY" "$OUT/valgrind.log" || true
    rc=1
fi
if [ $VALGRIND = 1 ]; then
    grep -E "definitely lost|indirectly lost|possibly lost|ERROR SUMMARY" "$OUT/valgrind.log" \
        | sed 's/^==[0-9]*== */soak: valgrind: /'
fi
grep -E '^emotiond_http_requests_total' "$OUT/metrics.txt" | head -20 | sed 's/^/soak: metrics: /' || true
[ $rc = 0 ] && echo "soak: PASS" || echo "soak: FAIL (files in $OUT)"
exit $rc
