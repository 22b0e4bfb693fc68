#!/usr/bin/python3
"""retail2events: UCI Online Retail line items -> one segd event per invoice.

Why: the Online Retail set (541,909 line items, 25,900 invoices) is our
public test of refunds and of bad input. segd sees invoices, not line
items, so the rows of one InvoiceNo become one event, following
/work/shared/data/README.md:

  type         "refund" for invoices whose number starts with C, else
               "purchase" (A = bad-debt adjustments are purchases too)
  amount       |sum(Quantity * UnitPrice)| over the invoice's rows, summed
               exactly with decimal.Decimal and rounded to cents (4 invoices
               have a third decimal, e.g. 2042.761 -> 2042.76)
  ts           the InvoiceDate of the invoice's first row, as UTC RFC 3339
               (43 invoices span two minutes; the first row wins)
  event_id     "inv-<InvoiceNo>"
  customer_id  the integer part of CustomerID ("17850.0" -> "17850"),
               and no customer_id at all when the column is empty: segd
               must reject those invoices (missing_field)

Invoices come out in order of first appearance (one invoice's rows are
not contiguous in the file). A count of invoices and of invoices without a
customer goes to stderr.

Usage: retail2events.py [INPUT [OUTPUT]]
  INPUT defaults to $SEG_SHARED/data/online-retail/online-retail.csv.gz.
"""
import argparse
import csv
import gzip
import os
import sys
from decimal import Decimal, ROUND_HALF_UP

CENT = Decimal("0.01")


def invoices(reader):
    """Groups rows by InvoiceNo in order of first appearance."""
    order = []
    groups = {}
    for row in reader:
        no = row["InvoiceNo"]
        if no not in groups:
            groups[no] = []
            order.append(no)
        groups[no].append(row)
    for no in order:
        yield no, groups[no]


def event_line(no, rows):
    first = rows[0]
    total = sum((Decimal(r["Quantity"]) * Decimal(r["UnitPrice"]) for r in rows),
                Decimal(0))
    amount = abs(total).quantize(CENT, rounding=ROUND_HALF_UP)
    typ = "refund" if no.startswith("C") else "purchase"
    date, time = first["InvoiceDate"].split(" ")
    if len(time) == 5:          # tolerate HH:MM
        time += ":00"
    ts = "%sT%sZ" % (date, time)
    cust = first["CustomerID"].strip()
    parts = ['"type":"%s"' % typ]
    if cust:
        cid = cust.split(".")[0]
        if not cid.isdigit():
            raise ValueError("invoice %s: unexpected CustomerID %r" % (no, cust))
        parts.append('"customer_id":"%s"' % cid)
    parts.append('"ts":"%s"' % ts)
    parts.append('"amount":%s' % amount)
    parts.append('"event_id":"inv-%s"' % no)
    return "{" + ",".join(parts) + "}", bool(cust)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared = os.environ.get("SEG_SHARED", "/work/shared")
    ap.add_argument("input", nargs="?",
                    default=os.path.join(shared, "data/online-retail/online-retail.csv.gz"))
    ap.add_argument("output", nargs="?", default="-")
    args = ap.parse_args()

    opener = gzip.open if args.input.endswith(".gz") else open
    n = nocust = 0
    with opener(args.input, "rt", encoding="utf-8", newline="") as f:
        out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
        try:
            for no, rows in invoices(csv.DictReader(f)):
                line, has_cust = event_line(no, rows)
                out.write(line)
                out.write("\n")
                n += 1
                nocust += 0 if has_cust else 1
        finally:
            if out is not sys.stdout:
                out.close()
    print("retail2events: %d invoices, %d without customer" % (n, nocust),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
