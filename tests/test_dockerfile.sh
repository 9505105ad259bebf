#!/usr/bin/env bash
# tests/test_dockerfile.sh - checks the Dockerfile without Docker.
#
#   tests/test_dockerfile.sh            (after `make`; needs dpkg, ldd)
#
# What it checks, each as a PASS/FAIL line, then a summary; exits 1 on any FAIL:
#  - two stages: the build on debian:bookworm, the runtime on debian:bookworm-slim;
#  - the build stage installs every package of the Makefile's DEB_PACKAGES and
#    runs only `make` targets the README documents, `make test` among them;
#  - the runtime stage's apt-get list, with the packages they depend on (read
#    from dpkg here, on the same Debian release), provides every library that
#    `ldd build/emotiond` shows (each .so mapped to its package with dpkg -S),
#    and lists no package the binary does not link;
#  - a non-root USER, EXPOSE, HEALTHCHECK on /healthz, ENTRYPOINT
#    ["emotiond", "serve"], a VOLUME, the default model and the face cascade
#    copied in, no EMOTIOND_* variable that `emotiond serve` does not know (an
#    unknown one stops the server), docker/emotiond.json accepted by
#    `emotiond serve --print-config`, the copied files present and not
#    excluded by .dockerignore;
#  - live, on loopback: docker/healthcheck.sh against a running emotiond (0 on
#    /healthz, 1 on a closed port) and docker/model-watch.sh making the server
#    reload a replaced model file.
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-build/emotiond}
DF=${DOCKERFILE:-Dockerfile}
pass=0; fail=0; warn=0
ok()   { echo "PASS: $*"; pass=$((pass + 1)); }
bad()  { echo "FAIL: $*"; fail=$((fail + 1)); }
note() { echo "WARN: $*"; warn=$((warn + 1)); }
check() { local msg=$1; shift; if "$@"; then ok "$msg"; else bad "$msg"; fi; }

[ -r "$DF" ] || { echo "FAIL: no $DF"; exit 1; }
[ -x "$BIN" ] || { echo "FAIL: no $BIN (run make first)"; exit 1; }

