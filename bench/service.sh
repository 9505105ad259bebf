#!/usr/bin/env bash
# bench/service.sh - POST /predict of emotiond against a Flask + PyTorch service
# and against the engine alone, with wrk on loopback.
#
#   bench/service.sh [--quick] [--keep-openblas-env] [--default-malloc] [--no-uploads]
#                    [--model FILE] [ARCH]
#   PRECISION=int8 bench/service.sh --model models/default.emod
#
# Serves one model (--model FILE, else config/arch/ARCH.json, default vgg,
# with random weights from $BUILD/bench/make_model) with `emotiond serve
# --workers $WORKERS` and with bench/flask_service.py under gunicorn
# ($WORKERS workers, the faster of eager and TorchScript), one after the other,
# on 127.0.0.1 only; wrk POSTs one 48x48 PNG at each of $CONNS connections for
# $DURATION s. Also runs `bench_nn --workers $WORKERS` (engine alone) and
# bench_stalls (how long the machine pauses busy threads, $STALL_SECONDS s
# with one thread and with one per CPU: the pauses p99 reads). Prints
# a markdown table; raw output in $BUILD/bench/results/service.*. Both servers
# get the same OpenBLAS/malloc environment as bench_nn and torch_bench.py (see
# bench/README.md) and are always stopped at exit. PRECISION (fp32, int8 or fp16,
# default fp32) is what emotiond serves and bench_nn runs; the Flask side is
# always PyTorch fp32. Then bench/uploads.sh (large uploads; --no-uploads
# skips it). Never fails on timing; exits non-zero only when a tool is
# missing or emotiond cannot be started.
set -u
cd "$(dirname "$0")/.." || exit 1
PROG=service.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
WRK=${WRK:-wrk}
OUT=$BUILD/bench/results
WORKERS=${WORKERS:-2}
WRK_THREADS=${WRK_THREADS:-1}       # wrk shares the machine's cores with the server
LOG_REQUESTS=${SERVICE_LOG_REQUESTS:-false}  # gunicorn logs no requests either
PRECISION=${PRECISION:-fp32}        # emotiond and bench_nn; Flask stays PyTorch fp32
check_precision "$PRECISION"

quick=0; keep_env=0; default_malloc=0; uploads=1; model=""; arch=""; opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; opts+=("$1") ;;
    --keep-openblas-env) keep_env=1; opts+=("$1") ;;
    --default-malloc) default_malloc=1; opts+=("$1") ;;
    --no-uploads) uploads=0 ;;
    --model) [ $# -ge 2 ] || { echo "service.sh: --model needs a file" >&2; exit 2; }
             model=$2; shift ;;
    --model=*) model=${1#--model=} ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "service.sh: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$arch" ] || { echo "service.sh: one architecture at a time" >&2; exit 2; }
       arch=$1 ;;
  esac
  shift
done
case ${EMOTIOND_BENCH_KEEP_OPENBLAS_ENV:-} in ''|0) ;; *) keep_env=1 ;; esac
case ${EMOTIOND_BENCH_DEFAULT_MALLOC:-} in ''|0) ;; *) default_malloc=1 ;; esac
arch=${arch:-vgg}
if [ $quick = 1 ]; then
  DURATION=${DURATION:-2}; WARMUP=${WARMUP:-1}
else
  DURATION=${DURATION:-10}; WARMUP=${WARMUP:-2}
fi
CONNS=${CONNS:-1 16 64}
START_TIMEOUT=${START_TIMEOUT:-120}  # seconds; torch start-up is slow on a busy machine

# ---- helpers (the rest are in bench/lib.sh) -----------------------------------------

# overhead SERVICE ENGINE: (1 - service/engine) in %, n/a when missing.
overhead() {
  awk -v s="$1" -v e="$2" 'BEGIN {
    if (s == "" || e == "" || e == "nan" || e + 0 == 0) print "n/a";
    else printf "%.1f%%\n", 100 * (1 - s / e) }'
}

# ---- measuring one server ----------------------------------------------------------

