#!/bin/bash
# emotiond-healthcheck [PATH] - exits 0 when GET PATH (default /healthz) on
# 127.0.0.1:$EMOTIOND_PORT (default 8080) answers 200, 1 otherwise.
# Plain bash (/dev/tcp) so that the slim image needs no curl; the Dockerfile's
# HEALTHCHECK runs it, and so can anyone: `docker exec C emotiond-healthcheck`.
path=${1:-/healthz}
port=${EMOTIOND_PORT:-8080}
host=${HEALTHCHECK_HOST:-127.0.0.1}
{ exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || { echo "healthcheck: cannot connect to $host:$port"; exit 1; }
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 4 status <&3 || { echo "healthcheck: no answer from $host:$port"; exit 1; }
exec 3<&-
status=${status%$'\r'}
case $status in
  "HTTP/1."?" 200"*) exit 0 ;;
esac
echo "healthcheck: GET $path: $status"
exit 1
