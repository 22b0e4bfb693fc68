#!/usr/bin/env bash
# bench/run.sh BUILD_DIR: the `make bench` suite.
#
# Why it looks like this: an absolute events/s figure moves with the CPU,
# the load from other processes and the library builds, so every replay
# rate is reported next to a ceiling measured in the same run on the same
# file (cJSON parse-only, msgpack-c unpack-only), and ceiling and replay
# runs alternate so that drifting load hits both. Each case runs several
# times and the median is the result; min and max show the noise.
#
# Datasets come from tools/seg_gen (BG/NBD customers) and are cached under
# BUILD_DIR/benchdata, keyed by the generator's arguments and source hash.
# Replay reads them from the page cache (each file is read once before its
# runs) and writes its transitions to /dev/null.
#
# Environment:
#   REPEAT=3            runs per case at the base size (1M customers)
#   REPEAT_10M=2        runs per case at the large size (10M customers)
#   BENCH_CUSTOMERS="1000000 10000000"   base and (optional) large size
#   BENCH_SEED=20240101 generator seed
#   BENCH_JSON=<repo>/build/bench.json   where the results go
#   BENCH_CONFIG=<repo>/config/segd.yaml config for segd replay
#   BENCH_STRICT=1      exit 1 if any target FAILs (default: report only)
#   BENCH_CASES="replay kafka"           which groups to run: replay (cases
#                       1-4) and/or kafka (case 5); results of the groups not
#                       run are kept from the existing BENCH_JSON
#   BENCH_KAFKA_CUSTOMERS=500000         case 5 throughput data set (~1.8M events)
#   BENCH_KAFKA_PARTITIONS=40            its input topic's partitions
#   REPEAT_KAFKA=3      throughput runs (each with a consume-only ceiling
#                       and a produce floor)
#   BENCH_KAFKA_PRODUCE=1000000          messages per produce-floor run
#   BENCH_LATENCY_RATE=50000             case 5 latency: events/s produced
#   BENCH_LATENCY_SECONDS=10             ... for this long
#   REPEAT_LATENCY=2    latency runs
#   BENCH_LATENCY_SEGD_ARGS=""           extra segd arguments for the latency
#                       runs, e.g. "--set kafka.consumer.fetch.wait.max.ms=10"
#   SEGD, SEG_GEN, SEG_CEILING           override the binaries
#   SEG_MOCK_CLUSTER, SEG_CONSUME_RATE, SEG_BENCH_TAIL   case 5's tools
# Exit codes: 0 measured (targets may FAIL unless BENCH_STRICT=1),
#             1 a run failed or a tool is missing, 2 usage.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: bench/run.sh BUILD_DIR   (normally run by 'make bench')" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
SEG_GEN=${SEG_GEN:-$BUILD/seg_gen}
SEG_CEILING=${SEG_CEILING:-$BUILD/bench/seg_bench_ceiling}
SEGD=${SEGD:-$BUILD/segd}
CONFIG=${BENCH_CONFIG:-$REPO/config/segd.yaml}
read -r -a SIZES <<<"${BENCH_CUSTOMERS:-1000000 10000000}"
SEED=${BENCH_SEED:-20240101}
DAYS=365
REPEAT=${REPEAT:-3}
REPEAT_10M=${REPEAT_10M:-2}
OUT_JSON=${BENCH_JSON:-$REPO/build/bench.json}
DATA=$BUILD/benchdata

CASES=" ${BENCH_CASES:-replay kafka} "
has_case() { [[ $CASES == *" $1 "* ]]; }
for c in $CASES; do
  case $c in replay|kafka) ;; *) echo "bench: BENCH_CASES: unknown group '$c' (replay, kafka)" >&2; exit 2 ;; esac
done
for t in "$SEG_GEN" "$SEG_CEILING"; do
  [ -x "$t" ] || { echo "bench: $t is missing; build first ('make bench' does)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
HAVE_SEGD=1
if [ ! -x "$SEGD" ]; then
  echo "bench: $SEGD not built; replay cases will be 'not measured'" >&2
  HAVE_SEGD=0
fi

mkdir -p "$DATA" "$(dirname "$OUT_JSON")"
RES=$(mktemp -d "${TMPDIR:-/tmp}/segbench.XXXXXX")
KAFKA_PIDS=()   # case 5's background processes, for the trap
on_exit() {
  local p
  for p in "${KAFKA_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if declare -F mc_stop >/dev/null; then mc_stop >/dev/null 2>&1 || true; fi
  rm -rf "$RES"
}
trap on_exit EXIT
# Replay uses config/segd.yaml when it exists, so the bench measures what
# users run (segd's built-in defaults otherwise). The file is copied once,
# so every run sees the same config even if the tree changes meanwhile.
CONFIG_ARGS=()
CONFIG_NOTE="built-in defaults"
if [ -f "$CONFIG" ]; then
  cp "$CONFIG" "$RES/segd.yaml"
  CONFIG_ARGS=(--config "$RES/segd.yaml")
  CONFIG_NOTE=$CONFIG
fi
RUNS=$RES/runs.ndjson       # one JSON object per measured run
DSETS=$RES/datasets.ndjson  # one per dataset used
: >"$RUNS"
: >"$DSETS"

label() {  # 1000000 -> 1M, 20000 -> 20k
  local n=$1
  if [ $((n % 1000000)) -eq 0 ]; then echo "$((n / 1000000))M"
  elif [ $((n % 1000)) -eq 0 ]; then echo "$((n / 1000))k"
  else echo "$n"; fi
}

BASE=${SIZES[0]}
LARGE=${SIZES[1]:-}
echo "segd bench: groups:$CASES| seed $SEED, config $CONFIG_NOTE"
if has_case replay; then
echo "replay: customers ${SIZES[*]}, $DAYS days"
echo "note: each $(label "$BASE") case runs REPEAT=$REPEAT times${LARGE:+, each $(label "$LARGE") case REPEAT_10M=$REPEAT_10M times}; medians are"
echo "      reported. Defaults keep the suite near 10-15 minutes on 2 cores; set REPEAT"
echo "      and REPEAT_10M to trade time for less noise. Load now: $(cut -d' ' -f1-3 /proc/loadavg)."
fi

# ---- datasets --------------------------------------------------------------
GEN_HASH=$(sha256sum "$REPO/tools/seg_gen.c" | cut -c1-12)
dataset() {  # dataset N FORMAT -> prints the path; generates it if not cached
  local n=$1 fmt=$2
  local key="c${n}_d${DAYS}_s${SEED}_g${GEN_HASH}"
  local ext; [ "$fmt" = json ] && ext=ndjson || ext=msgpack
  local f="$DATA/$key.$ext"
  if [ ! -s "$f" ] || [ ! -s "$f.sum.json" ]; then
    echo "generating $(label "$n") customers ($fmt) -> $f" >&2
    rm -f "$DATA"/c"${n}"_d"${DAYS}"_s"${SEED}"_g*."$ext"*   # older generator versions
    "$SEG_GEN" --customers "$n" --days "$DAYS" --seed "$SEED" --format "$fmt" \
      --output "$f.tmp" --summary-json "$f.sum.tmp" >&2
    mv "$f.sum.tmp" "$f.sum.json"
    mv "$f.tmp" "$f"
  fi
  $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); d["path"]=sys.argv[2]; print(json.dumps(d))' \
    "$f.sum.json" "$f" >>"$DSETS"
  echo "$f"
}
warm() { cat "$1" >/dev/null; }  # page cache, so runs measure CPU, not disk
sumval() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

declare -A FILE
if has_case replay; then
  for n in "${SIZES[@]}"; do
    for fmt in json msgpack; do
      FILE[$n.$fmt]=$(dataset "$n" "$fmt")
    done
  done
fi

# ---- runs ------------------------------------------------------------------
# Each run appends one JSON object to $RUNS, with "ok":false and an "error"
# when it failed, so a broken run is visible in the table, not averaged in.
ceiling() {  # ceiling CASE FORMAT FILE
  local case=$1 fmt=$2 f=$3 rc=0
  "$SEG_CEILING" --format "$fmt" "$f" >"$RES/ceil.json" 2>"$RES/ceil.err" || rc=$?
  $PY - "$case" "$rc" "$RES/ceil.json" "$RES/ceil.err" >>"$RUNS" <<'EOF'
import json, sys
case, rc, out, err = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = {"case": case, "ok": False}
try:
    d = json.load(open(out))
    r.update(d)
    r["ok"] = rc == 0 and d["errors"] == 0
    if d.get("cpu_seconds"):
        r["events_per_cpu_second"] = d["records"] / d["cpu_seconds"]
    if not r["ok"]:
        r["error"] = f"exit {rc}, {d['errors']} parse errors"
except Exception as e:
    r["error"] = f"exit {rc}: {open(err).read().strip()[:300] or e}"
print(json.dumps(r))
EOF
  progress "$case"
}

