#!/usr/bin/env bash
# Runs each libFuzzer harness for FUZZ_SECONDS (make fuzz / make fuzz-ci).
#   tests/fuzz/run.sh BUILD_DIR HARNESS...
# New coverage goes to BUILD_DIR/corpus/<harness>/ (git-ignored); the seeds of
# tests/corpus/<harness>/ (and, for the image harness, PngSuite and
# libjpeg-turbo's test images from ../shared/data) are read only. A crash
# leaves its input in BUILD_DIR/artifacts/<harness>/: fix the bug, then copy
# the input into tests/corpus/<harness>/ so that `make test` replays it.
# Exits non-zero if any harness crashed.
set -u
build=$1; shift
secs=${FUZZ_SECONDS:-300}
shared=../shared/data
status=0
summary=""
for h in "$@"; do
  bin=$build/fuzzers/$h
  corpus=$build/corpus/$h
  art=$build/artifacts/$h
  mkdir -p "$corpus" "$art"
  seeds=("tests/corpus/$h")
  args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024
        -print_final_stats=1 -artifact_prefix="$art/")
  case $h in
    fuzz_image)
      args+=(-max_len=65536)
      [ -d "$shared/pngsuite" ] && seeds+=("$shared/pngsuite")
      [ -d "$shared/jpeg/libjpeg-turbo" ] && seeds+=("$shared/jpeg/libjpeg-turbo")
      ;;
    fuzz_jpeg_dc)
      args+=(-max_len=16384)
      [ -d "$shared/jpeg/libjpeg-turbo" ] && seeds+=("$shared/jpeg/libjpeg-turbo")
      ;;
    fuzz_model) args+=(-max_len=16384) ;;
    *) args+=(-max_len=8192) ;;
  esac
  [ -f "tests/fuzz/$h.dict" ] && args+=(-dict="tests/fuzz/$h.dict")
  echo "== $h: ${secs}s"
  log=$build/$h.log
  start=$(date +%s)
  "$bin" "${args[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  end=$(date +%s)
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  line="$h: exit $rc, ${execs:-?} runs in $((end - start))s, ${cov:-no coverage line}, corpus $(ls "$corpus" | wc -l) files"
  echo "$line"
  summary+="$line"$'\n'
  if [ $rc -ne 0 ]; then
    status=1
    echo "---- $h failed; the end of $log:"
    tail -n 60 "$log"
    ls -l "$art"
  fi
done
printf '\nfuzz summary (%ss each):\n%s' "$secs" "$summary"
exit $status
