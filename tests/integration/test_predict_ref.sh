#!/bin/bash
# test_predict_ref: the fixture test_predict compares segd's predictions
# with (tests/data/predict/reference.txt) is exactly what the independent
# reference tests/reference/predict_ref.py computes today.
#
# Why: the unit test is only as independent as its fixture. Regenerating
# it here (mpmath and scipy, from CDNOW_sample.txt and the papers'
# formulas) proves nobody edited a number by hand and that a change to the
# script was followed by a new fixture.
#
# Env: SEG_SRC, SEG_SHARED. Exits 1 if the fixture differs.
set -u
: "${SEG_SRC:?SEG_SRC must point at the source tree}"
export SEG_SHARED=${SEG_SHARED:-$SEG_SRC/../shared}
if /usr/bin/python3 "$SEG_SRC/tests/reference/predict_ref.py" --check \
    "$SEG_SRC/tests/data/predict/reference.txt"; then
    echo "ok   tests/data/predict/reference.txt is predict_ref.py's output"
    echo "1 passed, 0 failed"
else
    echo "FAIL tests/data/predict/reference.txt differs from predict_ref.py's output"
    echo "0 passed, 1 failed"
    exit 1
fi
