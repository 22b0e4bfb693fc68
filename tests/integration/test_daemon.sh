#!/bin/bash
# test_daemon: `segd run` against a Kafka-protocol cluster on loopback.
#
# Why a thin wrapper: ctest registers tests/integration/test_*.sh, and the
# cases are easier to write in Python (kafka-python is one of the two
# independent clients). See daemon_tests.py for what is tested and why.
#
# Env: SEGD, SEG_BUILD, SEG_SRC, SEG_SHARED (set by ctest). Extra arguments
# name cases to run (default: all), e.g. `test_daemon.sh cdnow dlq`.
set -u
: "${SEGD:?SEGD must point at the segd binary}"
SEG_SRC=${SEG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
export SEGD SEG_SRC
# The harness binary comes from $SEG_BUILD/tests/harness when built there;
# tests/harness/cluster.py compiles it otherwise.
for tool in /usr/bin/python3 kcat; do
    command -v "$tool" >/dev/null || { echo "FAIL $tool is not installed (scripts/install-deps.sh)"; exit 1; }
done
/usr/bin/python3 -c 'import kafka, msgpack' 2>/dev/null ||
    { echo "FAIL python3-kafka and python3-msgpack are needed (scripts/install-deps.sh)"; exit 1; }
# Bounded as a whole too, below ctest's own limit (tests/CMakeLists.txt).
# The cases take about 4 minutes on 2 idle cores, and twice that when the
# machine is busy (measured 469 s beside test_durability and other work):
# every wait inside has its own deadline, so this only stops a hang.
exec timeout -k 10 900 /usr/bin/python3 "$SEG_SRC/tests/integration/daemon_tests.py" "$@"
