#!/usr/bin/env bash
# bench/uploads.sh - what a large upload costs end to end (issue 6: "a
# 1920x1080 JPEG costs at most 2x a 48x48 one").
#
#   bench/uploads.sh [--quick] [--keep-openblas-env] [--default-malloc] [--model FILE]
#   PRECISION=int8 DURATION=10 bench/uploads.sh
#
# Starts one `emotiond serve --workers $WORKERS --tta $TTA --tta-crops $TTA --precision
# $PRECISION` on 127.0.0.1 (model: --model FILE, else models/default.emod,
# else vgg with random weights) and POSTs each image of $UPLOAD_IMAGES (default
# "48x48.jpg 48x48.png 1920x1080.jpg 3840x2160.jpg", written by
# bench/make_image.py: WxH.png or WxH.jpg, JPEG quality 90) as the raw body to
# /predict?faces=$FACES with wrk at $UPLOAD_CONNS connections (16) for $DURATION s
# (10; 3 with --quick). Prints a markdown table: req/s, p50, p99, failed
# requests, peak VmRSS, and cost = req/s of the first image / req/s of this
# one (target for the large JPEGs: at most 2). Raw files in
# $BUILD/bench/results/$UPLOAD_PREFIX.* (default "uploads"). Knobs:
# UPLOAD_IMAGES, UPLOAD_CONNS, DURATION, WARMUP (1), WORKERS (2), PRECISION
# (fp32), TTA (false), FACES (none), UPLOAD_PREFIX, BUILD, PYTHON, WRK,
# START_TIMEOUT. Never fails on
# timing; exits non-zero only when a tool is missing or emotiond cannot start.
set -u
cd "$(dirname "$0")/.." || exit 1
PROG=uploads.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
WRK=${WRK:-wrk}
OUT=$BUILD/bench/results
WORKERS=${WORKERS:-2}
PRECISION=${PRECISION:-fp32}
TTA=${TTA:-false}
FACES=${FACES:-none}
# UPLOAD_*: not CONNS etc., which service.sh's caller may have set for service.sh
CONNS=${UPLOAD_CONNS:-16}
IMAGES=${UPLOAD_IMAGES:-48x48.jpg 48x48.png 1920x1080.jpg 3840x2160.jpg}
PREFIX=${UPLOAD_PREFIX:-uploads}
check_precision "$PRECISION"

quick=0; keep_env=0; default_malloc=0; model=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --keep-openblas-env) keep_env=1 ;;
    --default-malloc) default_malloc=1 ;;
    --model) [ $# -ge 2 ] || { echo "uploads.sh: --model needs a file" >&2; exit 2; }
             model=$2; shift ;;
    --model=*) model=${1#--model=} ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "uploads.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
case ${EMOTIOND_BENCH_KEEP_OPENBLAS_ENV:-} in ''|0) ;; *) keep_env=1 ;; esac
case ${EMOTIOND_BENCH_DEFAULT_MALLOC:-} in ''|0) ;; *) default_malloc=1 ;; esac
if [ $quick = 1 ]; then DURATION=${DURATION:-3}; else DURATION=${DURATION:-10}; fi
WARMUP=${WARMUP:-1}
case $FACES in auto|detect|none) ;; *) echo "uploads.sh: FACES must be auto, detect or none" >&2; exit 2 ;; esac

[ -x "$BUILD/emotiond" ] || { echo "uploads.sh: $BUILD/emotiond not built (make bench builds it)" >&2; exit 1; }
if ! command -v "$WRK" >/dev/null || ! command -v curl >/dev/null; then
  echo "uploads.sh: needs wrk and curl (apt-get install wrk curl)" >&2
  exit 1
fi
mkdir -p "$OUT"
rm -f "$OUT/$PREFIX".*
if [ -z "$model" ]; then
  if [ -r models/default.emod ]; then
    model=models/default.emod
  else
    [ -x "$BUILD/bench/make_model" ] || { echo "uploads.sh: no model (make bench builds make_model)" >&2; exit 1; }
    model=$OUT/$PREFIX.vgg.emod
    "$BUILD/bench/make_model" config/arch/vgg.json "$model" || exit 1
  fi
elif [ ! -r "$model" ]; then
  echo "uploads.sh: cannot read $model" >&2
  exit 1
fi

res=$OUT/$PREFIX.txt
names=()
for img in $IMAGES; do
  case $img in
    [0-9]*x[0-9]*.png|[0-9]*x[0-9]*.jpg) ;;
    *) echo "uploads.sh: UPLOAD_IMAGES entries are WxH.png or WxH.jpg (not '$img')" >&2; exit 2 ;;
  esac
  f=$OUT/$PREFIX.$img
  if ! "$PYTHON" bench/make_image.py "$f" "${img%.*}" > /dev/null; then
    echo "uploads.sh: cannot write $f (needs $PYTHON with numpy and PIL)" >&2
    exit 1
  fi
  names+=("$img")
  put "$res" "${img}_bytes" "$(stat -c %s "$f")"
done

