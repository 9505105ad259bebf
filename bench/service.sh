#!/usr/bin/env bash
# bench/service.sh - POST /predict of emotiond against a Flask + PyTorch service
# and against the engine alone, with wrk on loopback.
#
#   bench/service.sh [--quick] [--keep-openblas-env] [--default-malloc] [--model FILE] [ARCH]
#
# Serves one model (--model FILE, else config/arch/ARCH.json, default vgg,
# with random weights from $BUILD/bench/make_model) with `emotiond serve
# --workers $WORKERS` and with bench/flask_service.py under gunicorn
# ($WORKERS workers, the faster of eager and TorchScript), one after the other,
# on 127.0.0.1 only; wrk POSTs one 48x48 PNG at each of $CONNS connections for
# $DURATION s. Also runs `bench_nn --workers $WORKERS` (engine alone). Prints
# a markdown table; raw output in $BUILD/bench/results/service.*. Both servers
# get the same OpenBLAS/malloc environment as bench_nn and torch_bench.py (see
# bench/README.md) and are always stopped at exit. Never fails on timing;
# exits non-zero only when a tool is missing or emotiond cannot be started.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
WRK=${WRK:-wrk}
OUT=$BUILD/bench/results
WORKERS=${WORKERS:-2}
WRK_THREADS=${WRK_THREADS:-1}       # wrk shares the machine's cores with the server
LOG_REQUESTS=${SERVICE_LOG_REQUESTS:-false}  # gunicorn logs no requests either

