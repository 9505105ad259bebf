#!/usr/bin/env bash
# bench/run.sh - C engine vs PyTorch on the same architectures, then the service.
#
#   bench/run.sh [--quick] [--keep-openblas-env] [--default-malloc]
#                [--no-service | --service-only] [ARCH ...]
#
# ARCH defaults to "seed vgg" (config/arch/ARCH.json). For each, runs
# $BUILD/bench/bench_nn and bench/torch_bench.py (with $PYTHON, default
# /usr/bin/python3), keeps their raw "key value" output in
# $BUILD/bench/results/ and prints one markdown table per architecture.
# Then bench/service.sh (emotiond vs Flask + PyTorch over HTTP, wrk) on
# $SERVICE_MODEL, else models/default.emod if it exists, else $SERVICE_ARCH
# (default vgg) with random weights. Options are passed to every program, so
# all sides run with the same OpenBLAS and malloc environment (see
# bench/README.md). Batch-1 latency is also timed in $B1_ROUNDS rounds
# (default 5, --quick 2) that alternate the two sides (bench_nn --batches 1 in
# fp32 and fp16, torch_bench.py --b1-only), so that both see the same phases
# of a noisy machine: the table's "alternated" rows give each side's median
# and the median of the rounds' ratios. Then torch_bench.py --b1-fine runs
# $B1_FINE_ROUNDS rounds (default 40, --quick 4; 0 skips them) in one run,
# each side 50 ms untimed then 200 ms timed per round (10 and 40 with
# --quick), the C engine in a bench_nn --b1-serve child: the "fine" rows.
# Never fails on timing; exits non-zero only if the C benchmark could not
# run at all.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
BENCH_C=$BUILD/bench/bench_nn
OUT=$BUILD/bench/results

opts=(); archs=(); service=1; engine=1; quick=0
for a in "$@"; do
  case $a in
    --quick) opts+=("$a"); quick=1 ;;
    --keep-openblas-env|--default-malloc) opts+=("$a") ;;
    --no-service) service=0 ;;
    --service-only) engine=0 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
    *) archs+=("$a") ;;
  esac
done
[ ${#archs[@]} -gt 0 ] || archs=(seed vgg)
if [ $quick = 1 ]; then B1_ROUNDS=${B1_ROUNDS:-2}; else B1_ROUNDS=${B1_ROUNDS:-5}; fi
if [ $quick = 1 ]; then B1_FINE_ROUNDS=${B1_FINE_ROUNDS:-4}; else B1_FINE_ROUNDS=${B1_FINE_ROUNDS:-40}; fi

# value KEY FILE: the value of "KEY value" in FILE, or empty.
value() { [ -f "$2" ] && awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }

# ratio A B: A/B with 2 decimals, "n/a" when either is missing, zero or nan.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "" || b == "" || a == "nan" || b == "nan" || a + 0 == 0 || b + 0 == 0) print "n/a";
    else printf "%.2f\n", a / b }'
}

or_na() { if [ -n "${1:-}" ]; then printf '%s' "$1"; else printf 'n/a'; fi; }

