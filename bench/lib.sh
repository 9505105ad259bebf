# bench/lib.sh - helpers shared by bench/service.sh, bench/uploads.sh and
# bench/scaling.sh (sourced, not run). Set PROG (the script's name, for
# messages) before sourcing. Sourcing installs the EXIT/INT/TERM/HUP traps
# that stop every process started through remember().
# shellcheck shell=bash

PROG=${PROG:-bench}

# value KEY FILE: the value of "KEY value" in FILE, or empty.
value() { [ -f "$2" ] && awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }
or_na() { if [ -n "${1:-}" ]; then printf '%s' "$1"; else printf 'n/a'; fi; }
# ratio A B: A/B with 2 decimals, n/a when either is missing or zero.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "" || b == "" || a == "nan" || b == "nan" || a + 0 == 0 || b + 0 == 0) print "n/a";
    else printf "%.2f\n", a / b }'
}
mb() { [ -n "${1:-}" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
put() { echo "$2 $3" >> "$1"; }

# Every process a script starts, with a word its command line must still
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
    echo "$PROG: a server did not stop on SIGTERM; killing it" >&2
    signal_ours KILL
  fi
  wait 2>/dev/null
  STARTED_PIDS=(); STARTED_TAGS=()
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# rss_sum PID...: RSS_SUM_KB = the sum of VmRSS (kB) of the live processes
# given. Bash builtins only: run_wrk samples it 4 times a second while the
# server is measured, and a fork and exec of awk per sample (as rss_kb did in
# a $(...) subshell) took about a tenth of both cores on the PVM VM of
# 2026-12-07 (perf record -a: bash, awk, sleep and grep 10.8%), time the
# engine-alone figure never pays.
rss_sum() {
  local p k v _
  RSS_SUM_KB=0
  for p in "$@"; do
    [ -r "/proc/$p/status" ] || continue
    while read -r k v _; do
      if [ "$k" = VmRSS: ]; then RSS_SUM_KB=$((RSS_SUM_KB + v)); break; fi
    done < "/proc/$p/status" 2>/dev/null
  done
}

# rss_kb PID...: prints rss_sum's figure (for one-off readings).
rss_kb() {
  rss_sum "$@"
  echo "$RSS_SUM_KB"
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

# environ_of PID: the OPENBLAS_* variables the running server really has.
environ_of() {
  local e
  e=$({ tr '\0' '\n' < "/proc/$1/environ"; } 2>/dev/null | grep '^OPENBLAS_\(CORETYPE\|L2_SIZE\)=' |
      paste -sd, -)
  echo "${e:-none}"
}

# check_precision P: fp32, int8 or fp16, else exit 2.
check_precision() {
  case $1 in
    fp32|int8|fp16) ;;
    *) echo "$PROG: PRECISION must be fp32, int8 or fp16 (not '$1')" >&2; exit 2 ;;
  esac
}

# server_env ENV_FILE KEEP_ENV DEFAULT_MALLOC: gives this shell (and so every
# server it starts) what bench_nn and torch_bench.py do to themselves: the
# OpenBLAS variables removed unless KEEP_ENV=1, glibc malloc tuned unless
# DEFAULT_MALLOC=1. Prints the same "# NOTE" lines and records openblas_env,
# malloc_env, loadavg_1min and cpus_online in ENV_FILE.
server_env() {
  local env_file=$1 keep_env=$2 default_malloc=$3 v unset_note="" kept_note="" malloc_note=""
  if [ "$keep_env" = 0 ]; then
    for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
      if [ -n "${!v+x}" ]; then
        unset_note="${unset_note:+$unset_note,}$v=${!v}"
        unset "$v"
      fi
    done
  fi
  for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    [ -z "${!v+x}" ] || kept_note="${kept_note:+$kept_note,}$v=${!v}"
  done
  if [ -n "$kept_note" ]; then
    echo "# NOTE: OpenBLAS environment kept as is ($kept_note) for the servers" | tee -a "$env_file"
    put "$env_file" openblas_env "kept:$kept_note"
  elif [ -n "$unset_note" ]; then
    echo "# NOTE: unset $unset_note for the servers (--keep-openblas-env or" \
         "EMOTIOND_BENCH_KEEP_OPENBLAS_ENV=1 keeps them)" | tee -a "$env_file"
    put "$env_file" openblas_env "unset:$unset_note"
  else
    # a parent bench script that already unset them (service.sh, scaling.sh
    # calling uploads.sh) says what it did
    put "$env_file" openblas_env "${BENCH_SERVER_OPENBLAS_ENV:-default}"
  fi
  BENCH_SERVER_OPENBLAS_ENV=$(value openblas_env "$env_file")
  export BENCH_SERVER_OPENBLAS_ENV
  if [ "$default_malloc" = 0 ]; then
    export MALLOC_MMAP_MAX_=${MALLOC_MMAP_MAX_:-0}
    export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-4000000000}
  fi
  for v in MALLOC_MMAP_MAX_ MALLOC_TRIM_THRESHOLD_; do
    [ -z "${!v+x}" ] || malloc_note="${malloc_note:+$malloc_note,}$v=${!v}"
  done
  if [ -n "$malloc_note" ]; then
    echo "# NOTE: glibc malloc tuned for the servers ($malloc_note; --default-malloc or" \
         "EMOTIOND_BENCH_DEFAULT_MALLOC=1 disables)" | tee -a "$env_file"
  fi
  put "$env_file" malloc_env "$(or_na "$malloc_note")"
  put "$env_file" loadavg_1min "$(cut -d' ' -f1 /proc/loadavg)"
  put "$env_file" cpus_online "$(getconf _NPROCESSORS_ONLN)"
}

