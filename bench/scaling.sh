#!/usr/bin/env bash
# bench/scaling.sh - how the cost of POST /predict grows (issue 6): throughput
# against workers, connections, batch size and image size, and memory per
# worker.
#
#   bench/scaling.sh [--quick] [--keep-openblas-env] [--default-malloc] [--model FILE]
#   DURATION=10 PRECISION=int8 bench/scaling.sh
#
# Model: --model FILE, else models/default.emod, else vgg with random weights.
# Prints four markdown tables; raw files in $BUILD/bench/results/scaling.*:
#  (a) emotiond req/s, p50, p99 for each of $WORKER_COUNTS ("1 2") x $CONNS
#      ("1 4 16 64 256") connections, one 48x48 PNG per request, with
#      --queue-size $QUEUE_SIZE (default: the largest of CONNS and 16, so
#      that no request is answered 503 for a full queue);
#  (b) memory: VmRSS idle (after one request) and under load (peak of the
#      runs) for each of $RSS_WORKERS ("1 2 4"; counts not in WORKER_COUNTS
#      get one run at 16 connections) and the increment per added worker;
#  (c) the engine alone, 1 thread: images/s of nn_predict_u8 at batch sizes
#      $BATCHES ("1 8 32 64 128") for each of $PRECISIONS ("fp32 int8")
#      (bench_nn --batches);
#  (d) image size: bench/uploads.sh with IMAGES=$SIZES ("48x48.jpg 256x256.jpg
#      1920x1080.jpg 3840x2160.jpg") at 16 connections;
#  (e) micro-batching: emotiond --workers $BATCH_WORKERS (2) --max-batch B for
#      each B of $MAX_BATCHES ("1 2 8 32"; 2 is the default) at $BATCH_CONNS ("1 16 64")
#      connections, with the mean batch the workers ran (from /metrics).
# The service runs at PRECISION (fp32) with --tta false --tta-crops false. DURATION s per wrk
# point (5; 2 with --quick), WARMUP (1): 25 wrk points plus warm-ups and the
# engine-alone runs, about 4 minutes. Never fails on timing; every server it
# starts is stopped at exit.
set -u
cd "$(dirname "$0")/.." || exit 1
PROG=scaling.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
WRK=${WRK:-wrk}
OUT=$BUILD/bench/results
PRECISION=${PRECISION:-fp32}
WORKER_COUNTS=${WORKER_COUNTS:-1 2}
RSS_WORKERS=${RSS_WORKERS:-1 2 4}
CONNS=${CONNS:-1 4 16 64 256}
BATCHES=${BATCHES:-1 8 32 64 128}
PRECISIONS=${PRECISIONS:-fp32 int8}
SIZES=${SIZES:-48x48.jpg 256x256.jpg 1920x1080.jpg 3840x2160.jpg}
MAX_BATCHES=${MAX_BATCHES:-1 2 8 32}
BATCH_WORKERS=${BATCH_WORKERS:-2}
BATCH_CONNS=${BATCH_CONNS:-1 16 64}
check_precision "$PRECISION"
for p in $PRECISIONS; do check_precision "$p"; done

quick=0; keep_env=0; default_malloc=0; model=""; opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; opts+=("$1") ;;
    --keep-openblas-env) keep_env=1; opts+=("$1") ;;
    --default-malloc) default_malloc=1; opts+=("$1") ;;
    --model) [ $# -ge 2 ] || { echo "scaling.sh: --model needs a file" >&2; exit 2; }
             model=$2; shift ;;
    --model=*) model=${1#--model=} ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "scaling.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
case ${EMOTIOND_BENCH_KEEP_OPENBLAS_ENV:-} in ''|0) ;; *) keep_env=1 ;; esac
case ${EMOTIOND_BENCH_DEFAULT_MALLOC:-} in ''|0) ;; *) default_malloc=1 ;; esac
if [ $quick = 1 ]; then DURATION=${DURATION:-2}; else DURATION=${DURATION:-5}; fi
WARMUP=${WARMUP:-1}
maxc=16  # at least 16: the memory runs of RSS_WORKERS use 16 connections
for c in $CONNS $BATCH_CONNS; do [ "$c" -le "$maxc" ] || maxc=$c; done
QUEUE_SIZE=${QUEUE_SIZE:-$maxc}

for b in emotiond bench/bench_nn; do
  [ -x "$BUILD/$b" ] || { echo "scaling.sh: $BUILD/$b not built (make bench builds it)" >&2; exit 1; }
