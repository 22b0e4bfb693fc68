#!/bin/bash
# test_observe: segment sizes, customer lookups, credentials and the live
# page of `segd run` (tests/integration/observe_tests.py says what and why).
#
# Env: SEGD, SEG_BUILD, SEG_SRC, SEG_SHARED (set by ctest). Extra arguments
# name cases to run (default: all), e.g. `test_observe.sh auth`.
set -u
: "${SEGD:?SEGD must point at the segd binary}"
SEG_SRC=${SEG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
export SEGD SEG_SRC
for tool in /usr/bin/python3 kcat chromium; do
    command -v "$tool" >/dev/null || { echo "FAIL $tool is not installed (scripts/install-deps.sh)"; echo "0 passed, 1 failed"; exit 1; }
done
/usr/bin/python3 -c 'import kafka, msgpack, yaml' 2>/dev/null ||
    { echo "FAIL python3-kafka, python3-msgpack and python3-yaml are needed (scripts/install-deps.sh)"; echo "0 passed, 1 failed"; exit 1; }
exec timeout -k 10 540 /usr/bin/python3 "$SEG_SRC/tests/integration/observe_tests.py" "$@"
