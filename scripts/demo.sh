#!/usr/bin/env bash
# `make demo` (scripts/demo.sh BUILD_DIR): segd as users deploy it, live.
#
#   1. `segd run` with the default config and its example user rules
#      switched on (tools/uncomment-examples.sh: intent grades A-E from
#      contacts, customer types, problem customers, two audiences, as in
#      docs/rules.md): kafka.brokers is "embedded", so
#      segd starts librdkafka's in-process Kafka-protocol cluster on
#      127.0.0.1, prints its address and consumes `events` from it.
#   2. tools/seg_gen produces two years of BG/NBD history for 3,000
#      customers into `events`, paced so that the two years pass in about
#      15 s: event time, and with it segd's watermark, sweeps forward, and
#      the time-driven transitions (active -> at_risk after 45 days without
#      a purchase, silent, churned) fire as it goes, next to the ones
#      purchases and contacts cause. A few deliberately broken records go to
#      the DLQ topic.
#   3. Then a live stream: seg_gen --realtime stamps each event with the
#      wall clock as it sends it, 40 events/s for about 8 s, for customers
#      the history already knows: lapsed customers coming back show up as
#      `at_risk -> active` and the like, seconds after the event.
#   4. kcat consumes `transitions` and `churn-alerts` the whole time, as
#      marketing automation would; we print the first messages, a running
#      count, and at the end segd's /metrics and its clean exit on SIGTERM.
#
# Why paced history and not a live year: a 45-day deadline cannot pass in
# a one-minute demo if event time follows the clock. Replaying history at
# speed is what a deployment does on its first start (it reads the topic
# from the beginning); the live part then shows what steady state looks
# like. Honest about both: the history phase prints event time, the live
# phase shows transitions whose `at` is now.
#
# DEMO=replay runs the earlier batch demo instead: `segd replay` over the
# bundled CDNOW sample (tests/data/demo/), no Kafka involved.
#
# Everything is on 127.0.0.1, every wait is bounded, and the trap stops
# segd, kcat and seg_gen whatever happens. Needs kcat and /usr/bin/python3
# (scripts/install-deps.sh installs both). Takes about 40 s.
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "demo: no build directory '${1:-build}'; run make" >&2; exit 1; }
SEGD=$BUILD/segd
GEN=$BUILD/seg_gen
PY=/usr/bin/python3

# ---- DEMO=replay: the batch entry point on real data --------------------
if [ "${DEMO:-live}" = replay ]; then
  set -e
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  echo "== segd replay: CDNOW 1/10 sample (6,919 purchases), until 1998-12-31"
  zcat tests/data/demo/cdnow-sample.ndjson.gz |
    "$SEGD" replay --config config/segd.yaml --input - --until 1998-12-31T00:00:00Z \
      --dlq "$out/dlq.ndjson" >"$out/transitions.ndjson" 2>"$out/summary.txt"
  cat "$out/summary.txt"
  echo
  echo "== one customer's story (s0001):"
  grep '"customer_id":"s0001"' "$out/transitions.ndjson" | head -20
  "$PY" - "$out/transitions.ndjson" <<'PY'
import json, sys, collections
last = collections.defaultdict(dict)
alerts = collections.Counter()
for line in open(sys.argv[1]):
    t = json.loads(line)
    last[t["dimension"]][t["customer_id"]] = t["to"]
    if t["dimension"] == "lifecycle" and t["to"] in ("at_risk", "churned"):
        alerts[t["to"]] += 1
print("\n== churn-alert stream (lifecycle -> at_risk | churned):")
for k, v in sorted(alerts.items()):
    print(f"  {k:10s} {v}")
for dim in ("lifecycle", "value"):
    sizes = collections.Counter(last[dim].values())
    print(f"\n== {dim} segment sizes at the end:")
    for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {k:10s} {v:6d}  " + "#" * max(1, v * 50 // max(sizes.values())))
PY
  echo
  echo "Transitions are NDJSON on stdout; see docs/events.md. Try:"
  echo "  zcat tests/data/demo/cdnow-sample.ndjson.gz | $SEGD replay --input - | head"
  exit 0
fi

# ---- the live daemon --------------------------------------------------------
HIST_CUSTOMERS=${DEMO_CUSTOMERS:-3000}
HIST_DAYS=730
HIST_SECONDS=15          # how long the two years take to produce
LIVE_CUSTOMERS=90        # ~330 events
LIVE_RATE=40