replay() {  # replay CASE FORMAT FILE CUSTOMERS EVENTS [extra segd args...]
  local case=$1 fmt=$2 f=$3 n=$4 events=$5 rc=0
  shift 5
  if [ "$HAVE_SEGD" = 0 ]; then
    echo "{\"case\":\"$case\",\"ok\":false,\"error\":\"segd not built\"}" >>"$RUNS"
    return
  fi
  rm -f "$RES/sum.json"
  /usr/bin/time -f '%e %U %S %M' -o "$RES/time.txt" \
    "$SEGD" replay "${CONFIG_ARGS[@]}" --input "$f" --format "$fmt" \
    --summary-json "$RES/sum.json" "$@" >/dev/null 2>"$RES/replay.err" || rc=$?
  $PY - "$case" "$rc" "$n" "$events" "$RES/sum.json" "$RES/time.txt" "$RES/replay.err" >>"$RUNS" <<'EOF'
import json, sys
case, rc, n, events, sumf, timef, errf = sys.argv[1:8]
rc, n, events = int(rc), int(n), int(events)
r = {"case": case, "ok": False, "customers_generated": n}
try:
    # /usr/bin/time's last line: elapsed user sys maxrss(KB)
    el, us, sy, rss = open(timef).read().split("\n")[-2].split()
    r.update(wall_seconds=float(el), cpu_seconds=float(us) + float(sy),
             max_rss_bytes=int(rss) * 1024)
except Exception:
    pass
try:
    s = json.load(open(sumf))
except Exception:
    s = None
if rc != 0:
    r["error"] = f"segd exit {rc}: " + open(errf).read().strip()[-300:]
elif s is None:
    r["error"] = "no --summary-json output"
else:
    for k in ("events_read", "events_folded", "rejected", "customers", "transitions",
              "deadlines_fired", "state_bytes", "events_per_second"):
        if k in s and s[k] is not None:
            r[k] = s[k]
    # CPU, wall and RSS come from /usr/bin/time (the whole process, start-up
    # and tear-down included); segd's own figures are kept next to them.
    for k in ("cpu_seconds", "wall_seconds", "max_rss_bytes"):
        if k in s and s[k] is not None:
            r["segd_" + k] = s[k]
            r.setdefault(k, s[k])
    if "events_per_second" not in r and r.get("wall_seconds"):
        r["events_per_second"] = s.get("events_read", events) / r["wall_seconds"]
    # A run that did not fold the whole data set measured something else.
    if s.get("events_read") != events or s.get("rejected", 0) != 0:
        r["error"] = (f"read {s.get('events_read')} events (want {events}), "
                      f"rejected {s.get('rejected')}")
    else:
        r["ok"] = True
    if r.get("cpu_seconds"):
        r["events_per_cpu_second"] = events / r["cpu_seconds"]
print(json.dumps(r))
EOF
  progress "$case"
}

progress() {
  $PY - "$1" "$RUNS" <<'EOF'
import json, sys
case, runs = sys.argv[1], sys.argv[2]
rs = [json.loads(l) for l in open(runs) if json.loads(l)["case"] == case]
r = rs[-1]
if not r["ok"]:
    print(f"  {case} run {len(rs)}: ERROR {r.get('error')}", flush=True)
else:
    extra = f", max RSS {r['max_rss_bytes']/2**20:.0f} MiB" if "max_rss_bytes" in r else ""
    extra += f", cpu {r['cpu_seconds']:.2f}s" if "cpu_seconds" in r else ""
    unit = "msgs" if case == "kafka_produce" else "events"
    print(f"  {case} run {len(rs)}: {r['events_per_second']/1e6:.3f}M {unit}/s{extra}", flush=True)
EOF
}

events_of() { sumval "${FILE[$1.$2]}.sum.json" events; }

B=$(label "$BASE")
if has_case replay; then
echo "== $B customers: JSON (replay vs cJSON parse-only)"
warm "${FILE[$BASE.json]}"
EV=$(events_of "$BASE" json)
for i in $(seq "$REPEAT"); do
  ceiling "ceiling_json_$B" json "${FILE[$BASE.json]}"
  replay "replay_json_$B" json "${FILE[$BASE.json]}" "$BASE" "$EV"
done
echo "== $B customers: MessagePack (replay vs msgpack-c unpack-only)"
warm "${FILE[$BASE.msgpack]}"
EV=$(events_of "$BASE" msgpack)
for i in $(seq "$REPEAT"); do
  ceiling "ceiling_msgpack_$B" msgpack "${FILE[$BASE.msgpack]}"
  replay "replay_msgpack_$B" msgpack "${FILE[$BASE.msgpack]}" "$BASE" "$EV"
done

if [ -n "$LARGE" ]; then
  L=$(label "$LARGE")
  $PY - "$RUNS" "$B" "$(events_of "$LARGE" json)" "$REPEAT_10M" <<'EOF'
import json, statistics, sys
runs, B, ev, rep = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rate = lambda fmt: [r["events_per_second"] for r in map(json.loads, open(runs))
                    if r["case"] == f"replay_{fmt}_{B}" and r["ok"]]
j, m = rate("json"), rate("msgpack")
if j and m:
    # json x REPEAT_10M, msgpack x REPEAT_10M x 2 (plain and +1 day), +366 days once
    s = ev / statistics.median(j) * rep + ev / statistics.median(m) * (2 * rep + 1)
    print(f"note: at the {B} rates the large cases take about {s / 60:.1f} minutes", flush=True)
EOF
  echo "== $L customers: JSON"
  warm "${FILE[$LARGE.json]}"
  EV=$(events_of "$LARGE" json)
  for i in $(seq "$REPEAT_10M"); do
    replay "replay_json_$L" json "${FILE[$LARGE.json]}" "$LARGE" "$EV"
  done
  # Deadline cost: the same replay with time run on past the last event.
  # --until last+1d fires one more day of deadlines; the CPU difference is
  # that day's cost. +366d fires every deadline still pending (all windows
  # expire, everyone churns), which gives a per-transition cost with less
  # noise. MessagePack, because its lower parse cost leaves less noise.
  LAST=$(sumval "${FILE[$LARGE.msgpack]}.sum.json" last_ts)
  U1=$(date -u -d "$LAST + 1 day" +%Y-%m-%dT%H:%M:%SZ)
  U366=$(date -u -d "$LAST + 366 days" +%Y-%m-%dT%H:%M:%SZ)
  echo "== $L customers: MessagePack, and deadlines (--until $U1, --until $U366)"
  warm "${FILE[$LARGE.msgpack]}"
  EV=$(events_of "$LARGE" msgpack)
  for i in $(seq "$REPEAT_10M"); do
    replay "replay_msgpack_$L" msgpack "${FILE[$LARGE.msgpack]}" "$LARGE" "$EV"
    replay "until1d_msgpack_$L" msgpack "${FILE[$LARGE.msgpack]}" "$LARGE" "$EV" --until "$U1"
    # One run is enough for this one: it is reported, not judged, and its
    # difference is large against the noise.
    [ "$i" -eq 1 ] && replay "until366d_msgpack_$L" msgpack "${FILE[$LARGE.msgpack]}" "$LARGE" "$EV" --until "$U366"
  done
fi

fi  # has_case replay

