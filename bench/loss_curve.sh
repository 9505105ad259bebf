#!/usr/bin/env bash
# bench/loss_curve.sh - the C engine's loss curve against PyTorch's (issue 6:
# "images/s at least 2x PyTorch's ... WITH THE SAME LOSS CURVE over the first
# epochs (same data order and augmentation off, within noise)").
#
#   bench/loss_curve.sh [--epochs N] [--max-train N] [--seed N] [--init-seed N] [--arch FILE]
#                       [--data DIR] [--out DIR] [--no-check] [--check-only] [--no-build]
#
# 1. One initial model: build/bench/make_model ARCH OUT/init.emod N (default
#    config/arch/vgg_wide.json, --init-seed 42).
# 2. The check: the same architecture with every dropout rate set to 0
#    (OUT/check/arch.json), 5 epochs of --max-train 1280 (100 steps), trained
#    by `emotiond train` and by bench/loss_curve.py (torch A), and by it again
#    from weights nudged by about one fp32 ulp (torch B, --perturb 6e-8); with no
#    dropout C and A differ only by rounding, so |C - A| should be about
#    |A - B|, what rounding alone does (this is what verifies data order,
#    optimizer, weight decay and batch norm; fp32 rounding moves a step-1
#    gradient by ~3e-3 here against float64, and training at lr 0.02
#    amplifies it). Then the band: C twice more (one thread; OpenBLAS's
#    Prescott kernels) and torch from two more nudges, and per epoch whether
#    the two sides' train-loss ranges meet. --no-check skips it.
# 3. The comparison: ARCH as is (dropout on), N epochs (default 3) on the whole
#    training set; `emotiond train` once, PyTorch twice (torch seeds 1 and 2:
#    different dropout masks) to measure the noise band. --check-only stops
#    before it.
# Both sides train from OUT/init.emod on DIR (default .cache/fer2013) in the
# same order (seed N, default 1), augmentation off, constant learning rate (no
# warm-up), the architecture's optimizer, batch size and weight decay, 2
# threads. The C binaries are built (--no-build: taken as they are from
# $BUILD) and copied to OUT/bin first, so a rebuild of build/ during the run
# changes nothing; the first line says the commit, "+dirty" when the build
# had uncommitted changes of nn/ or service/.
#
# Prints markdown tables (per epoch: train loss, validation loss, validation
# accuracy of C, torch A and torch B, |C - A| and |A - B|; the running loss
# every 100 steps) and the images/s each side reached (informational: the
# speed comparison is bench/run.sh's). The C validation loss is PyTorch's
# forward pass on the C run's epoch snapshots (the engine reports accuracy
# only); `--max-train N` makes a quick smoke run. Raw outputs stay in OUT (default
# build/bench/loss_curve): c/ (history.csv, train.log, epoch-NNN.emod),
# torch_a/ and torch_b/ (history.csv, steps.csv, train.log), tables.md.
# Time on the 2-core machine: the check about 10 minutes; the comparison about
# 6 minutes for C and 13 minutes per PyTorch run, some 35 minutes in all.
# Run it niced in the background when others measure speed. Never fails on
# the numbers; exits non-zero when something cannot be built or run.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
# glibc malloc as bench/run.sh sets it (bench/README.md: otherwise each large
# PyTorch activation is a fresh mmap that page-faults on every call)
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=4000000000
arch=config/arch/vgg_wide.json
data=.cache/fer2013
out=$BUILD/bench/loss_curve
epochs=3
max_train=0
seed=1
init_seed=42
check=1
compare=1
build=1
usage() { sed -n '6,7p' "$0" | sed 's/^# \{0,2\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --epochs) epochs=$2; shift ;;
    --max-train) max_train=$2; shift ;;
    --seed) seed=$2; shift ;;
    --init-seed) init_seed=$2; shift ;;
    --arch) arch=$2; shift ;;
    --data) data=$2; shift ;;
    --out) out=$2; shift ;;
    --no-check) check=0 ;;
    --check-only) compare=0 ;;
    --no-build) build=0 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "loss_curve.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ ! -d "$data/train" ] || [ ! -d "$data/test" ]; then
  echo "loss_curve.sh: no dataset in $data (mkdir -p .cache && tar xzf ../shared/data/fer2013-train-publictest.tar.gz -C .cache)" >&2
  exit 2
fi
"$PYTHON" -c 'import torch, PIL, numpy' 2>/dev/null || {
  echo "loss_curve.sh: $PYTHON cannot import torch, PIL and numpy (apt-get install python3-torch python3-pil)" >&2
  exit 2
}

if [ $build = 1 ]; then make -s "$BUILD/emotiond" "$BUILD/bench/make_model"; fi
mkdir -p "$out/bin"
rm -f "$out/bin/emotiond" "$out/bin/make_model"  # may be running in another run
cp "$BUILD/emotiond" "$BUILD/bench/make_model" "$out/bin/"
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ $build = 0 ]; then rev="$rev (binaries not rebuilt)"
elif ! git diff --quiet HEAD -- nn service 2>/dev/null; then rev="$rev+dirty"; fi
echo "# loss_curve.sh: commit $rev, $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg), $(date -u +%FT%TZ)"
"$out/bin/make_model" "$arch" "$out/init.emod" "$init_seed"

