#!/usr/bin/python3
"""cdnow2events: CDNOW_master.txt or CDNOW_sample.txt -> segd NDJSON purchase events.

Why: the CDNOW cohort (23,570 customers, Jan 1997 - Jun 1998) is the
public purchase history our integration tests and demo replay. segd reads
events, not the dataset's whitespace columns, so this turns each row into
one `purchase` event exactly as /work/shared/data/README.md describes:

  customer_id  the 5-digit id, leading zeros kept ("00001")
  ts           the row's date at 00:00:00Z
  amount       the dollar value, written as the file's own decimal text
               (a JSON number such as 11.77 or 0.00), so no float ever
               touches it on the way
  event_id     "cdnow-<row number>", rows counted from 1 after the header
  attrs.cds    the number of CDs (informational; segd ignores attrs)

CDNOW_sample.txt (the 1/10 sample the BG/NBD paper fits, 2,357 customers)
has one more column, the sample id (0001-2357), after the 5-digit
original id; it is ignored, and customer_id is the original id, as the
paper's table and `segd fit`'s test (tests/integration/test_fit_cdnow.sh)
use it.

Rows stay in the file's order (by customer, then date). --sort-by-time
emits them in time order instead (stable, so same-day rows keep their
file order); segd must produce the same transitions either way.

Usage: cdnow2events.py [--sort-by-time] [INPUT [OUTPUT]]
  INPUT defaults to $SEG_SHARED/data/cdnow/CDNOW_master.txt (SEG_SHARED
  defaults to /work/shared); OUTPUT defaults to stdout.
"""
import argparse
import os
import re
import sys

# customer id, [sample id (CDNOW_sample.txt only)], date, CDs, dollars
ROW = re.compile(r"([0-9]{5})\s+(?:[0-9]{4}\s+)?([0-9]{4})([0-9]{2})([0-9]{2})\s+([0-9]+)\s+"
                 r"([0-9]+\.[0-9]+|[0-9]+)")


def convert(lines):
    """Yields (date_key, json_line) per data row, in file order."""
    rowno = 0
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("customer_id"):
            continue
        m = ROW.fullmatch(line)
        if not m:
            raise ValueError("line %d: unexpected row %r" % (lineno, line))
        rowno += 1
        cid, y, mo, d, cds, amount = m.groups()
        ts = "%s-%s-%sT00:00:00Z" % (y, mo, d)
        out = ('{"type":"purchase","customer_id":"%s","ts":"%s","amount":%s,'
               '"event_id":"cdnow-%d","attrs":{"cds":%d}}'
               % (cid, ts, amount, rowno, int(cds)))
        yield (y + mo + d, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sort-by-time", action="store_true",
                    help="emit in date order (stable) instead of file order")
    shared = os.environ.get("SEG_SHARED", "/work/shared")
    ap.add_argument("input", nargs="?",
                    default=os.path.join(shared, "data/cdnow/CDNOW_master.txt"))
    ap.add_argument("output", nargs="?", default="-")
    args = ap.parse_args()

    with open(args.input, "r", encoding="ascii", newline="") as f:
        rows = list(convert(f.read().splitlines()))
    if args.sort_by_time:
        rows.sort(key=lambda r: r[0])     # list.sort is stable
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="ascii")
    try:
        for _, line in rows:
            out.write(line)
            out.write("\n")
    finally:
        if out is not sys.stdout:
            out.close()
    print("cdnow2events: %d events" % len(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