# start_emotiond LOG ARGS...: `$BUILD/emotiond serve --host 127.0.0.1 --port 0
# ARGS...` in the background, stderr to LOG; waits up to $START_TIMEOUT s
# (default 120) for its "ready on port" line. Sets EMOTIOND_PID, EMOTIOND_PORT
# and EMOTIOND_PRECISION_SERVED (fp32, int8 or fp16, from the "serving model"
# line: int8 asked on a CPU without VNNI serves fp32). Returns 1 (and prints the
# log) when it does not come up.
start_emotiond() {
  local log=$1; shift
  local v unset_args=()
  EMOTIOND_PORT=""; EMOTIOND_PRECISION_SERVED=""
  # emotiond refuses unknown EMOTIOND_* variables (a typo must not pass
  # silently), and the bench's own switches (EMOTIOND_BENCH_*) are not its
  # settings: start it without them
  for v in $(compgen -e); do
    case $v in EMOTIOND_BENCH_*) unset_args+=(-u "$v") ;; esac
  done
  env "${unset_args[@]}" "$BUILD/emotiond" serve --host 127.0.0.1 --port 0 "$@" 2> "$log" &
  EMOTIOND_PID=$!
  remember "$EMOTIOND_PID" "serve --host 127.0.0.1 --port 0"
  if ! wait_for_log "$log" 'ready on port [0-9]+' "$EMOTIOND_PID" "${START_TIMEOUT:-120}"; then
    echo "$PROG: emotiond did not start (see $log):" >&2
    sed 's/^/   /' "$log" >&2
    return 1
  fi
  # shellcheck disable=SC2034  # read by the caller
  EMOTIOND_PORT=$(sed -n 's/.*ready on port \([0-9][0-9]*\).*/\1/p' "$log" | head -n1)
  # "serving model ... with N workers, queue Q, int8": the last fp32/int8 of the line
  # shellcheck disable=SC2034  # read by the caller
  EMOTIOND_PRECISION_SERVED=$(grep -m1 'serving model' "$log" | grep -oE 'fp32|int8|fp16' | tail -n1)
  return 0
}

# run_wrk OUTFILE BODY CONTENT_TYPE CONNS SECONDS URL PID...: wrk -t1 (at most
# one thread per connection, WRK_THREADS) POSTing BODY through
# bench/post_png.lua, VmRSS of the PIDs sampled every 0.25 s meanwhile. wrk's
# output (with post_png.lua's "wrk_*" lines) goes to OUTFILE, followed by
# "rss_peak_kb N"; RUN_WRK_RSS_PEAK_KB is set to the same. Never fails.
run_wrk() {
  local out=$1 body=$2 ctype=$3 c=$4 secs=$5 url=$6; shift 6
  local t=${WRK_THREADS:-1} peak=0 wrk_pid
  [ "$t" -le "$c" ] || t=$c
  WRK_PNG=$body WRK_CONTENT_TYPE=$ctype "${WRK:-wrk}" -t"$t" -c"$c" -d"${secs}s" --timeout 10s \
    -s bench/post_png.lua "$url" > "$out" 2>&1 &
  wrk_pid=$!
  remember "$wrk_pid" post_png.lua
  # the pause is a read with a timeout on a pipe nobody writes to, so the loop
  # forks nothing while wrk runs (see rss_sum)
  local pause_fd
  exec {pause_fd}<> <(:)
  while kill -0 "$wrk_pid" 2>/dev/null; do
    if [ $# -gt 0 ]; then rss_sum "$@"; [ "$RSS_SUM_KB" -le "$peak" ] || peak=$RSS_SUM_KB; fi
    read -r -t 0.25 -u "$pause_fd" _ || true
  done
  exec {pause_fd}<&-
  wait "$wrk_pid" 2>/dev/null || echo "$PROG: wrk failed at $c connections (see $out)" >&2
  echo "rss_peak_kb $peak" >> "$out"
  # shellcheck disable=SC2034  # read by the caller
  RUN_WRK_RSS_PEAK_KB=$peak
}

# wrk_value KEY FILE: wrk_KEY from a run_wrk output, empty when no request
# completed (then wrk prints zeros, which are not measurements).
wrk_value() {
  local n
  n=$(value wrk_requests "$2")
  [ "${n:-0}" -gt 0 ] 2>/dev/null && value "wrk_$1" "$2"
}

# wrk_errors FILE: failed requests in a run_wrk output (socket errors,
# timeouts, HTTP status >= 400).
wrk_errors() {
  local k n=0 v
  for k in connect read write status timeout; do
    v=$(value "wrk_errors_$k" "$1"); n=$((n + ${v:-0}))
  done
  echo "$n"
}

# content_type FILE: image/png or image/jpeg from the file name.
content_type() {
  case $1 in *.jpg|*.jpeg|*.JPG|*.JPEG) echo image/jpeg ;; *) echo image/png ;; esac
}
