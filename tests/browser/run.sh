#!/usr/bin/env bash
# The web page end to end in Debian's headless Chromium (make test-browser;
# CI calls this script too). Installs what is missing first: chromium and
# Node.js/npm from Debian (as root), playwright-core from the npm registry at
# the version pinned in package-lock.json. Expects build/emotiond (the
# Makefile target builds it). Screenshots: build/browser/*.png.
set -euo pipefail
cd "$(dirname "$0")"
export BUILD="${BUILD:-build}"
root=$(cd ../.. && pwd)

if [ ! -x "$root/$BUILD/emotiond" ]; then
  echo "test-browser: $BUILD/emotiond is missing: run make first" >&2
  exit 1
fi

missing=()
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test-browser: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "test-browser: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "test-browser: playwright-core needs Node.js 20 or later, this is $(node --version)" >&2
  exit 1
fi

# playwright-core never downloads a browser; Debian's chromium is used.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
want=$(node -p 'require("./package-lock.json").packages["node_modules/playwright-core"].version')
have=$(node -p 'try { require("./node_modules/playwright-core/package.json").version } catch (e) { "" }')
if [ "$have" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

node --test-reporter=spec page.test.mjs