done
if ! command -v "$WRK" >/dev/null || ! command -v curl >/dev/null; then
  echo "scaling.sh: needs wrk and curl (apt-get install wrk curl)" >&2
  exit 1
fi
mkdir -p "$OUT"
rm -f "$OUT"/scaling.*
if [ -z "$model" ]; then
  if [ -r models/default.emod ]; then
    model=models/default.emod
  else
    [ -x "$BUILD/bench/make_model" ] || { echo "scaling.sh: no model (make bench builds make_model)" >&2; exit 1; }
    model=$OUT/scaling.vgg.emod
    "$BUILD/bench/make_model" config/arch/vgg.json "$model" || exit 1
  fi
elif [ ! -r "$model" ]; then
  echo "scaling.sh: cannot read $model" >&2
  exit 1
fi
PNG=$OUT/scaling.face48.png
"$PYTHON" bench/make_image.py "$PNG" 48x48 > /dev/null ||
  { echo "scaling.sh: cannot write $PNG (needs $PYTHON with numpy and PIL)" >&2; exit 1; }

# ---- the engine alone first: bench_nn sets its own environment ------------------------

first_p=${PRECISIONS%% *}
batch_list=$(echo "$BATCHES" | tr -s ' ' ',' | sed 's/^,//; s/,$//')
for p in $PRECISIONS; do
  echo "== engine alone: bench_nn --batches $batch_list --precision $p"
  "$BUILD/bench/bench_nn" "${opts[@]}" --batches "$batch_list" --precision "$p" "$model" \
    > "$OUT/scaling.engine.$p.txt" || echo "scaling.sh: bench_nn --precision $p failed" >&2
  grep -E '^(precision|infer_)' "$OUT/scaling.engine.$p.txt" | paste -sd' ' - | sed 's/^/   /'
done

# ---- image size: bench/uploads.sh (its own server, environment and files) -------------------

BUILD=$BUILD PYTHON=$PYTHON WRK=$WRK PRECISION=$PRECISION DURATION=$DURATION WARMUP=$WARMUP \
  UPLOAD_IMAGES=$SIZES UPLOAD_CONNS=16 UPLOAD_PREFIX=scaling.size bench/uploads.sh "${opts[@]}" --model "$model" \
  > "$OUT/scaling.uploads.out" 2>&1 || echo "scaling.sh: bench/uploads.sh failed (see $OUT/scaling.uploads.out)" >&2
grep '^   ' "$OUT/scaling.uploads.out"

# ---- emotiond: workers x connections, and memory ---------------------------------------

env_file=$OUT/scaling.env.txt
server_env "$env_file" "$keep_env" "$default_malloc"
res=$OUT/scaling.service.txt
put "$res" precision "$PRECISION"
put "$res" queue_size "$QUEUE_SIZE"

# counters URL: "inferences batches" from emotiond's /metrics at URL (its
# base), empty when it cannot be read.
counters() {
  curl -s -m 10 "$1/metrics" | awk '
    $1 == "emotiond_inferences_total" { i = $2 }
    $1 == "emotiond_worker_batches_total" { b = $2 }
    END { if (i != "" && b != "") print i, b }'
}