# The Dockerfile with continuation lines joined and comments dropped.
joined=$(sed -e 's/^[[:space:]]*#.*$//' "$DF" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' | grep -v '^[[:space:]]*$')
# Stage N (1-based) of the joined text.
stage() { awk -v n="$1" 'toupper($1) == "FROM" { k++ } k == n' <<<"$joined"; }
nstages=$(grep -ci '^[[:space:]]*FROM ' <<<"$joined")
build=$(stage 1)
runtime=$(stage "$nstages")
# ARG defaults, to expand ${DEBIAN} in FROM lines.
expand() {
  local s=$1 k v
  while read -r k v; do s=${s//\$\{$k\}/$v}; s=${s//\$$k/$v}; done < <(
    sed -n 's/^[[:space:]]*ARG[[:space:]]\+\([A-Za-z_]*\)=\([^[:space:]]*\).*/\1 \2/p' "$DF")
  echo "$s"
}
from1=$(expand "$(grep -i '^FROM' <<<"$build" | awk '{ print $2 }')")
fromN=$(expand "$(grep -i '^FROM' <<<"$runtime" | awk '{ print $2 }')")
check "multi-stage ($nstages stages)" [ "$nstages" -ge 2 ]
check "build stage FROM debian:bookworm ($from1)" [ "$from1" = debian:bookworm ]
check "runtime stage FROM debian:bookworm-slim ($fromN)" [ "$fromN" = debian:bookworm-slim ]

# apt-get install arguments of a stage: words after "install" up to && ; | or end.
apt_pkgs() {
  grep -o 'apt-get install[^&;|]*' <<<"$1" | sed 's/apt-get install//' | tr ' ' '\n' |
    grep -v '^-' | grep -v '^$' | sort -u
}
build_pkgs=$(apt_pkgs "$build")
run_pkgs=$(apt_pkgs "$runtime")

# -- build stage -------------------------------------------------------------
deb_make=$(sed -n '/^DEB_PACKAGES[[:space:]]*:=/,/[^\\]$/p' Makefile | sed 's/^DEB_PACKAGES[[:space:]]*:=//; s/\\//g' | tr ' ' '\n' | grep -v '^$' | sort -u)
missing=$(comm -23 <(echo "$deb_make") <(echo "$build_pkgs") | tr '\n' ' ')
check "build stage installs the Makefile's DEB_PACKAGES${missing:+ (missing: $missing)}" [ -z "$missing" ]
# make invocations in the build stage: "make" alone or "make TARGET..."
df_targets=$(grep -oE '(^RUN|&&|;|then|\|\|)[[:space:]]+make\b[^&;|]*' <<<"$build" |
  sed -E 's/^(RUN|&&|;|then|\|\|)[[:space:]]+make//' |
  awk '{ if (NF == 0) print "all"; else for (i = 1; i <= NF; i++) if ($i !~ /=/ && $i !~ /^-/) print $i }' | sort -u)
readme_targets=$(grep -o '^make [a-z-]*' README.md | awk '{ print $2 }' | sort -u)
check "build stage runs make (found: $(echo $df_targets))" [ -n "$df_targets" ]
extra=""
for t in $df_targets; do
  # `make` alone (all) builds exactly what the README's `make run` serves.
  if [ "$t" = all ]; then grep -q '^make run' <<<"$readme_targets"$'\n'"$(grep -o '^make run' README.md)" || extra="$extra all"; continue; fi
  grep -qx "$t" <<<"$readme_targets" || extra="$extra $t"
done
check "build stage's make targets are the README's ($(echo $readme_targets))${extra:+ (not in README:$extra)}" [ -z "$extra" ]
check "build stage runs the README's test command (make test)" grep -qx test <<<"$df_targets"

# -- runtime libraries ----------------------------------------------------------
check "runtime stage installs packages ($(echo $run_pkgs))" [ -n "$run_pkgs" ]
# Packages providing each library ldd shows (symlinks resolved: dpkg knows
# /usr/lib/... files, ldd may print /lib/... or an alternatives link).
# One dpkg -S call for every candidate path (it reads dpkg's whole file list).
declare -A lib_pkg=() owner=()
libs=$(ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
cands=$(while read -r lib path; do
  r=$(readlink -f "$path"); printf '%s\n' "$path" "$r" "/usr$path" "/usr$r"; done <<<"$libs" | sort -u)
while IFS= read -r line; do
  owner[${line#*: }]=$(cut -d: -f1 <<<"${line%%: *}")
done < <(dpkg -S $cands 2>/dev/null)
while read -r lib path; do
  [ -n "$path" ] || continue
  pkg=""
  r=$(readlink -f "$path")
  for c in "$path" "$r" "/usr$path" "/usr$r"; do
    [ -n "${owner[$c]:-}" ] && { pkg=${owner[$c]}; break; }
  done
  if [ -z "$pkg" ]; then bad "no Debian package owns $lib ($path)"; continue; fi
  lib_pkg[$lib]=$pkg
done <<<"$libs"
check "ldd $BIN lists libraries (${#lib_pkg[@]})" [ "${#lib_pkg[@]}" -gt 0 ]

# Closure of the runtime packages over Depends/Pre-Depends, from dpkg's
# database here (alternatives "a | b": every one that is installed).
# (one dpkg-query call; the walk itself in awk).
declare -A closure=()
while read -r p; do closure[$p]=1; done < <(
  dpkg-query -W -f='${Package}\t${Status}\t${Depends}, ${Pre-Depends}\t${Provides}\n' 2>/dev/null |
  awk -F'\t' -v roots="$(echo $run_pkgs)" '
    $2 ~ /install ok installed/ {
      inst[$1] = 1; deps[$1] = $3
      n = split($4, pr, ","); for (i = 1; i <= n; i++) { v = pr[i]; sub(/\(.*/, "", v); gsub(/ /, "", v); if (v != "") prov[v] = prov[v] " " $1 }
    }
    END {
      nq = split(roots, q, " ")
      for (h = 1; h <= nq; h++) {
        p = q[h]; if (p in seen) continue; seen[p] = 1
        if (!(p in inst)) { print "MISSING:" p; continue }
        print p
        m = split(deps[p], d, /[,|]/)
        for (i = 1; i <= m; i++) {
          x = d[i]; sub(/\(.*/, "", x); gsub(/ /, "", x); sub(/:any$/, "", x)
          if (x == "") continue
          if (x in inst) q[++nq] = x
          else if (x in prov) { k = split(prov[x], pv, " "); for (j = 1; j <= k; j++) q[++nq] = pv[j] }
        }
      }
    }')
for p in "${!closure[@]}"; do
  case $p in MISSING:*) bad "runtime package ${p#MISSING:} is not installed here, its dependencies cannot be checked" ;; esac
done
uncovered=""
for lib in "${!lib_pkg[@]}"; do
  [ -n "${closure[${lib_pkg[$lib]}]:-}" ] || uncovered="$uncovered $lib(${lib_pkg[$lib]})"
done
check "runtime packages and their dependencies cover every library of ldd${uncovered:+ (not covered:$uncovered)}" [ -z "$uncovered" ]
unused=""
for p in $run_pkgs; do
  used=0
  for lib in "${!lib_pkg[@]}"; do [ "${lib_pkg[$lib]}" = "$p" ] && used=1; done
  [ $used = 1 ] || unused="$unused $p"
done
check "runtime stage lists only libraries the binary links${unused:+ (unused:$unused)}" [ -z "$unused" ]
check "runtime stage installs no compiler or -dev package" \
  bash -c '! grep -Eq -- "-dev$|^(gcc|make|build-essential|curl)$" <<<"$1"' _ "$run_pkgs"

# -- runtime stage directives ----------------------------------------------------
user=$(grep -i '^USER' <<<"$runtime" | tail -n1 | awk '{ print $2 }')
check "runtime USER is not root ($user)" bash -c '[ -n "$1" ] && ! [[ "$1" =~ ^(root|0)(:.*)?$ ]]' _ "$user"
check "EXPOSE 8080" grep -qiE '^EXPOSE[[:space:]]+8080\b' <<<"$runtime"
check "HEALTHCHECK on /healthz" grep -qiE '^HEALTHCHECK.*CMD.*/healthz' <<<"$runtime"
check 'ENTRYPOINT ["emotiond", "serve"]' grep -qE '^ENTRYPOINT[[:space:]]+\[[[:space:]]*"emotiond",[[:space:]]*"serve"[[:space:]]*\][[:space:]]*$' <<<"$runtime"
check "VOLUME for the model store" grep -qiE '^VOLUME' <<<"$runtime"
check "default model copied into the image" grep -qE '^COPY .*models/default\.emod' <<<"$runtime"
check "face cascade copied into the image" grep -qE '^COPY .*models/haarcascade_frontalface_default\.fdc' <<<"$runtime"
check "binary copied from the build stage" grep -qE '^COPY --from=build .*build/emotiond' <<<"$runtime"

# ENV: every EMOTIOND_* name must be a setting of `emotiond serve`.
known=$("$BIN" serve --help | sed -n 's/^  --\([a-z0-9-]*\).*/\1/p' | tr 'a-z-' 'A-Z_')
envs=$(grep -i '^ENV' <<<"$runtime" | grep -o 'EMOTIOND_[A-Z0-9_]*' | sort -u)
unknown=""
for e in $envs; do
  k=${e#EMOTIOND_}; [ "$k" = CONFIG ] && continue
  grep -qx "$k" <<<"$known" || unknown="$unknown $e"
done
check "ENV sets only known EMOTIOND_* settings ($(echo $envs))${unknown:+ (unknown:$unknown)}" [ -z "$unknown" ]
if [ -r docker/emotiond.json ]; then
  check "docker/emotiond.json is a valid emotiond config" \
    bash -c '"$1" serve --config docker/emotiond.json --print-config >/dev/null' _ "$BIN"
fi

# Files copied from the build context exist and .dockerignore keeps them.
for src in $(grep -E '^COPY ' <<<"$runtime" | grep -v -- '--from=' | sed -E 's/^COPY( --[a-z]+=[^ ]+)*//' | awk '{ for (i = 1; i < NF; i++) print $i }'); do
  if [ ! -e "$src" ]; then
    if [ "$src" = models/default.emod ]; then
      note "$src is not there yet (the trained default model is committed before an image is built)"
    else
      bad "COPY source $src does not exist"
    fi
    continue
  fi
  ignored=""
  while read -r pat; do
    pat=${pat%/}; [ -n "$pat" ] || continue
    case "$src" in "$pat"|"$pat"/*) ignored=$pat ;; esac
  done < <(grep -v '^[[:space:]]*#' .dockerignore 2>/dev/null | grep -v '^!')
  check "COPY source $src present and not excluded by .dockerignore${ignored:+ (excluded by $ignored)}" [ -z "$ignored" ]
done

# -- live: the healthcheck and model-watch scripts on loopback ----------------
tmp=$(mktemp -d)
srv=""
watch=""
cleanup() {
  [ -n "$watch" ] && kill "$watch" 2>/dev/null
  if [ -n "$srv" ] && kill -0 "$srv" 2>/dev/null; then kill -TERM "$srv"; wait "$srv" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
model=""
if [ -r models/default.emod ]; then cp models/default.emod "$tmp/model.emod" && model=$tmp/model.emod
elif [ -x build/bench/make_model ]; then
  build/bench/make_model config/arch/seed.json "$tmp/model.emod" >/dev/null 2>&1 && model=$tmp/model.emod
fi
if [ -z "$model" ]; then
  note "live checks skipped: no models/default.emod and no build/bench/make_model"
else
  env -u EMOTIOND_CONFIG "$BIN" serve --model "$model" --host 127.0.0.1 --port 0 --workers 1 \
    --log-requests false 2>"$tmp/log" &
  srv=$!
  port=""
  for _ in $(seq 150); do
    port=$(sed -n 's/.*ready on port \([0-9]*\).*/\1/p' "$tmp/log" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$srv" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    bad "emotiond serve did not start: $(tail -n 3 "$tmp/log")"
  else
    check "docker/healthcheck.sh: 0 on a healthy server" env EMOTIOND_PORT="$port" bash docker/healthcheck.sh /healthz
    check "docker/healthcheck.sh: 1 on a missing path" bash -c '! EMOTIOND_PORT=$1 bash docker/healthcheck.sh /nope >/dev/null' _ "$port"
    # a port nothing listens on: the ephemeral one of a closed socket
    dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 1)
    check "docker/healthcheck.sh: 1 when nothing listens" bash -c '! EMOTIOND_PORT=$1 bash docker/healthcheck.sh >/dev/null' _ "$dead"
    WATCH_PID=$srv bash docker/model-watch.sh "$model" 1 >"$tmp/watch" 2>&1 &
    watch=$!
    sleep 1.5
    cp "$model" "$tmp/new.emod" && mv -f "$tmp/new.emod" "$model" # a new inode, as the Job publishes
    reloaded=0
    for _ in $(seq 100); do
      grep -q 'model reloaded' "$tmp/log" && { reloaded=1; break; }
      sleep 0.1
    done
    check "docker/model-watch.sh: a replaced model file is reloaded (SIGHUP)" [ $reloaded = 1 ]
  fi
fi

echo "----"
if [ $fail -eq 0 ]; then
  echo "test_dockerfile: PASS ($pass checks passed, $warn warnings)"
  exit 0
fi
echo "test_dockerfile: FAIL ($fail of $((pass + fail)) checks failed, $warn warnings)"
exit 1
