#!/usr/bin/env bash
# tests/contract/run.sh - the API contract test (`make test-contract`): every
# response of $BUILD/emotiond, through Prism in proxy mode, validated against
# openapi.yaml (see contract.mjs). Needs node and npm (Debian: nodejs npm);
# Prism and the validator are installed from package-lock.json into the
# git-ignored tests/contract/node_modules on first use.
set -euo pipefail
cd "$(dirname "$0")"
for t in node npm; do
  command -v "$t" >/dev/null || { echo "test-contract: $t not found (apt-get install -y nodejs npm)"; exit 1; }
done
if [ ! -x node_modules/.bin/prism ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
cd ../..
exec node tests/contract/contract.mjs
