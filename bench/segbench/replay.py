"""replay: `segd replay` throughput, NDJSON and MessagePack, at both sizes.

What: events/s of `segd replay --input FILE --format F` on the generated
data sets (data.py), output to /dev/null, the file in the page cache.

Why that way: the rate alone says little on a shared 2-core machine, so at
the base size every replay run alternates with a run of seg_bench_ceiling
on the same file (simdjson parse-only as segd parses JSON, msgpack-c
unpack-only: the libraries alone, no segd), and the row reports replay /
ceiling. Load that drifts during the case hits both. Replay decodes on
one core and folds on the other, so its rate may exceed a one-core
parse-only ceiling; the targets are absolute rates (issue 13), and the
ratio shows how far replay is from the parse alone. At the large size the ceiling is the base-size
replay rate of the same run: the ratio is how well state and the index
scale from 1M to 10M customers.

The large MessagePack replays are run by deadlines.py, alternating with
its --until runs (they are its baseline); this module reports them.
Memory (max RSS of the JSON runs) is reported by memory.py.
"""

from . import common

GROUP = "replay"


def run(b):
    B = common.label(b.base)
    for fmt, title in (("json", "JSON (replay vs simdjson parse-only)"),
                       ("msgpack", "MessagePack (replay vs msgpack-c unpack-only)")):
        d = b.files[b.base, fmt]
        print(f"== {B} customers: {title}", flush=True)
        common.warm(d.path)
        for _ in range(b.repeat):
            common.ceiling(b, f"ceiling_{fmt}_{B}", fmt, d.path)
            common.replay(b, f"replay_{fmt}_{B}", fmt, d.path, b.base, d.events)
    if not b.large:
        return
    L = common.label(b.large)
    j, _ = b.metric(f"replay_json_{B}", "events_per_second")
    m, _ = b.metric(f"replay_msgpack_{B}", "events_per_second")
    if j and m:
        # json x REPEAT_10M, msgpack x REPEAT_10M x 2 (plain and +1 day), +366 days once
        ev = b.files[b.large, "json"].events
        s = ev / common.median(j) * b.repeat_large + ev / common.median(m) * (2 * b.repeat_large + 1)
        print(f"note: at the {B} rates the large cases take about {s / 60:.1f} minutes", flush=True)
    d = b.files[b.large, "json"]
    print(f"== {L} customers: JSON", flush=True)
    common.warm(d.path)
    for _ in range(b.repeat_large):
        common.replay(b, f"replay_json_{L}", "json", d.path, b.large, d.events)


def _pace(b, case):
    """A note on the threads of `case`'s runs: medians of each thread's CPU
    seconds and of events per CPU-second of what sets the pace (the
    busiest thread, or half of all three; the rate two idle cores would
    give, and it moves less with the machine's load)."""
    f, _ = b.metric(case, "fold_cpu_seconds")
    d, _ = b.metric(case, "decode_cpu_seconds")
    w, _ = b.metric(case, "write_cpu_seconds")
    p, _ = b.metric(case, "events_per_busiest_thread_cpu_second")
    if not (f and d and p):
        return None
    wt = f", write {common.median(w):.2f} s" if w else ""
    return (f"threads: fold {common.median(f):.2f} s CPU, decode {common.median(d):.2f} s{wt}; "
            f"{common.median(p) / 1e6:.2f}M events per CPU-second of the pace-setter")


def report(b):
    B = common.label(b.base)
    L = common.label(b.large) if b.large else None

    # JSON at the base size vs simdjson parse-only, and at the large size vs the base rate
    ceil, ceil_err = b.metric(f"ceiling_json_{B}", "events_per_second")
    b.add(f"ceiling_json_{B}", f"simdjson parse-only, {B}", "events/s", ceil, ceil_err,
          note="ceiling for replay JSON")
    v, e = b.metric(f"replay_json_{B}", "events_per_second")
    rj = b.add(f"replay_json_{B}", f"replay JSON, {B} customers", "events/s", v, e,
               ceiling=common.median(ceil),
               ceiling_desc="simdjson parse-only, same file, same run",
               target=">= 2.0M/s", check=lambda c: c["median"] >= 2.0e6,
               note=_pace(b, f"replay_json_{B}"))
    if L:
        v, e = b.metric(f"replay_json_{L}", "events_per_second")
        b.add(f"replay_json_{L}", f"replay JSON, {L} customers", "events/s", v, e,
              ceiling=rj["median"], ceiling_desc=f"replay JSON rate at {B}",
              target=f">= 0.70x the {B} rate",   # issue 13's table ("keep")
              check=lambda c: c["ratio"] is not None and c["ratio"] >= 0.70)

    # MessagePack vs msgpack-c unpack-only
    ceil, ceil_err = b.metric(f"ceiling_msgpack_{B}", "events_per_second")
    b.add(f"ceiling_msgpack_{B}", f"msgpack-c unpack-only, {B}", "events/s", ceil, ceil_err,
          note="ceiling for replay MessagePack")
    v, e = b.metric(f"replay_msgpack_{B}", "events_per_second")
    rm = b.add(f"replay_msgpack_{B}", f"replay MessagePack, {B} customers", "events/s", v, e,
               ceiling=common.median(ceil),
               ceiling_desc="msgpack-c unpack-only, same file, same run",
               target=">= 3.0M/s", check=lambda c: c["median"] >= 3.0e6,
               note=_pace(b, f"replay_msgpack_{B}"))
    if L:
        v, e = b.metric(f"replay_msgpack_{L}", "events_per_second")
        b.add(f"replay_msgpack_{L}", f"replay MessagePack, {L} customers", "events/s", v, e,
              ceiling=rm["median"], ceiling_desc=f"replay MessagePack rate at {B}",
              note="no target; shows the same scaling as JSON")
