#!/bin/bash
# test_cli: segd's command line as a user meets it: exit codes, messages,
# --set, --until, and the config check on every broken fixture.
#
# Why: scripts and systemd units branch on segd's exit code (0 ok,
# 1 runtime or I/O error, 2 usage error, 3 config error), and an operator
# fixing a config needs the file, line and column in the message. Both are
# interfaces, so they are tested on the real binary as a separate process.
#
# Env: SEGD (the binary), SEG_SRC (source tree). Prints one line per check
# and "N passed, M failed"; exits 1 if anything failed.
set -u
: "${SEGD:?SEGD must point at the segd binary}"
: "${SEG_SRC:?SEG_SRC must point at the source tree}"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/segd-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0

ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; for l in "$@"; do echo "     $l"; done; }

# run NAME -- CMD...: runs CMD, keeps stdout/stderr/exit code in $TMP.
run() {
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
}

expect_rc() {   # NAME WANT
    if [ "$rc" = "$2" ]; then ok "$1 (exit $rc)"
    else bad "$1: exit $rc, want $2" "stderr: $(head -c 400 "$TMP/err")"; fi
}

expect_err_contains() {   # NAME TEXT
    if grep -qF -- "$2" "$TMP/err"; then ok "$1"
    else bad "$1: stderr lacks '$2'" "stderr: $(head -c 400 "$TMP/err")"; fi
}

# --- version, usage, unknown command ---------------------------------------
run "$SEGD" --version
expect_rc "--version" 0
if grep -Eq '^segd [0-9]+\.[0-9]+\.[0-9]+' "$TMP/out"; then ok "--version prints 'segd X.Y.Z'"
else bad "--version output" "$(head -c 200 "$TMP/out")"; fi

run "$SEGD"
expect_rc "no arguments" 2
if grep -qi usage "$TMP/err" "$TMP/out"; then ok "no arguments prints usage"
else bad "no arguments prints usage" "$(head -c 300 "$TMP/err")"; fi

run "$SEGD" frobnicate
expect_rc "unknown command" 2
expect_err_contains "unknown command is named" frobnicate

run "$SEGD" replay --config "$SEG_SRC/config/segd.yaml"
expect_rc "replay without --input" 2

# --- check-config ----------------------------------------------------------
run "$SEGD" check-config "$SEG_SRC/config/segd.yaml"
expect_rc "check-config config/segd.yaml" 0
# Its commented examples, switched on, are valid too (make demo runs them).
sh "$SEG_SRC/tools/uncomment-examples.sh" "$SEG_SRC/config/segd.yaml" > "$TMP/examples.yaml"
if grep -q '^  rules:' "$TMP/examples.yaml"; then ok "config/segd.yaml has an example rule set"
else bad "config/segd.yaml has no example rule set under '# >>> example rules'"; fi
run "$SEGD" check-config "$TMP/examples.yaml"
expect_rc "check-config config/segd.yaml with its examples uncommented" 0

nbad=0
for f in "$SEG_SRC"/tests/data/config/bad/*.yaml; do
    [ -e "$f" ] || continue
    nbad=$((nbad + 1))
    name=$(basename "$f")
    run "$SEGD" check-config "$f"
    if [ "$rc" != 3 ]; then
        bad "check-config bad/$name: exit $rc, want 3" "stderr: $(head -c 300 "$TMP/err")"
        continue
    fi
    if ! grep -Eq -- "$name:[0-9]+:[0-9]+" "$TMP/err"; then
        bad "check-config bad/$name: message lacks $name:LINE:COL" "stderr: $(head -c 300 "$TMP/err")"
        continue
    fi
    # A fixture's .expected file holds the exact message, FILE standing
    # for the path given on the command line.
    exp="${f%.yaml}.expected"
    if [ -f "$exp" ]; then
        want=$(sed "s#FILE#$f#" "$exp")
        if ! grep -qF -- "$want" "$TMP/err"; then
            bad "check-config bad/$name: message differs" "want: $want" "got:  $(head -c 300 "$TMP/err")"
            continue
        fi
    fi
    ok "check-config bad/$name (exit 3, $name:LINE:COL)"
done
if [ "$nbad" -ge 1 ]; then ok "broken-config fixtures present ($nbad)"
else bad "no fixtures in tests/data/config/bad/*.yaml"; fi

# A broken config also stops replay with exit 3 before reading any input.
bad_fixtures=("$SEG_SRC"/tests/data/config/bad/*.yaml)
first_bad=${bad_fixtures[0]}
if [ -e "$first_bad" ]; then
    printf '%s\n' '{"type":"purchase","customer_id":"a","ts":"2021-01-01T00:00:00Z","amount":1}' >"$TMP/one.ndjson"
    run "$SEGD" replay --config "$first_bad" --input "$TMP/one.ndjson"
    expect_rc "replay with a broken config" 3
    if [ ! -s "$TMP/out" ]; then ok "replay with a broken config emits nothing"
    else bad "replay with a broken config emitted transitions"; fi
fi

# --- --set -----------------------------------------------------------------
# One purchase on 2021-01-01. Defaults: new until +30d (01-31), at_risk
# from +45d (02-15). With new_for=60d, "new" would last until 03-02, but
# at_risk is checked first, so the customer goes new -> at_risk on 02-15.
printf '%s\n' '{"type":"purchase","customer_id":"a","ts":"2021-01-01T00:00:00Z","amount":10}' >"$TMP/a.ndjson"
CFG="$SEG_SRC/config/segd.yaml"
lifecycle() { grep '"dimension":"lifecycle"' "$TMP/out" | sed 's/.*"from":\([^,]*\),"to":"\([^"]*\)","at":"\([^"]*\)","cause":"\([a-z]*\)".*/\1>\2@\3\/\4/' | tr '\n' ' '; }

