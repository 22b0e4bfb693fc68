"""snapshot: snapshot write and load rate, at each size.

What: `seg_bench_snapshot snapshot`: an engine of N customers is built in
memory by folding a generated history through the engine API (1-6
purchases over a year, 5% refunded, 8% of customers with a complaint, every
customer with a pending deadline and windowed entries, as real state has),
no parsing involved. Then REPEAT times (REPEAT_10M at the large size)
seg_snapshot_write writes it to BUILD_DIR/benchstate (temp file, fsync,
rename, fsync of the directory: the daemon's path) and seg_snapshot_load
loads it into a fresh engine (read, CRC, parse, rebuild of every customer
and its next deadline), checking customer and timer counts.

Why that way: a restart is only "seconds" if a partition of millions of
customers loads in seconds, and that is a property of src/persist alone,
so it is measured on the code the daemon runs with nothing else in the
way. The file was just written, so the load reads from the page cache: it
measures CPU, not the disk.
"""

from . import common, durability

GROUP = "snapshot"


def run(b):
    for n in b.sizes:
        case = f"snapshot_{common.label(n)}"
        if not b.snap_tool:
            durability.fail(b, case, b.snap_tool_error)
            continue
        rep = b.repeat_large if n == b.large else b.repeat
        out, err = b.path("snap.json"), b.path("snap.err")
        rc = b.call([b.snap_tool, "snapshot", "--customers", str(n), "--repeat", str(rep),
                     "--dir", b.snapdir], stdout=out, stderr=err)
        durability.record(b, case, rc, out, err)
        with open(err, errors="replace") as f:
            for line in f:
                if line.startswith("  run"):
                    print(f"  snapshot {common.label(n)} {line[2:]}", end="", flush=True)


def report(b):
    for n in (b.base, b.large):
        if not n:
            continue
        lab = common.label(n)
        rc = f"snapshot_{lab}"
        r0 = next((r for r in b.sel(rc) if r["ok"]), {})
        mb = lambda k: r0[k]["median"]
        durability.add(
            b, f"snapshot_write_{lab}", f"snapshot write, {lab} customers", rc,
            "write_customers_per_second", "M customers/s", 1e6,
            note=(f"{r0['snapshot_bytes'] / 1e6:.0f} MB ({r0['bytes_per_customer']:.0f} B/customer), "
                  f"median {mb('write_mb_per_second'):.0f} MB/s, {mb('write_seconds'):.2f} s "
                  f"incl. fsync of file and directory" if r0 else None))
        durability.add(
            b, f"snapshot_load_{lab}", f"snapshot load, {lab} customers", rc,
            "load_customers_per_second", "M customers/s", 1e6,
            target=">= 2M customers/s", check=lambda c: c["median"] >= 2.0,
            note=(f"median {mb('load_mb_per_second'):.0f} MB/s, {mb('load_seconds'):.2f} s: "
                  f"read, CRC, rebuild of every customer and its deadline (page cache warm)"
                  if r0 else None))