# measure NAME PORT PID...: idle RSS, one request (kept for the cross-check),
# a warm-up, then wrk at each connection count with RSS sampled every 0.25 s.
# Results as "key value" lines in $OUT/service.NAME.txt.
measure() {
  local name=$1 port=$2; shift 2
  local pids=("$@") res=$OUT/service.$name.txt url="http://127.0.0.1:$port/predict" c peak k v wf
  curl -s -m 30 -X POST -H 'Content-Type: image/png' --data-binary "@$PNG" "$url" \
    > "$OUT/service.$name.response.json" || echo "service.sh: $name: first request failed" >&2
  sleep 0.5
  put "$res" rss_idle_kb "$(rss_kb "${pids[@]}")"
  run_wrk "$OUT/service.$name.warmup.txt" "$PNG" image/png 16 "$WARMUP" "$url"
  peak=0
  for c in $CONNS; do
    wf=$OUT/service.$name.c$c.txt
    echo "== $name: wrk -c$c -d${DURATION}s POST /predict"
    run_wrk "$wf" "$PNG" image/png "$c" "$DURATION" "$url" "${pids[@]}"
    [ "$RUN_WRK_RSS_PEAK_KB" -le "$peak" ] || peak=$RUN_WRK_RSS_PEAK_KB
    for k in req_s ok_req_s p50_ms p99_ms errors_connect errors_read errors_write \
             errors_status errors_timeout; do
      v=$(value "wrk_$k" "$wf")
      put "$res" "c${c}_$k" "$v"
    done
    echo "   $(or_na "$(value wrk_req_s "$wf")") req/s, p50 $(or_na "$(value wrk_p50_ms "$wf")") ms," \
         "p99 $(or_na "$(value wrk_p99_ms "$wf")") ms, $(wrk_errors "$wf") failed requests"
  done
  put "$res" rss_load_kb "$peak"
}

# ---- checks and inputs ------------------------------------------------------------

for b in emotiond bench/make_model bench/bench_nn; do
  if [ ! -x "$BUILD/$b" ]; then
    echo "service.sh: $BUILD/$b not built (make bench builds it)" >&2
    exit 1
  fi
done
if ! command -v "$WRK" >/dev/null || ! command -v curl >/dev/null; then
  echo "service.sh: needs wrk and curl (apt-get install wrk curl)" >&2
  exit 1
fi
have_flask=1
if ! "$PYTHON" -c 'import torch, flask, gunicorn, PIL, numpy' 2>/dev/null; then
  echo "service.sh: $PYTHON lacks torch, flask, gunicorn, PIL or numpy;" \
       "Flask columns will read n/a" >&2
  have_flask=0
fi

mkdir -p "$OUT"
rm -f "$OUT"/service.*
PNG=$OUT/service.face48.png
if [ -z "$model" ]; then
  model=$OUT/service.$arch.emod
  "$BUILD/bench/make_model" "config/arch/$arch.json" "$model" || exit 1
elif [ ! -r "$model" ]; then
  echo "service.sh: cannot read $model" >&2
  exit 1
fi
# One 48x48 8-bit grayscale PNG (a smooth pattern plus noise, ~2 KB), what a
# client sends after cropping a face.
if ! "$PYTHON" bench/make_image.py "$PNG" 48x48 > /dev/null; then
  echo "service.sh: cannot write the test PNG (needs $PYTHON with numpy and PIL)" >&2
  exit 1
fi

# ---- the engine alone (bench_nn fixes its own environment, as in run.sh) ---------

ef=$OUT/service.engine.txt
echo "== engine alone: bench_nn --workers $WORKERS --precision $PRECISION $model"
"$BUILD/bench/bench_nn" "${opts[@]}" --workers "$WORKERS" --precision "$PRECISION" "$model" | tee "$ef" ||
  echo "service.sh: bench_nn --workers failed (engine columns n/a)" >&2

# ---- the servers' environment: exactly what bench_nn and torch_bench.py do ----------

env_file=$OUT/service.env.txt
server_env "$env_file" "$keep_env" "$default_malloc"

# ---- how long this machine pauses busy threads (bench/bench_stalls.c) -------------------

sf=$OUT/service.stalls.txt
: > "$sf"
if [ -x "$BUILD/bench/bench_stalls" ]; then
  echo "== bench_stalls: 1 busy thread, then one per CPU, ${STALL_SECONDS:-5} s each"
  "$BUILD/bench/bench_stalls" --threads 1 --seconds "${STALL_SECONDS:-5}" | sed 's/^stalls_/one_/' >> "$sf"
  "$BUILD/bench/bench_stalls" --seconds "${STALL_SECONDS:-5}" | sed 's/^stalls_/all_/' >> "$sf"
  sed 's/^/   /' "$sf"
fi

# ---- emotiond -------------------------------------------------------------------------

cf=$OUT/service.emotiond.txt
clog=$OUT/service.emotiond.log
echo "== emotiond serve --workers $WORKERS --tta false --tta-crops false --precision $PRECISION"
status=1  # until emotiond has been measured
put "$cf" precision "$PRECISION"
# --tta false --tta-crops false: the Flask side runs one forward pass per
# image, so must we (the service default is 10 views)
if start_emotiond "$clog" --model "$model" --workers "$WORKERS" --tta false --tta-crops false \
     --precision "$PRECISION" --log-requests "$LOG_REQUESTS" --shutdown-grace 5; then
  sed 's/^/   /' "$clog"
  put "$cf" precision_served "$(or_na "$EMOTIOND_PRECISION_SERVED")"
  put "$cf" pid "$EMOTIOND_PID"
  put "$cf" openblas_env_seen "$(environ_of "$EMOTIOND_PID")"
  measure emotiond "$EMOTIOND_PORT" "$EMOTIOND_PID"
  status=0
