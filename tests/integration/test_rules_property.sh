#!/bin/bash
# test_rules_property: segd's user rules against a brute-force evaluator.
#
# Why: docs/rules.md promises that segd publishes every change of a rule's
# value at its exact second, waking only at events and at the candidate
# instants it derives from the rules. tests/reference/segrules.py
# --brute-force, written from the doc alone, evaluates every rule at every
# second of a history instead. Random rules from the whole grammar
# (tests/reference/gen_rules.py) over small random histories (every event
# type, profile attributes incl. null and non-scalar values, contacts of
# every kind, refunds, late events) must give the same transitions, half
# of the cases with the built-in dimensions on and read by the rules, half
# with all four switched off.
#
# The seeds are fixed (RULES_PROPERTY_SEED, default 1000; RULES_PROPERTY_CASES,
# default 100): the same cases run every time. A failing case is saved
# under $SEG_BUILD/rules-property/seed-N/ with the two command lines that
# reproduce it.
#
# Env: SEGD, SEG_SRC, SEG_BUILD.
set -u
: "${SEGD:?SEGD must point at the segd binary}"
: "${SEG_SRC:?SEG_SRC must point at the source tree}"
: "${SEG_BUILD:?SEG_BUILD must point at the build tree}"
OUT="$SEG_BUILD/rules-property"
rm -rf "$OUT"
mkdir -p "$OUT"
exec /usr/bin/python3 "$SEG_SRC/tests/integration/rules_property.py" --segd "$SEGD" \
    --out "$OUT" --cases "${RULES_PROPERTY_CASES:-100}" --seed "${RULES_PROPERTY_SEED:-1000}"