# ---- case 5: Kafka end to end ------------------------------------------------
# One segd instance against the test harness's mock cluster (librdkafka's
# rdkafka_mock, 3 brokers on 127.0.0.1, in a separate process), with the
# default config except addresses, group, state dir and changelog topic.
#
# Throughput: the input topic is pre-filled once by seg_gen (lz4, keyed by
# customer_id; the mock keeps ~5 MB per partition, so the data set is spread
# over BENCH_KAFKA_PARTITIONS partitions and seg_consume_rate checks that
# nothing was dropped). Each repetition measures the raw librdkafka consume
# rate of that topic (the harness's seg_consume_rate: one consumer, one
# rd_kafka_consumer_poll per message, unlimited prefetch) and then one segd
# run from the beginning of it with a fresh consumer group, state dir and
# changelog topic. segd's rate is read from its /metrics every 50 ms:
# (segd_events_total + segd_events_rejected_total) from the first sample
# above zero to the first sample with every record counted, so start-up and
# the consumer group join (3 s on the mock) are left out, as they are for
# the ceiling. segd's transitions go to the same cluster, so the rate
# includes producing them (their deliveries may finish a little later; that
# time is recorded as drain_seconds).
#
# Produce floor: segd publishes every transition as its own message (plus
# routed copies), ~3.2 per input event. Each repetition also measures how
# fast librdkafka alone produces transition lines (from segd replay of a
# small seg_gen set, cycled, keyed by customer) to a fresh topic of the same
# cluster with segd's producer settings (acks=all, idempotence, lz4,
# linger.ms=5), counting until every delivery report is in
# (seg_consume_rate --produce). Divided by segd's messages per event, that
# is the most events/s any daemon publishing the same messages could reach
# here, before it consumes or folds anything.
#
# Latency: seg_gen --realtime --rate BENCH_LATENCY_RATE produces live
# events (ts = now) for BENCH_LATENCY_SECONDS into a 6-partition topic that
# segd consumes, while seg_bench_tail reads segd's output topic and stamps
# each transition with its receive time. Each transition caused by an event
# ("cause":"event") is matched to its input record by (customer_id, ts =
# the transition's `at`); the input's produce time is its Kafka CreateTime,
# read back afterwards with kcat. Keys that several input records share
# (same customer, same second) are left out, and counted. Reported:
# receive time - produce time (produce -> transition readable by a
# consumer, an upper bound of "delivered"), and segd's own CreateTime of the
# transition - produce time (produce -> segd produced it, a lower bound).
if has_case kafka; then
  echo "== Kafka end to end (case 5)"
  KN=${BENCH_KAFKA_CUSTOMERS:-500000}
  KP=${BENCH_KAFKA_PARTITIONS:-40}
  KREPEAT=${REPEAT_KAFKA:-3}
  LRATE=${BENCH_LATENCY_RATE:-50000}
  LSECS=${BENCH_LATENCY_SECONDS:-10}
  LREPEAT=${REPEAT_LATENCY:-2}
  LPARTS=6
  read -r -a LEXTRA <<<"${BENCH_LATENCY_SEGD_ARGS:-}"
  pick() { local f; for f in "$@"; do [ -x "$f" ] && { echo "$f"; return 0; }; done; echo "$1"; }
  export SEG_MOCK_CLUSTER=${SEG_MOCK_CLUSTER:-$(pick "$BUILD/tests/harness/seg_mock_cluster" "$BUILD/bench/seg_mock_cluster")}
  SEG_CONSUME_RATE=${SEG_CONSUME_RATE:-$(pick "$BUILD/tests/harness/seg_consume_rate" "$BUILD/bench/seg_consume_rate")}
  SEG_BENCH_TAIL=${SEG_BENCH_TAIL:-$BUILD/bench/seg_bench_tail}
  kafka_error() {  # kafka_error MESSAGE: every case 5 line becomes an ERROR
    echo "  case 5: ERROR $1" >&2
    for c in kafka_ceiling kafka_e2e kafka_produce kafka_latency; do
      $PY -c 'import json,sys; print(json.dumps({"case": sys.argv[1], "ok": False, "error": sys.argv[2]}))' \
        "$c" "$1" >>"$RUNS"
    done
  }
  # rate_result CASE RC WANT NAME: one run line from seg_consume_rate's
  # $RES/NAME.json. kafka_ceiling: its consume rate; kafka_produce: its
  # pre-fill rate (produce until every delivery report). Either way the
  # topic must hold WANT messages.
  rate_result() {
    $PY - "$1" "$2" "$3" "$RES/$4.json" "$RES/$4.err" >>"$RUNS" <<'EOF'
import json, sys
case, rc, want, out, err = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
r = {"case": case, "ok": False}
try:
    d = json.load(open(out))
    r["messages"] = d["messages"]
    if case == "kafka_produce":
        r.update(seconds=d["prefill_seconds"], bytes=d["prefill_bytes"],
                 events_per_second=want / d["prefill_seconds"])
    else:
        run = d["runs"][0]
        r.update(events_per_second=d["msgs_per_sec"], seconds=run["seconds"],
                 cpu_seconds=run["cpu_seconds"],
                 events_per_cpu_second=d["messages"] / run["cpu_seconds"])
    if d["messages"] != want:
        r["error"] = f"topic holds {d['messages']} messages, {want} were produced"
    else:
        r["ok"] = rc == 0
except Exception as e:
    r["error"] = f"exit {rc}: {open(err).read().strip()[-300:] or e}"
print(json.dumps(r))
EOF
  }
  kafka_main() {
    local t
    for t in "$SEGD" "$SEG_MOCK_CLUSTER" "$SEG_CONSUME_RATE" "$SEG_BENCH_TAIL"; do
      [ -x "$t" ] || { kafka_error "$t is not built"; return 0; }
    done
    command -v kcat >/dev/null || { kafka_error "kcat is missing (scripts/install-deps.sh)"; return 0; }
    # shellcheck source=../tests/harness/mock_cluster.sh
    . "$REPO/tests/harness/mock_cluster.sh"
    MC_TIMEOUT=30
    local topics=(--topic "events:$KP" --topic "transitions:$KP" --topic "churn-alerts:$KP"
                  --topic "events-dlq:$KP" --topic "lat-events:$LPARTS"
                  --topic "lat-transitions:$LPARTS")
    mc_start "$RES/mc" "${topics[@]}" || { kafka_error "the mock cluster did not start"; return 0; }
    local boot=$MC_BOOTSTRAP
    echo "  cluster: 3 brokers at $boot (tests/harness/seg_mock_cluster)"

    # Pre-fill: one data set, read by every run.
    local rc=0
    "$SEG_GEN" --customers "$KN" --days "$DAYS" --seed "$SEED" --brokers "$boot" --topic events \
      -X linger.ms=20 -X batch.size=1000000 --summary-json "$RES/kgen.json" \
      2>"$RES/kgen.err" || rc=$?
    [ "$rc" = 0 ] || { kafka_error "pre-fill failed: $(tail -c 300 "$RES/kgen.err")"; return 0; }
    local kev
    kev=$(sumval "$RES/kgen.json" records)
    echo "  input: $(label "$KN") customers, $kev events in 'events' ($KP partitions, lz4)"
    $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); d["path"]="kafka topic events"; print(json.dumps(d))' \
      "$RES/kgen.json" >>"$DSETS"

    # Transition lines for the produce floor.
    rc=0
    "$SEG_GEN" --customers 20000 --days "$DAYS" --seed "$SEED" --output - 2>/dev/null |
      "$SEGD" replay "${CONFIG_ARGS[@]}" --input - --format json >"$RES/ktrans.ndjson" \
      2>"$RES/ktrans.err" || rc=$?
    [ "$rc" = 0 ] && [ -s "$RES/ktrans.ndjson" ] ||
      { kafka_error "cannot make transition lines: $(tail -c 300 "$RES/ktrans.err")"; return 0; }
    local kpn=${BENCH_KAFKA_PRODUCE:-1000000}

    local i port pid
    for i in $(seq "$KREPEAT"); do
      # Ceiling: the same topic, consume only.
      rc=0
      "$SEG_CONSUME_RATE" --bootstrap "$boot" --topic events --produce 0 --repeat 1 \
        >"$RES/kceil.json" 2>"$RES/kceil.err" || rc=$?
      rate_result kafka_ceiling "$rc" "$kev" kceil
      progress kafka_ceiling

      # segd end to end, from the beginning of the same topic.
      mc_cmd "create_topic bench-e2e-$i-changelog $KP" >/dev/null ||
        { kafka_error "cannot create a changelog topic"; return 0; }
      port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      mkdir -p "$RES/state-e2e-$i"
      "$SEGD" run "${CONFIG_ARGS[@]}" --set kafka.brokers="$boot" --set kafka.group_id="bench-e2e-$i" \
        --set kafka.changelog_topic="bench-e2e-$i-changelog" --set state.dir="$RES/state-e2e-$i" \
        --set metrics.listen=127.0.0.1:"$port" 2>"$RES/segd-e2e-$i.log" &
      pid=$!
      KAFKA_PIDS+=("$pid")
      rc=0
      $PY - "$port" "$pid" "$kev" >"$RES/ke2e.json" <<'EOF' || rc=$?
import json, sys, time, urllib.request
port, pid, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
def cpu():
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / 100.0   # utime + stime, clock ticks
    except Exception:
        return None
def sample():
    try:
        t = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except Exception:
        return None
    g = lambda n: sum(float(l.rsplit(" ", 1)[1]) for l in t.splitlines()
                      if l.startswith(n + " ") or l.startswith(n + "{"))
    return (g("segd_events_total") + g("segd_events_rejected_total"),
            g("segd_messages_delivered_total"), g("segd_inflight_records"),
            g("segd_events_rejected_total"))