for t in "$SEGD" "$GEN"; do
  [ -x "$t" ] || { echo "demo: $t is missing; run make" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "demo: kcat is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
[ -x "$PY" ] || { echo "demo: $PY is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/segd-demo.XXXXXX")
SEGD_PID= GEN_PID= SHOW_PID=
KCAT_PIDS=()
cleanup() {
  local p
  # Helpers are killed outright: a seg_gen told to stop politely would wait
  # for its deliveries, and segd may be gone.
  for p in $GEN_PID "${KCAT_PIDS[@]}" $SHOW_PID; do
    kill -KILL "$p" 2>/dev/null
  done
  if [ -n "$SEGD_PID" ] && kill -0 "$SEGD_PID" 2>/dev/null; then
    kill -TERM "$SEGD_PID" 2>/dev/null          # its clean shutdown, 5 s at most
    for p in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$SEGD_PID" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL "$SEGD_PID" 2>/dev/null
  fi
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
# The default config with its commented example rules switched on.
sh tools/uncomment-examples.sh config/segd.yaml >"$WORK/segd.yaml" || { echo "demo: cannot write its config" >&2; exit 1; }
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
metrics() { "$PY" - "$PORT" <<'PY'
import sys, urllib.request
try:
    print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=2).read().decode())
except Exception as e:
    sys.exit(1)
PY
}
metric_sum() {  # metric_sum NAME: sum of every series of NAME in /metrics
  metrics | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d\n", s }'
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
die() {
  echo "demo: $*" >&2
  if [ -s "$WORK/segd.log" ]; then
    echo "---- segd log (last lines) ----" >&2
    tail -n 15 "$WORK/segd.log" >&2
  fi
  exit 1
}

# 1. segd with the embedded broker. The metrics port is picked free, and
# tried again if another process takes it first.
for attempt in 1 2 3; do
  PORT=$(free_port)
  # state.dir: snapshots go to the scratch directory, not the work tree.
  "$SEGD" run --config "$WORK/segd.yaml" --set metrics.listen=127.0.0.1:"$PORT" \
    --set state.dir="$WORK/state" >"$WORK/segd.out" 2>"$WORK/segd.log" &
  SEGD_PID=$!
  BOOT=
  for _ in $(seq 100); do       # 10 s
    BOOT=$(sed -n 's/^segd: embedded Kafka-protocol cluster at \([^ ]*\) .*/\1/p' "$WORK/segd.out")
    [ -n "$BOOT" ] && break
    alive "$SEGD_PID" || break
    sleep 0.1
  done
  [ -n "$BOOT" ] && break
  wait "$SEGD_PID" 2>/dev/null
  SEGD_PID=
  grep -q "metrics" "$WORK/segd.log" || die "segd did not start"
done
[ -n "$BOOT" ] || die "segd did not print its bootstrap address"

echo "== segd run (pid $SEGD_PID), default config with its example rules on, kafka.brokers: embedded"
echo "   user rules: $(sed -n 's/^    \([a-z_0-9]*\):$/\1/p' "$WORK/segd.yaml" | tr '\n' ' ')"
sed 's/^/   /' "$WORK/segd.out"
echo "   live page: http://127.0.0.1:$PORT/   metrics: http://127.0.0.1:$PORT/metrics"
echo "   topics: events (6 partitions), transitions,"
echo "   churn-alerts, events-dlq. Any Kafka client can use it meanwhile, e.g.:"
echo "     kcat -b $BOOT -C -t transitions -o beginning"
echo

# Wait until the consumer group has its partitions (the embedded cluster
# holds the first join of a group for 3 s).
echo "== waiting for segd to join its consumer group ..."
for _ in $(seq 150); do         # 15 s
  alive "$SEGD_PID" || die "segd exited"
  [ "$(metric_sum segd_assigned_partitions 2>/dev/null)" = 6 ] && break
  sleep 0.1
done
[ "$(metric_sum segd_assigned_partitions)" = 6 ] || die "segd was not assigned its partitions in 15 s"

# 2. kcat reads the output topics as a downstream consumer would.
for topic in transitions churn-alerts; do
  # fetch.wait.max.ms: the embedded (mock) broker holds an empty fetch for
  # the whole wait even when data arrives meanwhile; a real broker answers
  # at once. librdkafka's default of 500 ms would show up as delay here.
  kcat -C -b "$BOOT" -t "$topic" -o beginning -u -q -X fetch.wait.max.ms=50 -f '%s\n' \
    >"$WORK/$topic.ndjson" 2>"$WORK/kcat-$topic.err" &
  KCAT_PIDS+=($!)
done

# The display: first transitions verbatim, then a status line every 2 s,
# until $WORK/stop appears (bounded by its own 90 s limit).
cat >"$WORK/show.py" <<'PY'
import collections, json, os, sys, time, datetime, urllib.request
work, port = sys.argv[1], sys.argv[2]
t0 = time.time()
files = {t: open(os.path.join(work, t + ".ndjson")) for t in ("transitions", "churn-alerts")}
buf = {t: "" for t in files}
count = collections.Counter()              # (dimension, to)
alerts = collections.Counter()
shown = shown_live = shown_rule = 0
BUILTIN = ("lifecycle", "value", "rfm", "dissatisfied")
live_since = None
next_live = 0

def day(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d")

def metric(text, name):
    s, found = 0, False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            s += float(line.rsplit(" ", 1)[1]); found = True
    return s if found else None

def read(topic):
    data = files[topic].read()
    if not data:
        return []
    data = buf[topic] + data
    lines = data.split("\n")
    buf[topic] = lines.pop()
    return [json.loads(l) for l in lines if l.strip()]

def status():
    try:
        m = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
    except Exception:
        m = ""
    ev = (metric(m, "segd_events_total") or 0) + (metric(m, "segd_events_rejected_total") or 0)
    wm = metric(m, "segd_watermark_seconds")
    by_dim = collections.Counter()
    for (d, _), n in count.items():
        by_dim[d] += n
    dims = " ".join(f"{d} {by_dim[d]:,}" for d in ("lifecycle", "value", "rfm", "dissatisfied",
                                                    "intent"))
    print(f"  [{time.time() - t0:4.0f}s] event time {day(wm) if wm else '-':10s} | events in {ev:8,.0f}"
          f" | transitions {sum(count.values()):7,} ({dims}) | churn-alerts {sum(alerts.values()):,}",
          flush=True)

next_status = t0 + 2
while True:
    stop = os.path.exists(os.path.join(work, "stop"))
    if live_since is None and os.path.exists(os.path.join(work, "live")):
        live_since = int(open(os.path.join(work, "live")).read())
        print(f"  -- live from here: events stamped with the wall clock "
              f"({day(live_since)} {time.strftime('%H:%M:%S', time.gmtime(live_since))} UTC on)", flush=True)
    for t in read("transitions"):
        count[(t["dimension"], t["to"])] += 1
        if shown < 6:
            print("  " + json.dumps(t, separators=(",", ":")), flush=True)
            shown += 1
        elif t["dimension"] not in BUILTIN and t["from"] is not None and shown_rule < 3:
            # a user rule moving, by an event or by time alone
            print("  rule: " + json.dumps(t, separators=(",", ":")), flush=True)
            shown_rule += 1
        elif (live_since is not None and shown_live < 8 and t["cause"] == "event" and
              (t["dimension"] == "lifecycle" or
               (t["dimension"] == "intent" and shown_live % 2 == 1)) and
              time.time() >= next_live):
            at = datetime.datetime.strptime(t["at"], "%Y-%m-%dT%H:%M:%SZ") \
                .replace(tzinfo=datetime.timezone.utc).timestamp()
            if at >= live_since:
                # `at` is the event's ts, whole seconds: the delay shown is
                # an upper bound.
                print(f"  live: {t['customer_id']} {t['dimension']} {t['from']} -> {t['to']}"
                      f" at {t['at']}, received within {time.time() - at:.1f}s", flush=True)
                shown_live += 1
                next_live = time.time() + 1
    for a in read("churn-alerts"):
        alerts[a["to"] if a["dimension"] == "lifecycle" else a["dimension"]] += 1
    if time.time() >= next_status or stop:
        status()
        next_status += 2
    if stop or time.time() - t0 > 90:
        break
    time.sleep(0.2)

print("\n== transitions received on `transitions`, by dimension and new value:")
for d in ("lifecycle", "value", "dissatisfied", "rfm") + tuple(
        sorted({dd for dd, _ in count} - set(BUILTIN))):
    items = sorted(((to, n) for (dd, to), n in count.items() if dd == d), key=lambda x: -x[1])
    if d == "rfm" and len(items) > 8:
        rest = sum(n for _, n in items[8:])
        items = items[:8] + [(f"(+{len(items) - 8} more codes)", rest)]
    print(f"  {d:15s} " + ", ".join(f"{to} {n:,}" for to, n in items))
want = (count[("lifecycle", "at_risk")] + count[("lifecycle", "churned")] +
        count[("likely_churned", "in")])
got = sum(alerts.values())
print(f"\n== churn-alerts (route \"lifecycle -> at_risk,churned | likely_churned -> in\"): "
      + ", ".join(f"{k} {v:,}" for k, v in sorted(alerts.items()))
      + f"; {got:,} alerts for {want:,} such transitions: "
      + ("they match" if got == want else "MISMATCH"))
PY
touch "$WORK/transitions.ndjson" "$WORK/churn-alerts.ndjson"
"$PY" "$WORK/show.py" "$WORK" "$PORT" &
SHOW_PID=$!

# 3. History: two years ending now, paced to ~HIST_SECONDS.
NOW=$(date -u +%s)
START=$(date -u -d "@$((NOW - HIST_DAYS * 86400))" +%Y-%m-%dT%H:%M:%SZ)
"$GEN" --customers "$HIST_CUSTOMERS" --days "$HIST_DAYS" --start "$START" --seed 2024 \
  --bad-rate 0.003 --output /dev/null --summary-json "$WORK/hist.json" 2>/dev/null \
  || die "seg_gen failed"
HIST_RECORDS=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$WORK/hist.json")
RATE=$((HIST_RECORDS / HIST_SECONDS + 1))
echo "== history: $HIST_CUSTOMERS customers, $HIST_DAYS days from $START, $HIST_RECORDS records"
echo "   (0.3% deliberately invalid) produced to 'events' at $RATE/s, keyed by customer_id:"
"$GEN" --customers "$HIST_CUSTOMERS" --days "$HIST_DAYS" --start "$START" --seed 2024 \
  --bad-rate 0.003 --brokers "$BOOT" --topic events --rate "$RATE" 2>"$WORK/gen-hist.log" &
GEN_PID=$!
for _ in $(seq $((HIST_SECONDS * 10 + 150))); do   # the stream's length + 15 s
  alive "$GEN_PID" || break
  alive "$SEGD_PID" || die "segd exited during the history"
  sleep 0.1
done
alive "$GEN_PID" && die "seg_gen did not finish the history in time"
wait "$GEN_PID" || { cat "$WORK/gen-hist.log" >&2; die "seg_gen reported failed deliveries"; }
GEN_PID=

# 4. Live: customers the history knows, events stamped with the wall clock.
date -u +%s >"$WORK/live"
"$GEN" --customers "$LIVE_CUSTOMERS" --seed 77 --realtime --rate "$LIVE_RATE" \
  --brokers "$BOOT" --topic events --summary-json "$WORK/live.json" 2>"$WORK/gen-live.log" &
GEN_PID=$!
for _ in $(seq 150); do        # ~8 s expected, 15 s at most
  alive "$GEN_PID" || break
  sleep 0.1
done
if alive "$GEN_PID"; then kill -TERM "$GEN_PID"; fi
wait "$GEN_PID" || { cat "$WORK/gen-live.log" >&2; die "seg_gen (live) reported failed deliveries"; }
GEN_PID=
LIVE_RECORDS=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["written"])' "$WORK/live.json")

# Until segd has folded (or rejected) every record produced, and every
# message it produced is acknowledged: at most 10 s.
TOTAL=$((HIST_RECORDS + LIVE_RECORDS))
for _ in $(seq 100); do
  done_n=$(( $(metric_sum segd_events_total) + $(metric_sum segd_events_rejected_total) ))
  [ "$done_n" -ge "$TOTAL" ] && [ "$(metric_sum segd_inflight_records)" = 0 ] && break
  sleep 0.1
done
sleep 1                        # let kcat and the display catch the last messages
touch "$WORK/stop"
for _ in $(seq 50); do alive "$SHOW_PID" || break; sleep 0.1; done
wait "$SHOW_PID" 2>/dev/null
SHOW_PID=

# 5. What operations would scrape.
echo
echo "== /metrics highlights (http://127.0.0.1:$PORT/metrics):"
metrics >"$WORK/metrics.txt" || die "cannot read /metrics"
"$PY" - "$WORK/metrics.txt" "$TOTAL" <<'PY'
import collections, re, sys, datetime
series = []
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    m = re.match(r'([a-z_]+)(\{(.*)\})? (\S+)$', line.strip())
    if m:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        series.append((m.group(1), labels, float(m.group(4))))
def get(name):
    return [(l, v) for n, l, v in series if n == name]
def one(name):
    v = get(name)
    return v[0][1] if v else 0
ev = {l["type"]: v for l, v in get("segd_events_total")}
rej = {l["reason"]: v for l, v in get("segd_events_rejected_total")}
print(f"  events folded       {sum(ev.values()):8,.0f}  " + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(ev.items())))
print(f"  events rejected     {sum(rej.values()):8,.0f}  " + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(rej.items()))
      + f"  -> DLQ topic: {one('segd_dlq_total'):,.0f}")