# serve_and_load KEY W CONNS...: emotiond --workers W (plus the options in the
# array SERVE_EXTRA), one request, idle RSS, a warm-up, then wrk at each
# connection count, with the mean batch of each run from /metrics. Keys
# KEY_* in $res.
SERVE_EXTRA=()
serve_and_load() {
  local key=$1 w=$2 c wf peak=0 k before after; shift 2
  local log=$OUT/scaling.emotiond.$key.log
  echo "== emotiond serve --workers $w --queue-size $QUEUE_SIZE --tta false --tta-crops false" \
       "--precision $PRECISION ${SERVE_EXTRA[*]}"
  if ! start_emotiond "$log" --model "$model" --workers "$w" --queue-size "$QUEUE_SIZE" \
       --tta false --tta-crops false --precision "$PRECISION" --log-requests false --shutdown-grace 5 \
       "${SERVE_EXTRA[@]}"; then
    stop_all
    return 1
  fi
  put "$res" "${key}_precision_served" "$(or_na "$EMOTIOND_PRECISION_SERVED")"
  local base="http://127.0.0.1:$EMOTIOND_PORT" url="http://127.0.0.1:$EMOTIOND_PORT/predict"
  curl -s -m 30 -o /dev/null -X POST -H 'Content-Type: image/png' --data-binary "@$PNG" "$url" ||
    echo "scaling.sh: $key: first request failed" >&2
  sleep 0.5
  put "$res" "${key}_rss_idle_kb" "$(rss_kb "$EMOTIOND_PID")"
  run_wrk "$OUT/scaling.$key.warmup.txt" "$PNG" image/png 16 "$WARMUP" "$url"
  for c in "$@"; do
    wf=$OUT/scaling.$key.c$c.txt
    before=$(counters "$base")
    run_wrk "$wf" "$PNG" image/png "$c" "$DURATION" "$url" "$EMOTIOND_PID"
    after=$(counters "$base")
    [ "$RUN_WRK_RSS_PEAK_KB" -le "$peak" ] || peak=$RUN_WRK_RSS_PEAK_KB
    for k in req_s ok_req_s p50_ms p99_ms; do put "$res" "${key}_c${c}_$k" "$(wrk_value "$k" "$wf")"; done
    put "$res" "${key}_c${c}_errors" "$(wrk_errors "$wf")"
    if [ -n "$before" ] && [ -n "$after" ]; then
      put "$res" "${key}_c${c}_mean_batch" "$(echo "$before $after" |
        awk '{ if ($4 > $2) printf "%.2f", ($3 - $1) / ($4 - $2) }')"
    fi
    echo "   $c connections: $(or_na "$(wrk_value req_s "$wf")") req/s," \
         "p50 $(or_na "$(wrk_value p50_ms "$wf")") ms, p99 $(or_na "$(wrk_value p99_ms "$wf")") ms," \
         "$(wrk_errors "$wf") failed, mean batch $(or_na "$(value "${key}_c${c}_mean_batch" "$res")")"
  done
  put "$res" "${key}_rss_load_kb" "$peak"
  stop_all
}

status=0
for w in $WORKER_COUNTS; do
  # shellcheck disable=SC2086  # CONNS is a list
  serve_and_load "w$w" "$w" $CONNS || status=1
done
for w in $RSS_WORKERS; do
  case " $WORKER_COUNTS " in *" $w "*) continue ;; esac
  serve_and_load "w$w" "$w" 16 || status=1
done
for b in $MAX_BATCHES; do
  SERVE_EXTRA=(--max-batch "$b")
  # shellcheck disable=SC2086  # BATCH_CONNS is a list
  serve_and_load "b$b" "$BATCH_WORKERS" $BATCH_CONNS || status=1
done
SERVE_EXTRA=()

# ---- the tables ------------------------------------------------------------------------------

echo
echo "## How the cost grows ($(or_na "$(value arch "$OUT/scaling.engine.$first_p.txt")"), emotiond $PRECISION, one view: tta and tta_crops false)"
echo
echo "### (a) Workers and connections"
echo
echo "wrk on 127.0.0.1, one 48x48 grayscale PNG ($(stat -c %s "$PNG") bytes) per request, ${DURATION} s" \
     "per point, --queue-size $QUEUE_SIZE; latencies in ms; \"failed\": socket errors, timeouts and" \
     "HTTP status ≥ 400 (req/s counts every answer); \"per worker\": req/s / workers."
echo
echo "| workers | connections | req/s | p50 | p99 | failed | req/s per worker |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
biased=""
for w in $WORKER_COUNTS; do
  for c in $CONNS; do
    r=$(value "w${w}_c${c}_req_s" "$res")
    # wrk only records requests that finish before it stops: when a request
    # waits about connections / req/s, a run shorter than 3x that sees only
    # the early ones, and its percentiles are too low
    mark=$(awk -v r="$r" -v c="$c" -v d="$DURATION" 'BEGIN { if (r + 0 > 0 && d < 3 * c / r) print " *" }')
    [ -z "$mark" ] || biased=1
    printf '| %s | %s | %s | %s | %s%s | %s | %s |\n' "$w" "$c" "$(or_na "$r")" \
      "$(or_na "$(value "w${w}_c${c}_p50_ms" "$res")")" "$(or_na "$(value "w${w}_c${c}_p99_ms" "$res")")" \
      "$mark" "$(or_na "$(value "w${w}_c${c}_errors" "$res")")" "$(ratio "$r" "$w")"
  done
done
[ -z "$biased" ] || { echo; echo "\\* latencies too low: DURATION ($DURATION s) is under 3x the time a request" \
  "waits (connections / req/s), so wrk stopped while many requests were still queued; raise DURATION."; }

echo
echo "### (b) Memory (VmRSS of the emotiond process, MB)"
echo
echo "idle: after one request; under load: the peak while wrk ran (all connection counts of (a)," \
     "or 16 connections for counts only measured here); per added worker: the difference in" \
     "load RSS to the previous row divided by the difference in workers."