# median_col N FILE [FMT]: the median of column N of FILE's lines (numbers
# only; printf FMT, default %.3f), empty when there is none.
median_col() {
  awk -v n="$1" -v f="${3:-%.3f}" '$n ~ /^[0-9.]+$/ && $n + 0 > 0 { v[++k] = $n + 0 }
    END { if (!k) exit
          for (i = 2; i <= k; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
            t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
          printf f "\n", k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2 }' "$2"
}

# b1_rounds JSON OUTFILE: $B1_ROUNDS rounds of batch-1 latency, the C engine
# in fp32 and fp16 (bench_nn --batches 1) and PyTorch (torch_bench.py
# --b1-only: eager and the best variant), which side goes first alternating
# by round; then the medians of each side and of the rounds' ratios as "key
# value" lines (b1_alt_*) in OUTFILE.
b1_rounds() {
  local json=$1 out=$2 r c32 c16 p16 e b ct tt
  local raw=$out.rounds
  : > "$raw"
  for r in $(seq "$B1_ROUNDS"); do
    ct=$(mktemp); tt=$(mktemp)
    [ $((r % 2)) = 0 ] && "$PYTHON" bench/torch_bench.py "${opts[@]}" --b1-only "$json" > "$tt" 2>/dev/null
    "$BENCH_C" "${opts[@]}" --batches 1 "$json" > "$ct" 2>/dev/null
    "$BENCH_C" "${opts[@]}" --batches 1 --precision fp16 "$json" > "$ct.16" 2>/dev/null
    [ $((r % 2)) = 1 ] && "$PYTHON" bench/torch_bench.py "${opts[@]}" --b1-only "$json" > "$tt" 2>/dev/null
    c32=$(value infer_b1_latency_ms_t1 "$ct"); c16=$(value infer_b1_latency_ms_t1 "$ct.16")
    p16=$(value precision "$ct.16")
    e=$(value infer_b1_latency_ms_t1 "$tt"); b=$(value infer_b1_latency_ms_t1_best "$tt")
    rm -f "$ct" "$ct.16" "$tt"
    echo "$(or_na "$c32") $(or_na "$c16") $(or_na "$e") $(or_na "$b") $(ratio "$e" "$c32")" \
         "$(ratio "$b" "$c32") $(ratio "$e" "$c16") $(ratio "$b" "$c16") $(or_na "$p16")" >> "$raw"
    echo "   round $r: C fp32 $(or_na "$c32") ms, C fp16 $(or_na "$c16") ms ($(or_na "$p16")), torch eager" \
         "$(or_na "$e") ms, best $(or_na "$b") ms"
  done
  {
    echo "b1_alt_rounds $B1_ROUNDS"
    echo "b1_alt_c_fp32_ms $(median_col 1 "$raw")"
    echo "b1_alt_c_fp16_ms $(median_col 2 "$raw")"
    echo "b1_alt_eager_ms $(median_col 3 "$raw")"
    echo "b1_alt_best_ms $(median_col 4 "$raw")"
    echo "b1_alt_fp32_eager_speedup $(median_col 5 "$raw" %.2f)"
    echo "b1_alt_fp32_best_speedup $(median_col 6 "$raw" %.2f)"
    echo "b1_alt_fp16_eager_speedup $(median_col 7 "$raw" %.2f)"
    echo "b1_alt_fp16_best_speedup $(median_col 8 "$raw" %.2f)"
    echo "b1_alt_fp16_precision $(awk 'END { print $9 }' "$raw")"
  } > "$out"
}

# keys_row LABEL FILE KEY...: a table line of the values of KEY... in FILE.
keys_row() {
  local label=$1 file=$2 k
  shift 2
  printf '| %s' "$label"
  for k in "$@"; do printf ' | %s' "$(or_na "$(value "$k" "$file")")"; done
  printf ' |\n'
}

# alt_row LABEL PREFIX: a table line from the alternated rounds' file $af:
# the medians of each side, and the medians of the rounds' ratios.
alt_row() {
  keys_row "$1" "$af" "b1_alt_c_$2_ms" b1_alt_eager_ms b1_alt_best_ms \
    "b1_alt_$2_eager_speedup" "b1_alt_$2_best_speedup"
}

# fine_row LABEL PRECISION: a table line from torch_bench.py --b1-fine's
# file $ff: the medians of each side's round medians, and of the rounds'
# ratios.
fine_row() {
  keys_row "$1" "$ff" "b1_fine_c_$2_ms" b1_fine_torch_eager_ms b1_fine_torch_best_ms \
    "b1_fine_$2_eager_speedup" "b1_fine_$2_best_speedup"
}

# row LABEL C_KEY TORCH_KEY DIRECTION: one table line. DIRECTION "up" means
# higher is better (speed-up = C/torch), "down" lower (speed-up = torch/C),
# "-" no speed-up column (sizes, SGEMM rates of the shared OpenBLAS).
row() {
  local c e b su_e su_b
  c=$(value "$2" "$cf"); e=$(value "$3" "$tf"); b=$(value "$3_best" "$tf")
  [ -n "$b" ] || b=$e
  case $4 in
    up) su_e=$(ratio "$c" "$e"); su_b=$(ratio "$c" "$b") ;;
    down) su_e=$(ratio "$e" "$c"); su_b=$(ratio "$b" "$c") ;;
    *) su_e=$(ratio "$c" "$e"); su_b="" ;;
  esac
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(or_na "$c")" "$(or_na "$e")" \
    "$(or_na "$b")" "$su_e" "$su_b"
}