print(f"  (produced {int(sys.argv[2]):,} records; folded + rejected = {sum(ev.values()) + sum(rej.values()):,.0f})")
tr = collections.defaultdict(collections.Counter)
for l, v in get("segd_transitions_total"):
    tr[l["dimension"]][l["to"]] += v
for d in ("lifecycle", "value", "dissatisfied", "rfm") + tuple(
        sorted(set(tr) - {"lifecycle", "value", "dissatisfied", "rfm"})):
    c = tr.get(d, {})
    top = sorted(c.items(), key=lambda kv: -kv[1])
    txt = ", ".join(f"{k} {v:,.0f}" for k, v in top[:7]) + (f", ... ({len(top)} codes)" if len(top) > 7 else "")
    print(f"  transitions {d:16s}{sum(c.values()):7,.0f}  {txt}")
print(f"  customers in memory {one('segd_customers'):8,.0f}")
lag = get("segd_consumer_lag")
print(f"  consumer lag        {sum(v for _, v in lag):8,.0f}  over {len(lag)} partitions")
wm = one("segd_watermark_seconds")
print(f"  watermark           {datetime.datetime.fromtimestamp(wm, datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
      if wm else "  watermark           -")
print(f"  messages delivered  {one('segd_messages_delivered_total'):8,.0f}  (transitions + routed copies + DLQ);"
      f" produce errors {one('segd_produce_errors_total'):,.0f}")