echo
echo "| workers | idle | under load | per added worker (load) |"
echo "|---:|---:|---:|---:|"
prev_w=""; prev_l=""
for w in $(echo "$WORKER_COUNTS $RSS_WORKERS" | tr -s ' ' '\n' | grep . | sort -n | uniq); do
  i=$(value "w${w}_rss_idle_kb" "$res"); l=$(value "w${w}_rss_load_kb" "$res")
  inc=""
  if [ -n "$prev_w" ] && [ -n "$l" ] && [ -n "$prev_l" ] && [ "$l" -gt 0 ] && [ "$prev_l" -gt 0 ]; then
    inc=$(awk -v a="$l" -v b="$prev_l" -v n=$((w - prev_w)) 'BEGIN { printf "%.1f", (a - b) / n / 1024 }')
  fi
  printf '| %s | %s | %s | %s |\n' "$w" "$(or_na "$(mb "$i")")" "$(or_na "$(mb "$l")")" "$(or_na "$inc")"
  if [ -n "$l" ] && [ "$l" -gt 0 ]; then prev_w=$w; prev_l=$l; fi
done

echo
echo "### (c) Batch size, engine alone (bench_nn --batches, 1 thread)"
echo
echo "images/s of nn_predict_u8 on batches of that size: \"wall\" from the median call's wall" \
     "time, \"CPU\" from the thread's CPU time (what other load on the machine does not change)."
echo
hdr="| batch |"; sep="|---:|"
for p in $PRECISIONS; do
  pf=$OUT/scaling.engine.$p.txt
  hdr="$hdr $(or_na "$(value precision "$pf")") img/s wall | ms per call | img/s CPU |"; sep="$sep---:|---:|---:|"
done
echo "$hdr"; echo "$sep"
for b in $BATCHES; do
  row="| $b |"
  for p in $PRECISIONS; do
    pf=$OUT/scaling.engine.$p.txt
    row="$row $(or_na "$(value "infer_b${b}_img_s_t1" "$pf")") | $(or_na "$(value "infer_b${b}_latency_ms_t1" "$pf")") |"
    row="$row $(or_na "$(value "infer_b${b}_cpu_img_s_t1" "$pf")") |"
  done
  echo "$row"
done

echo
echo "### (d) Image size (bench/uploads.sh, 16 connections, faces=none)"
sed -n '/^wrk on/,$p' "$OUT/scaling.uploads.out"

echo
echo "### (e) Micro-batching (emotiond --workers $BATCH_WORKERS --max-batch B)"
echo
echo "The same 48x48 PNG, ${DURATION} s per point; \"mean batch\": images per forward pass the" \
     "workers ran during that point (emotiond_inferences_total / emotiond_worker_batches_total" \
     "from /metrics); B = 1 is one request per forward pass."
echo
echo "| max_batch | connections | req/s | p50 | p99 | failed | mean batch |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for b in $MAX_BATCHES; do
  for c in $BATCH_CONNS; do
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$b" "$c" \
      "$(or_na "$(value "b${b}_c${c}_req_s" "$res")")" "$(or_na "$(value "b${b}_c${c}_p50_ms" "$res")")" \
      "$(or_na "$(value "b${b}_c${c}_p99_ms" "$res")")" "$(or_na "$(value "b${b}_c${c}_errors" "$res")")" \
      "$(or_na "$(value "b${b}_c${c}_mean_batch" "$res")")"
  done
done
echo
for w in $WORKER_COUNTS $RSS_WORKERS; do
  s=$(value "w${w}_precision_served" "$res")
  [ -z "$s" ] || [ "$s" = "$PRECISION" ] ||
    echo "WARNING: emotiond --workers $w served $s, not $PRECISION (int8 needs AVX-512 VNNI, fp16 AVX2 + F16C)"
done
echo "OpenBLAS (servers): $(or_na "$(value openblas_env "$env_file")"); engine alone:" \
     "$(or_na "$(value openblas_env "$OUT/scaling.engine.$first_p.txt")") core" \
     "$(or_na "$(value openblas_core "$OUT/scaling.engine.$first_p.txt")");" \
     "malloc $(or_na "$(value malloc_env "$env_file")")"
echo "load average before the service runs: $(or_na "$(value loadavg_1min "$env_file")") on" \
     "$(or_na "$(value cpus_online "$env_file")") CPUs (wrk runs on the same cores)"
exit $status
