#!/usr/bin/env bash
# bench/train_latency.sh - POST /predict latency while the service trains.
#
#   bench/train_latency.sh [--data DIR] [--model FILE] [--quick]
#
# Issue 4's figure: /predict p50/p99 of one 48x48 PNG with wrk on loopback,
# first with the service idle, then while a training job started through
# POST /train runs in the same process (its thread at the configured nice,
# `train_nice`, default 10, with `threads` 1 unless TRAIN_THREADS says
# otherwise), and the ratio of the two p99s (target: at most 2). The job trains
# on DIR (default .cache/fer2013, the unpacked FER2013 folders; any
# `train/<class>/` + `test/<class>/` tree works) and is cancelled at the end.
# Knobs: CONNS ("1 16"), DURATION (10 s; 3 with --quick), WORKERS (2),
# TRAIN_THREADS (1), TRAIN_NICE (10), SUBSET (300 images per class), BUILD. Prints a markdown table; raw wrk
# output in $BUILD/bench/results/train_latency.*. Never fails on timing.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
OUT=$BUILD/bench/results
WORKERS=${WORKERS:-2}
TRAIN_THREADS=${TRAIN_THREADS:-1}
TRAIN_NICE=${TRAIN_NICE:-10}
CONNS=${CONNS:-1 16}
data=.cache/fer2013; model=models/default.emod; quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --data) data=$2; shift ;;
    --model) model=$2; shift ;;
    --quick) quick=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "train_latency.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ $quick = 1 ]; then DURATION=${DURATION:-3}; else DURATION=${DURATION:-10}; fi
for tool in wrk curl "$BUILD/emotiond"; do
  command -v "$tool" >/dev/null || [ -x "$tool" ] || { echo "train_latency.sh: $tool not found (make; apt-get install wrk curl)" >&2; exit 2; }
done
[ -d "$data/train" ] || { echo "train_latency.sh: no training data in $data (unpack ../shared/data/fer2013-train-publictest.tar.gz into .cache/)" >&2; exit 2; }
mkdir -p "$OUT"
# the request body: one 48x48 face from the validation half (JPEG in the Kaggle
# folders; a PNG of the same size costs about the same to decode)
png=$(find "$data/test" -type f \( -name '*.jpg' -o -name '*.png' \) | head -1)
[ -n "$png" ] || { echo "train_latency.sh: no image under $data/test" >&2; exit 2; }
ctype=image/png; case $png in *.jpg|*.jpeg) ctype=image/jpeg ;; esac
export WRK_CONTENT_TYPE=$ctype  # read by bench/post_png.lua
lua=bench/post_png.lua

store=$(mktemp -d /tmp/emotiond-trainlat.XXXXXX)
# The job trains on a subset (SUBSET images per class, default 300; 0 = all of
# DIR) so that it is stepping after seconds instead of decoding 28,709 images
# first: the cost of a training step does not depend on the dataset's size.
SUBSET=${SUBSET:-300}
data_desc=$data
if [ "$SUBSET" -gt 0 ]; then
  for split in train test; do
    for cls in "$data/$split"/*/; do
      c=$(basename "$cls"); mkdir -p "$store/data/$split/$c"
      find "$cls" -maxdepth 1 -type f | sort | head -"$SUBSET" | xargs -r cp -t "$store/data/$split/$c"
    done
  done
  data=$store/data
  data_desc="$data_desc ($SUBSET images per class)"
fi
token=bench-$(date +%s%N)
log=$OUT/train_latency.server.log
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$store"; }
trap cleanup EXIT INT TERM
EMOTIOND_ADMIN_TOKEN=$token "$BUILD/emotiond" serve --host 127.0.0.1 --port 0 --model "$model" \
  --workers "$WORKERS" --model-dir "$store/models" --data-dir "$data" --train-threads "$TRAIN_THREADS" \
  --train-nice "$TRAIN_NICE" --tta false --tta-crops false --log-requests false > "$log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*ready on port \([0-9]*\).*/\1/p' "$log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "train_latency.sh: emotiond exited:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "train_latency.sh: emotiond did not come up" >&2; cat "$log" >&2; exit 1; }
url=http://127.0.0.1:$port

run_wrk() {  # run_wrk TAG CONNS
  WRK_PNG=$png wrk -t1 -c"$2" -d"${DURATION}s" --timeout 10s -s "$lua" "$url/predict" > "$OUT/train_latency.$1.c$2.txt" 2>&1
}
val() { awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }

WRK_PNG=$png wrk -t1 -c4 -d1s -s "$lua" "$url/predict" > /dev/null 2>&1   # warm-up
for c in $CONNS; do run_wrk idle "$c"; done

job=$(curl -s -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "{\"epochs\": 50, \"threads\": $TRAIN_THREADS}" "$url/train")
id=$(printf '%s' "$job" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
[ -n "$id" ] || { echo "train_latency.sh: POST /train failed: $job" >&2; exit 1; }
# wait until the job has loaded its data and is stepping
ips=""
for _ in $(seq 1 600); do
  st=$(curl -s -H "Authorization: Bearer $token" "$url/train/$id")
  ips=$(printf '%s' "$st" | sed -n 's/.*"images_per_s": *\([0-9.]*\).*/\1/p')
  [ -n "$ips" ] && break
  case $st in *'"state": *"failed"'*|*'"state":"failed"'*) echo "train_latency.sh: job failed: $st" >&2; exit 1 ;; esac
  sleep 0.5
done
[ -n "$ips" ] || { echo "train_latency.sh: the training job never reported progress" >&2; exit 1; }
for c in $CONNS; do run_wrk training "$c"; done
st=$(curl -s -H "Authorization: Bearer $token" "$url/train/$id")
ips=$(printf '%s' "$st" | sed -n 's/.*"images_per_s": *\([0-9.]*\).*/\1/p')
state=$(printf '%s' "$st" | sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p')
curl -s -X DELETE -H "Authorization: Bearer $token" "$url/train/$id" > /dev/null

echo "## /predict while training (bench/train_latency.sh)"
echo
echo "emotiond --workers $WORKERS, training job threads $TRAIN_THREADS at nice $TRAIN_NICE on $data_desc;"
echo "job state during the loaded runs: $state, ${ips:-n/a} training images/s; wrk ${DURATION} s per point; load average at start $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| connections | idle req/s | idle p50 ms | idle p99 ms | training req/s | training p50 ms | training p99 ms | p99 ratio |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in $CONNS; do
  i=$OUT/train_latency.idle.c$c.txt; t=$OUT/train_latency.training.c$c.txt
  ip99=$(val wrk_p99_ms "$i"); tp99=$(val wrk_p99_ms "$t")
  r=$(awk -v a="$tp99" -v b="$ip99" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  echo "| $c | $(val wrk_req_s "$i") | $(val wrk_p50_ms "$i") | $ip99 | $(val wrk_req_s "$t") | $(val wrk_p50_ms "$t") | $tp99 | $r |"
  errs=$(( $(val wrk_errors_status "$i") + $(val wrk_errors_status "$t") + $(val wrk_errors_timeout "$t") ))
  [ "$errs" -gt 0 ] && echo "WARNING: $errs failed requests at $c connections (see $OUT/train_latency.*.c$c.txt)"
done
exit 0