r = {"ok": False}
t0 = time.time(); first = done = None; last_change = None; prev = None
while True:
    now = time.time()
    if now - t0 > 180:
        r["error"] = f"not done after 180 s: {prev}"
        break
    s = sample()
    if s is None:
        try:
            import os; os.kill(int(pid), 0)
        except OSError:
            r["error"] = "segd exited"
            break
    elif done is None:
        if first is None and s[0] > 0:
            first = (now, s[0], cpu())
        if s[0] >= want:
            done = (now, s[0], cpu())
    else:
        # After every record is counted: until the deliveries stop.
        if prev and s[1] != prev[1]:
            last_change = now
        if s[2] == 0 and now - (last_change or done[0]) > 0.5:
            r.update(ok=True, drain_seconds=(last_change or done[0]) - done[0],
                     messages_delivered=s[1], rejected=s[3])
            break
        if now - done[0] > 60:
            r["error"] = "deliveries not finished 60 s after the last record"
            break
    prev = s
    time.sleep(0.05)
if first and done:
    secs = done[0] - first[0]
    r.update(events=int(done[1]), seconds=secs,
             events_per_second=(done[1] - first[1]) / secs if secs > 0 else None)
    if first[2] is not None and done[2] is not None and done[2] > first[2]:
        r["cpu_seconds"] = done[2] - first[2]
        r["events_per_cpu_second"] = (done[1] - first[1]) / r["cpu_seconds"]
print(json.dumps(r))
EOF
      kill -TERM "$pid" 2>/dev/null || true
      local src=0 k
      for k in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" || src=$?
      $PY - "$rc" "$src" "$RES/ke2e.json" "$RES/segd-e2e-$i.log" "$kev" >>"$RUNS" <<'EOF'
import json, sys
rc, src, f, log, want = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
r = {"case": "kafka_e2e", "ok": False, "events_in_topic": want}
try:
    r.update(json.load(open(f)))
except Exception as e:
    r["error"] = f"poller exit {rc}: {e}"
r["segd_exit"] = src
if r.get("ok") and src != 0:
    r["ok"] = False
    r["error"] = f"segd exited {src} on SIGTERM"
if not r.get("ok") and "error" in r:
    lines = [l for l in open(log).read().splitlines() if " error " in l or " warn " in l]
    r["error"] += ("; log: " + lines[-1][-200:]) if lines else ""
r["case"] = "kafka_e2e"
print(json.dumps(r))
EOF
      progress kafka_e2e

      # Produce floor: librdkafka alone publishing transition lines.
      rc=0
      mc_cmd "create_topic bench-produce-$i $KP" >/dev/null ||
        { kafka_error "cannot create a produce-floor topic"; return 0; }
      "$SEG_CONSUME_RATE" --bootstrap "$boot" --topic "bench-produce-$i" --produce "$kpn" \
        --input "$RES/ktrans.ndjson" --compression lz4 --producer-prop acks=all \
        --producer-prop enable.idempotence=true --producer-prop linger.ms=5 \
        --producer-prop queue.buffering.max.messages=100000 --repeat 1 \
        >"$RES/kprod.json" 2>"$RES/kprod.err" || rc=$?
      rate_result kafka_produce "$rc" "$kpn" kprod
      progress kafka_produce
    done

    # Latency at a fixed rate.
    local lat=$RES/lat gp tp
    mkdir -p "$lat"
    for i in $(seq "$LREPEAT"); do
      mc_cmd "create_topic bench-lat-$i-changelog $LPARTS" >/dev/null ||
        { kafka_error "cannot create a changelog topic"; return 0; }
      local in_topic=lat-events out_topic=lat-transitions
      if [ "$i" -gt 1 ]; then      # fresh topics: the join reads them whole
        in_topic=lat-events-$i out_topic=lat-transitions-$i
        mc_cmd "create_topic $in_topic $LPARTS" >/dev/null && mc_cmd "create_topic $out_topic $LPARTS" >/dev/null ||
          { kafka_error "cannot create latency topics"; return 0; }
      fi
      port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      mkdir -p "$RES/state-lat-$i"
      "$SEGD" run "${CONFIG_ARGS[@]}" --set kafka.brokers="$boot" --set kafka.group_id="bench-lat-$i" \
        --set kafka.input_topics="$in_topic" --set kafka.output_topic="$out_topic" \
        --set kafka.changelog_topic="bench-lat-$i-changelog" --set state.dir="$RES/state-lat-$i" \
        --set metrics.listen=127.0.0.1:"$port" "${LEXTRA[@]}" 2>"$RES/segd-lat-$i.log" &
      pid=$!
      KAFKA_PIDS+=("$pid")
      "$SEG_BENCH_TAIL" --bootstrap "$boot" --topic "$out_topic" --out "$lat/tail-$i.tsv" \
        --max-seconds $((LSECS + 90)) >"$lat/tail-$i.json" 2>"$lat/tail-$i.err" &
      tp=$!
      KAFKA_PIDS+=("$tp")
      # Produce only once segd owns its partitions and the tail reads.
      local ready=0
      for k in $(seq 300); do
        if grep -q "reading" "$lat/tail-$i.err" 2>/dev/null &&
           $PY - "$port" <<'EOF' 2>/dev/null
import sys, urllib.request
t = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=1).read().decode()
sys.exit(0 if any(l.startswith("segd_assigned_partitions ") and float(l.split()[1]) > 0
                  for l in t.splitlines()) else 1)
EOF
        then ready=1; break; fi
        sleep 0.1
      done
      if [ "$ready" = 0 ]; then
        kill -KILL "$pid" "$tp" 2>/dev/null || true
        kafka_error "segd or seg_bench_tail not ready in 30 s (latency run $i)"
        return 0
      fi
      # Generating a million customers takes about a second before the
      # first record; the stream is stopped LSECS seconds after that.
      "$SEG_GEN" --customers 1000000 --seed "$((SEED + i))" --realtime --rate "$LRATE" \
        --brokers "$boot" --topic "$in_topic" --summary-json "$lat/gen-$i.json" 2>"$lat/gen-$i.err" &
      gp=$!
      KAFKA_PIDS+=("$gp")
      local load cpu0 cpu1 mcpu0 mcpu1
      load=$(cut -d' ' -f1 /proc/loadavg)
      cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
      mcpu0=$(awk '{print $14 + $15}' "/proc/$MC_PID/stat" 2>/dev/null || echo 0)
      sleep "$((LSECS + 1))"
      kill -TERM "$gp" 2>/dev/null || true
      rc=0
      wait "$gp" || rc=$?
      local produced=0
      [ "$rc" = 0 ] && produced=$(sumval "$lat/gen-$i.json" written)
      # Wait (at most 60 s) for segd to fold every record, then 2 s for the
      # tail to read the last transitions.
      $PY - "$port" "$produced" <<'EOF' || true
import sys, time, urllib.request
port, want = sys.argv[1], int(sys.argv[2])
t0 = time.time()
while time.time() - t0 < 60:
    try:
        t = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        n = sum(float(l.rsplit(" ", 1)[1]) for l in t.splitlines()
                if l.startswith("segd_events_total") or l.startswith("segd_events_rejected_total"))
        if n >= want:
            break
    except Exception:
        pass
    time.sleep(0.1)
EOF
      cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
      mcpu1=$(awk '{print $14 + $15}' "/proc/$MC_PID/stat" 2>/dev/null || echo 0)
      sleep 2
      kill -TERM "$tp" 2>/dev/null || true
      wait "$tp" || true
      kill -TERM "$pid" 2>/dev/null || true
      for k in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      local src=0
      wait "$pid" || src=$?
      local drc=0
      timeout 120 kcat -C -b "$boot" -t "$in_topic" -o beginning -e -q -f '%T\t%k\t%s\n' \
        >"$lat/in-$i.tsv" 2>"$lat/kcat-$i.err" || drc=$?
      $PY - "$rc" "$src" "$drc" "$lat" "$i" "$LRATE" "$LSECS" "$load" \
        "$(( (cpu1 - cpu0) ))" "$(getconf CLK_TCK)" "$(( (mcpu1 - mcpu0) ))" >>"$RUNS" <<'EOF'
import calendar, json, sys
rc, src, drc, d, i, rate, secs, load, ticks, hz, mticks = sys.argv[1:12]
r = {"case": "kafka_latency", "ok": False, "target_rate": float(rate),
     "loadavg_at_start": float(load), "segd_cpu_seconds": int(ticks) / int(hz),
     "cluster_cpu_seconds": int(mticks) / int(hz)}
def sec(s):  # "YYYY-MM-DDTHH:MM:SSZ" -> Unix seconds
    return calendar.timegm((int(s[0:4]), int(s[5:7]), int(s[8:10]),
                            int(s[11:13]), int(s[14:16]), int(s[17:19])))
def pct(v, q):
    return v[min(len(v) - 1, int(q * len(v)))]
