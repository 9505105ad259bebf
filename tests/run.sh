#!/usr/bin/env bash
# Runs each Check test binary given as an argument and prints one summary line
# ("N passed, N failed") that CI reads. Exits non-zero if any check failed or a
# binary crashed.
set -u
passed=0; failed=0; bad=0
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  printf '%s\n' "$out"
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: [0-9]+' | tail -n 1)
  if [ -n "$line" ]; then
    c=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
    e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + c - f - e)); failed=$((failed + f + e))
  fi
  if [ $rc -ne 0 ] || [ -z "$line" ]; then
    echo "FAILED: $t (exit $rc)"; bad=1
  fi
done
echo "tests: $passed passed, $failed failed"
[ $bad -eq 0 ] && [ $failed -eq 0 ]