fi
stop_all

# ---- Flask + PyTorch under gunicorn -------------------------------------------------------

ff=$OUT/service.flask.txt
put "$ff" precision fp32
flog=$OUT/service.flask.log
if [ $have_flask = 1 ]; then
  echo "== Flask + PyTorch: picking the faster of eager and TorchScript (batch 1, 1 thread)"
  "$PYTHON" bench/flask_service.py --model "$model" --pick-variant | tee "$ff"
  variant=$(value flask_variant "$ff")
  if [ -n "$variant" ]; then
    echo "== gunicorn --workers $WORKERS flask_service:app ($variant)"
    EMOTIOND_FLASK_MODEL=$model EMOTIOND_FLASK_VARIANT=$variant EMOTIOND_FLASK_THREADS=1 \
      "$PYTHON" -m gunicorn --workers "$WORKERS" --bind 127.0.0.1:0 --pythonpath bench \
      --graceful-timeout 5 --timeout 120 flask_service:app 2> "$flog" &
    fpid=$!
    remember "$fpid" flask_service:app
    ok=0
    if wait_for_log "$flog" 'Listening at: http://127\.0\.0\.1:[0-9]+' "$fpid" "$START_TIMEOUT"; then
      for i in $(seq $((START_TIMEOUT * 10))); do
        [ "$(grep -c '^flask_service: pid' "$flog")" -ge "$WORKERS" ] && { ok=1; break; }
        kill -0 "$fpid" 2>/dev/null || break
        sleep 0.1
      done
    fi
    if [ $ok = 1 ]; then
      fport=$(sed -n 's/.*Listening at: http:\/\/127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$flog" | head -n1)
      wpids=$(sed -n 's/^flask_service: pid \([0-9][0-9]*\).*/\1/p' "$flog")
      for p in $wpids; do remember "$p" flask_service:app; done
      sed 's/^/   /' "$flog"
      put "$ff" pid "$fpid"
      put "$ff" worker_pids "$(echo "$wpids" | paste -sd, -)"
      put "$ff" openblas_env_seen "$(environ_of "$(echo "$wpids" | head -n1)")"
      # RSS of the master and its workers, as a sum of each process's VmRSS
      # shellcheck disable=SC2086
      measure flask "$fport" "$fpid" $wpids
    else
      echo "service.sh: the Flask service did not start (see $flog):" >&2
      tail -n 20 "$flog" | sed 's/^/   /' >&2
    fi
    stop_all
  fi
fi

# ---- the table -------------------------------------------------------------------------

cross_check() {  # the same model and image must give the same probabilities
  "$PYTHON" - "$OUT/service.emotiond.response.json" "$OUT/service.flask.response.json" <<'EOF' 2>/dev/null
import json, sys
a, b = (json.load(open(p))["probabilities"] for p in sys.argv[1:3])
print("%.2g" % max(abs(a[k] - b[k]) for k in a))
EOF
}

arch_name=$(value arch "$ef")
served=$(or_na "$(value precision_served "$cf")"); engine_prec=$(or_na "$(value precision "$ef")")
echo
echo "## POST /predict: emotiond $served vs Flask + PyTorch fp32 ($(or_na "$arch_name"), $WORKERS workers each)"
echo
echo "precision: emotiond $served (PRECISION=$PRECISION), engine alone $engine_prec," \
     "Flask + PyTorch fp32."
[ "$served" = "$PRECISION" ] || echo "WARNING: emotiond serves $served, not $PRECISION (int8 needs AVX-512 VNNI, fp16 AVX2 + F16C)"
echo "wrk on 127.0.0.1, one 48x48 grayscale PNG ($(stat -c %s "$PNG") bytes) per request," \
     "${DURATION} s per point; latencies in ms. \"ratio\" is emotiond req/s / Flask req/s" \
     "(target ≥ 2); \"overhead\" is 1 − emotiond req/s / engine-alone images/s with" \
     "min(connections, $WORKERS) workers at the same precision (target < 15%)."
echo
echo "| connections | emotiond req/s | p50 | p99 | Flask req/s | p50 | p99 | ratio | engine alone img/s | overhead |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
errors_note=""
for c in $CONNS; do
  w=$WORKERS; [ "$c" -ge "$w" ] || w=$c
  cr=$(value "c${c}_req_s" "$cf"); fr=$(value "c${c}_req_s" "$ff")
  er=$(value "engine_b1_img_s_w$w" "$ef")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" \
    "$(or_na "$cr")" "$(or_na "$(value "c${c}_p50_ms" "$cf")")" "$(or_na "$(value "c${c}_p99_ms" "$cf")")" \
    "$(or_na "$fr")" "$(or_na "$(value "c${c}_p50_ms" "$ff")")" "$(or_na "$(value "c${c}_p99_ms" "$ff")")" \
    "$(ratio "$cr" "$fr")" "$(or_na "$er")" "$(overhead "$cr" "$er")"
  for side in emotiond:$cf flask:$ff; do
    n=0
    for k in connect read write status timeout; do
      v=$(value "c${c}_errors_$k" "${side#*:}"); n=$((n + ${v:-0}))
    done
    [ $n = 0 ] || errors_note="$errors_note ${side%%:*}@$c:$n"
  done
done
echo
echo "| memory (VmRSS, MB) | emotiond | Flask + PyTorch (master + $WORKERS workers, summed) |"
echo "|---|---:|---:|"
echo "| idle, after one request | $(or_na "$(mb "$(value rss_idle_kb "$cf")")") | $(or_na "$(mb "$(value rss_idle_kb "$ff")")") |"
echo "| under load (peak over all runs) | $(or_na "$(mb "$(value rss_load_kb "$cf")")") | $(or_na "$(mb "$(value rss_load_kb "$ff")")") |"
echo
engine=""
for n in $(seq "$WORKERS"); do
  engine="${engine:+$engine; }$n: $(or_na "$(value "engine_b1_img_s_w$n" "$ef")") img/s"
  engine="$engine ($(or_na "$(value "engine_b1_latency_ms_w$n" "$ef")") ms per image)"
done
echo "engine alone (bench_nn --workers $WORKERS --precision $engine_prec: batch-1 nn_predict_u8, each worker its own" \
     "model copy and 1 thread), by number of workers: $engine"
echo "Flask variant served: $(or_na "$(value flask_variant "$ff")") (batch-1 ms: eager" \
     "$(or_na "$(value flask_b1_latency_ms_eager "$ff")"), torchscript" \
     "$(or_na "$(value flask_b1_latency_ms_torchscript "$ff")"), torchscript+channels_last" \
     "$(or_na "$(value flask_b1_latency_ms_torchscript_channels_last "$ff")"));" \
     "gunicorn sync workers, 1 torch thread each"
int8_note=""
[ "$served" != int8 ] || int8_note=" (emotiond int8 against PyTorch fp32: up to ~0.05 is expected)"
echo "same answers: max |Δprobability| emotiond vs Flask on the test PNG = $(or_na "$(cross_check)")$int8_note"
echo "OpenBLAS: $(or_na "$(value openblas_env "$env_file")"); seen by emotiond:" \
     "$(or_na "$(value openblas_env_seen "$cf")"), by a Flask worker: $(or_na "$(value openblas_env_seen "$ff")");" \
     "engine alone: $(or_na "$(value openblas_env "$ef")") core $(or_na "$(value openblas_core "$ef")")"
echo "malloc: servers $(or_na "$(value malloc_env "$env_file")"); engine alone $(or_na "$(value malloc_env "$ef")")"
echo "request log: emotiond --log-requests $LOG_REQUESTS; gunicorn without an access log"
echo "load average at start: $(or_na "$(value loadavg_1min "$env_file")") on" \
     "$(or_na "$(value cpus_online "$env_file")") CPUs (wrk runs on the same cores)"
if [ -s "$sf" ]; then
  echo "machine pauses (bench_stalls, $(or_na "$(value one_seconds "$sf")") s, gaps over 2 ms in a" \
       "busy thread): 1 thread busy $(or_na "$(value one_count "$sf")") (max" \
       "$(or_na "$(value one_max_ms "$sf")") ms); all $(or_na "$(value all_threads "$sf")") busy" \
       "$(or_na "$(value all_count "$sf")"), $(or_na "$(value all_over_50ms "$sf")") of them over 50 ms" \
       "(max $(or_na "$(value all_max_ms "$sf")") ms, $(or_na "$(value all_lost_pct "$sf")")% of the" \
       "time lost). Pauses that come only when every CPU is busy are the host's CPU cap, not the" \
       "server: under load they reach p99 (bench/README.md, \"Pauses of the host\")"
fi
[ -z "$errors_note" ] || echo "WARNING: failed requests (side@connections:count):$errors_note" \
  "- see $OUT/service.*.c*.txt"

# ---- large uploads (bench/uploads.sh starts its own emotiond) -----------------------------

if [ $uploads = 1 ] && [ $status = 0 ]; then
  echo
  BUILD=$BUILD PYTHON=$PYTHON WRK=$WRK WORKERS=$WORKERS PRECISION=$PRECISION DURATION=$DURATION \
    bench/uploads.sh "${opts[@]}" --model "$model" ||
    echo "service.sh: bench/uploads.sh failed (not fatal)" >&2
fi
exit $status