print(f"  process RSS         {one('segd_process_rss_bytes') / 2**20:8.1f} MiB")
PY

# 5b. What operations and a CRM ask segd directly: sizes and one customer.
echo
echo "== live page: http://127.0.0.1:$PORT/  (sizes, 24 h flows, volatility, rates;"
echo "   open it in a browser while segd runs). One customer, as GET /v1/customers/{id} answers:"
"$PY" - "$PORT" "$WORK/transitions.ndjson" <<'PY'
import json, sys, urllib.parse, urllib.request
port, path = sys.argv[1], sys.argv[2]
cid = None
for line in open(path):
    t = json.loads(line)
    if t["dimension"] == "intent" and t["to"] in ("A", "B"):
        cid = t["customer_id"]
if cid is None:
    cid = json.loads(open(path).readline())["customer_id"]
try:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/customers/"
                                  f"{urllib.parse.quote(cid, safe='')}", timeout=5).read()
    print("   curl http://127.0.0.1:%s/v1/customers/%s" % (port, cid))
    for l in json.dumps(json.loads(body), indent=2).splitlines():
        print("   " + l)
except Exception as e:
    print(f"   (lookup failed: {e})")
try:
    seg = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/segments", timeout=5).read())
    for d in seg["dimensions"]:
        if d["dimension"] in ("lifecycle", "intent", "likely_churned"):
            vals = sorted(d["values"], key=lambda v: -v["customers"])
            print(f"   GET /v1/segments, {d['dimension']:15s}" + ", ".join(
                f"{v['value']} {v['customers']:,}" for v in vals if v["customers"]))
except Exception as e:
    print(f"   (/v1/segments failed: {e})")
PY

# 6. SIGTERM: stop fetching, drain the producer, commit, exit 0.
echo
echo "== SIGTERM to segd (pid $SEGD_PID):"
kill -TERM "$SEGD_PID"
for _ in $(seq 150); do alive "$SEGD_PID" || break; sleep 0.1; done
if alive "$SEGD_PID"; then
  die "segd did not exit within 15 s of SIGTERM"
fi
wait "$SEGD_PID"
RC=$?
SEGD_PID=
grep -E "shutting down|checkpoint: shutdown|stopped|error" "$WORK/segd.log" | sed 's/^/   /'
echo "   segd exited with status $RC"
[ "$RC" = 0 ] || exit 1
echo
echo "Production points kafka.brokers at a real Kafka cluster (docs/configuration.md);"
echo "the embedded one is in memory and for trying segd out. DEMO=replay make demo"
echo "shows the batch entry point, segd replay, on real CDNOW purchases."
