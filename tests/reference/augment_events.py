#!/usr/bin/python3
"""augment_events: adds deterministic contacts and profile events to a
converted public dataset, so user rules over contacts and attributes run on
real purchase timelines.

Why: CDNOW holds purchases only and Online Retail purchases and refunds,
but the rules people write read contacts (intent grades, problem
customers) and profile attributes (customer types). The derived events
follow the source ones, at the same second and right after them in the
input, so the input's time order (and its late events) are exactly the
source's:

  * a customer's first event is followed by a profile event setting
    account_type (business for about 1 in 9 customers, else consumer) and
    seats (a number, sometimes with decimals);
  * every refund is followed by a complaint (the seed's "a contact per
    refund");
  * a purchase is followed, by a hash of (customer, its n-th event), by a
    visit (1 in 3), an inquiry (1 in 7), a call (1 in 11), a support or
    feedback contact (1 in 13 each);
  * every 10th purchase of a customer switches account_type (business,
    consumer, or null, which unsets it).

Deterministic (crc32, no randomness): the same input gives the same output.

Usage: augment_events.py < events.ndjson > augmented.ndjson
"""
import json
import sys
import zlib


def h(*parts):
    return zlib.crc32("|".join(str(p) for p in parts).encode("utf-8"))


def main():
    seen = {}
    out = sys.stdout
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        out.write(line + "\n")
        try:
            e = json.loads(line)
        except ValueError:
            continue
        cid = e.get("customer_id")
        if not isinstance(cid, str) or not cid:
            continue
        n = seen.get(cid, 0)
        seen[cid] = n + 1
        ts = e.get("ts")

        def emit(d):
            d.update({"customer_id": cid, "ts": ts})
            out.write(json.dumps(d, separators=(",", ":")) + "\n")

        if n == 0:
            emit({"type": "profile", "attrs": {
                "account_type": "business" if h(cid, "type") % 9 == 0 else "consumer",
                "seats": (h(cid, "seats") % 400) / 4}})
        typ = e.get("type")
        if typ == "refund":
            emit({"type": "contact", "kind": "complaint"})
        elif typ == "purchase":
            r = h(cid, n)
            if r % 3 == 0:
                emit({"type": "contact", "kind": "visit"})
            if r % 7 == 1:
                emit({"type": "contact", "kind": "inquiry"})
            if r % 11 == 2:
                emit({"type": "contact", "kind": "call", "amount": 0})
            if r % 13 == 3:
                emit({"type": "contact", "kind": "support"})
            if r % 13 == 4:
                emit({"type": "contact", "kind": "feedback"})
            if n % 10 == 9:
                emit({"type": "profile", "attrs": {
                    "account_type": ["business", "consumer", None][h(cid, n, "t") % 3]}})


if __name__ == "__main__":
    main()