env_file=$OUT/$PREFIX.env.txt
server_env "$env_file" "$keep_env" "$default_malloc"
log=$OUT/$PREFIX.emotiond.log
put "$res" precision "$PRECISION"
echo "== emotiond serve --workers $WORKERS --tta $TTA --tta-crops $TTA --precision $PRECISION; POST /predict?faces=$FACES"
start_emotiond "$log" --model "$model" --workers "$WORKERS" --tta "$TTA" --tta-crops "$TTA" --precision "$PRECISION" \
  --log-requests false --shutdown-grace 5 || exit 1
put "$res" precision_served "$(or_na "$EMOTIOND_PRECISION_SERVED")"
url="http://127.0.0.1:$EMOTIOND_PORT/predict?faces=$FACES"
none_done=""
put "$res" rss_idle_kb "$(rss_kb "$EMOTIOND_PID")"

for img in "${names[@]}"; do
  f=$OUT/$PREFIX.$img; ct=$(content_type "$f")
  code=$(curl -s -m 60 -o "$OUT/$PREFIX.$img.response.json" -w '%{http_code}' -X POST \
         -H "Content-Type: $ct" --data-binary "@$f" "$url")
  put "$res" "${img}_first_status" "$code"
  [ "$code" = 200 ] || echo "uploads.sh: $img: first request answered $code" \
    "($(head -c 200 "$OUT/$PREFIX.$img.response.json"))" >&2
  run_wrk "$OUT/$PREFIX.$img.warmup.txt" "$f" "$ct" 16 "$WARMUP" "$url"
  for c in $CONNS; do
    wf=$OUT/$PREFIX.$img.c$c.txt
    run_wrk "$wf" "$f" "$ct" "$c" "$DURATION" "$url" "$EMOTIOND_PID"
    for k in req_s ok_req_s p50_ms p99_ms; do put "$res" "${img}_c${c}_$k" "$(wrk_value "$k" "$wf")"; done
    put "$res" "${img}_c${c}_errors" "$(wrk_errors "$wf")"
    put "$res" "${img}_c${c}_rss_peak_kb" "$RUN_WRK_RSS_PEAK_KB"
    [ -n "$(wrk_value req_s "$wf")" ] || none_done="$none_done $img@$c"
    echo "   $img ($(value "${img}_bytes" "$res") bytes), $c connections:" \
         "$(or_na "$(wrk_value req_s "$wf")") req/s, p50 $(or_na "$(wrk_value p50_ms "$wf")") ms," \
         "p99 $(or_na "$(wrk_value p99_ms "$wf")") ms, $(wrk_errors "$wf") failed"
  done
done
stop_all

served=$(or_na "$(value precision_served "$res")")
echo
echo "## POST /predict by upload size (emotiond $served, $WORKERS workers, tta $TTA, faces=$FACES)"
echo
echo "wrk on 127.0.0.1, the image as the raw body, ${DURATION} s per point; latencies in ms;" \
     "\"cost\" is ${names[0]} req/s / this image's req/s at the same connections (issue 6:" \
     "≤ 2 for 1920x1080); \"failed\" counts socket errors, timeouts and HTTP status ≥ 400;" \
     "\"peak RSS\" is emotiond's VmRSS during the run."
[ "$served" = "$PRECISION" ] || echo "WARNING: emotiond serves $served, not $PRECISION (int8 needs AVX-512 VNNI, fp16 AVX2 + F16C)"
echo
echo "| image | bytes | connections | req/s | p50 | p99 | failed | peak RSS MB | cost |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
biased=""
for c in $CONNS; do
  base=$(value "${names[0]}_c${c}_req_s" "$res")
  for img in "${names[@]}"; do
    r=$(value "${img}_c${c}_req_s" "$res")
    # wrk records only requests that finish before it stops (see scaling.sh)
    mark=$(awk -v r="$r" -v c="$c" -v d="$DURATION" 'BEGIN { if (r + 0 > 0 && d < 3 * c / r) print " *" }')
    [ -z "$mark" ] || biased=1
    printf '| %s | %s | %s | %s | %s | %s%s | %s | %s | %s |\n' "$img" "$(value "${img}_bytes" "$res")" "$c" \
      "$(or_na "$r")" "$(or_na "$(value "${img}_c${c}_p50_ms" "$res")")" \
      "$(or_na "$(value "${img}_c${c}_p99_ms" "$res")")" "$mark" "$(or_na "$(value "${img}_c${c}_errors" "$res")")" \
      "$(or_na "$(mb "$(value "${img}_c${c}_rss_peak_kb" "$res")")")" "$(ratio "$base" "$r")"
  done
done
[ -z "$biased" ] || { echo; echo "\\* latencies too low: DURATION ($DURATION s) is under 3x the time a request" \
  "waits (connections / req/s), so wrk stopped while many requests were still queued; raise DURATION."; }
echo
echo "idle VmRSS after start: $(or_na "$(mb "$(value rss_idle_kb "$res")")") MB;" \
     "OpenBLAS $(or_na "$(value openblas_env "$env_file")"); malloc $(or_na "$(value malloc_env "$env_file")");" \
     "load average at start $(or_na "$(value loadavg_1min "$env_file")") on $(or_na "$(value cpus_online "$env_file")") CPUs"
[ -z "$none_done" ] || echo "WARNING: no request completed within $DURATION s (image@connections):$none_done;" \
  "raise DURATION"
exit 0
