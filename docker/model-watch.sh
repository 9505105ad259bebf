#!/bin/bash
# emotiond-model-watch FILE [SECONDS] - sends SIGHUP to `emotiond serve` when
# FILE (the served model) is replaced, so that a new model published by the
# training Job is picked up without a restart. emotiond loads and checks the
# new file off the request path and keeps serving the old one if it is bad.
#
# Runs as a sidecar in the same pod (shareProcessNamespace: true, same user)
# and finds the server by its command line; WATCH_PID names it instead.
# The file is compared by inode, size and mtime: publish with an atomic
# rename (cp new FILE.tmp && mv FILE.tmp FILE).
file=${1:?usage: emotiond-model-watch FILE [SECONDS]}
interval=${2:-10}
sig() { stat -c '%i:%s:%Y' "$file" 2>/dev/null; }
servers() {
  if [ -n "${WATCH_PID:-}" ]; then echo "$WATCH_PID"; return; fi
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    case $cmd in
      emotiond\ serve*|*/emotiond\ serve*) echo "${p#/proc/}" ;;
    esac
  done
}
last=$(sig)
echo "model-watch: watching $file every ${interval}s (${last:-missing})"
while sleep "$interval"; do
  cur=$(sig) || continue
  [ -n "$cur" ] && [ "$cur" != "$last" ] || continue
  last=$cur
  pids=$(servers)
  if [ -z "$pids" ]; then echo "model-watch: $file changed, no emotiond serve process found"; continue; fi
  for p in $pids; do
    kill -HUP "$p" && echo "model-watch: $file changed ($cur), SIGHUP sent to $p"
  done
done
