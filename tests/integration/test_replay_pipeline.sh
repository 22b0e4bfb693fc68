#!/bin/bash
# test_replay_pipeline: replay's three threads (decode | fold | write) give
# the same bytes wherever the batches between them end.
#
# Why: the decoder thread hands events over in batches (src/cmd/
# seg_replay.c), and a batch also ends early when the attrs the rules read
# fill its storage. The fold must see exactly the events of one thread, in
# the same order, with their attrs intact, whatever the batch boundaries;
# rejected records must reach the DLQ in input order. The fold hands the
# transitions, copied, to the writer thread in batches too; their values
# (long attr strings here) must arrive intact and in emit order.
# SEGD_REPLAY_BATCH (1..256 events, and as many transitions, per batch; a
# test hook) moves the boundaries.
#
# Data: seg_gen's synthetic year (3,000 customers, with deliberately
# invalid records), plus profile events whose attrs the rules read:
# strings up to 1,000 bytes (so a batch's 64 KiB attr storage fills after a
# few dozen events), numbers, nulls that unset, keys given twice (the last
# wins), members no rule reads. Both NDJSON and MessagePack.
#
# Checks, per format: stdout, the DLQ file and the summary counts are
# identical for 1, 3, 100 and 256 (the default) events per batch; the
# rules that read attrs did produce transitions; a bad SEGD_REPLAY_BATCH
# is refused; an output that cannot be written (/dev/full) stops replay
# with the reason, at any batch size, without hanging.
#
# Env: SEGD, SEG_SRC, SEG_BUILD.
set -u
: "${SEGD:?SEGD must point at the segd binary}"
: "${SEG_SRC:?SEG_SRC must point at the source tree}"
: "${SEG_BUILD:?SEG_BUILD must point at the build tree}"
PY=/usr/bin/python3
GEN="$SEG_BUILD/seg_gen"
TOMSGPACK="$SEG_BUILD/seg_ndjson2msgpack"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/segd-pipeline.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0

ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; for l in "$@"; do echo "     $l"; done; }

"$GEN" --customers 3000 --seed 7 --bad-rate 0.01 --output "$TMP/base.ndjson" 2>/dev/null \
    || { echo "seg_gen failed"; exit 1; }

# Before every third event, a profile of the same customer at the same ts.
# The lines that are JSON also go to a second file, for the MessagePack
# twin (the converter stops at a line that is not JSON).
$PY - "$TMP/base.ndjson" "$TMP/events.ndjson" "$TMP/parsable.ndjson" <<'EOF'
import json, random, sys
rnd = random.Random(11)
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out, open(sys.argv[3], "w") as ok:
    for i, line in enumerate(f):
        try:
            ev = json.loads(line)
        except ValueError:
            ev = None
        if i % 3 == 0 and isinstance(ev, dict) and isinstance(ev.get("customer_id"), str) \
                and isinstance(ev.get("ts"), str):
            attrs = {"plan": rnd.choice(["free", "pro", "team"]) + "-" + "x" * rnd.randrange(0, 1000),
                     "seats": rnd.randrange(0, 120), "unread": "y" * 300}
            if i % 7 == 0:
                attrs["seats"] = None
            if i % 11 == 0:
                attrs = {**attrs, "note": 1}
                text = json.dumps(attrs)[:-1] + ', "plan": "dup-%d"}' % (i % 4)
            else:
                text = json.dumps(attrs)
            prof = ('{"type":"profile","customer_id":%s,"ts":%s,"attrs":%s}\n'
                    % (json.dumps(ev["customer_id"]), json.dumps(ev["ts"]), text))
            out.write(prof)
            ok.write(prof)
        out.write(line)
        try:
            json.loads(line)
            ok.write(line)
        except ValueError:
            pass
EOF
"$TOMSGPACK" <"$TMP/parsable.ndjson" >"$TMP/events.msgpack" 2>/dev/null \
    || { echo "seg_ndjson2msgpack failed"; exit 1; }

