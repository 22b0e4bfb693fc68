#!/bin/bash
# test_durability_rules: crash equivalence with user rules in the config.
#
# Why: issue 10 asks that restore after a crash still gives the same
# transitions with a user rule set, and rule state (windows, latest
# timestamps, purchase days of the predictions, the cached crossing) is
# what a snapshot or changelog record carries beyond the built-ins. The
# cases are durability_tests.py's own, run with DURABILITY_CONFIG set to
# tests/data/config/durability-rules.yaml (windows over purchases, a
# graded rule, a rule on a built-in, p_alive < 0.3): kill_loop (>= 10
# SIGKILLs at random moments, restarts) and two_instances (a second
# instance with an empty disk takes every partition from the changelog).
# The contract is the same: the output, deduplicated by id, equals
# `segd replay` with that config, and no id has two contents.
set -u
: "${SEGD:?SEGD must point at the segd binary}"
SEG_SRC=${SEG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
export SEGD SEG_SRC
export DURABILITY_CONFIG="$SEG_SRC/tests/data/config/durability-rules.yaml"
exec timeout -k 10 540 /usr/bin/python3 "$SEG_SRC/tests/integration/durability_tests.py" \
    kill_loop two_instances "$@"
