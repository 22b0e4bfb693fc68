"""memory: peak memory per customer, max RSS / customers, at both sizes.

What: /usr/bin/time's max RSS of each JSON replay run (replay.py makes the
runs; this case has none of its own) divided by the customers generated.

Why that way: operators size machines and OOM limits by the peak, so the
peak RSS of the whole process is what is judged, not segd's own
state_bytes (kept in each run for comparison). At the base size the fixed
part of the process (binary, libraries, buffers) weighs ten times more per
customer than at the large size, so the target applies at the large size.
"""

from . import common

GROUP = "replay"


def run(b):
    pass  # measured in replay.py's JSON runs


def report(b):
    for n in (b.base, b.large):
        if not n:
            continue
        lab = common.label(n)
        judged = n == b.large
        v, e = b.metric(f"replay_json_{lab}", "max_rss_bytes")
        b.add(f"bytes_per_customer_{lab}", f"max RSS / customer, {lab}", "bytes",
              [x / n for x in v], e,
              target="<= 120 B" if judged else None,   # issue 13: the peak, <= 120 B
              check=(lambda c: c["median"] <= 120) if judged else None,
              note=None if judged else "fixed overheads weigh 10x more per customer than at"
              " the large size; target applies at the large size")