try:
    if int(rc) != 0:
        raise RuntimeError(f"seg_gen exit {rc}: " + open(f"{d}/gen-{i}.err").read()[-300:])
    if int(drc) != 0:
        raise RuntimeError(f"kcat exit {drc}: " + open(f"{d}/kcat-{i}.err").read()[-300:])
    g = json.load(open(f"{d}/gen-{i}.json"))
    kafka = g["kafka"]
    r["produced"] = kafka["produced"]
    # seg_gen's own rate line: records over the whole stream incl. the final flush
    for line in open(f"{d}/gen-{i}.err"):
        if line.startswith("seg_gen: produced "):
            r["produce_seconds"] = float(line.split(" in ")[1].split("s ")[0])
    if r.get("produce_seconds"):
        r["achieved_rate"] = r["produced"] / r["produce_seconds"]
    if r["segd_cpu_seconds"] > 0:
        r["events_per_segd_cpu_second"] = r["produced"] / r["segd_cpu_seconds"]
    produced_at, dup = {}, set()
    for line in open(f"{d}/in-{i}.tsv", encoding="utf-8", errors="replace"):
        ts_ms, _key, val = line.rstrip("\n").split("\t", 2)
        e = json.loads(val)
        k = (e["customer_id"], sec(e["ts"]))
        if k in produced_at:
            dup.add(k)
        produced_at[k] = int(ts_ms)
    if not produced_at:
        raise RuntimeError("no input records read back")
    recv, made = [], []
    n_event = n_time = n_dup = n_none = 0
    for line in open(f"{d}/tail-{i}.tsv", encoding="utf-8"):
        recv_us, ts_ms, _tt, _p, _o, val = line.rstrip("\n").split("\t", 5)
        t = json.loads(val)
        if t["cause"] != "event":
            n_time += 1
            continue
        n_event += 1
        k = (t["customer_id"], sec(t["at"]))
        if k in dup:
            n_dup += 1
            continue
        p = produced_at.get(k)
        if p is None:
            n_none += 1
            continue
        recv.append(int(recv_us) / 1000.0 - p)
        made.append(int(ts_ms) - p)
    recv.sort(); made.sort()
    r.update(transitions_event=n_event, transitions_time=n_time, matched=len(recv),
             left_out_shared_key=n_dup, unmatched=n_none, segd_exit=int(src))
    if not recv:
        raise RuntimeError("no transition matched an input record")
    for q, name in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
        r[f"receive_{name}_ms"] = pct(recv, q)
        r[f"produced_{name}_ms"] = pct(made, q)
    r["receive_max_ms"] = recv[-1]
    if n_none:
        r["error"] = f"{n_none} event-caused transitions match no input record"
    elif int(src) != 0:
        r["error"] = f"segd exited {src} on SIGTERM"
    else:
        r["ok"] = True
except Exception as e:
    r["error"] = str(e)[:400]
print(json.dumps(r))
EOF
      $PY - "$RUNS" <<'EOF'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["case"] == "kafka_latency"][-1]
if r["ok"]:
    print(f"  kafka_latency run: {r['produced']} events at {r.get('achieved_rate', 0):,.0f}/s,"
          f" {r['matched']} transitions matched: produce -> received p50 {r['receive_p50_ms']:.1f} ms,"
          f" p99 {r['receive_p99_ms']:.1f} ms (produce -> segd produced p99 {r['produced_p99_ms']:.0f} ms);"
          f" CPU s: segd {r['segd_cpu_seconds']:.1f}, cluster {r['cluster_cpu_seconds']:.1f};"
          f" load {r['loadavg_at_start']}",
          flush=True)
else:
    print(f"  kafka_latency run: ERROR {r.get('error')}", flush=True)
EOF
      rm -f "$lat/in-$i.tsv" "$lat/tail-$i.tsv"
    done
    mc_stop >/dev/null 2>&1 || true
  }
  kafka_main
fi
# ==== case 6: snapshots, changelog restore, checkpoint pause (durability issue) ====
# Owned by the durability work (bench/seg_bench_snapshot.c, docs/benchmarks.md
# "Snapshots and restore"); other cases: keep out of this block.
#   - snapshot write and load at each size (seg_bench_snapshot snapshot) on
#     disk under BUILD/benchstate; a write includes fsync of file and dir;
#   - changelog append and restore through the loopback mock cluster
#     (tests/harness/seg_mock_cluster), with segd's producer and restore
#     consumer settings;
#   - `segd run`'s longest checkpoint pause with N customers in memory: the
#     state is written by `seg_bench_snapshot make-state` and loaded by segd
#     at start, so no N customers' events need to pass through the mock
#     (which keeps ~5 MB per partition).
# Each run appends one JSON object (case snapshot_*, changelog_restore,
# ckpt_pause_*) to $RUNS; a failure is recorded, never fatal to the suite.
# BENCH_SNAPSHOT=1|0 runs or skips it (default: run when BENCH_CASES is
# unset, i.e. in a plain `make bench`). About 3 minutes at 1M + 10M.
SNAPDIR=$BUILD/benchstate
SNAP_BENCH=${SEG_BENCH_SNAPSHOT:-$BUILD/bench/seg_bench_snapshot}
MOCK=${SEG_MOCK_CLUSTER:-$BUILD/tests/harness/seg_mock_cluster}
[ -x "$MOCK" ] || MOCK=$BUILD/bench/seg_mock_cluster
if [ ! -x "$SNAP_BENCH" ]; then
  # bench/CMakeLists.txt does not build it: compile it against this build's
  # segcore with the SEG_BENCH flags.
  SNAP_BENCH=$RES/seg_bench_snapshot
  # shellcheck disable=SC2046  # pkg-config output is meant to split
  cc -O2 -march=x86-64-v2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
    -I"$REPO/src" -o "$SNAP_BENCH" "$REPO/bench/seg_bench_snapshot.c" "$BUILD/libsegcore.a" \
    $(pkg-config --libs yaml-0.1 libcjson msgpack rdkafka libmicrohttpd libsystemd zlib) \
    -lpthread -lm 2>"$RES/snapbench.cc.err" || SNAP_BENCH=
fi
snap_record() {  # snap_record CASE RC JSON_FILE ERR_FILE: one line for $RUNS
  $PY - "$@" >>"$RUNS" <<'PYEOF'
import json, sys
case, rc, out, err = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = {"case": case, "ok": False}
try:
    r.update(json.load(open(out)))
    r["ok"] = rc == 0
    if rc:
        r["error"] = f"exit {rc}: " + open(err).read().strip()[-300:]
except Exception as e:
    r["error"] = f"exit {rc}: {open(err).read().strip()[-300:] or e}"
print(json.dumps(r))
PYEOF
}
snap_fail() {  # snap_fail CASE MESSAGE
  $PY -c 'import json,sys; print(json.dumps({"case": sys.argv[1], "ok": False, "error": sys.argv[2]}))' \
    "$1" "$2" >>"$RUNS"
  echo "  $1: ERROR $2"
}
mock_start() {  # mock_start NAME TOPIC...: sets MOCK_PID, MOCK_BOOT (1 broker)
  local name=$1 t args=()
  shift
  for t in "$@"; do args+=(--topic "$t"); done
  rm -f "$RES/$name.fifo"; mkfifo "$RES/$name.fifo"
  "$MOCK" --brokers 1 --max-lifetime 900 "${args[@]}" <"$RES/$name.fifo" \
    >"$RES/$name.out" 2>"$RES/$name.err" &
  MOCK_PID=$!
  exec 7>"$RES/$name.fifo"   # holds its stdin open; closing it stops the cluster
  MOCK_BOOT=
  for _ in $(seq 100); do
    MOCK_BOOT=$(sed -n 's/^BOOTSTRAP //p' "$RES/$name.out" 2>/dev/null)
    [ -n "$MOCK_BOOT" ] && return 0
    sleep 0.1
  done
  return 1
}
mock_stop() {
  exec 7>&- 2>/dev/null || true
  [ -n "${MOCK_PID:-}" ] && { kill "$MOCK_PID" 2>/dev/null || true; wait "$MOCK_PID" 2>/dev/null || true; }
  MOCK_PID=
}
ckpt_pause() {  # ckpt_pause CASE N: segd run with N customers loaded from a snapshot
  local case=$1 n=$2 sd="$SNAPDIR/pause" port pid rc=0
  rm -rf "$sd"; mkdir -p "$sd"
  if ! "$SNAP_BENCH" make-state --customers "$n" --dir "$sd" --topic events \
       >"$RES/mkstate.json" 2>"$RES/mkstate.err"; then
    snap_fail "$case" "make-state: $(tail -c 300 "$RES/mkstate.err")"; return
  fi
  if ! mock_start pause events:1 transitions:4 events-dlq:1 churn-alerts:1 segd-changelog:1; then
    mock_stop; snap_fail "$case" "mock cluster did not start"; return
  fi
  port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$SEGD" run --set "kafka.brokers=$MOCK_BOOT" --set "state.dir=$sd" \
    --set checkpoint.interval=3s --set "metrics.listen=127.0.0.1:$port" \
    >"$RES/pause.log" 2>&1 &
  pid=$!
  # While segd runs, a trickle of events (100/s) for random loaded
  # customers, stamped 2024-01-01: earlier than every customer's clock, so
  # they fold as late events and fire no deadline (the watermark stays
  # behind all of them), but each changes its customer, so every interval
  # checkpoint has work: a changelog of the changed customers and a
  # rewrite of the whole snapshot (segd skips a partition with no change).
  # After three interval checkpoints, the gauge segd keeps for the
  # longest pause is read.
  $PY - "$case" "$n" "$port" "$RES/pause.log" "$RES/mkstate.json" "$RES/pause.summary" \
    "$MOCK_BOOT" "$REPO/tests/harness" >"$RES/pause.json" <<'PYEOF' || rc=$?
import json, random, re, sys, time, urllib.request
case, n, port, logf, mk, summ, boot, harness = sys.argv[1:9]
n = int(n)
sys.path.insert(0, harness)
import kafkatool
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=boot.split(","), api_version=kafkatool.api_version(),
                  linger_ms=5)
