"""changelog: changelog append and restore rate, through the mock cluster.

What: `seg_bench_snapshot changelog` against the loopback mock cluster
(tests/harness/seg_mock_cluster, 1 broker): for each of 8 partitions an
engine of 50,000 customers appends its whole state with
seg_changelog_append (every customer counts as changed: the largest append
there is) through a producer built by segd's own seg_kafka_producer_conf
(lz4, idempotent, acks=all), then seg_changelog_restore rebuilds it with
segd's restore consumer; the tool checks every customer came back.

Why that way: an instance that takes over partitions (or lost its disk)
restores them from the changelog, so its speed bounds a failover. 8
partitions x 50k customers is ~3.5 MB a partition, under the ~5 MB the
mock keeps per partition.
"""

import os

from . import durability, kafka

GROUP = "snapshot"
CASE = "changelog_restore"


def run(b):
    if not b.snap_tool:
        durability.fail(b, CASE, b.snap_tool_error)
        return
    mock = kafka.mock_binary(b)
    if not os.access(mock, os.X_OK):
        durability.fail(b, CASE, f"no mock cluster ({mock})")
        return
    try:
        mc = kafka.start_cluster(b, "changelog", ["bench-changelog:8"], brokers=1, timeout=10,
                                 max_lifetime=900)
    except Exception:
        durability.fail(b, CASE, f"no mock cluster ({mock})")
        return
    out, err = b.path("cl.json"), b.path("cl.err")
    try:
        rc = b.call([b.snap_tool, "changelog", "--bootstrap", mc.bootstrap,
                     "--topic", "bench-changelog", "--partitions", "8", "--customers", "50000"],
                    stdout=out, stderr=err)
    finally:
        mc.stop()
    durability.record(b, CASE, rc, out, err)
    with open(err, errors="replace") as f:
        for line in f.read().splitlines()[-2:]:
            print("  changelog " + line[2:] if line.startswith("  ") else line, flush=True)


def report(b):
    r0 = next((r for r in b.sel(CASE) if r["ok"]), {})
    durability.add(
        b, CASE, "changelog restore, loopback cluster", CASE,
        "restore_records_per_second", "k records/s", 1e3,
        note=(f"{r0['records']} records in {r0['partitions']} partitions of "
              f"{r0['customers_per_partition']} customers, one restore per partition "
              f"(longest {r0['restore_max_partition_seconds']:.2f} s); append + delivery "
              f"{r0['append_records_per_second'] / 1e3:.0f}k records/s" if r0 else None))
