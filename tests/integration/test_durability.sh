#!/usr/bin/env bash
# test_durability.sh: ctest entry for the durability contract (issue 4).
#
# Why a wrapper: the cases need a Kafka-protocol cluster, kafka-python and
# a lot of bookkeeping, which read better in Python
# (tests/integration/durability_tests.py, helpers in durability_lib.py).
# This script only checks the tools are there and runs it with Debian's
# python3 (kafka-python and msgpack are Debian packages; the pyenv python3
# on PATH lacks them). Runs in about 3-4 minutes, on 127.0.0.1 only.
set -uo pipefail
SRC=${SEG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
export SEG_SRC=$SRC
export SEG_BUILD=${SEG_BUILD:-$SRC/build}
export SEGD=${SEGD:-$SEG_BUILD/segd}
export SEG_SHARED=${SEG_SHARED:-$SRC/../shared}
PY=/usr/bin/python3
for m in kafka msgpack; do
  "$PY" -c "import $m" 2>/dev/null || { echo "FAIL - $PY lacks module $m (scripts/install-deps.sh)"; exit 1; }
done
[ -x "$SEGD" ] || { echo "FAIL - segd not built at $SEGD"; exit 1; }
# Bounded below ctest's limit (tests/CMakeLists.txt): about 6 minutes on 2
# idle cores, over 9 on a busy machine (killed at 540 s, case 7 running):
# every wait inside has its own deadline, so this only stops a hang.
exec timeout --kill-after=10 900 "$PY" "$SRC/tests/integration/durability_tests.py" "$@"