rng = random.Random(1)
deadline = time.monotonic() + 300
pat = re.compile(r"checkpoint: interval: 1 partition\(s\), (\d+) customers, ([\d.]+) MB snapshot, "
                 r"(\d+) changelog records, paused (\d+) ms")
while True:
    log = open(logf, errors="replace").read()
    hits = pat.findall(log)
    if len(hits) >= 3 or time.monotonic() > deadline:
        break
    if "loaded snapshot" in log:
        for _ in range(50):
            cid = "c%010d" % rng.randrange(n)
            p.send("events", key=cid.encode(), value=json.dumps(
                {"type": "purchase", "customer_id": cid, "ts": "2024-01-01T00:00:00Z",
                 "amount": 10}).encode())
        p.flush(10)
    time.sleep(0.5)
p.close(5)
if len(hits) < 3:
    sys.exit(f"fewer than 3 checkpoints within 300 s; log tail: {log[-300:]}")
load = re.search(r"loaded snapshot: (\d+) customers, ([\d.]+) MB in ([\d.]+) s", log)
m = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
mx = re.search(r"^segd_checkpoint_pause_max_milliseconds (\S+)$", m, re.M)
pauses = [int(h[3]) for h in hits]
print(json.dumps({"customers": n, "checkpoints": len(hits), "pause_ms_runs": pauses,
                  "changelog_records": [int(h[2]) for h in hits],
                  "pause_max_ms_metric": float(mx.group(1)) if mx else None,
                  "snapshot_mb": float(hits[-1][1]), "customers_in_checkpoint": int(hits[-1][0]),
                  "restore_load_seconds": float(load.group(3)) if load else None,
                  "make_state": json.load(open(mk))}))
with open(summ, "w") as f:
    f.write(f"{n} customers (snapshot loaded in {load.group(3) if load else '?'} s): checkpoint "
            f"pauses {pauses} ms with {[int(h[2]) for h in hits]} changelog records, "
            f"segd_checkpoint_pause_max_milliseconds {mx.group(1) if mx else '?'}")
PYEOF
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  mock_stop
  rm -rf "$sd"
  snap_record "$case" "$rc" "$RES/pause.json" "$RES/pause.log"
  if [ "$rc" = 0 ]; then echo "  $case: $(cat "$RES/pause.summary")"; else echo "  $case: ERROR (see $RES/pause.log)"; fi
}

if [ "${BENCH_SNAPSHOT:-$([ -z "${BENCH_CASES:-}" ] && echo 1 || echo 0)}" != 1 ]; then
  echo "== snapshots: skipped (BENCH_SNAPSHOT=1 runs them; by default they run only"
  echo "   when BENCH_CASES is unset)"
elif [ -z "$SNAP_BENCH" ]; then
  echo "== snapshots, changelog restore, checkpoint pause"
  for n in "${SIZES[@]}"; do snap_fail "snapshot_$(label "$n")" "seg_bench_snapshot did not compile: $(head -c 300 "$RES/snapbench.cc.err")"; done
else
  echo "== snapshots, changelog restore, checkpoint pause"
  mkdir -p "$SNAPDIR"
  for n in "${SIZES[@]}"; do
    rep=$REPEAT; [ "$n" = "${LARGE:-}" ] && rep=$REPEAT_10M
    rc=0
    "$SNAP_BENCH" snapshot --customers "$n" --repeat "$rep" --dir "$SNAPDIR" \
      >"$RES/snap.json" 2>"$RES/snap.err" || rc=$?
    snap_record "snapshot_$(label "$n")" "$rc" "$RES/snap.json" "$RES/snap.err"
    grep '^  run' "$RES/snap.err" | sed "s/^  /  snapshot $(label "$n") /" || true
  done
  # Changelog: 8 partitions x 50k customers, ~3.5 MB a partition (the mock
  # keeps ~5 MB); the bench checks every customer came back.
  if [ -x "$MOCK" ] && mock_start changelog bench-changelog:8; then
    rc=0
    "$SNAP_BENCH" changelog --bootstrap "$MOCK_BOOT" --topic bench-changelog --partitions 8 \
      --customers 50000 >"$RES/cl.json" 2>"$RES/cl.err" || rc=$?
    mock_stop
    snap_record changelog_restore "$rc" "$RES/cl.json" "$RES/cl.err"
    tail -n 2 "$RES/cl.err" | sed 's/^  /  changelog /' || true
  else
    mock_stop
    snap_fail changelog_restore "no mock cluster ($MOCK)"
  fi
  if [ "$HAVE_SEGD" = 1 ] && [ -x "$MOCK" ]; then
    for n in "${SIZES[@]}"; do ckpt_pause "ckpt_pause_$(label "$n")" "$n"; done
  else
    snap_fail "ckpt_pause_$B" "needs segd and the mock cluster"
  fi
fi
# ==== end of case 6 ====

# ---- report ----------------------------------------------------------------
STATUS=0
$PY - "$RUNS" "$DSETS" "$OUT_JSON" "$BASE" "${LARGE:-0}" "$REPEAT" "$REPEAT_10M" \
     "$BUILD" "${BENCH_STRICT:-0}" "$CASES" "${BENCH_KAFKA_CUSTOMERS:-500000}" \
     "${BENCH_KAFKA_PARTITIONS:-40}" "${BENCH_LATENCY_RATE:-50000}" \
     "${BENCH_LATENCY_SECONDS:-10}" <<'EOF' || STATUS=$?
import json, os, platform, statistics, subprocess, sys, time
runs_f, dsets_f, out_f, base, large, rep, rep_l, build, strict = sys.argv[1:10]
groups = sys.argv[10].split()
k_customers, k_parts, l_rate, l_secs = map(int, sys.argv[11:15])
base, large, strict = int(base), int(large), strict == "1"
runs = [json.loads(l) for l in open(runs_f)]
dsets = [json.loads(l) for l in open(dsets_f)]

def label(n):
    return f"{n//10**6}M" if n % 10**6 == 0 else f"{n//1000}k" if n % 1000 == 0 else str(n)
B, L = label(base), label(large) if large else None

def sel(case):
    return [r for r in runs if r["case"] == case]