# c_train DIR INIT EPOCHS MAX_TRAIN [THREADS]: emotiond train, augmentation off,
# constant lr, 2 threads unless THREADS
c_train() {
  rm -rf "$1"; mkdir -p "$1"
  echo "# C: emotiond train --init $2, $3 epochs, max-train $4, threads ${5:-2}${OPENBLAS_CORETYPE:+, OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE} -> $1/train.log"
  "$out/bin/emotiond" train --init "$2" --data "$data" --out "$1" --epochs "$3" --max-train "$4" \
    --seed "$seed" --threads "${5:-2}" --schedule none --warmup-epochs 0 \
    --flip 0 --shift 0 --rotate 0 --scale 0 --erase 0 --snapshots > "$1/train.log" 2>&1 || {
      tail -5 "$1/train.log" >&2; echo "loss_curve.sh: emotiond train failed" >&2; exit 1; }
}
# torch_train DIR INIT EPOCHS MAX_TRAIN TORCH_SEED [OPTION VALUE]
torch_train() {
  rm -rf "$1"; mkdir -p "$1"
  echo "# torch: loss_curve.py train --init $2, $3 epochs, max-train $4, torch seed $5 ${6:-} ${7:-} -> $1/train.log"
  "$PYTHON" bench/loss_curve.py train --init "$2" --data "$data" --out "$1" --epochs "$3" \
    --max-train "$4" --seed "$seed" --threads 2 --torch-seed "$5" ${6:+"$6" "$7"} > "$1/train.log" 2>&1 || {
      tail -5 "$1/train.log" >&2; echo "loss_curve.sh: loss_curve.py train failed" >&2; exit 1; }
}
# c_eval DIR: validation loss of every epoch's C weights, computed by PyTorch
c_eval() {
  "$PYTHON" bench/loss_curve.py eval --data "$data" --out "$1/eval.csv" "$1"/epoch-*.emod \
    > "$1/eval.log" 2>&1 || { tail -5 "$1/eval.log" >&2; echo "loss_curve.sh: eval failed" >&2; exit 1; }
}

if [ $check = 1 ]; then
  d=$out/check
  mkdir -p "$d"
  "$PYTHON" - "$arch" "$d/arch.json" <<'EOF'
import json, sys
arch = json.load(open(sys.argv[1]))
for layer in arch["layers"]:
    if layer["type"] == "dropout":
        layer["rate"] = 0.0
arch["name"] = arch.get("name", "arch") + "_nodropout"
json.dump(arch, open(sys.argv[2], "w"), indent=2)
EOF
  "$out/bin/make_model" "$d/arch.json" "$d/init.emod" "$init_seed"
  "$PYTHON" bench/loss_curve.py decode-check --data "$data" | tee "$d/decode.txt"
  c_train "$d/c" "$d/init.emod" 5 1280
  torch_train "$d/torch" "$d/init.emod" 5 1280 1
  torch_train "$d/torch_p" "$d/init.emod" 5 1280 1 --perturb 6e-8
  c_eval "$d/c"
  {
    echo "## Check: no dropout, 5 epochs x 20 steps (--max-train 1280); torch B from weights nudged by about one ulp"
    echo
    "$PYTHON" bench/loss_curve.py table --c "$d/c" --torch "$d/torch" --torch "$d/torch_p" \
      --c-eval "$d/c/eval.csv" --c-log "$d/c/train.log" --c-weights "$d/c/checkpoint.emod"
    echo
  } | tee "$d/table.md"
  # One nudged run is a narrow band: this check overfits 1,280 images, so
  # rounding alone fans the curves out (bench/README.md measured C's epoch-5
  # loss over 0.53-0.71 from which OpenBLAS kernel sums the dense layer). More
  # runs of each side that differ only by rounding: C on one thread (another
  # summation order) and with OpenBLAS's generic kernels (Prescott: any
  # x86-64), PyTorch from two more nudges.
  c_train "$d/c_t1" "$d/init.emod" 5 1280 1
  OPENBLAS_CORETYPE=Prescott c_train "$d/c_prescott" "$d/init.emod" 5 1280
  torch_train "$d/torch_p2" "$d/init.emod" 5 1280 1 --perturb 1.2e-7
  torch_train "$d/torch_p3" "$d/init.emod" 5 1280 1 --perturb 3e-7
  {
    echo "## Check: the rounding band, 3 C runs and 4 PyTorch runs"
    echo
    "$PYTHON" bench/loss_curve.py band --c "$d/c" --c "$d/c_t1" --c "$d/c_prescott" \
      --torch "$d/torch" --torch "$d/torch_p" --torch "$d/torch_p2" --torch "$d/torch_p3"
    echo
  } | tee -a "$d/table.md"
fi

if [ $compare = 1 ]; then
  c_train "$out/c" "$out/init.emod" "$epochs" "$max_train"
  torch_train "$out/torch_a" "$out/init.emod" "$epochs" "$max_train" 1
  torch_train "$out/torch_b" "$out/init.emod" "$epochs" "$max_train" 2
  c_eval "$out/c"
  {
    echo "## $(basename "$arch" .json), $epochs epochs, dropout on (torch A: torch seed 1, B: seed 2)"
    echo
    "$PYTHON" bench/loss_curve.py table --c "$out/c" --torch "$out/torch_a" --torch "$out/torch_b" \
      --c-eval "$out/c/eval.csv" --c-log "$out/c/train.log"
  } | tee "$out/tables.md"
fi