quick=0; keep_env=0; default_malloc=0; model=""; arch=""; opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; opts+=("$1") ;;
    --keep-openblas-env) keep_env=1; opts+=("$1") ;;
    --default-malloc) default_malloc=1; opts+=("$1") ;;
    --model) [ $# -ge 2 ] || { echo "service.sh: --model needs a file" >&2; exit 2; }
             model=$2; shift ;;
    --model=*) model=${1#--model=} ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
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

# ---- helpers ------------------------------------------------------------------

# value KEY FILE: the value of "KEY value" in FILE, or empty.
value() { [ -f "$2" ] && awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }
or_na() { if [ -n "${1:-}" ]; then printf '%s' "$1"; else printf 'n/a'; fi; }
# ratio A B: A/B with 2 decimals, n/a when either is missing or zero.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "" || b == "" || a == "nan" || b == "nan" || a + 0 == 0 || b + 0 == 0) print "n/a";
    else printf "%.2f\n", a / b }'
}
# overhead SERVICE ENGINE: (1 - service/engine) in %, n/a when missing.
overhead() {
  awk -v s="$1" -v e="$2" 'BEGIN {
    if (s == "" || e == "" || e == "nan" || e + 0 == 0) print "n/a";
    else printf "%.1f%%\n", 100 * (1 - s / e) }'
}
mb() { [ -n "${1:-}" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
put() { echo "$2 $3" >> "$1"; }

# Every process this script starts, with a word its command line must still
# contain before it is signalled (so a reused PID is never hit).
STARTED_PIDS=(); STARTED_TAGS=()
remember() { STARTED_PIDS+=("$1"); STARTED_TAGS+=("$2"); }
ours() {  # ours PID TAG: PID is alive and still the process we started
  { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "$2"
}
signal_ours() {  # signal_ours SIG: send SIG to every remembered live process
  local i
  for i in "${!STARTED_PIDS[@]}"; do
    ours "${STARTED_PIDS[$i]}" "${STARTED_TAGS[$i]}" && kill "-$1" "${STARTED_PIDS[$i]}" 2>/dev/null
  done
}
any_alive() {
  local i
  for i in "${!STARTED_PIDS[@]}"; do
    ours "${STARTED_PIDS[$i]}" "${STARTED_TAGS[$i]}" && return 0
  done
  return 1
}
# stop_all: SIGTERM (emotiond drains, gunicorn stops its workers), then SIGKILL
# whatever is still running after 15 s.
stop_all() {
  local i
  [ ${#STARTED_PIDS[@]} -gt 0 ] || return 0
  signal_ours TERM
  for i in $(seq 150); do any_alive || break; sleep 0.1; done
  if any_alive; then
    echo "service.sh: a server did not stop on SIGTERM; killing it" >&2
    signal_ours KILL
  fi
  wait 2>/dev/null
  STARTED_PIDS=(); STARTED_TAGS=()
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# rss_kb PID...: sum of VmRSS (kB) of the live processes given.
rss_kb() {
  local p sum=0 v
  for p in "$@"; do
    v=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$p/status" 2>/dev/null)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# wait_for_log FILE REGEX PID SECONDS: until FILE has a line matching REGEX
# (0), PID exits or time runs out (1).
wait_for_log() {
  local i
  for i in $(seq $(( $4 * 10 ))); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- measuring one server ----------------------------------------------------------

# measure NAME PORT PID...: idle RSS, one request (kept for the cross-check),
# a warm-up, then wrk at each connection count with RSS sampled every 0.25 s.
# Results as "key value" lines in $OUT/service.NAME.txt.
measure() {
  local name=$1 port=$2; shift 2
  local pids=("$@") res=$OUT/service.$name.txt url="http://127.0.0.1:$port/predict" c t peak r
  curl -s -m 30 -X POST -H 'Content-Type: image/png' --data-binary "@$PNG" "$url" \
    > "$OUT/service.$name.response.json" || echo "service.sh: $name: first request failed" >&2
  sleep 0.5
  put "$res" rss_idle_kb "$(rss_kb "${pids[@]}")"
  WRK_PNG=$PNG "$WRK" -t1 -c16 -d"${WARMUP}s" --timeout 10s -s bench/post_png.lua "$url" \
    > "$OUT/service.$name.warmup.txt" 2>&1
  peak=0
  for c in $CONNS; do
    t=$WRK_THREADS; [ "$t" -le "$c" ] || t=$c
    echo "== $name: wrk -t$t -c$c -d${DURATION}s POST /predict"
    WRK_PNG=$PNG "$WRK" -t"$t" -c"$c" -d"${DURATION}s" --timeout 10s -s bench/post_png.lua \
      "$url" > "$OUT/service.$name.c$c.txt" 2>&1 &
    local wrk_pid=$!
    remember "$wrk_pid" post_png.lua
    while kill -0 "$wrk_pid" 2>/dev/null; do
      r=$(rss_kb "${pids[@]}"); [ "$r" -le "$peak" ] || peak=$r
      sleep 0.25
    done
    wait "$wrk_pid" 2>/dev/null || echo "service.sh: wrk failed at $c connections (see $OUT/service.$name.c$c.txt)" >&2
    local n=0 v wf=$OUT/service.$name.c$c.txt
    for k in req_s ok_req_s p50_ms p99_ms errors_connect errors_read errors_write \
             errors_status errors_timeout; do
      v=$(value "wrk_$k" "$wf")
      put "$res" "c${c}_$k" "$v"
      case $k in errors_*) n=$((n + ${v:-0})) ;; esac
    done
    echo "   $(or_na "$(value wrk_req_s "$wf")") req/s, p50 $(or_na "$(value wrk_p50_ms "$wf")") ms," \
         "p99 $(or_na "$(value wrk_p99_ms "$wf")") ms, $n failed requests"
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
if ! "$PYTHON" - "$PNG" <<'EOF'
import sys
import numpy as np
from PIL import Image
y, x = np.mgrid[0:48, 0:48]
noise = np.random.default_rng(48).normal(0, 12, (48, 48))
img = 128 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0) + noise
Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L").save(sys.argv[1])
EOF
then
  echo "service.sh: cannot write the test PNG (needs $PYTHON with numpy and PIL)" >&2
  exit 1
fi

# ---- the engine alone (bench_nn fixes its own environment, as in run.sh) ---------

ef=$OUT/service.engine.txt
echo "== engine alone: bench_nn --workers $WORKERS $model"
"$BUILD/bench/bench_nn" "${opts[@]}" --workers "$WORKERS" "$model" | tee "$ef" ||
  echo "service.sh: bench_nn --workers failed (engine columns n/a)" >&2

# ---- the servers' environment: exactly what bench_nn and torch_bench.py do ----------

env_file=$OUT/service.env.txt
unset_note=""
if [ $keep_env = 0 ]; then
  for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    if [ -n "${!v+x}" ]; then
      unset_note="${unset_note:+$unset_note,}$v=${!v}"
      unset "$v"
    fi
  done
fi
kept_note=""
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  [ -z "${!v+x}" ] || kept_note="${kept_note:+$kept_note,}$v=${!v}"
done
if [ -n "$kept_note" ]; then
  echo "# NOTE: OpenBLAS environment kept as is ($kept_note) for both servers" | tee -a "$env_file"
  put "$env_file" openblas_env "kept:$kept_note"
elif [ -n "$unset_note" ]; then
  echo "# NOTE: unset $unset_note for both servers (--keep-openblas-env or" \
       "EMOTIOND_BENCH_KEEP_OPENBLAS_ENV=1 keeps them)" | tee -a "$env_file"
  put "$env_file" openblas_env "unset:$unset_note"
else
  put "$env_file" openblas_env default
fi
if [ $default_malloc = 0 ]; then
  export MALLOC_MMAP_MAX_=${MALLOC_MMAP_MAX_:-0}
  export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-4000000000}
fi
malloc_note=""
for v in MALLOC_MMAP_MAX_ MALLOC_TRIM_THRESHOLD_; do
  [ -z "${!v+x}" ] || malloc_note="${malloc_note:+$malloc_note,}$v=${!v}"
done
if [ -n "$malloc_note" ]; then
  echo "# NOTE: glibc malloc tuned for both servers ($malloc_note; --default-malloc or" \
       "EMOTIOND_BENCH_DEFAULT_MALLOC=1 disables)" | tee -a "$env_file"
fi
put "$env_file" malloc_env "$(or_na "$malloc_note")"
put "$env_file" loadavg_1min "$(cut -d' ' -f1 /proc/loadavg)"
put "$env_file" cpus_online "$(getconf _NPROCESSORS_ONLN)"

# environ_of PID: the OPENBLAS_* variables the running server really has.
environ_of() {
  local e
  e=$({ tr '\0' '\n' < "/proc/$1/environ"; } 2>/dev/null | grep '^OPENBLAS_\(CORETYPE\|L2_SIZE\)=' |
      paste -sd, -)
  echo "${e:-none}"
}

# ---- emotiond -------------------------------------------------------------------------

cf=$OUT/service.emotiond.txt
clog=$OUT/service.emotiond.log
echo "== emotiond serve --workers $WORKERS --tta false"
# --tta false: the Flask side runs one forward pass per image, so must we
"$BUILD/emotiond" serve --host 127.0.0.1 --port 0 --model "$model" --workers "$WORKERS" \
  --tta false --log-requests "$LOG_REQUESTS" --shutdown-grace 5 2> "$clog" &
cpid=$!
status=1  # until emotiond has been measured
remember "$cpid" "serve --host 127.0.0.1 --port 0"
if wait_for_log "$clog" 'ready on port [0-9]+' "$cpid" "$START_TIMEOUT"; then
  cport=$(sed -n 's/.*ready on port \([0-9][0-9]*\).*/\1/p' "$clog" | head -n1)
  sed 's/^/   /' "$clog"
  put "$cf" pid "$cpid"
  put "$cf" openblas_env_seen "$(environ_of "$cpid")"
  measure emotiond "$cport" "$cpid"
  status=0
else
  echo "service.sh: emotiond did not start (see $clog):" >&2
  sed 's/^/   /' "$clog" >&2
fi
stop_all

# ---- Flask + PyTorch under gunicorn -------------------------------------------------------

ff=$OUT/service.flask.txt
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
echo
echo "## POST /predict: emotiond vs Flask + PyTorch ($(or_na "$arch_name"), $WORKERS workers each)"
echo
echo "wrk on 127.0.0.1, one 48x48 grayscale PNG ($(stat -c %s "$PNG") bytes) per request," \
     "${DURATION} s per point; latencies in ms. \"ratio\" is emotiond req/s / Flask req/s" \
     "(target ≥ 2); \"overhead\" is 1 − emotiond req/s / engine-alone images/s with" \
     "min(connections, $WORKERS) workers (target < 15%)."
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
echo "engine alone (bench_nn --workers $WORKERS: batch-1 nn_predict_u8, each worker its own" \
     "model copy and 1 thread), by number of workers: $engine"
echo "Flask variant served: $(or_na "$(value flask_variant "$ff")") (batch-1 ms: eager" \
     "$(or_na "$(value flask_b1_latency_ms_eager "$ff")"), torchscript" \
     "$(or_na "$(value flask_b1_latency_ms_torchscript "$ff")"), torchscript+channels_last" \
     "$(or_na "$(value flask_b1_latency_ms_torchscript_channels_last "$ff")"));" \
     "gunicorn sync workers, 1 torch thread each"
echo "same answers: max |Δprobability| emotiond vs Flask on the test PNG = $(or_na "$(cross_check)")"
echo "OpenBLAS: $(or_na "$(value openblas_env "$env_file")"); seen by emotiond:" \
     "$(or_na "$(value openblas_env_seen "$cf")"), by a Flask worker: $(or_na "$(value openblas_env_seen "$ff")");" \
     "engine alone: $(or_na "$(value openblas_env "$ef")") core $(or_na "$(value openblas_core "$ef")")"
echo "malloc: servers $(or_na "$(value malloc_env "$env_file")"); engine alone $(or_na "$(value malloc_env "$ef")")"
echo "request log: emotiond --log-requests $LOG_REQUESTS; gunicorn without an access log"
echo "load average at start: $(or_na "$(value loadavg_1min "$env_file")") on" \
     "$(or_na "$(value cpus_online "$env_file")") CPUs (wrk runs on the same cores)"
[ -z "$errors_note" ] || echo "WARNING: failed requests (side@connections:count):$errors_note" \
  "- see $OUT/service.*.c*.txt"
exit $status
