"""data: the generated data sets the replay cases read, made once and cached.

Datasets come from tools/seg_gen (BG/NBD customers, docs/benchmarks.md "The
data") and are cached under BUILD_DIR/benchdata, keyed by the generator's
arguments (customers, days, seed) and the hash of tools/seg_gen.c, so a
changed generator makes new files and an unchanged one is not rerun (10M
customers take about a minute, most of it writing ~9 GB). Files of older
generator versions with the same arguments are deleted when a new one is
made, so the cache does not grow with every change to seg_gen.c.

Each file has its seg_gen --summary-json next to it (FILE.sum.json: events,
last_ts, bytes, ...); the summaries of the files used are listed in the
results file's "datasets".
"""

import glob
import hashlib
import os
import sys

from . import common


class Dataset:
    """A generated file: path, fmt ("json" or "msgpack"), customers, and
    summary (seg_gen's --summary-json, with "path" added)."""

    def __init__(self, path, fmt, customers, summary):
        self.path, self.fmt, self.customers, self.summary = path, fmt, customers, summary

    @property
    def events(self):
        return self.summary["events"]


def _gen_hash(b):
    with open(os.path.join(b.repo, "tools", "seg_gen.c"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def _nonempty(path):
    return os.path.isfile(path) and os.path.getsize(path) > 0


def dataset(b, n, fmt):
    """The data set of n customers in fmt, generated now if not cached.
    Generation errors end the suite (no case can run without its data)."""
    key = f"c{n}_d{b.days}_s{b.seed}_g{_gen_hash(b)}"
    ext = "ndjson" if fmt == "json" else "msgpack"
    f = os.path.join(b.data, f"{key}.{ext}")
    if not (_nonempty(f) and _nonempty(f + ".sum.json")):
        print(f"generating {common.label(n)} customers ({fmt}) -> {f}", file=sys.stderr, flush=True)
        for old in glob.glob(os.path.join(b.data, f"c{n}_d{b.days}_s{b.seed}_g*.{ext}*")):
            os.unlink(old)
        rc = b.call([b.seg_gen, "--customers", str(n), "--days", str(b.days), "--seed", str(b.seed),
                     "--format", fmt, "--output", f + ".tmp", "--summary-json", f + ".sum.tmp"],
                    stdout=sys.stderr)
        if rc != 0:
            raise SystemExit(f"bench: seg_gen failed (exit {rc}) making {f}")
        os.replace(f + ".sum.tmp", f + ".sum.json")
        os.replace(f + ".tmp", f)
    d = common.load_json(f + ".sum.json")
    d["path"] = f
    b.datasets.append(d)
    return Dataset(f, fmt, n, d)


def prepare_replay(b):
    """Start of the replay group: says what it will run, then makes (or
    finds) both formats at every size before the first run, so generating
    never overlaps a measurement."""
    large = b.large
    print(f"replay: customers {' '.join(map(str, b.sizes))}, {b.days} days")
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"note: each {common.label(b.base)} case runs REPEAT={b.repeat} times"
          + (f", each {common.label(large)} case REPEAT_10M={b.repeat_large} times" if large else "")
          + "; medians are")
    print("      reported. Defaults keep the suite near 10-15 minutes on 2 cores; set REPEAT")
    print(f"      and REPEAT_10M to trade time for less noise. Load now: {load}.", flush=True)
    b.files = {}
    for n in b.sizes:
        for fmt in ("json", "msgpack"):
            b.files[n, fmt] = dataset(b, n, fmt)