table() {
  local arch=$1
  echo
  echo "### $arch ($(or_na "$(value params "$cf")") parameters," \
       "$(awk -v f="$(value flops_per_image "$cf")" 'BEGIN { printf "%.1f", f / 1e6 }') MFLOP/image)"
  echo
  echo "| figure | C | torch eager | torch best | C / eager | C / best |"
  echo "|---|---:|---:|---:|---:|---:|"
  row "SGEMM 1024³ GFLOP/s, 1 thread" sgemm_1024_gflops_t1 sgemm_1024_gflops_t1 -
  row "SGEMM 1024³ GFLOP/s, 2 threads" sgemm_1024_gflops_t2 sgemm_1024_gflops_t2 -
  row "SGEMM 2304×64×1024 GFLOP/s, 1 thread" sgemm_conv_2304x64x1024_gflops_t1 \
      sgemm_conv_2304x64x1024_gflops_t1 -
  row "batch-1 latency ms, 1 thread (lower is better)" infer_b1_latency_ms_t1 \
      infer_b1_latency_ms_t1 down
  if [ -s "$af" ]; then
    alt_row "batch-1 latency ms, alternated rounds (medians)" fp32
    alt_row "batch-1 latency ms, fp16 filters, alternated rounds" fp16
  fi
  if [ -s "$ff" ]; then
    fine_row "batch-1 latency ms, fine alternation (medians)" fp32
    fine_row "batch-1 latency ms, fp16 filters, fine alternation" fp16
  fi
  row "batch-64 inference images/s, 1 thread" infer_b64_img_s_t1 infer_b64_img_s_t1 up
  row "batch-64 inference efficiency vs SGEMM" infer_b64_efficiency_t1 \
      infer_b64_efficiency_t1 up
  # C int8 (AVX-512 VNNI) against PyTorch's fp32: "n/a" on a CPU without VNNI
  row "batch-1 latency ms, int8, 1 thread (lower is better)" infer_int8_b1_latency_ms_t1 \
      infer_b1_latency_ms_t1 down
  row "batch-64 inference images/s, int8, 1 thread" infer_int8_b64_img_s_t1 \
      infer_b64_img_s_t1 up
  # C fp16 filters (AVX2 + F16C), fp32 arithmetic, against PyTorch's fp32
  row "batch-1 latency ms, fp16 filters, 1 thread (lower is better)" infer_fp16_b1_latency_ms_t1 \
      infer_b1_latency_ms_t1 down
  row "batch-64 inference images/s, fp16 filters, 1 thread" infer_fp16_b64_img_s_t1 \
      infer_b64_img_s_t1 up
  row "training images/s, batch 64, 2 threads" train_b64_img_s_t2 train_b64_img_s_t2 up
  row "training efficiency vs SGEMM (3×forward FLOPs)" train_b64_efficiency_t2 \
      train_b64_efficiency_t2 up
  echo
  echo "torch best variants: batch-1 $(or_na "$(value infer_b1_latency_ms_t1_best_variant "$tf")")," \
       "batch-64 $(or_na "$(value infer_b64_img_s_t1_best_variant "$tf")")," \
       "training $(or_na "$(value train_b64_img_s_t2_best_variant "$tf")");" \
       "optimizer C $(or_na "$(value train_optimizer "$cf")")," \
       "torch $(or_na "$(value train_optimizer "$tf")")"
  echo "OpenBLAS: C $(or_na "$(value openblas_env "$cf")") core $(or_na "$(value openblas_core "$cf")");" \
       "torch $(or_na "$(value openblas_env "$tf")") core $(or_na "$(value openblas_core "$tf")")"
  echo "malloc: C $(or_na "$(value malloc_env "$cf")"); torch $(or_na "$(value malloc_env "$tf")")"
  echo "C int8 vs fp32, alternated in $(or_na "$(value infer_int8_rounds "$cf")") rounds (median" \
       "ratio): batch 1 $(or_na "$(value infer_int8_b1_speedup "$cf")")x wall," \
       "$(or_na "$(value infer_int8_b1_cpu_speedup "$cf")")x thread CPU time; batch 64" \
       "$(or_na "$(value infer_int8_b64_speedup "$cf")")x wall," \
       "$(or_na "$(value infer_int8_b64_cpu_speedup "$cf")")x CPU"
  echo "C fp16 vs fp32, alternated in $(or_na "$(value infer_fp16_rounds "$cf")") rounds (median" \
       "ratio): batch 1 $(or_na "$(value infer_fp16_b1_speedup "$cf")")x wall," \
       "$(or_na "$(value infer_fp16_b1_cpu_speedup "$cf")")x thread CPU time; batch 64" \
       "$(or_na "$(value infer_fp16_b64_speedup "$cf")")x wall," \
       "$(or_na "$(value infer_fp16_b64_cpu_speedup "$cf")")x CPU"
  if [ -s "$af" ]; then
    echo "Alternated rounds: $(or_na "$(value b1_alt_rounds "$af")") rounds of bench_nn --batches 1" \
         "(fp32, then fp16: served $(or_na "$(value b1_alt_fp16_precision "$af")")) and torch_bench.py" \
         "--b1-only, the first side alternating; speed-ups are the medians of the rounds' ratios" \
         "(each round: $af.rounds)"
  fi
  if [ -s "$ff" ]; then
    echo "Fine alternation: $(or_na "$(value b1_fine_rounds "$ff")") rounds, each side" \
         "$(or_na "$(value b1_fine_warm_ms "$ff")") ms untimed then $(or_na "$(value b1_fine_ms "$ff")")" \
         "ms timed per round, in one run" \
         "(torch_bench.py --b1-fine; C fp16 served as $(or_na "$(value b1_fine_fp16_served "$ff")")," \
         "torch best = the fastest variant of each round); C / eager quartiles of the rounds: fp32" \
         "$(or_na "$(value b1_fine_fp32_eager_speedup_q1 "$ff")")-$(or_na "$(value b1_fine_fp32_eager_speedup_q3 "$ff")")," \
         "fp16 $(or_na "$(value b1_fine_fp16_eager_speedup_q1 "$ff")")-$(or_na "$(value b1_fine_fp16_eager_speedup_q3 "$ff")")"
  fi
  echo "load average at start: C $(or_na "$(value loadavg_1min "$cf")")," \
       "torch $(or_na "$(value loadavg_1min "$tf")") on $(or_na "$(value cpus_online "$cf")") CPUs"
}