def stats(vals):
    return ({"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
            if vals else {"median": None, "min": None, "max": None})
def metric(case, key):
    rs = sel(case)
    bad = [r.get("error", "failed") for r in rs if not r["ok"]]
    return [r[key] for r in rs if r["ok"] and key in r], bad

cases = []
GROUP = "replay"   # cases of groups not run this time are dropped below
def add(cid, desc, unit, vals, errors, ceiling=None, ceiling_desc=None,
        target=None, check=None, note=None, status=None):
    c = {"id": cid, "_group": GROUP, "case": desc, "unit": unit, "runs": vals, **stats(vals),
         "ceiling": ceiling, "ceiling_desc": ceiling_desc, "ratio": None,
         "target": target, "status": status, "note": note}
    if errors:
        c["errors"] = errors
    if status is None:
        if not vals:
            c["status"] = ("ERROR" if errors and not all("not built" in x for x in errors)
                           else "not measured")
        else:
            if ceiling:
                c["ratio"] = c["median"] / ceiling
            c["status"] = ("ERROR" if errors else
                           ("PASS" if check(c) else "FAIL") if check else "info")
    cases.append(c)
    return c

# 1. replay JSON at the base size vs cJSON parse-only
ceil_j, ceil_j_err = metric(f"ceiling_json_{B}", "events_per_second")
add(f"ceiling_json_{B}", f"cJSON parse-only, {B}", "events/s", ceil_j, ceil_j_err,
    note="ceiling for replay JSON")
cj = statistics.median(ceil_j) if ceil_j else None
v, e = metric(f"replay_json_{B}", "events_per_second")
rj = add(f"replay_json_{B}", f"replay JSON, {B} customers", "events/s", v, e,
         ceiling=cj, ceiling_desc="cJSON parse-only, same file, same run",
         target=">= 1.5M/s and >= 0.70x parse-only",
         check=lambda c: c["median"] >= 1.5e6 and c["ratio"] is not None and c["ratio"] >= 0.70)
# ... and at the large size vs the base rate
if L:
    v, e = metric(f"replay_json_{L}", "events_per_second")
    add(f"replay_json_{L}", f"replay JSON, {L} customers", "events/s", v, e,
        ceiling=rj["median"], ceiling_desc=f"replay JSON rate at {B}",
        target=f">= 0.50x the {B} rate",
        check=lambda c: c["ratio"] is not None and c["ratio"] >= 0.50)

# 2. replay MessagePack vs msgpack-c unpack-only
ceil_m, ceil_m_err = metric(f"ceiling_msgpack_{B}", "events_per_second")
add(f"ceiling_msgpack_{B}", f"msgpack-c unpack-only, {B}", "events/s", ceil_m, ceil_m_err,
    note="ceiling for replay MessagePack")
cm = statistics.median(ceil_m) if ceil_m else None
v, e = metric(f"replay_msgpack_{B}", "events_per_second")
rm = add(f"replay_msgpack_{B}", f"replay MessagePack, {B} customers", "events/s", v, e,
         ceiling=cm, ceiling_desc="msgpack-c unpack-only, same file, same run",
         target=">= 4M/s and >= 0.60x unpack-only",
         check=lambda c: c["median"] >= 4e6 and c["ratio"] is not None and c["ratio"] >= 0.60)
if L:
    v, e = metric(f"replay_msgpack_{L}", "events_per_second")
    add(f"replay_msgpack_{L}", f"replay MessagePack, {L} customers", "events/s", v, e,
        ceiling=rm["median"], ceiling_desc=f"replay MessagePack rate at {B}",
        note="no target; shows the same scaling as JSON")

# 3. memory: max RSS per customer (JSON replays)
for n, lab in ((base, B), (large, L)):
    if not lab:
        continue
    v, e = metric(f"replay_json_{lab}", "max_rss_bytes")
    add(f"bytes_per_customer_{lab}", f"max RSS / customer, {lab}", "bytes",
        [x / n for x in v], e,
        target="<= 128 B" if n == large else None,
        check=(lambda c: c["median"] <= 128) if n == large else None,
        note=None if n == large else "fixed overheads weigh 10x more per customer than at the large size; target applies at the large size")

# 4. deadlines at the large size. The extra CPU of --until last+366d over
# the plain replay, divided by the extra deadlines it fired, is the cost of
# one deadline; times the deadlines due in the day after the last event it
# is the cost of that day. The direct difference of the +1 day runs is kept
# too, but a fraction of a second is inside the noise of a minute-long run.
if L:
    base_cpu, e0 = metric(f"replay_msgpack_{L}", "cpu_seconds")
    med = lambda v: statistics.median(v) if v else None
    base = {k: med(metric(f"replay_msgpack_{L}", k)[0]) for k in ("transitions", "deadlines_fired")}
    got = {}
    for tag in ("until1d", "until366d"):
        cpu, err = metric(f"{tag}_msgpack_{L}", "cpu_seconds")
        g = {"errors": e0 + err, "deltas": [], "deadlines": None, "transitions": None}
        if base_cpu and cpu:
            # Clamped at 0: a negative difference is noise, not a speed-up.
            g["deltas"] = [max(0.0, x - med(base_cpu)) for x in cpu]
            for k, out in (("deadlines_fired", "deadlines"), ("transitions", "transitions")):
                v = med(metric(f"{tag}_msgpack_{L}", k)[0])
                if v is not None and base[k] is not None:
                    g[out] = v - base[k]
        got[tag] = g
    far, day = got["until366d"], got["until1d"]
    per = (med(far["deltas"]) / far["deadlines"]
           if far["deltas"] and far["deadlines"] else None)
    more = lambda g: ", ".join(f"{g[k]:.0f} more {k}" for k in ("deadlines", "transitions")
                               if g[k] is not None)
    note = f"--until last event + 366 days vs none: {more(far)}"
    if per:
        note += f"; {per * 1e9:.0f} ns CPU per deadline"
    c = add(f"deadlines_all_{L}", f"deadline firing, all pending (+366 d), {L}", "s CPU",
            far["deltas"], far["errors"], note=note)
    c.update(deadlines=far["deadlines"], transitions=far["transitions"],
             ns_per_deadline=per * 1e9 if per else None)
    if per and day["deadlines"] is not None:
        est = [day["deadlines"] * per]
        note = (f"{day['deadlines']:.0f} deadlines due in the day after the last event"
                f" x {per * 1e9:.0f} ns; direct CPU difference of the +1 day runs:"
                f" {med(day['deltas']):.2f} s (within run-to-run noise)")
    else:
        est = day["deltas"]
        note = "direct CPU difference of the +1 day runs (no +366 day run to estimate from)"
    c = add(f"deadlines_1d_{L}", f"deadline firing, 1 day, {L} customers", "s CPU", est,
            day["errors"] + (far["errors"] if per else []),
            target="< 1 s CPU", check=lambda c: c["median"] < 1.0, note=note)
    c.update(deadlines=day["deadlines"], transitions=day["transitions"],
             direct_deltas=day["deltas"])
else:
    add("deadlines", "deadline firing", "s CPU", [], [], status="pending",
        note="needs the large data set")

# 5. Kafka end to end (bench/run.sh, case 5)
GROUP = "kafka"
KL = label(k_customers)
kc, kc_err = metric("kafka_ceiling", "events_per_second")
add("kafka_ceiling", f"librdkafka consume-only, Kafka, {KL}", "events/s", kc, kc_err,
    note=f"ceiling for segd run: seg_consume_rate on the same topic ({k_parts} partitions,"
         " lz4, mock cluster of 3 brokers), one consumer, unlimited prefetch")
kce = statistics.median(kc) if kc else None
v, e = metric("kafka_e2e", "events_per_second")
e2e = [r for r in sel("kafka_e2e") if r["ok"]]
med = lambda xs: statistics.median(xs) if xs else None
cpu_rate = med([r["events_per_cpu_second"] for r in e2e if "events_per_cpu_second" in r])
per_ev = med([r["messages_delivered"] / r["events"] for r in e2e if r.get("events")])
drain = med([r["drain_seconds"] for r in e2e if "drain_seconds" in r])
note = "segd_events_total + segd_events_rejected_total from /metrics, first count to last"
if cpu_rate:
    note += f"; {cpu_rate:,.0f} events per segd CPU-second (all its threads)"
if per_ev:
    note += f"; {per_ev:.2f} messages produced per event (transitions, churn-alerts)"
if drain is not None:
    note += f"; last delivery {drain:.2f} s after the last event"
kp, kp_err = metric("kafka_produce", "events_per_second")
if kp and per_ev and kce:
    bound = statistics.median(kp) / per_ev
    note += (f"; producing its {per_ev:.2f} messages per event alone caps it at"
             f" {bound:,.0f} events/s = {bound / kce:.2f}x consume-only (produce floor below)")
add("kafka_e2e", f"segd run end to end, Kafka, {KL} customers", "events/s", v, e,
    ceiling=kce, ceiling_desc="librdkafka consume-only, same topic, same run",
    target=">= 0.70x consume-only",
    check=lambda c: c["ratio"] is not None and c["ratio"] >= 0.70, note=note)
add("kafka_produce", "librdkafka produce-only, transition lines", "msgs/s", kp, kp_err,
    note="seg_consume_rate --produce: transition lines from segd replay, keyed by customer,"
         " acks=all, idempotent, lz4, linger.ms=5, same cluster, until every delivery"
         " report; the floor under segd's end-to-end cost")
lat = [r for r in sel("kafka_latency") if r["ok"]]
_, lat_err = metric("kafka_latency", "receive_p99_ms")
v99 = [r["receive_p99_ms"] for r in lat]
if lat:
    note = (f"{med([r.get('achieved_rate', 0) for r in lat]):,.0f} events/s achieved;"
            f" {sum(r['matched'] for r in lat):,} event-caused transitions matched to their input"
            f" ({sum(r['left_out_shared_key'] for r in lat):,} left out: customer and second shared"
            f" by several inputs); produce -> segd produced the transition (its CreateTime):"
            f" p50 {med([r['produced_p50_ms'] for r in lat]):.0f} ms,"
            f" p99 {med([r['produced_p99_ms'] for r in lat]):.0f} ms;"
            f" segd used {med([r['segd_cpu_seconds'] / r['produce_seconds'] for r in lat if r.get('produce_seconds')]) or 0:.2f}"
            f" CPU-seconds per second, the mock cluster"
            f" {med([r['cluster_cpu_seconds'] / r['produce_seconds'] for r in lat if r.get('produce_seconds')]) or 0:.2f};"
            f" load average at start"
            f" {', '.join(str(r['loadavg_at_start']) for r in lat)}")
else:
    note = None
add("kafka_latency_p99", f"latency produce -> transition received, p99, {l_rate/1000:g}k events/s",
    "ms", v99, lat_err, target="<= 50 ms", check=lambda c: c["median"] <= 50, note=note)
add("kafka_latency_p50", f"latency produce -> transition received, p50, {l_rate/1000:g}k events/s",
    "ms", [r["receive_p50_ms"] for r in lat], lat_err)

# ==== case 6: snapshots, changelog restore, checkpoint pause (durability issue) ====
# Whether it ran is decided in the shell (BENCH_SNAPSHOT); when it did not,
# nothing is added, so the merge below keeps the cases of an earlier run.
GROUP = "always"
snap_runs = [r for r in runs if r["case"].startswith(("snapshot_", "changelog_restore",
                                                      "ckpt_pause_"))]
def snap_add(cid, desc, run_case, key, unit, scale, target=None, check=None, note=None):
    rs = sel(run_case)
    bad = [r.get("error", "failed") for r in rs if not r["ok"]]
    vals = [x / scale for r in rs if r["ok"] and key in r
            for x in (r[key]["runs"] if isinstance(r[key], dict) else
                      r[key] if isinstance(r[key], list) else [r[key]])]
    return add(cid, desc, unit, vals, bad, target=target, check=check, note=note)
if not snap_runs:
    add("snapshots", "snapshots", "s", [], [], status="pending (BENCH_SNAPSHOT=0)")
for lab in (B, L) if snap_runs else ():
    if not lab:
        continue
    rc = f"snapshot_{lab}"
    r0 = next((r for r in sel(rc) if r["ok"]), {})
    mb = lambda k: r0[k]["median"]
    snap_add(f"snapshot_write_{lab}", f"snapshot write, {lab} customers", rc,
             "write_customers_per_second", "M customers/s", 1e6,
             note=(f"{r0['snapshot_bytes'] / 1e6:.0f} MB ({r0['bytes_per_customer']:.0f} B/customer), "
                   f"median {mb('write_mb_per_second'):.0f} MB/s, {mb('write_seconds'):.2f} s "
                   f"incl. fsync of file and directory" if r0 else None))
    snap_add(f"snapshot_load_{lab}", f"snapshot load, {lab} customers", rc,
             "load_customers_per_second", "M customers/s", 1e6,
             target=">= 2M customers/s", check=lambda c: c["median"] >= 2.0,
             note=(f"median {mb('load_mb_per_second'):.0f} MB/s, {mb('load_seconds'):.2f} s: "
                   f"read, CRC, rebuild of every customer and its deadline (page cache warm)"
                   if r0 else None))
if snap_runs:
    r0 = next((r for r in sel("changelog_restore") if r["ok"]), {})
    snap_add("changelog_restore", "changelog restore, loopback cluster", "changelog_restore",
             "restore_records_per_second", "k records/s", 1e3,
             note=(f"{r0['records']} records in {r0['partitions']} partitions of "
                   f"{r0['customers_per_partition']} customers, one restore per partition "
                   f"(longest {r0['restore_max_partition_seconds']:.2f} s); append + delivery "
                   f"{r0['append_records_per_second'] / 1e3:.0f}k records/s" if r0 else None))
for lab in (B, L) if snap_runs else ():
    if not lab:
        continue
    r0 = next((r for r in sel(f"ckpt_pause_{lab}") if r["ok"]), {})
    snap_add(f"ckpt_pause_{lab}", f"checkpoint pause, {lab} customers", f"ckpt_pause_{lab}",
             "pause_ms_runs", "ms", 1,
             note=(f"segd run, 1 partition of {r0['customers_in_checkpoint']} customers (snapshot "
                   f"loaded at start in {r0['restore_load_seconds']} s), 100 events/s, at most "
                   f"{max(r0['changelog_records'])} changelog records a checkpoint; "
                   f"segd_checkpoint_pause_max_milliseconds {r0['pause_max_ms_metric']:.0f}"
                   if r0 else None))
# ==== end of case 6 ====
cases = [c for c in cases if c["_group"] in groups or c["_group"] == "always"]
for c in cases:
    del c["_group"]

# ---- print ----
def fmt(c, x):
    if x is None:
        return "-"
    if c["unit"] in ("events/s", "msgs/s"):
        return f"{x/1e6:.3f}M/s"
    if c["unit"] == "bytes":
        return f"{x:.1f} B"
    if c["unit"] == "ms":
        return f"{x:.1f} ms"
    if c["unit"].startswith("s"):
        return f"{x:.3f} s"
    return f"{x:g}"
rows = [("case", "median", "min", "max", "ceiling", "ratio", "target", "result")]
for c in cases:
    rows.append((c["case"], fmt(c, c["median"]), fmt(c, c["min"]), fmt(c, c["max"]),
                 fmt({"unit": c["unit"]}, c["ceiling"]),
                 f"{c['ratio']:.2f}x" if c["ratio"] is not None else "-",
                 c["target"] or "-", c["status"]))
w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
print()
for i, r in enumerate(rows):
    print("  ".join(s.ljust(w[j]) for j, s in enumerate(r)).rstrip())
    if i == 0:
        print("  ".join("-" * x for x in w))
for c in cases:
    if c.get("note") and c["status"] not in ("pending",):
        print(f"  * {c['case']}: {c['note']}")
    for err in c.get("errors", [])[:2]:
        print(f"  ! {c['case']}: {err}")
print()
for d in dsets:
    print(f"  data: {d['customers']} customers, {d['events']} events, {d['bytes']} bytes "
          f"{d['format']}, generated in {d['seconds']:.1f}s: {os.path.basename(d['path'])}")

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
# Merge with the existing file: a case measured now replaces the one with
# the same id; cases of groups not run this time stay as they were; a
# "pending" placeholder never replaces a measured case.
try:
    old = json.load(open(out_f))
except Exception:
    old = {}
new = {c["id"]: c for c in cases}
merged, seen = [], set()
for c in old.get("cases", []):
    n = new.get(c["id"])
    if n and not (str(n["status"]).startswith("pending")
                  and not str(c["status"]).startswith("pending")):
        c = n
    merged.append(c)
    seen.add(c["id"])
merged += [c for c in cases if c["id"] not in seen]
ds_new = {d["path"] for d in dsets}
dsets_all = [d for d in old.get("datasets", []) if d.get("path") not in ds_new] + dsets
runs_by = dict(old.get("runs_by_group", {}))
for g in groups:
    runs_by[g] = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
if "kafka" in groups:
    runs_by["kafka"].update(customers=k_customers, partitions=k_parts, latency_rate=l_rate,
                            latency_seconds=l_secs,
                            librdkafka=sh("pkg-config --modversion rdkafka"))
if "replay" in groups:
    runs_by["replay"].update(repeat=int(rep), repeat_large=int(rep_l))
out = {
    "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": {"cpu": cpu, "nproc": os.cpu_count(), "mem_bytes": mem,
                "kernel": platform.release(), "cc": sh("cc --version | head -1"),
                "cjson": sh("pkg-config --modversion libcjson"),
                "msgpack_c": sh("pkg-config --modversion msgpack"),
                "loadavg": open("/proc/loadavg").read().split()[:3]},
    "build_dir": build,
    "repeat": int(rep) if "replay" in groups else old.get("repeat", int(rep)),
    "repeat_large": int(rep_l) if "replay" in groups else old.get("repeat_large", int(rep_l)),
    "runs_by_group": runs_by,
    "datasets": dsets_all, "cases": merged,
}
with open(out_f + ".tmp", "w") as f:
    json.dump(out, f, indent=1)
os.replace(out_f + ".tmp", out_f)
print(f"  results: {out_f}")
if any(c["status"] == "ERROR" for c in cases):
    sys.exit(1)
if strict and any(c["status"] == "FAIL" for c in cases):
    sys.exit(1)
EOF
exit $STATUS