cat >"$TMP/rules.yaml" <<'EOF'
segments:
  rules:
    plan_kind:
      where: has(attr("plan"))
      value: ("p/" + attr("plan"))
    seat_band:
      where: has(attr("seats"))
      value: if(attr("seats") >= 50, "large", "small")
EOF

for fmt in json msgpack; do
    in="$TMP/events.ndjson"
    [ "$fmt" = msgpack ] && in="$TMP/events.msgpack"
    for n in 1 3 100 256; do
        SEGD_REPLAY_BATCH=$n "$SEGD" replay --config "$TMP/rules.yaml" --input "$in" --format $fmt \
            --dlq "$TMP/dlq.$fmt.$n" --summary-json "$TMP/sum.$fmt.$n" \
            >"$TMP/out.$fmt.$n" 2>"$TMP/err.$fmt.$n"
        rc=$?
        [ $rc = 0 ] || bad "$fmt batch $n: exit $rc" "$(tail -3 "$TMP/err.$fmt.$n")"
        $PY -c 'import json, sys
s = json.load(open(sys.argv[1]))
for k in ("wall_seconds", "cpu_seconds", "events_per_second", "max_rss_bytes",
          "decode_cpu_seconds", "fold_cpu_seconds", "write_cpu_seconds"):
    s.pop(k, None)
print(json.dumps(s, sort_keys=True))' "$TMP/sum.$fmt.$n" >"$TMP/counts.$fmt.$n" 2>/dev/null
    done
    for n in 1 3 100; do
        for what in out dlq counts; do
            if cmp -s "$TMP/$what.$fmt.$n" "$TMP/$what.$fmt.256"; then
                ok "$fmt: $what with $n events per batch = with 256"
            else
                bad "$fmt: $what with $n events per batch differs from 256" \
                    "$(diff "$TMP/$what.$fmt.$n" "$TMP/$what.$fmt.256" | head -5)"
            fi
        done
    done
    plans=$(grep -c '"dimension":"plan_kind"' "$TMP/out.$fmt.256")
    seats=$(grep -c '"dimension":"seat_band"' "$TMP/out.$fmt.256")
    dups=$(grep -c '"to":"p/dup-' "$TMP/out.$fmt.256")
    rej=$(wc -l <"$TMP/dlq.$fmt.256")
    if [ "$plans" -gt 1000 ] && [ "$seats" -gt 100 ] && [ "$dups" -gt 10 ] && [ "$rej" -gt 10 ]; then
        ok "$fmt: attr rules fired ($plans plan_kind, $seats seat_band, $dups last-duplicate), $rej rejects"
    else
        bad "$fmt: too few transitions from attrs or rejects" \
            "plan_kind $plans, seat_band $seats, last-duplicate $dups, rejects $rej"
    fi
done

if SEGD_REPLAY_BATCH=0 "$SEGD" replay --input "$TMP/events.ndjson" >/dev/null 2>"$TMP/err.bad"; then
    bad "SEGD_REPLAY_BATCH=0 accepted"
elif grep -q "SEGD_REPLAY_BATCH must be 1..256" "$TMP/err.bad"; then
    ok "SEGD_REPLAY_BATCH=0 refused"
else
    bad "SEGD_REPLAY_BATCH=0: unexpected error" "$(cat "$TMP/err.bad")"
fi

for n in 1 256; do
    SEGD_REPLAY_BATCH=$n timeout 60 "$SEGD" replay --input "$TMP/events.ndjson" \
        >/dev/full 2>"$TMP/err.full.$n"
    rc=$?
    if [ $rc = 1 ] && grep -q "cannot write transitions: No space left on device" "$TMP/err.full.$n"; then
        ok "output to /dev/full with $n per batch: exit 1 with the reason"
    else
        bad "output to /dev/full with $n per batch: exit $rc" "$(tail -3 "$TMP/err.full.$n")"
    fi
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
