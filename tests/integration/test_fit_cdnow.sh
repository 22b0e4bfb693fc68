#!/bin/bash
# test_fit_cdnow: `segd fit` reproduces the published BG/NBD and
# Gamma-Gamma fits on the CDNOW sample, prints something segd reads back,
# and refuses the fits it cannot make with a sentence and exit 1.
#
# Why: the prediction features are only as good as the parameters, and the
# papers' table is the one fixed point everybody can check: Fader, Hardie &
# Lee (2005) fit r = 0.243, alpha = 4.414, a = 0.793, b = 2.426 (LL
# -9582.4) on the 2,357 customers of CDNOW_sample.txt up to 1997-09-30, and
# Hardie's Gamma-Gamma note p = 6.25, q = 3.74, gamma = 15.44 on its 946
# repeat customers; customer 00004 (x = 2, t_x = 30.43, T = 38.86 weeks)
# expects 1.226 purchases in the next 39 weeks. All of it is asserted to
# the published precision, through the real binary.
#
# Env: SEGD, SEG_BUILD (for seg_predict, seg_ndjson2msgpack), SEG_SRC,
# SEG_SHARED. Prints one line per check; exits 1 if anything failed.
set -u
: "${SEGD:?SEGD must point at the segd binary}"
: "${SEG_SRC:?SEG_SRC must point at the source tree}"
SEG_BUILD=${SEG_BUILD:-$(dirname "$SEGD")}
SEG_SHARED=${SEG_SHARED:-$SEG_SRC/../shared}
PY=/usr/bin/python3
SAMPLE="$SEG_SHARED/data/cdnow/CDNOW_sample.txt"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/segd-fit.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; for l in "$@"; do echo "     $l"; done; }
run() { "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?; }
expect_rc() {
    if [ "$rc" = "$2" ]; then ok "$1 (exit $rc)"
    else bad "$1: exit $rc, want $2" "stderr: $(head -c 600 "$TMP/err")"; fi
}
expect_err() {
    if grep -qF -- "$2" "$TMP/err"; then ok "$1"
    else bad "$1: stderr lacks '$2'" "stderr: $(head -c 600 "$TMP/err")"; fi
}
# check NAME PYTHON-EXPR: evaluated with `y` the parsed YAML (or JSON) of $TMP/out
check() {
    local got
    if got=$("$PY" - "$TMP/out" "$2" <<'EOF' 2>&1
import sys, yaml
y = yaml.safe_load(open(sys.argv[1]))
ok = eval(sys.argv[2])
print("true" if ok else "false: %r" % y)
EOF
    ) && [ "$got" = true ]; then ok "$1"
    else bad "$1" "$2" "$got"; fi
}

if [ ! -r "$SAMPLE" ]; then
    echo "FAIL $SAMPLE is missing"; exit 1
fi
"$PY" "$SEG_SRC/tools/cdnow2events.py" "$SAMPLE" "$TMP/cdnow.ndjson" 2>/dev/null
UNTIL=1997-09-30T00:00:00Z

# --- the published table ----------------------------------------------------
run "$SEGD" fit --input "$TMP/cdnow.ndjson" --until $UNTIL
expect_rc "fit CDNOW sample" 0
cp "$TMP/out" "$TMP/fit.yaml"
check "BG/NBD: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426" \
  "[round(y['bgnbd'][k], 3) for k in ('r','alpha','a','b')] == [0.243, 4.414, 0.793, 2.426]"
check "BG/NBD: log-likelihood -9582.4 on 2,357 customers, 946 repeat" \
  "round(y['fit']['bgnbd']['log_likelihood'], 1) == -9582.4 and y['fit']['bgnbd']['customers'] == 2357 and y['fit']['bgnbd']['repeat_customers'] == 946 and y['fit']['bgnbd']['converged'] is True"
check "Gamma-Gamma: p = 6.25, q = 3.74, gamma = 15.44 on 946 customers" \
  "[round(y['gamma_gamma'][k], 2) for k in ('p','q','gamma')] == [6.25, 3.74, 15.44] and y['fit']['gamma_gamma']['customers'] == 946 and y['fit']['gamma_gamma']['converged'] is True"
check "unit 7d, until" "y['unit'] == '7d' and y['fit']['until'] == '$UNTIL'"
expect_err "summary on stderr" "2357 customers up to $UNTIL, 946 of them repeat customers"

# customer 00004: x = 2, t_x = 30.43, T = 38.86 weeks, with the fitted parameters
BG=$("$PY" -c "import yaml; y = yaml.safe_load(open('$TMP/fit.yaml'))['bgnbd']; print(','.join(repr(y[k]) for k in ('r','alpha','a','b')))")
GG=$("$PY" -c "import yaml; y = yaml.safe_load(open('$TMP/fit.yaml'))['gamma_gamma']; print(','.join(repr(y[k]) for k in ('p','q','gamma')))")
e=$("$SEG_BUILD/seg_predict" --bgnbd "$BG" --x 2 --first 1997-01-01T00:00:00Z \
      --last 1997-08-02T00:00:00Z --at $UNTIL expected_purchases 39w)
if [ "$("$PY" -c "print(round($e, 3))")" = 1.226 ]; then ok "customer 00004 expects 1.226 purchases in 39 weeks ($e)"
else bad "customer 00004: expected purchases in 39 weeks $e, want 1.226"; fi

# --- the output is what segd reads -------------------------------------------
{
    echo "segments:"
    echo "  predict:"
    sed 's/^/    /' "$TMP/fit.yaml"
    echo "  rules:"
    echo "    likely_churned:"
    echo "      when: p_alive < 0.3 or (p_alive == 1 and recency > 180d)"
    echo "    valuable:"
    echo "      when: clv(365d) > 100 and expected_purchases(52w) >= 1 and expected_spend > 20"
} >"$TMP/with-fit.yaml"
run "$SEGD" check-config "$TMP/with-fit.yaml"
expect_rc "the fragment under segments.predict passes check-config" 0

run "$SEGD" fit --input "$TMP/cdnow.ndjson" --until $UNTIL --output json
expect_rc "--output json" 0
check "JSON: the same parameters at full precision" \
  "abs(y['bgnbd']['r'] - 0.2426) < 1e-4 and y['unit_seconds'] == 604800 and y['fit']['gamma_gamma']['customers'] == 946 and abs(y['gamma_gamma']['gamma'] - 15.4435) < 1e-3"

# the config's unit: in days alpha is 7 times larger, the rest unchanged
# (the log-likelihood, a density in the x purchase times, moves by
# -sum(x) ln 7)
printf 'segments:\n  predict:\n    unit: 1d\n' >"$TMP/days.yaml"
run "$SEGD" fit --config "$TMP/days.yaml" --input "$TMP/cdnow.ndjson" --until $UNTIL
expect_rc "fit with segments.predict.unit: 1d" 0
check "unit 1d: alpha in days (x7), r, a, b the same" \
  "y['unit'] == '1d' and abs(y['bgnbd']['alpha'] / 7 - 4.4136) < 1e-3 and [round(y['bgnbd'][k], 3) for k in ('r','a','b')] == [0.243, 0.793, 2.426]"

# the same events in time order, and as MessagePack, fit the same
"$PY" "$SEG_SRC/tools/cdnow2events.py" --sort-by-time "$SAMPLE" "$TMP/sorted.ndjson" 2>/dev/null
run "$SEGD" fit --input "$TMP/sorted.ndjson" --until $UNTIL
if [ "$rc" = 0 ] && cmp -s "$TMP/out" <(sed "s|$TMP/cdnow.ndjson|$TMP/sorted.ndjson|" "$TMP/fit.yaml"); then
    ok "events in time order: identical output"
else bad "events in time order differ" "$(diff "$TMP/out" "$TMP/fit.yaml" | head -20)"; fi
"$SEG_BUILD/seg_ndjson2msgpack" "$TMP/cdnow.ndjson" "$TMP/cdnow.msgpack" 2>/dev/null
run "$SEGD" fit --input "$TMP/cdnow.msgpack" --format msgpack --until $UNTIL
if [ "$rc" = 0 ] && cmp -s "$TMP/out" <(sed "s|$TMP/cdnow.ndjson|$TMP/cdnow.msgpack|" "$TMP/fit.yaml"); then
    ok "MessagePack input: identical output"
else bad "MessagePack input differs" "$(head -c 600 "$TMP/err")"; fi

# refunds, contacts and a broken line change nothing; later events only move the default until
{
    cat "$TMP/cdnow.ndjson"
    echo '{"type":"refund","customer_id":"00004","ts":"1997-03-01T00:00:00Z","amount":10}'
    echo '{"type":"contact","kind":"visit","customer_id":"00004","ts":"1997-03-02T00:00:00Z"}'
    echo 'not json'
} >"$TMP/mixed.ndjson"
run "$SEGD" fit --input "$TMP/mixed.ndjson" --until $UNTIL
if [ "$rc" = 0 ] && cmp -s "$TMP/out" <(sed "s|$TMP/cdnow.ndjson|$TMP/mixed.ndjson|" "$TMP/fit.yaml"); then
    ok "refunds, contacts and rejected records are left out"
else bad "refunds/contacts/rejects changed the fit" "$(head -c 600 "$TMP/err")"; fi
expect_err "the rejected record is counted" "(1 rejected)"

# without --until: the largest ts (1998-06-30 for the sample), more customers' history
run "$SEGD" fit --input "$TMP/cdnow.ndjson"
expect_rc "fit without --until" 0
check "default until is the largest ts" "y['fit']['until'] == '1998-06-30T00:00:00Z' and y['fit']['bgnbd']['customers'] == 2357"

# --- a known truth: 20,000 customers drawn from BG/NBD and Gamma-Gamma ------------
# r = 1.5, alpha = 26 weeks, a = 1, b = 4; p = 6, q = 4, gamma = 15. Each
# fitted parameter must land within 20% (the sampling error at this size is
# about 5-10%).
"$PY" - "$TMP/sim.ndjson" <<'EOF'
import random, sys
rng = random.Random(3)
r, al, a, b = 1.5, 26.0, 1.0, 4.0
WEEK = 604800
start = 1577836800                       # 2020-01-01
end = start + 104 * WEEK
with open(sys.argv[1], "w") as out:
    for i in range(20000):
        lam = rng.gammavariate(r, 1 / al)          # purchases per week while alive
        p = rng.betavariate(a, b)                  # dropout after each repeat purchase
        nu = rng.gammavariate(4.0, 1 / 15.0)
        t = start + rng.randint(0, 52 * WEEK)
        def ev(ts):
            out.write('{"type":"purchase","customer_id":"c%d","ts":%d,"amount":%.2f}\n'
                      % (i, ts * 1000, rng.gammavariate(6.0, 1 / nu)))
        ev(t)
        while True:
            t += rng.expovariate(lam) * WEEK
            if t >= end:
                break
            ev(int(t))
            if rng.random() < p:
                break
EOF
run "$SEGD" fit --input "$TMP/sim.ndjson" --until 2021-12-29T00:00:00Z
expect_rc "fit simulated customers" 0
check "simulated: every parameter within 20% of the truth" \
  "all(abs(y[m][k] / v - 1) < 0.2 for m, k, v in [('bgnbd','r',1.5), ('bgnbd','alpha',26), ('bgnbd','a',1), ('bgnbd','b',4), ('gamma_gamma','p',6), ('gamma_gamma','q',4), ('gamma_gamma','gamma',15)])"

# --- fits that cannot be made --------------------------------------------------
: >"$TMP/empty.ndjson"
run "$SEGD" fit --input "$TMP/empty.ndjson"
expect_rc "empty input" 1
expect_err "empty input: says why" "no valid event"

echo '{"type":"contact","kind":"visit","customer_id":"c1","ts":"1997-03-02T00:00:00Z"}' >"$TMP/nopurchase.ndjson"
run "$SEGD" fit --input "$TMP/nopurchase.ndjson"
expect_rc "no purchase" 1
expect_err "no purchase: says why" "no purchase up to 1997-03-02T00:00:00Z"

run "$SEGD" fit --input "$TMP/cdnow.ndjson" --until 1996-12-31T00:00:00Z
expect_rc "--until before every purchase" 1
expect_err "--until before every purchase: says why" "no purchase up to 1996-12-31T00:00:00Z"

# 19 repeat customers, 200 one-time buyers
"$PY" - "$TMP/few.ndjson" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(219):
        f.write('{"type":"purchase","customer_id":"c%d","ts":"1997-01-%02dT00:00:00Z","amount":10}\n' % (i, 1 + i % 20))
        if i < 19:
            f.write('{"type":"purchase","customer_id":"c%d","ts":"1997-03-01T00:00:00Z","amount":10}\n' % i)
EOF
run "$SEGD" fit --input "$TMP/few.ndjson"
expect_rc "19 repeat customers" 1
expect_err "19 repeat customers: says why" "only 19 of 219 customers bought again"

# Everyone buys every week and nobody drops out: no heterogeneity and no
# dropout to estimate, so the maximum lies at infinity. (Spend with no
# heterogeneity across customers does the same to Gamma-Gamma's q.)
"$PY" - "$TMP/clockwork.ndjson" <<'EOF'
import sys, datetime
t0 = datetime.datetime(1997, 1, 1)
with open(sys.argv[1], "w") as f:
    for i in range(300):
        for w in range(40):
            d = t0 + datetime.timedelta(days=i % 7 + 7 * w)
            f.write('{"type":"purchase","customer_id":"k%d","ts":"%sT00:00:00Z","amount":%d}\n'
                    % (i, d.date().isoformat(), 10 + i % 50))
EOF
run "$SEGD" fit --input "$TMP/clockwork.ndjson"
expect_rc "a parameter at its bound" 1
expect_err "a parameter at its bound: says which" "near its upper bound"

# 84 customers (the simulation's first 300 purchases) are too few to show
# dropout varying across customers: a and b both run off along the ridge
# where a/(a+b) stays put, and the simplex stops short of the edge.
head -n 300 "$TMP/sim.ndjson" >"$TMP/ridge.ndjson"
run "$SEGD" fit --input "$TMP/ridge.ndjson"
expect_rc "a and b on a flat ridge" 1
expect_err "a and b on a flat ridge: says which" "near its upper bound 1e+06"

# --- usage ---------------------------------------------------------------------
run "$SEGD" fit --until $UNTIL
expect_rc "fit without --input" 2
run "$SEGD" fit --input "$TMP/cdnow.ndjson" --output xml
expect_rc "--output xml" 2
run "$SEGD" fit --input "$TMP/cdnow.ndjson" --until yesterday
expect_rc "--until yesterday" 2
run "$SEGD" fit --input "$TMP/cdnow.ndjson" --format csv
expect_rc "--format csv" 2
run "$SEGD" replay --input "$TMP/cdnow.ndjson" --output json
expect_rc "replay --output" 2
printf 'segments:\n  predict:\n    unit: fortnight\n' >"$TMP/badunit.yaml"
run "$SEGD" fit --config "$TMP/badunit.yaml" --input "$TMP/cdnow.ndjson"
expect_rc "a bad segments.predict.unit" 3
expect_err "a bad unit: file and key" "segments.predict.unit"
run "$SEGD" fit --input "$TMP/missing.ndjson"
expect_rc "missing input file" 1

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