run "$SEGD" replay --config "$CFG" --input "$TMP/a.ndjson" --until 2021-03-15T00:00:00Z
want='null>new@2021-01-01T00:00:00Z/event "new">active@2021-01-31T00:00:00Z/time "active">at_risk@2021-02-15T00:00:00Z/time '
got=$(lifecycle)
if [ "$rc" = 0 ] && [ "$got" = "$want" ]; then ok "defaults: new -> active at +30d, at_risk at +45d"
else bad "defaults lifecycle (exit $rc)" "want: $want" "got:  $got"; fi

run "$SEGD" replay --config "$CFG" --input "$TMP/a.ndjson" --until 2021-03-15T00:00:00Z \
    --set segments.lifecycle.new_for=60d
want='null>new@2021-01-01T00:00:00Z/event "new">at_risk@2021-02-15T00:00:00Z/time '
got=$(lifecycle)
if [ "$rc" = 0 ] && [ "$got" = "$want" ]; then ok "--set segments.lifecycle.new_for=60d changes the outcome"
else bad "--set new_for=60d (exit $rc)" "want: $want" "got:  $got"; fi

run "$SEGD" replay --config "$CFG" --input "$TMP/a.ndjson" --until 2021-03-15T00:00:00Z \
    --set segments.lifecycle.new_for=60d --set segments.lifecycle.new_for=10d
want='null>new@2021-01-01T00:00:00Z/event "new">active@2021-01-11T00:00:00Z/time "active">at_risk@2021-02-15T00:00:00Z/time '
got=$(lifecycle)
if [ "$rc" = 0 ] && [ "$got" = "$want" ]; then ok "--set repeated: the last one wins"
else bad "--set repeated (exit $rc)" "want: $want" "got:  $got"; fi

run "$SEGD" replay --config "$CFG" --input "$TMP/a.ndjson" --set segments.lifecycle.no_such_key=1
expect_rc "--set unknown key" 3
expect_err_contains "--set unknown key is named" no_such_key

run "$SEGD" replay --config "$CFG" --input "$TMP/a.ndjson" --set segments.lifecycle.new_for=soon
expect_rc "--set bad duration" 3

run "$SEGD" check-config "$CFG" --set segments.lifecycle.at_risk_after=100d
expect_rc "check-config --set breaking at_risk <= silent" 3

# --- input errors ----------------------------------------------------------
run "$SEGD" replay --config "$CFG" --input "$TMP/does-not-exist.ndjson"
expect_rc "missing input file" 1
expect_err_contains "missing input file is named" "does-not-exist.ndjson"

run "$SEGD" replay --config "$CFG" --input "$TMP/a.ndjson" --format yaml
expect_rc "unknown --format" 2

run "$SEGD" replay --config "$CFG" --input "$TMP/a.ndjson" --until yesterday
expect_rc "unparseable --until" 2

# --- --until ---------------------------------------------------------------
run "$SEGD" replay --config "$CFG" --input "$TMP/a.ndjson"
n=$(wc -l <"$TMP/out")
if [ "$rc" = 0 ] && [ "$n" = 3 ] && ! grep -q '"cause":"time"' "$TMP/out"; then
    ok "without --until time stops at the last event (3 event transitions)"
else bad "without --until (exit $rc, $n lines)" "$(cat "$TMP/out")"; fi

run "$SEGD" replay --config "$CFG" --input "$TMP/a.ndjson" --until 2022-01-01T00:00:00Z
last=$(tail -1 "$TMP/out")
want='{"id":"a:11","customer_id":"a","seq":11,"dimension":"rfm","from":"R3F1M1","to":"R4F0M0","at":"2022-01-01T00:00:00Z","cause":"time"}'
if [ "$rc" = 0 ] && [ "$(wc -l <"$TMP/out")" = 11 ] && [ "$last" = "$want" ]; then
    ok "--until 2022-01-01 fires every deadline up to churn (11 transitions)"
else bad "--until 2022-01-01 (exit $rc)" "last: $last" "want: $want"; fi

run "$SEGD" replay --config "$CFG" --input "$TMP/a.ndjson" --until 2021-12-31T23:59:59Z
if [ "$rc" = 0 ] && [ "$(wc -l <"$TMP/out")" = 8 ] && ! grep -q churned "$TMP/out"; then
    ok "--until one second before +365d: not churned yet"
else bad "--until 2021-12-31T23:59:59Z (exit $rc)" "$(tail -2 "$TMP/out")"; fi

# --- stdin and rejections --------------------------------------------------
{
    printf '%s\n' '{"type":"purchase","customer_id":"s","ts":"2021-01-01T00:00:00Z","amount":10}'
    printf '%s\n' 'not json'
    printf '%s\n' '{"type":"purchase","ts":"2021-01-01T00:00:00Z","amount":10}'
} | { "$SEGD" replay --config "$CFG" --input - --dlq "$TMP/dlq" >"$TMP/out" 2>"$TMP/err"; echo $? >"$TMP/rc"; }
rc=$(cat "$TMP/rc")
if [ "$rc" = 0 ] && [ "$(wc -l <"$TMP/out")" = 3 ] && [ "$(wc -l <"$TMP/dlq")" = 2 ]; then
    ok "--input - reads stdin; bad records go to the DLQ and do not stop the run"
else bad "--input - (exit $rc)" "$(head -c 300 "$TMP/err")"; fi
if grep -q '"reason":"invalid_json"' "$TMP/dlq" && grep -q '"reason":"missing_field"' "$TMP/dlq"; then
    ok "DLQ records carry their reasons"
else bad "DLQ reasons" "$(cat "$TMP/dlq")"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
