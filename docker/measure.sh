#!/usr/bin/env bash
# docker/measure.sh - the figures that size the Kubernetes requests and limits
# (docker/README.md): resident memory and CPU of `emotiond serve` idle and
# under a SHORT load on loopback.
#
#   docker/measure.sh [MODEL] [WORKERS] [SECONDS]
#
# MODEL defaults to models/default.emod, else a random-weights VGG made with
# build/bench/make_model (same size: speed and memory do not depend on the
# weights). Starts the server on 127.0.0.1 with an ephemeral port, reads
# VmRSS/VmHWM and utime+stime from /proc, and drives it with wrk (-t1 -c4)
# for SECONDS (default 8) with a 48x48 PNG face crop, then with 6 requests (2 at a time) of a 500x375 photo from
# ../shared/data/photos-dlib (face detection + one classification per face),
# if present. Prints "key value" lines.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/emotiond}
model=${1:-}
workers=${2:-2}
secs=${3:-8}
tmp=$(mktemp -d)
srv=""
cleanup() {
  if [ -n "$srv" ] && kill -0 "$srv" 2>/dev/null; then kill -TERM "$srv"; wait "$srv" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "$model" ]; then
  if [ -r models/default.emod ]; then model=models/default.emod
  else
    [ -x build/bench/make_model ] || make --no-print-directory build/bench/make_model >/dev/null
    model=$tmp/vgg.emod
    build/bench/make_model config/arch/vgg.json "$model" >/dev/null
  fi
fi
command -v wrk >/dev/null || { echo "measure.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }

# A 48x48 8-bit grayscale PNG without any imaging library.
python3 - "$tmp/face48.png" <<'EOF'
import math, random, struct, sys, zlib
random.seed(48)
rows = b"".join(b"\0" + bytes(max(0, min(255, int(128 + 60 * math.sin(x / 5) * math.cos(y / 7)
                                             + random.gauss(0, 12)))) for x in range(48))
                for y in range(48))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 48, 48, 8, 0, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
EOF

"$BIN" serve --model "$model" --host 127.0.0.1 --port 0 --workers "$workers" \
  --log-requests false 2>"$tmp/log" &
srv=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*ready on port \([0-9]*\).*/\1/p' "$tmp/log" | head -n1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/log" >&2; exit 1; }

rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$srv/status"; }
hwm() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$srv/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$srv/stat"; }
hz=$(getconf CLK_TCK)

sleep 1
echo "model $model"
echo "workers $workers"
echo "rss_idle_kb $(rss)"
curl -s -o /dev/null --data-binary @"$tmp/face48.png" -H 'Content-Type: image/png' \
  "http://127.0.0.1:$port/predict"
echo "rss_after_first_request_kb $(rss)"

# load NAME FILE CTYPE QUERY CONNECTIONS
load() {
  local name=$1 file=$2 ctype=$3 query=$4 conns=$5 peak=0 r t0 t1 w0 w1
  cat >"$tmp/post.lua" <<EOF
local f = assert(io.open("$file", "rb"))
wrk.method = "POST"; wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "$ctype"
function done(s, lat, req)
  io.write(string.format("requests %d\nreq_s %.1f\np50_ms %.1f\np99_ms %.1f\nerrors %d\n",
    s.requests, s.requests / (s.duration / 1e6), lat:percentile(50) / 1e3, lat:percentile(99) / 1e3,
    s.errors.status + s.errors.connect + s.errors.read + s.errors.timeout))
end
EOF
  t0=$(cpu_ticks); w0=$(date +%s.%N)
  wrk -t1 -c"$conns" -d"${secs}s" --timeout 30s -s "$tmp/post.lua" \
    "http://127.0.0.1:$port/predict$query" \
    >"$tmp/wrk.$name" 2>&1 &
  local wp=$!
  while kill -0 "$wp" 2>/dev/null; do
    r=$(rss); [ "$r" -le "$peak" ] || peak=$r
    sleep 0.25
  done
  wait "$wp"
  t1=$(cpu_ticks); w1=$(date +%s.%N)
  echo "${name}_rss_peak_kb $peak"
  local n
  n=$(awk '$1 == "requests" { print $2 }' "$tmp/wrk.$name")
  # CPU seconds per request: what sizes the CPU request. Cores used during the
  # run depend on what else the machine runs, so they are printed only as seen.
  awk -v a="$t0" -v b="$t1" -v hz="$hz" -v w0="$w0" -v w1="$w1" -v n="$name" -v k="${n:-0}" \
    'BEGIN { printf "%s_cpu_cores_seen %.2f\n", n, (b - a) / hz / (w1 - w0)
             if (k > 0) printf "%s_cpu_ms_per_request %.0f\n", n, (b - a) / hz / k * 1000 }'
  sed -n "s/^\(requests\|req_s\|p50_ms\|p99_ms\|errors\) /${name}_\1 /p" "$tmp/wrk.$name"
}

load crop "$tmp/face48.png" image/png "" 4
photo=../shared/data/photos-dlib/2008_002079.jpg
if [ -r "$photo" ]; then
  # Photos cost about 0.2 s of CPU each for the detection alone: a fixed
  # number of requests (3 rounds of 2 in parallel) instead of a timed run.
  peak=0; t0=$(cpu_ticks); w0=$(date +%s.%N)
  for _ in 1 2 3; do
    cps=()
    for _ in 1 2; do
      curl -s -o /dev/null -w '%{http_code}\n' --data-binary @"$photo" \
        -H 'Content-Type: image/jpeg' "http://127.0.0.1:$port/predict?faces=detect" \
        >>"$tmp/codes" &
      cps+=($!)
    done
    while kill -0 "${cps[@]}" 2>/dev/null; do
      r=$(rss); [ "$r" -le "$peak" ] || peak=$r
      sleep 0.1
    done
    wait "${cps[@]}" || true
  done
  t1=$(cpu_ticks); w1=$(date +%s.%N)
  echo "photo_rss_peak_kb $peak"
  awk -v a="$t0" -v b="$t1" -v hz="$hz" -v w0="$w0" -v w1="$w1" \
    'BEGIN { printf "photo_cpu_ms_per_request %.0f\nphoto_wall_s %.1f\n", (b - a) / hz / 6 * 1000, w1 - w0 }'
  echo "photo_http_codes $(sort "$tmp/codes" | uniq -c | tr -s ' ' | tr '\n' ' ')"
fi
echo "rss_hwm_kb $(hwm)"
echo "rss_after_load_kb $(rss)"