# service_bench: bench/service.sh on the model the service ships, if any.
service_bench() {
  local model=${SERVICE_MODEL:-}
  [ -n "$model" ] || [ ! -r models/default.emod ] || model=models/default.emod
  local rc=0
  echo
  if [ -n "$model" ]; then
    BUILD=$BUILD PYTHON=$PYTHON bench/service.sh "${opts[@]}" --model "$model" || rc=$?
  else
    BUILD=$BUILD PYTHON=$PYTHON bench/service.sh "${opts[@]}" "${SERVICE_ARCH:-vgg}" || rc=$?
  fi
  [ $rc = 0 ] || echo "run.sh: bench/service.sh failed (exit $rc)" >&2
  return $rc
}

if [ $engine = 0 ]; then
  service_bench
  exit
fi

if [ ! -x "$BENCH_C" ]; then
  echo "run.sh: $BENCH_C not built (make bench builds it)" >&2
  exit 1
fi
have_torch=1
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "run.sh: $PYTHON has no torch; PyTorch columns will read n/a" >&2
  have_torch=0
fi

mkdir -p "$OUT"
status=0
for arch in "${archs[@]}"; do
  json=config/arch/$arch.json
  cf=$OUT/$arch.c.txt; tf=$OUT/$arch.torch.txt; af=$OUT/$arch.b1alt.txt
  ff=$OUT/$arch.b1fine.txt
  rm -f "$cf" "$tf" "$af" "$ff"
  echo "== $arch: C engine"
  "$BENCH_C" "${opts[@]}" "$json" | tee "$cf" || { echo "run.sh: bench_nn failed on $json" >&2; status=1; }
  if [ $have_torch = 1 ]; then
    echo "== $arch: PyTorch"
    "$PYTHON" bench/torch_bench.py "${opts[@]}" "$json" | tee "$tf" ||
      echo "run.sh: torch_bench.py failed on $json (not fatal)" >&2
    if [ "$B1_ROUNDS" -gt 0 ] 2>/dev/null; then
      echo "== $arch: batch-1 latency, C and PyTorch alternated in $B1_ROUNDS rounds"
      b1_rounds "$json" "$af"
    fi
    if [ "$B1_FINE_ROUNDS" -gt 0 ] 2>/dev/null; then
      echo "== $arch: batch-1 latency, C and PyTorch side by side in $B1_FINE_ROUNDS fine rounds"
      "$PYTHON" bench/torch_bench.py "${opts[@]}" --b1-fine "$BENCH_C" \
        --fine-rounds "$B1_FINE_ROUNDS" "$json" | tee "$ff" ||
        echo "run.sh: torch_bench.py --b1-fine failed on $json (not fatal)" >&2
    fi
  fi
done

echo
echo "## emotiond C engine vs PyTorch $([ $have_torch = 1 ] && "$PYTHON" -c 'import torch; print(torch.__version__)')"
echo
echo "C / eager and C / best are speed-ups of the C engine (> 1: C is faster; for latency"
echo "this is torch ms / C ms). \"torch best\" is the fastest of the PyTorch variants measured."
for arch in "${archs[@]}"; do
  cf=$OUT/$arch.c.txt; tf=$OUT/$arch.torch.txt; af=$OUT/$arch.b1alt.txt
  ff=$OUT/$arch.b1fine.txt
  table "$arch"
done
echo
for arch in "${archs[@]}"; do cat "$OUT/$arch.c.txt" "$OUT/$arch.torch.txt" 2>/dev/null; done |
  grep '^# NOTE' | sort -u
# a failed service bench is reported but does not change the exit status
[ $service = 0 ] || service_bench || true
# face detection cost and accuracy (photos-dlib), when the detector is built
if [ $engine = 1 ] && [ -x "$BUILD/bench/bench_face" ]; then
  echo
  echo "## Face detection"
  echo
  "$BUILD/bench/bench_face" || echo "run.sh: bench_face failed" >&2
fi
exit $status
