"""deadlines: the CPU cost of firing deadlines, at the large size.

What: the same MessagePack replay run three ways, alternating:
  - plain (its rate is also the "replay MessagePack, 10M" row of replay.py);
  - --until <last event + 1 day>: fires one more day of deadlines; the CPU
    difference to the plain run is that day's cost;
  - --until <last event + 366 days> (once): fires every deadline still
    pending (all windows expire, everyone churns).

Why that way: one day's difference is a fraction of a second inside the
noise of a minute-long run, so it is also estimated from the long run: its
extra CPU over the plain run divided by the extra deadlines it fired is the
cost of one deadline, and times the deadlines due in the day after the last
event it is the cost of that day, with less noise. The direct +1 day
difference is kept next to it. MessagePack, because its lower parse cost
leaves less noise. The +366 day run is reported, not judged, and its
difference is large against the noise, so one run is enough.
"""

import datetime

from . import common

GROUP = "replay"


def _plus_days(ts, days):
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ") + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(b):
    if not b.large:
        return
    L = common.label(b.large)
    d = b.files[b.large, "msgpack"]
    last = d.summary["last_ts"]
    u1, u366 = _plus_days(last, 1), _plus_days(last, 366)
    print(f"== {L} customers: MessagePack, and deadlines (--until {u1}, --until {u366})", flush=True)
    common.warm(d.path)
    for i in range(b.repeat_large):
        common.replay(b, f"replay_msgpack_{L}", "msgpack", d.path, b.large, d.events)
        common.replay(b, f"until1d_msgpack_{L}", "msgpack", d.path, b.large, d.events,
                      ["--until", u1])
        if i == 0:
            common.replay(b, f"until366d_msgpack_{L}", "msgpack", d.path, b.large, d.events,
                          ["--until", u366])


def report(b):
    if not b.large:
        b.add("deadlines", "deadline firing", "s CPU", [], [], status="pending",
              note="needs the large data set")
        return
    L = common.label(b.large)
    med = common.median
    base_cpu, e0 = b.metric(f"replay_msgpack_{L}", "cpu_seconds")
    base = {k: med(b.metric(f"replay_msgpack_{L}", k)[0])
            for k in ("transitions", "deadlines_fired")}
    got = {}
    for tag in ("until1d", "until366d"):
        cpu, err = b.metric(f"{tag}_msgpack_{L}", "cpu_seconds")
        g = {"errors": e0 + err, "deltas": [], "deadlines": None, "transitions": None}
        if base_cpu and cpu:
            # Clamped at 0: a negative difference is noise, not a speed-up.
            g["deltas"] = [max(0.0, x - med(base_cpu)) for x in cpu]
            for k, out in (("deadlines_fired", "deadlines"), ("transitions", "transitions")):
                v = med(b.metric(f"{tag}_msgpack_{L}", k)[0])
                if v is not None and base[k] is not None:
                    g[out] = v - base[k]
        got[tag] = g
    far, day = got["until366d"], got["until1d"]
    per = (med(far["deltas"]) / far["deadlines"]
           if far["deltas"] and far["deadlines"] else None)

    def more(g):
        return ", ".join(f"{g[k]:.0f} more {k}" for k in ("deadlines", "transitions")
                         if g[k] is not None)

    note = f"--until last event + 366 days vs none: {more(far)}"
    if per:
        note += f"; {per * 1e9:.0f} ns CPU per deadline"
    c = b.add(f"deadlines_all_{L}", f"deadline firing, all pending (+366 d), {L}", "s CPU",
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
    c = b.add(f"deadlines_1d_{L}", f"deadline firing, 1 day, {L} customers", "s CPU", est,
              day["errors"] + (far["errors"] if per else []),
              target="< 1 s CPU", check=lambda c: c["median"] < 1.0, note=note)
    c.update(deadlines=day["deadlines"], transitions=day["transitions"],
             direct_deltas=day["deltas"])
