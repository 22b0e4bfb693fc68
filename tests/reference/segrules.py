#!/usr/bin/python3
"""segrules: an independent, deliberately naive reference of segd's rule
language (docs/rules.md), for the tests that hold segd against it.

Why it exists: segd compiles rules into flat programs, keeps per-selector
windows incrementally and wakes each customer at its next candidate
instant. Bugs in such code hide in the bookkeeping: a window entry not
expired, a candidate instant missed, an exact number turned into a double.
This program is written from the written contract only (docs/rules.md,
docs/segments.md, docs/events.md), never from segd's code, and computes the
same transitions with none of that machinery:

  * its own lexer, recursive-descent parser and type checker for the
    grammar of docs/rules.md; a rule file is either valid or rejected
    (exit 3 with FILE:LINE:COL and a reason, the texts are not segd's);
  * every valid event is kept; after each fold the customer's summary
    (per-selector event lists, first/last purchase, latest ts per
    selector, attributes) is recomputed from the full event list;
  * values are recomputed from scratch at every evaluation instant;
  * numbers are Python integers of 1/10000 (exact) or Python floats
    (IEEE doubles) exactly where the doc says so; durations are integer
    seconds;
  * the built-in dimensions come from tests/reference/segref.py, itself an
    independent reference of docs/segments.md.

Two modes:

  candidate (default): a customer is evaluated at its events and at the
    candidate instants of docs/rules.md ("The instants segd wakes up at"),
    recomputed from scratch from the full event list each time. Fast
    enough for the public datasets.

  --brute-force: every rule is evaluated for every customer at EVERY
    second of the history. The candidate instants are used only to move
    the customer's clock (which decides where a late event is evaluated),
    never to decide a value. A value that changes at a second that is not a
    candidate instant is counted in the summary ("non_candidate_changes"):
    it means the doc's candidate set is incomplete for that rule (or this
    reference is wrong), and segd, which only wakes at candidates, cannot
    publish it there.

Time, as in segref.py: per-customer clock; before an event with ts is
folded, every candidate instant <= ts of every customer fires in time order
(reproduced per customer with a range maximum over the input, the
"horizon"); a late event (ts < clock) is evaluated at the clock; the end of
time is max(largest valid ts, --until).

Output: transitions in segd's exact JSON line format, sorted by customer id
then seq (segd interleaves customers; compare sorted). stderr: a JSON
summary.

Readings chosen where docs/rules.md leaves room (each reported to the
lead; gen_rules.py avoids all of them except the first):
  * built-in candidate instants: only those of enabled built-ins (rules.md
    "Time", item 4), per dimension; segments.md says the clock moves at
    every built-in deadline whatever is enabled (--builtin-instants all);
  * a time-dependent feature may appear anywhere inside has(); candidate
    instants are collected from every comparison, tier() and window
    wherever it is written, has() included;
  * if() with one branch of type any has type any; an operator with an
    any operand is accepted when some concrete type makes it valid;
  * string + duration is a type error (the operator table), but a duration
    reaching a concatenation through any prints as in "Printing";
  * a computed rule of type any whose value is a boolean prints true/false;
  * a rule reference yields the computed value itself (exact stays exact,
    double stays double), and a computed rule's transitions compare text;
  * 10^14 is the value (10^18 units); a literal beyond it, or with more than
    4 decimals, is a double; "too large" is a literal that overflows a
    double;
  * a double result is the correctly rounded one (nearest to the exact
    quotient/product); duration / duration is exact when it has at most 4
    decimals; duration * double is computed in doubles and truncated;
  * the "string it can never hold" check applies to ==, != and in only;
  * tier(x, [...]) takes a list argument the grammar does not show.

Usage:
  segrules.py [--config YAML] [--set key=value]... [--until RFC3339]
              [--brute-force] [--builtin-instants enabled|all] [INPUT|-]
  segrules.py --check --config YAML        exit 0 valid, 3 invalid
"""
import argparse
import json
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import segref  # noqa: E402
from segref import Reject, DAY, UNIT, MONEY_MAX  # noqa: E402
from decimal import Decimal, ROUND_HALF_UP  # noqa: E402

TYPES = ("purchase", "refund", "contact", "profile")
KINDS = ("visit", "inquiry", "call", "complaint", "support", "feedback")
BUILTINS = ("lifecycle", "value", "rfm", "dissatisfied")
BUILTIN_LABELS = {
    "lifecycle": frozenset(["prospect", "new", "active", "loyal", "at_risk",
                            "silent", "churned"]),
    "value": frozenset("ABCD"),
    "rfm": frozenset("R%dF%dM%d" % (r, f, m) for r in range(1, 5)
                     for f in range(5) for m in range(5)),
    "dissatisfied": frozenset(["in", "out"]),
}
FEATURE_NAMES = ("count", "sum", "recency", "age", "since", "attr",
                 "p_alive", "expected_purchases", "expected_spend", "clv")
PREDICTIONS = ("p_alive", "expected_purchases", "expected_spend", "clv")
KEYWORDS = ("and", "or", "not", "in", "true", "false")
RULE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
LABEL = re.compile(r"[A-Za-z0-9_.+\-]{1,64}")
RULE_KEYS = ("when", "cases", "value", "else", "where", "description")
MAX_RULES = 256
ATTR_STRING_MAX = 1024           # bytes; longer attribute strings are ignored
VALUE_STRING_MAX = 4096          # bytes; a longer string from + has no value
ATTR_KEY_MAX = 128               # bytes
EXACT_MAX_UNITS = 10 ** 18       # exact numbers up to +-10^14
ATTR_EXACT_MAX = 1e10            # attr numbers beyond are doubles (brief)
UNIT_SECONDS = (("w", 7 * DAY), ("d", DAY), ("h", 3600), ("m", 60), ("s", 1))


class RuleError(Exception):
    """A configuration error: msg, and where (offset in the expression or
    None for the rule as a whole)."""

    def __init__(self, msg, pos=None):
        Exception.__init__(self, msg)
        self.msg = msg
        self.pos = pos


# ---------------------------------------------------------------- values
#
# A runtime value is None (absent) or a tagged tuple:
#   ("N", units)  exact number, integer units of 1/10000
#   ("F", x)      binary double (finite)
#   ("D", secs)   duration, whole seconds
#   ("S", text)   string
#   ("B", bool)   boolean

def exact(units):
    """An exact result; beyond +-10^14 it is carried as a double."""
    if abs(units) > EXACT_MAX_UNITS:
        return dbl(units / UNIT)          # int / int: correctly rounded
    return ("N", units)


def dbl(x):
    if not math.isfinite(x):
        return None
    return ("F", x)


def as_float(v):
    """The double nearest to a number value."""
    return v[1] / UNIT if v[0] == "N" else v[1]


def trunc_int(num, den):
    """num / den rounded toward zero (den != 0)."""
    q = abs(num) // abs(den)
    return q if (num >= 0) == (den > 0) else -q


def fmt_exact(units):
    sign = "-" if units < 0 else ""
    ip, fp = divmod(abs(units), UNIT)
    if fp == 0:
        return "%s%d" % (sign, ip)
    return "%s%d.%s" % (sign, ip, ("%04d" % fp).rstrip("0"))


def fmt_double(x):
    for n in range(1, 18):
        s = "%.*g" % (n, x)
        if float(s) == x:
            return s
    return "%.17g" % x


def fmt_duration(secs):
    if secs == 0:
        return "0s"
    for unit, size in UNIT_SECONDS:
        if secs % size == 0:
            return "%d%s" % (secs // size, unit)
    raise AssertionError(secs)


def to_text(v):
    k = v[0]
    if k == "S":
        return v[1]
    if k == "N":
        return fmt_exact(v[1])
    if k == "F":
        return fmt_double(v[1])
    if k == "D":
        return fmt_duration(v[1])
    return "true" if v[1] else "false"


def truthy(v):
    return v is not None and v[0] == "B" and v[1]


NUMS = ("N", "F")


def compare(op, a, b):
    """A comparison at run time: absent or different types give false."""
    if a is None or b is None:
        return False
    ka, kb = a[0], b[0]
    if ka in NUMS and kb in NUMS:
        if ka == "N" and kb == "N":
            x, y = a[1], b[1]
        else:
            x, y = as_float(a), as_float(b)
    elif ka != kb:
        return False
    elif ka == "S":
        x, y = a[1].encode("utf-8", "surrogatepass"), b[1].encode("utf-8", "surrogatepass")
    elif ka == "B":
        if op not in ("==", "!="):
            return False
        x, y = a[1], b[1]
    else:
        x, y = a[1], b[1]
    if op == "==":
        return x == y
    if op == "!=":
        return x != y
    if op == "<":
        return x < y
    if op == "<=":
        return x <= y
    if op == ">":
        return x > y
    return x >= y


def arith(op, a, b, strict=False):
    """Binary + - * / at run time. strict: a constant expression, where a
    duration that is not whole seconds is an error, not rounded."""
    if a is None or b is None:
        return None
    ka, kb = a[0], b[0]
    if op == "+" and (ka == "S" or kb == "S"):
        text = to_text(a) + to_text(b)
        if len(text.encode("utf-8", "surrogatepass")) > VALUE_STRING_MAX:
            return None
        return ("S", text)
    if ka in NUMS and kb in NUMS:
        if ka == "N" and kb == "N":
            x, y = a[1], b[1]
            if op == "+":
                return exact(x + y)
            if op == "-":
                return exact(x - y)
            if op == "*":
                p = x * y
                if p % UNIT == 0:
                    return exact(p // UNIT)
                return dbl(p / (UNIT * UNIT))
            if y == 0:
                return None
            n = x * UNIT
            if n % y == 0:
                return exact(n // y)
            return dbl(x / y)
        x, y = as_float(a), as_float(b)
        if op == "+":
            return dbl(x + y)
        if op == "-":
            return dbl(x - y)
        if op == "*":
            return dbl(x * y)
        if y == 0:
            return None
        return dbl(x / y)
    if ka == "D" and kb == "D":
        x, y = a[1], b[1]
        if op == "+":
            return ("D", x + y)
        if op == "-":
            return ("D", x - y)
        if op == "/":
            if y == 0:
                return None
            n = x * UNIT
            if n % y == 0:
                return exact(n // y)
            return dbl(x / y)
        return None
    if op == "*" and ((ka == "D" and kb in NUMS) or (ka in NUMS and kb == "D")):
        d, n = (a, b) if ka == "D" else (b, a)
        return scale_duration(d[1], n, None, strict)
    if op == "/" and ka == "D" and kb in NUMS:
        return scale_duration(a[1], None, b, strict)
    return None


def scale_duration(secs, mul, div, strict):
    """secs * mul or secs / div (a number), rounded toward zero; in a
    constant expression a fraction of a second is an error."""
    if mul is not None and mul[0] == "N":
        num, den = secs * mul[1], UNIT
    elif div is not None and div[0] == "N":
        if div[1] == 0:
            return None
        num, den = secs * UNIT, div[1]
    else:
        x = secs * mul[1] if mul is not None else None
        if div is not None:
            if div[1] == 0:
                return None
            x = secs / div[1]
        if not math.isfinite(x):
            return None
        if strict and x != math.trunc(x):
            raise RuleError("a duration must be whole seconds")
        return ("D", math.trunc(x))
    if strict and num % den != 0:
        raise RuleError("a duration must be whole seconds (%s)"
                        % fmt_double(num / den))
    return ("D", trunc_int(num, den))


def negate(v):
    if v is None or v[0] not in ("N", "F", "D"):
        return None
    if v[0] == "N":
        return exact(-v[1])
    return (v[0], -v[1])


def attr_value(raw):
    """An attrs value as read from JSON (Decimal numbers): (set, value).
    set False: ignored (object, array, long string); value None: unset."""
    if raw is None:
        return True, None
    if isinstance(raw, bool):
        return True, ("B", raw)
    if isinstance(raw, str):
        if len(raw.encode("utf-8", "surrogatepass")) > ATTR_STRING_MAX:
            return False, None
        return True, ("S", raw)
    if isinstance(raw, Decimal):
        v = attr_number(float(raw))
        return v is not None, v          # NaN or infinite: ignored
    return False, None


def attr_number(x):
    """Exact when rounding to 1/10000 reproduces the same double."""
    if not math.isfinite(x):
        return None
    if abs(x) <= ATTR_EXACT_MAX:
        from fractions import Fraction
        units = round(Fraction(x) * UNIT)
        if units / UNIT == x:
            return ("N", units)
    return ("F", x)


# ----------------------------------------------------------------- lexer

TOKEN_OPS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "(", ")",
             "[", "]", ",")
DURATION_UNIT = {"s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY}
NAME_START = re.compile(r"[A-Za-z_]")
NAME_CHAR = re.compile(r"[A-Za-z0-9_]")


class Tok:
    __slots__ = ("kind", "val", "pos")

    def __init__(self, kind, val, pos):
        self.kind, self.val, self.pos = kind, val, pos

    def __repr__(self):
        return "%s(%r)@%d" % (self.kind, self.val, self.pos)


def lex(text):
    """kinds: NUM (Decimal text), DUR (seconds), STR, NAME, SEL (a
    contact.KIND text), KW (keyword), OP, EOF."""
    toks = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            toks.append(Tok("EOF", None, i))
            return toks
        c, start = text[i], i
        if c.isdigit() and c.isascii():
            while i < n and text[i].isascii() and text[i].isdigit():
                i += 1
            if i < n and text[i] in DURATION_UNIT:
                unit = text[i]
                i += 1
                if i < n and NAME_CHAR.match(text[i]):
                    raise RuleError("bad duration %r" % text[start:i + 1], start)
                toks.append(Tok("DUR", int(text[start:i - 1]) * DURATION_UNIT[unit], start))
                continue
            if i < n and text[i] == ".":
                i += 1
                j = i
                while i < n and text[i].isascii() and text[i].isdigit():
                    i += 1
                if i == j:
                    raise RuleError("a number needs digits after '.'", start)
            if i < n and (NAME_CHAR.match(text[i]) or text[i] == "."):
                raise RuleError("bad number %r" % text[start:i + 1], start)
            toks.append(Tok("NUM", text[start:i], start))
            continue
        if NAME_START.match(c):
            while i < n and NAME_CHAR.match(text[i]):
                i += 1
            word = text[start:i]
            if word == "contact" and i < n and text[i] == ".":
                j = i + 1
                if j < n and NAME_START.match(text[j]):
                    i = j
                    while i < n and NAME_CHAR.match(text[i]):
                        i += 1
                    toks.append(Tok("SEL", text[start:i], start))
                    continue
                raise RuleError("a contact kind must follow 'contact.'", i)
            toks.append(Tok("KW" if word in KEYWORDS else "NAME", word, start))
            continue
        if c == '"':
            i += 1
            out = []
            while True:
                if i >= n:
                    raise RuleError("unterminated string", start)
                ch = text[i]
                if ch == '"':
                    i += 1
                    break
                if ch == "\\":
                    if i + 1 >= n:
                        raise RuleError("unterminated string", start)
                    e = text[i + 1]
                    if e not in '"\\nt':
                        raise RuleError("unknown escape '\\%s'" % e, i)
                    out.append({'"': '"', "\\": "\\", "n": "\n", "t": "\t"}[e])
                    i += 2
                    continue
                out.append(ch)
                i += 1
            toks.append(Tok("STR", "".join(out), start))
            continue
        for op in TOKEN_OPS:
            if text.startswith(op, i):
                toks.append(Tok("OP", op, start))
                i += len(op)
                break
        else:
            raise RuleError("unexpected character %r" % c, start)


# ---------------------------------------------------------------- parser

class Node:
    """An expression node. op: lit, name, call, sel, list, or, and, not,
    cmp, in, + - * /, neg. After the check: ty (bool num dur str any),
    const, G (a time-dependent feature: ("recency",), ("age",),
    ("since", sel)), labels (the strings it can hold, or None)."""
    __slots__ = ("op", "kids", "pos", "val", "ty", "const", "G", "labels",
                 "folded")

    def __init__(self, op, kids, pos, val=None):
        self.op, self.kids, self.pos, self.val = op, kids, pos, val
        self.ty, self.const, self.G, self.labels = None, False, None, None
        self.folded = None


CMP_OPS = ("==", "!=", "<", "<=", ">", ">=")


class Parser:
    def __init__(self, text):
        self.toks = lex(text)
        self.i = 0

    def peek(self, k=0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_op(self, v, k=0):
        t = self.peek(k)
        return t.kind == "OP" and t.val == v

    def is_kw(self, v):
        t = self.peek()
        return t.kind == "KW" and t.val == v

    def expect_op(self, v):
        t = self.peek()
        if not (t.kind == "OP" and t.val == v):
            self.unexpected(t, "'%s'" % v)
        return self.take()

    def unexpected(self, t, wanted=None):
        what = "end of expression" if t.kind == "EOF" else repr(t.val)
        raise RuleError("unexpected %s%s" % (what, ", expected %s" % wanted if wanted else ""),
                        t.pos)

    def parse(self):
        e = self.expr()
        if self.peek().kind != "EOF":
            self.unexpected(self.peek())
        return e

    def expr(self):
        return self.or_()

    def or_(self):
        a = self.and_()
        while self.is_kw("or"):
            t = self.take()
            a = Node("or", [a, self.and_()], t.pos)
        return a

    def and_(self):
        a = self.not_()
        while self.is_kw("and"):
            t = self.take()
            a = Node("and", [a, self.not_()], t.pos)
        return a

    def not_(self):
        if self.is_kw("not"):
            t = self.take()
            return Node("not", [self.not_()], t.pos)
        return self.compare()

    def at_compare(self):
        t = self.peek()
        return (t.kind == "OP" and t.val in CMP_OPS) or (t.kind == "KW" and t.val == "in")

    def compare(self):
        a = self.sum_()
        if not self.at_compare():
            return a
        t = self.take()
        if t.kind == "OP":
            node = Node("cmp", [a, self.sum_()], t.pos, t.val)
        else:
            lb = self.expect_op("[")
            items = []
            if not self.is_op("]"):
                items.append(self.expr())
                while self.is_op(","):
                    self.take()
                    items.append(self.expr())
            self.expect_op("]")
            node = Node("in", [a, Node("list", items, lb.pos)], t.pos)
        if self.at_compare():
            raise RuleError("comparisons do not chain; use 'and'", self.peek().pos)
        return node

    def sum_(self):
        a = self.product()
        while self.is_op("+") or self.is_op("-"):
            t = self.take()
            a = Node(t.val, [a, self.product()], t.pos)
        return a

    def product(self):
        a = self.unary()
        while self.is_op("*") or self.is_op("/"):
            t = self.take()
            a = Node(t.val, [a, self.unary()], t.pos)
        return a

    def unary(self):
        if self.is_op("-"):
            t = self.take()
            return Node("neg", [self.unary()], t.pos)
        return self.primary()

    def primary(self):
        t = self.peek()
        if t.kind == "NUM":
            self.take()
            return Node("lit", [], t.pos, number_literal(t))
        if t.kind == "DUR":
            self.take()
            return Node("lit", [], t.pos, ("D", t.val))
        if t.kind == "STR":
            self.take()
            return Node("lit", [], t.pos, ("S", t.val))
        if t.kind == "KW" and t.val in ("true", "false"):
            self.take()
            return Node("lit", [], t.pos, ("B", t.val == "true"))
        if t.kind == "OP" and t.val == "(":
            self.take()
            e = self.expr()
            self.expect_op(")")
            return e
        if t.kind == "SEL":
            raise RuleError("selector %s outside count(), sum() or since()" % t.val, t.pos)
        if t.kind == "NAME":
            self.take()
            if self.is_op("("):
                self.take()
                args = []
                if not self.is_op(")"):
                    args.append(self.arg())
                    while self.is_op(","):
                        self.take()
                        args.append(self.arg())
                self.expect_op(")")
                return Node("call", args, t.pos, t.val)
            return Node("name", [], t.pos, t.val)
        self.unexpected(t)

    def arg(self):
        t = self.peek()
        if t.kind == "SEL":
            self.take()
            return Node("sel", [], t.pos, t.val)
        if (t.kind == "NAME" and t.val in ("purchase", "refund", "contact")
                and (self.is_op(",", 1) or self.is_op(")", 1))):
            self.take()
            return Node("sel", [], t.pos, t.val)
        if t.kind == "OP" and t.val == "[":
            # tier()'s bounds: the grammar of docs/rules.md has no list
            # argument, but tier(x, [b1, ...]) needs one.
            lb = self.take()
            items = []
            if not self.is_op("]"):
                items.append(self.expr())
                while self.is_op(","):
                    self.take()
                    items.append(self.expr())
            self.expect_op("]")
            return Node("list", items, lb.pos)
        return self.expr()


def number_literal(t):
    text = t.val
    ip, _, fp = text.partition(".")
    if len(fp) <= 4:
        units = int(ip) * UNIT + (int(fp.ljust(4, "0")) if fp else 0)
        if units <= EXACT_MAX_UNITS:
            return ("N", units)
    try:
        x = float(text)
    except (ValueError, OverflowError):
        x = math.inf
    if not math.isfinite(x):
        raise RuleError("number %s is too large" % (text[:20] + ("..." if len(text) > 20 else "")),
                        t.pos)
    return ("F", x)


# ------------------------------------------------------------ type check

def arith_type(op, ta, tb):
    """Static result type of a binary arithmetic operator on concrete
    types, or None when the table does not allow it."""
    if op == "+":
        if ta == "num" and tb == "num":
            return "num"
        if ta == "dur" and tb == "dur":
            return "dur"
        if (ta == "str" and tb in ("str", "num", "bool")) or \
           (tb == "str" and ta in ("str", "num", "bool")):
            return "str"
        return None
    if op == "-":
        return ta if ta == tb and ta in ("num", "dur") else None
    if op == "*":
        if ta == "num" and tb == "num":
            return "num"
        if (ta, tb) in (("dur", "num"), ("num", "dur")):
            return "dur"
        return None
    if op == "/":
        if ta == "num" and tb == "num":
            return "num"
        if (ta, tb) == ("dur", "num"):
            return "dur"
        if (ta, tb) == ("dur", "dur"):
            return "num"
        return None
    raise AssertionError(op)


CONCRETE = ("bool", "num", "dur", "str")


def with_any(fn, ta, tb):
    """Applies a static rule with 'any' standing for every concrete type:
    None if no combination is allowed, the result if all allowed ones
    agree, else 'any'."""
    xs = CONCRETE if ta == "any" else (ta,)
    ys = CONCRETE if tb == "any" else (tb,)
    res = set()
    for x in xs:
        for y in ys:
            r = fn(x, y)
            if r is not None:
                res.add(r)
    if not res:
        return None
    return res.pop() if len(res) == 1 else "any"


def cmp_type_ok(op, ta, tb):
    if ta == "any" or tb == "any":
        if op in ("==", "!="):
            return True
        other = tb if ta == "any" else ta
        return other in ("any", "num", "dur", "str")
    if op in ("==", "!="):
        return ta == tb
    return ta == tb and ta in ("num", "dur", "str")


TYPE_NAMES = {"bool": "a boolean", "num": "a number", "dur": "a duration",
              "str": "a string", "any": "an attribute"}


class RuleInfo:
    """A checked rule: name, form (membership, graded, computed), where,
    when / cases [(label, node)] / else / value node, ty, labels,
    g_offsets [(G, offset)], windows {(sel, W)}, line, col."""

    def __init__(self, name):
        self.name = name
        self.where = self.when = self.value = self.else_label = None
        self.cases = []
        self.g_offsets = []
        self.windows = set()
        self.ty = None
        self.labels = None


class Checker:
    """Type-checks one rule's expressions against the rules above it."""

    def __init__(self, cfg, rule, above, below):
        self.cfg = cfg
        self.rule = rule          # RuleInfo being checked
        self.above = above        # name -> RuleInfo
        self.below = below        # name -> line of a rule further down

    def builtin_enabled(self, name):
        return self.cfg["segments.%s.enabled" % name]

    def top(self, node, want):
        self.check(node, False)
        self.no_time(node)
        if node.ty not in want:
            raise RuleError("expected %s, got %s" % (
                " or ".join(TYPE_NAMES[t] for t in want if t != "any"),
                TYPE_NAMES[node.ty]), node.pos)
        self.fold(node)

    def no_time(self, node):
        if node.G is not None:
            raise RuleError("%s grows with time; compare it with a constant duration, "
                            "use it in tier() or has()" % g_name(node.G), node.pos)

    def fold(self, node):
        """Evaluates constant subexpressions once (and so finds the
        non-whole constant durations)."""
        if node.const and node.op not in ("lit", "list"):
            const_value(node)
            return
        for k in node.kids:
            self.fold(k)

    def check(self, node, in_has):
        op = node.op
        nt = None
        if op == "lit":
            node.ty = {"N": "num", "F": "num", "D": "dur", "S": "str", "B": "bool"}[node.val[0]]
            node.const = True
            return
        if op == "name":
            self.check_name(node)
            return
        if op == "sel":
            raise RuleError("selector %s outside count(), sum() or since()" % node.val, node.pos)
        if op == "list":
            raise RuleError("a list is allowed only after 'in' and in tier()", node.pos)
        if op == "call":
            self.check_call(node, in_has)
            return
        if op == "in":
            self.check(node.kids[0], in_has)
            for e in node.kids[1].kids:
                self.check(e, in_has)
            self.check_in(node, in_has)
            node.ty = "bool"
            node.const = node.kids[0].const
            return
        for k in node.kids:
            self.check(k, in_has)
        kids = node.kids
        if op in ("or", "and", "not"):
            for k in kids:
                if not in_has:
                    self.no_time(k)
                if k.ty not in ("bool", "any"):
                    raise RuleError("'%s' needs booleans, not %s" % (op, TYPE_NAMES[k.ty]), k.pos)
            nt = "bool"
        elif op == "cmp":
            self.check_cmp(node, in_has)
            nt = "bool"
        elif op in ("+", "-", "*", "/"):
            a, b = kids
            if not in_has:
                self.no_time(a)
                self.no_time(b)
            nt = with_any(lambda x, y: arith_type(op, x, y), a.ty, b.ty)
            if nt is None:
                raise RuleError("cannot apply '%s' to %s and %s" % (
                    op, TYPE_NAMES[a.ty], TYPE_NAMES[b.ty]), node.pos)
        elif op == "neg":
            a = kids[0]
            if not in_has:
                self.no_time(a)
            if a.ty not in ("num", "dur", "any"):
                raise RuleError("cannot negate %s" % TYPE_NAMES[a.ty], node.pos)
            nt = a.ty
        else:
            raise AssertionError(op)
        node.ty = nt
        node.const = all(k.const for k in kids)

    def check_name(self, node):
        name = node.val
        if name in ("recency", "age"):
            node.ty, node.G = "dur", (name,)
            return
        if name in PREDICTIONS:
            raise RuleError("'%s' is a prediction; segments.predict holds no parameters" % name,
                            node.pos)
        if name in ("count", "sum", "since", "attr", "has", "if", "tier"):
            raise RuleError("'%s' is a function; it needs arguments" % name, node.pos)
        if name in self.above:
            r = self.above[name]
            node.ty, node.labels = r.ty, r.labels
            return
        if name == self.rule.name:
            raise RuleError("rule '%s' reads itself" % name, node.pos)
        if name in self.below:
            raise RuleError("'%s' is a rule defined further down (line %d); a rule reads "
                            "only rules above it" % (name, self.below[name]), node.pos)
        if name in BUILTINS:
            if not self.builtin_enabled(name):
                raise RuleError("built-in dimension '%s' is switched off" % name, node.pos)
            node.ty, node.labels = "str", BUILTIN_LABELS[name]
            return
        raise RuleError("unknown feature '%s'" % name, node.pos)

    def selector(self, node):
        if node.op != "sel":
            raise RuleError("expected a selector (purchase, refund, contact, contact.KIND)",
                            node.pos)
        s = node.val
        if s.startswith("contact."):
            kind = s[len("contact."):]
            if kind not in KINDS:
                raise RuleError("unknown contact kind '%s' (%s)" % (kind, ", ".join(KINDS)),
                                node.pos)
        return s

    def check_call(self, node, in_has):
        name, args = node.val, node.kids
        arity = {"count": 2, "sum": 2, "since": 1, "attr": 1, "has": 1, "if": 3, "tier": 2}
        if name in PREDICTIONS:
            raise RuleError("'%s' is a prediction; segments.predict holds no parameters" % name,
                            node.pos)
        if name not in arity:
            if name in ("recency", "age") or name in BUILTINS or name in self.above:
                raise RuleError("'%s' is not a function" % name, node.pos)
            raise RuleError("unknown function '%s'" % name, node.pos)
        if len(args) != arity[name]:
            raise RuleError("%s() takes %d argument%s, not %d" % (
                name, arity[name], "s" if arity[name] > 1 else "", len(args)), node.pos)
        if name in ("count", "sum"):
            sel = self.selector(args[0])
            w = args[1]
            self.check(w, in_has)
            self.no_time(w)
            if not w.const:
                raise RuleError("a window must be a constant duration", w.pos)
            if w.ty != "dur":
                raise RuleError("a window must be a duration, not %s" % TYPE_NAMES[w.ty], w.pos)
            wv = const_value(w)
            if wv is None or wv[1] <= 0:
                raise RuleError("a window must be greater than 0", w.pos)
            node.val = (name, sel, wv[1])
            self.rule.windows.add((sel, wv[1]))
            node.ty = "num"
            return
        if name == "since":
            sel = self.selector(args[0])
            node.val = ("since", sel)
            node.ty, node.G = "dur", ("since", sel)
            return
        for a in args:
            if a.op == "sel":
                raise RuleError("selector %s outside count(), sum() or since()" % a.val, a.pos)
        if name == "attr":
            a = args[0]
            if a.op != "lit" or a.val[0] != "S":
                raise RuleError("attr() needs a string literal", a.pos)
            nb = len(a.val[1].encode("utf-8", "surrogatepass"))
            if not 1 <= nb <= ATTR_KEY_MAX:
                raise RuleError("attr() key must be 1 to %d bytes" % ATTR_KEY_MAX, a.pos)
            node.val = ("attr", a.val[1])
            node.ty = "any"
            return
        if name == "has":
            a = args[0]
            if a.op == "list":
                raise RuleError("a list is allowed only after 'in' and in tier()", a.pos)
            self.check(a, True)
            node.val = ("has",)
            node.ty, node.const = "bool", a.const
            return
        if name == "if":
            for a in args:
                if a.op == "list":
                    raise RuleError("a list is allowed only after 'in' and in tier()", a.pos)
                self.check(a, in_has)
                if not in_has:
                    self.no_time(a)
            c, a, b = args
            if c.ty not in ("bool", "any"):
                raise RuleError("if() needs a boolean condition, not %s" % TYPE_NAMES[c.ty], c.pos)
            if a.ty == "any" or b.ty == "any":
                nt = "any"
            elif a.ty == b.ty:
                nt = a.ty
            else:
                raise RuleError("if() branches differ: %s and %s" % (
                    TYPE_NAMES[a.ty], TYPE_NAMES[b.ty]), b.pos)
            node.val = ("if",)
            node.ty = nt
            node.const = all(x.const for x in args)
            return
        if name == "tier":
            x, bl = args
            if x.op == "list":
                raise RuleError("tier() needs a value first", x.pos)
            self.check(x, in_has)
            if bl.op != "list":
                raise RuleError("tier() needs a list of bounds [b1, b2, ...]", bl.pos)
            if not bl.kids:
                raise RuleError("tier() needs at least one bound", bl.pos)
            if x.ty not in ("num", "dur", "any"):
                raise RuleError("tier() of %s" % TYPE_NAMES[x.ty], x.pos)
            bounds = []
            bty = None
            for b in bl.kids:
                self.check(b, in_has)
                self.no_time(b)
                if not b.const:
                    raise RuleError("a tier() bound must be a constant", b.pos)
                want = x.ty if x.ty != "any" else (bty or b.ty)
                if b.ty != want or b.ty not in ("num", "dur"):
                    raise RuleError("a tier() bound must be %s, not %s" % (
                        TYPE_NAMES[want if want in ("num", "dur") else "num"],
                        TYPE_NAMES[b.ty]), b.pos)
                bty = b.ty
                v = const_value(b)
                if v is None:
                    raise RuleError("a tier() bound has no value", b.pos)
                bounds.append(v)
            node.val = ("tier", bounds)
            node.ty = "num"
            node.const = x.const
            if x.G is not None:
                for v in bounds:
                    self.rule.g_offsets.append((x.G, v[1]))
            return
        raise AssertionError(name)

    def check_cmp(self, node, in_has):
        op = node.val
        a, b = node.kids
        if a.G is not None and b.G is not None and not in_has:
            raise RuleError("%s grows with time; compare it with a constant duration, "
                            "use it in tier() or has()" % g_name(b.G), b.pos)
        g, c, gop = None, None, op
        if a.G is not None:
            g, c = a, b
        elif b.G is not None:
            g, c = b, a
            gop = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        if not cmp_type_ok(op, a.ty, b.ty):
            raise RuleError("cannot compare %s with %s" % (TYPE_NAMES[a.ty], TYPE_NAMES[b.ty]),
                            node.pos)
        if g is not None and not c.const and not in_has:
            raise RuleError("%s grows with time; compare it with a constant duration, "
                            "use it in tier() or has()" % g_name(g.G), g.pos)
        if g is not None and c.const and c.ty == "dur" and (a.G is None or b.G is None):
            # Candidate instants are collected wherever such a comparison
            # is written, inside has() too (docs/rules.md item 1 makes no
            # exception).
            v = const_value(c)
            if v is not None:
                s = v[1]
                offs = {"<": [s], ">=": [s], "<=": [s + 1], ">": [s + 1],
                        "==": [s, s + 1], "!=": [s, s + 1]}[gop]
                for o in offs:
                    self.rule.g_offsets.append((g.G, o))
        self.check_labels(a, b, op)

    def check_labels(self, a, b, op):
        if op not in ("==", "!="):
            return
        for x, y in ((a, b), (b, a)):
            if x.labels is not None and y.const and y.ty == "str":
                v = const_value(y)
                if v is not None and v[1] not in x.labels:
                    raise RuleError("'%s' is never a value of this dimension" % v[1], y.pos)

    def check_in(self, node, in_has):
        x, lst = node.kids
        for e in lst.kids:
            if not e.const:
                raise RuleError("the list after 'in' holds constant expressions", e.pos)
            self.no_time(e)
            if not cmp_type_ok("==", x.ty, e.ty):
                raise RuleError("cannot compare %s with %s" % (TYPE_NAMES[x.ty], TYPE_NAMES[e.ty]),
                                e.pos)
            self.check_labels(x, e, "==")
        lst.ty, lst.const = "list", True
        if x.G is not None:
            for e in lst.kids:
                v = const_value(e)
                if v is not None:
                    self.rule.g_offsets.append((x.G, v[1]))
                    self.rule.g_offsets.append((x.G, v[1] + 1))


def g_name(G):
    return G[0] if G[0] != "since" else "since(%s)" % G[1]


# ------------------------------------------------------------ evaluation

class State:
    """A customer's folded events, summarised from scratch."""

    def __init__(self, events):
        self.events = events
        self.sel = {"purchase": [], "refund": [], "contact": []}
        for k in KINDS:
            self.sel["contact." + k] = []
        attrs = {}
        for (typ, kind, ts, units, av, idx) in events:
            if typ in ("purchase", "refund"):
                self.sel[typ].append((ts, units))
            elif typ == "contact":
                self.sel["contact"].append((ts, units))
                self.sel["contact." + kind].append((ts, units))
            for key, value in av.items():
                cur = attrs.get(key)
                if cur is None or (ts, idx) > cur[0]:
                    attrs[key] = ((ts, idx), value)
        self.attrs = {k: v[1] for k, v in attrs.items()}
        self.latest = {s: max(ts for ts, _ in lst) for s, lst in self.sel.items() if lst}
        p = self.sel["purchase"]
        self.first_p = min(ts for ts, _ in p) if p else None
        self.last_p = self.latest.get("purchase")

    def base(self, G):
        if G[0] == "recency":
            return self.last_p
        if G[0] == "age":
            return self.first_p
        return self.latest.get(G[1])


class Ctx:
    __slots__ = ("t", "st", "dims", "rv", "memo")

    def __init__(self, t, st, dims, rv):
        self.t, self.st, self.dims, self.rv = t, st, dims, rv
        self.memo = {}


def compile_node(node):
    """A checked node as a function of the context (None: absent). Plain
    closures, one per node: the tree walk, done once."""
    if node.op == "lit" or node.folded is not None:
        v = node.val if node.op == "lit" else node.folded[0]
        return lambda c: v
    op = node.op
    k = [compile_node(x) for x in node.kids] if op not in ("in", "call") else None
    if op == "or":
        a, b = k
        return lambda c: ("B", truthy(a(c)) or truthy(b(c)))
    if op == "and":
        a, b = k
        return lambda c: ("B", truthy(a(c)) and truthy(b(c)))
    if op == "not":
        a = k[0]
        return lambda c: ("B", not truthy(a(c)))
    if op == "cmp":
        a, b = k
        cop = node.val
        return lambda c: ("B", compare(cop, a(c), b(c)))
    if op == "in":
        x = compile_node(node.kids[0])
        items = [compile_node(e) for e in node.kids[1].kids]
        return lambda c: ("B", any(compare("==", x(c), e(c)) for e in items))
    if op in ("+", "-", "*", "/"):
        a, b = k
        return lambda c: arith(op, a(c), b(c))
    if op == "neg":
        a = k[0]
        return lambda c: negate(a(c))
    if op == "name":
        name = node.val
        if name == "recency":
            return lambda c: None if c.st.last_p is None else ("D", c.t - c.st.last_p)
        if name == "age":
            return lambda c: None if c.st.first_p is None else ("D", c.t - c.st.first_p)

        def named(c):
            if name in c.rv:
                return c.rv[name]
            v = c.dims.get(name)
            return None if v is None else ("S", v)
        return named
    if op == "call":
        f = node.val[0]
        if f in ("count", "sum"):
            key = node.val

            def window(c):
                v = c.memo.get(key)
                if v is None:
                    _, sel, w = key
                    lo, t = c.t - w, c.t
                    inside = [u for ts, u in c.st.sel[sel] if lo < ts <= t]
                    v = ("N", UNIT * len(inside)) if f == "count" else exact(sum(inside))
                    c.memo[key] = v
                return v
            return window
        if f == "since":
            sel = node.val[1]

            def since(c):
                b = c.st.latest.get(sel)
                return None if b is None else ("D", c.t - b)
            return since
        if f == "attr":
            key = node.val[1]
            return lambda c: c.st.attrs.get(key)
        if f == "has":
            a = compile_node(node.kids[0])
            return lambda c: ("B", a(c) is not None)
        if f == "if":
            cond, a, b = (compile_node(x) for x in node.kids)
            return lambda c: a(c) if truthy(cond(c)) else b(c)
        if f == "tier":
            x = compile_node(node.kids[0])
            bounds = node.val[1]
            return lambda c: tier(x(c), bounds)
    raise AssertionError(op)


def tier(x, bounds):
    """How many bounds are <= x; absent if x is absent or of another type."""
    if x is None or (x[0] == "D") != (bounds[0][0] == "D") or x[0] in ("S", "B"):
        return None
    return ("N", UNIT * sum(1 for b in bounds if compare("<=", b, x)))


def const_value(node):
    """A constant node's value (folded once); RuleError for a constant
    duration that is not whole seconds."""
    if node.op == "lit":
        return node.val
    if node.folded is None:
        try:
            node.folded = (evaluate_const(node),)
        except RuleError as e:
            if e.pos is None:
                e.pos = node.pos
            raise
    return node.folded[0]


def evaluate_const(node):
    if node.op == "call" and node.val[0] in ("has", "if", "tier"):
        f = node.val[0]
        if f == "has":
            return ("B", evaluate_const(node.kids[0]) is not None)
        if f == "if":
            cond = evaluate_const(node.kids[0])
            return evaluate_const(node.kids[1] if truthy(cond) else node.kids[2])
        return tier(evaluate_const(node.kids[0]), node.val[1])
    if node.op in ("lit",):
        return node.val
    kids = [evaluate_const(k) for k in node.kids] if node.op != "in" else None
    op = node.op
    if op == "or":
        return ("B", truthy(kids[0]) or truthy(kids[1]))
    if op == "and":
        return ("B", truthy(kids[0]) and truthy(kids[1]))
    if op == "not":
        return ("B", not truthy(kids[0]))
    if op == "cmp":
        return ("B", compare(node.val, kids[0], kids[1]))
    if op == "in":
        x = evaluate_const(node.kids[0])
        return ("B", any(compare("==", x, evaluate_const(e)) for e in node.kids[1].kids))
    if op in ("+", "-", "*", "/"):
        return arith(op, kids[0], kids[1], True)
    if op == "neg":
        return negate(kids[0])
    raise AssertionError(op)


# ---------------------------------------------------------------- config

class RuleSet:
    def __init__(self, cfg, rules):
        self.cfg = cfg
        self.rules = rules
        self.g_offsets = sorted(set(o for r in rules for o in r.g_offsets))
        self.windows = sorted(set(w for r in rules for w in r.windows))
        for r in rules:
            r.fn_where = None if r.where is None else compile_node(r.where)
            r.fn_when = None if r.when is None else compile_node(r.when)
            r.fn_cases = [(label, compile_node(e)) for label, e in r.cases]
            r.fn_value = None if r.value is None else compile_node(r.value)


def node_pos(node, offset):
    """(line, col), 1-based, of offset in a YAML scalar node's text; exact
    for one-line plain and quoted scalars, the scalar's start otherwise."""
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if offset is None:
        return line, col
    if node.style in (None, "'", '"') and "\n" not in node.value:
        return line, col + offset + (1 if node.style else 0)
    return line, col


def load(path, sets=()):
    """(cfg, RuleSet) from a segd YAML file; raises ConfigError."""
    import yaml
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        root = yaml.compose(text)
        tree = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError("%s: %s" % (path, str(e).replace("\n", " ")))
    if not isinstance(tree, dict):
        raise ConfigError("%s: the configuration must be a mapping" % path)
    builtin_tree = dict(tree)
    seg = builtin_tree.get("segments")
    if isinstance(seg, dict):
        seg = dict(seg)
        for k in ("rules", "retain", "predict"):
            seg.pop(k, None)
        builtin_tree["segments"] = seg
    cfg = segref.default_config()
    try:
        segref.apply_tree(cfg, builtin_tree)
        for assignment in sets:
            key, sep, value = assignment.partition("=")
            if not sep or key not in cfg:
                raise ValueError("--set %s: unknown key" % assignment)
            cfg[key] = segref.parse_value(segref.key_kind(key), value, key)
    except ValueError as e:
        raise ConfigError("%s: %s" % (path, e))
    rules_node = None
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if k.value == "segments" and isinstance(v, yaml.MappingNode):
                for k2, v2 in v.value:
                    if k2.value == "rules":
                        rules_node = v2
    return cfg, check_rules(path, cfg, rules_node)


class ConfigError(Exception):
    pass


def check_rules(path, cfg, rules_node):
    import yaml

    def fail(node, msg, rule=None, offset=None):
        line, col = node_pos(node, offset)
        raise ConfigError("%s:%d:%d: %s%s" % (path, line, col,
                                              "rule '%s': " % rule if rule else "", msg))

    if rules_node is None or (isinstance(rules_node, yaml.ScalarNode)
                              and rules_node.tag.endswith(":null")):
        return RuleSet(cfg, [])
    if not isinstance(rules_node, yaml.MappingNode):
        fail(rules_node, "segments.rules must be a mapping of rule names to rules")
    entries = rules_node.value
    if len(entries) > MAX_RULES:
        fail(entries[MAX_RULES][0], "more than %d rules" % MAX_RULES)
    names = []
    for k, _ in entries:
        if not isinstance(k, yaml.ScalarNode) or not RULE_NAME.fullmatch(k.value):
            fail(k, "bad rule name %r: 1 to 64 of a-z, 0-9, _, starting with a letter"
                 % getattr(k, "value", "?"))
        if k.value in names:
            fail(k, "rule '%s' is defined twice" % k.value)
        names.append(k.value)
    lines = {k.value: k.start_mark.line + 1 for k, _ in entries}
    above = {}
    rules = []
    for i, (k, v) in enumerate(entries):
        name = k.value
        if name in BUILTINS and cfg["segments.%s.enabled" % name]:
            fail(k, "a rule is named like the built-in dimension '%s'; switch it off "
                 "(segments.%s.enabled: false) or rename the rule" % (name, name))
        if name in FEATURE_NAMES:
            fail(k, "a rule is named like the feature '%s'" % name)
        if not isinstance(v, yaml.MappingNode):
            fail(v, "a rule must be a mapping (when, cases or value)", name)
        keys = {}
        for kk, vv in v.value:
            if kk.value not in RULE_KEYS:
                fail(kk, "unknown key '%s' (%s)" % (kk.value, ", ".join(RULE_KEYS)), name)
            if kk.value in keys:
                fail(kk, "key '%s' twice" % kk.value, name)
            keys[kk.value] = (kk, vv)
        forms = [f for f in ("when", "cases", "value") if f in keys]
        if len(forms) != 1:
            fail(k, "a rule has exactly one of when, cases, value (has %s)"
                 % (", ".join(forms) or "none"), name)
        if "else" in keys and "cases" not in keys:
            fail(keys["else"][0], "'else' without 'cases'", name)
        if "description" in keys and not isinstance(keys["description"][1], yaml.ScalarNode):
            fail(keys["description"][1], "description must be text", name)
        rule = RuleInfo(name)
        below = {n: lines[n] for n in names[i + 1:]}
        chk = Checker(cfg, rule, above, below)

        def expr(vnode, want):
            if not isinstance(vnode, yaml.ScalarNode):
                fail(vnode, "an expression must be a scalar", name)
            try:
                node = Parser(vnode.value).parse()
                chk.top(node, want)
            except RuleError as e:
                fail(vnode, e.msg, name, e.pos)
            return node

        if "where" in keys:
            rule.where = expr(keys["where"][1], ("bool", "any"))
        if "when" in keys:
            rule.form = "membership"
            rule.when = expr(keys["when"][1], ("bool", "any"))
            rule.ty, rule.labels = "str", frozenset(["in", "out"])
        elif "cases" in keys:
            rule.form = "graded"
            cnode = keys["cases"][1]
            if not isinstance(cnode, yaml.SequenceNode) or not cnode.value:
                fail(cnode, "cases must be a non-empty list of '- LABEL: EXPR'", name)
            labels = set()
            for item in cnode.value:
                if not isinstance(item, yaml.MappingNode) or len(item.value) != 1:
                    fail(item, "a case is a one-key mapping '- LABEL: EXPR'", name)
                lk, lv = item.value[0]
                if not isinstance(lk, yaml.ScalarNode) or not LABEL.fullmatch(lk.value):
                    fail(lk, "bad label %r" % getattr(lk, "value", "?"), name)
                rule.cases.append((lk.value, expr(lv, ("bool", "any"))))
                labels.add(lk.value)
            if "else" in keys:
                en = keys["else"][1]
                if not isinstance(en, yaml.ScalarNode) or not LABEL.fullmatch(en.value):
                    fail(en, "bad label %r" % getattr(en, "value", "?"), name)
                rule.else_label = en.value
                labels.add(en.value)
            rule.ty, rule.labels = "str", frozenset(labels)
        else:
            rule.form = "computed"
            rule.value = expr(keys["value"][1], ("num", "str", "any"))
            rule.ty = rule.value.ty
        rule.initial = "out" if rule.form == "membership" and rule.where is None else None
        above[name] = rule
        rules.append(rule)
    return RuleSet(cfg, rules)


# ------------------------------------------------------------ input

def decode(line, max_record_bytes):
    """One NDJSON record -> (type, kind, customer_id, ts, units, attrs)
    with attrs {key: value or None (unset)}. docs/events.md plus the
    profile type, the call kind, and contact amounts kept (sum(contact))."""
    if len(line) > max_record_bytes:
        raise Reject("oversized_record")
    try:
        obj = json.loads(line.decode("utf-8"), parse_float=Decimal, parse_int=Decimal,
                         parse_constant=segref._no_constants,
                         object_pairs_hook=segref._first_wins)
    except (ValueError, RecursionError):
        raise Reject("invalid_json")
    if not isinstance(obj, dict):
        raise Reject("not_object")
    typ = obj.get("type")
    if typ is None:
        raise Reject("missing_field")
    if not isinstance(typ, str):
        raise Reject("wrong_field_type")
    if typ not in TYPES:
        raise Reject("unknown_type")
    cid = obj.get("customer_id")
    if cid is None:
        raise Reject("missing_field")
    if not isinstance(cid, str):
        raise Reject("wrong_field_type")
    if cid == "":
        raise Reject("empty_customer_id")
    if len(cid.encode("utf-8", "surrogatepass")) > segref.CUSTOMER_ID_MAX:
        raise Reject("oversized_customer_id")
    if "\0" in cid:
        raise Reject("bad_field")
    raw_ts = obj.get("ts")
    if raw_ts is None:
        raise Reject("missing_field")
    if isinstance(raw_ts, str):
        ts = segref.parse_rfc3339(raw_ts)
    elif isinstance(raw_ts, Decimal) and raw_ts == raw_ts.to_integral_value() \
            and abs(raw_ts) < Decimal(10) ** 18:
        ts = int(raw_ts) // 1000
        if ts < segref.TS_MIN or ts > segref.TS_MAX:
            ts = None
    else:
        ts = None
    if ts is None:
        raise Reject("bad_timestamp")
    kind = None
    units = 0
    if typ != "profile":
        if typ == "contact":
            kind = obj.get("kind")
            if kind is None:
                raise Reject("missing_field")
            if not isinstance(kind, str):
                raise Reject("wrong_field_type")
            if kind not in KINDS:
                raise Reject("unknown_kind")
        amount = obj.get("amount")
        if amount is None:
            if typ != "contact":
                raise Reject("missing_field")
        else:
            if not isinstance(amount, Decimal):
                raise Reject("wrong_field_type")
            if abs(amount) > Decimal(MONEY_MAX):
                raise Reject("bad_amount")
            scaled = amount * UNIT
            units = int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))
            if abs(scaled) > MONEY_MAX:
                raise Reject("bad_amount")
            if amount < 0:
                raise Reject("negative_amount")
    # events.md: only amount and kind mean nothing on a profile; the
    # common optional fields are checked on every type.
    rating = obj.get("rating")
    if rating is not None:
        if not isinstance(rating, Decimal):
            raise Reject("wrong_field_type")
        if rating != rating.to_integral_value() or not 1 <= rating <= 5:
            raise Reject("bad_rating")
    for name in ("event_id", "currency", "channel"):
        v = obj.get(name)
        if v is not None and not isinstance(v, str):
            raise Reject("wrong_field_type")
    attrs = obj.get("attrs")
    if attrs is not None and not isinstance(attrs, dict):
        raise Reject("wrong_field_type")
    av = {}
    for key, raw in (attrs or {}).items():
        ok, value = attr_value(raw)
        if ok:
            av[key] = value
    return (typ, kind, cid, ts, units, av)


# ------------------------------------------------------------ simulation

def builtin_instants(cfg, events, mode):
    """The built-in dimensions' candidate instants (docs/segments.md), of
    the enabled dimensions only (mode 'enabled', docs/rules.md item 4) or
    of all four whatever is enabled (mode 'all', docs/segments.md)."""
    on = {d: mode == "all" or cfg["segments.%s.enabled" % d] for d in BUILTINS}
    W = cfg["segments.window"]
    out = set()
    purchases = [ts for (typ, _, ts, _, _, _) in events if typ == "purchase"]
    refunds = [ts for (typ, _, ts, _, _, _) in events if typ == "refund"]
    if purchases and (on["lifecycle"] or on["rfm"]):
        last, first = max(purchases), min(purchases)
        if on["lifecycle"]:
            for k in ("at_risk_after", "silent_after", "churned_after"):
                out.add(last + cfg["segments.lifecycle." + k])
            out.add(first + cfg["segments.lifecycle.new_for"])
        if on["rfm"]:
            for d in cfg["segments.rfm.recency"]:
                out.add(last + d)
    if on["lifecycle"] or on["value"] or on["rfm"]:
        out.update(ts + W for ts in purchases)
    if on["value"] or on["rfm"]:
        out.update(ts + W for ts in refunds)
    if on["dissatisfied"]:
        WC = cfg["segments.dissatisfied.window"]
        out.update(ts + WC for (typ, kind, ts, _, _, _) in events
                   if typ == "contact" and kind == "complaint")
    return out


class Customer:
    def __init__(self, cid, sim):
        self.cid = cid
        self.sim = sim
        self.events = []
        self.st = State([])
        self.clock = None
        self.scanned = None
        self.seq = 0
        self.last = {}
        for d in sim.builtins_on:
            self.last[d] = "out" if d == "dissatisfied" else None
        for r in sim.ruleset.rules:
            self.last[r.name] = r.initial

    def fold(self, ev):
        self.events.append(ev)
        self.st = State(self.events)
        self.events4 = [(e[0], e[1], e[2], e[3]) for e in self.events]     # segref's form

    def values(self, t):
        """[(dimension, text or None)] at instant t, built-ins first."""
        sim = self.sim
        out = []
        dims = {}
        if sim.builtins_on:
            f = sim.builtin.features(self.events4, t)
            for d, v in sim.builtin.values(f):
                dims[d] = v
                out.append((d, v))
        rv = {}
        c = Ctx(t, self.st, dims, rv)
        for r in sim.ruleset.rules:
            raw = None
            if r.fn_where is None or truthy(r.fn_where(c)):
                if r.form == "membership":
                    raw = ("S", "in" if truthy(r.fn_when(c)) else "out")
                elif r.form == "graded":
                    raw = None
                    for label, fn in r.fn_cases:
                        if truthy(fn(c)):
                            raw = ("S", label)
                            break
                    else:
                        if r.else_label is not None:
                            raw = ("S", r.else_label)
                else:
                    raw = r.fn_value(c)
            rv[r.name] = raw
            out.append((r.name, None if raw is None else to_text(raw)))
        return out

    def evaluate(self, t, cause):
        changed = False
        for d, v in self.values(t):
            if d in BUILTINS and d in self.sim.builtins_on and v is None:
                continue                  # built-ins never return to undefined
            if v != self.last[d]:
                self.seq += 1
                self.sim.emit(self, d, self.last[d], v, t, cause)
                self.last[d] = v
                changed = True
        return changed

    def candidates(self):
        sim = self.sim
        st = self.st
        out = builtin_instants(sim.cfg, self.events, sim.builtin_mode)
        for G, off in sim.ruleset.g_offsets:
            b = st.base(G)
            if b is not None:
                out.add(b + off)
        for sel, w in sim.ruleset.windows:
            out.update(ts + w for ts, _ in st.sel[sel])
        return out


class Sim:
    def __init__(self, cfg, ruleset, brute, builtin_mode, emit):
        self.cfg = cfg
        self.ruleset = ruleset
        self.brute = brute
        self.builtin_mode = builtin_mode
        self.builtins_on = [d for d in BUILTINS if cfg["segments.%s.enabled" % d]]
        self.builtin = segref.Rules(cfg)
        self.emit = emit
        self.non_candidate = []

    def advance(self, cust, limit):
        if self.brute:
            cands = cust.candidates()
            for s in range(cust.scanned + 1, limit + 1):
                changed = cust.evaluate(s, "time")
                if s in cands:
                    cust.clock = s
                elif changed:
                    self.non_candidate.append((cust.cid, s))
            cust.scanned = max(cust.scanned, limit)
            return
        cands = sorted(x for x in cust.candidates() if x > cust.clock)
        for s in cands:
            if s > limit:
                break
            cust.evaluate(s, "time")
            cust.clock = s

    def simulate(self, cust, timeline, end):
        for horizon, ev in timeline:
            if cust.clock is not None:
                self.advance(cust, horizon)
            cust.fold(ev)
            ts = ev[2]
            t = ts if cust.clock is None else max(cust.clock, ts)
            cust.evaluate(t, "event")
            cust.clock = t
            cust.scanned = t
        if cust.clock is not None:
            self.advance(cust, end)


PLAIN = re.compile(r'[^"\\\x00-\x1f]*')


def json_str(s):
    if PLAIN.fullmatch(s):
        return '"%s"' % s
    return json.dumps(s, ensure_ascii=False)


def run(stream, cfg, ruleset, until, out, brute=False, builtin_mode="enabled"):
    reasons = {}
    valid = []
    records = 0
    for line in segref.read_records(stream):
        records += 1
        try:
            valid.append(decode(line, cfg["input.max_record_bytes"]))
        except Reject as r:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
    counts = {}
    summary = {"records": records, "valid": len(valid),
               "rejected": sum(reasons.values()), "rejected_by_reason": reasons,
               "customers": 0, "transitions": counts,
               "mode": "brute-force" if brute else "candidate"}
    if not valid:
        return summary
    end = max(ev[3] for ev in valid)
    if until is not None:
        end = max(end, until)
    summary["end"] = segref.format_ts(end)
    tsmax = segref.SparseMax([ev[3] for ev in valid])
    timelines = {}
    previous = {}
    for i, (typ, kind, cid, ts, units, av) in enumerate(valid):
        p = previous.get(cid)
        horizon = ts if p is None else tsmax.query(p + 1, i)
        previous[cid] = i
        timelines.setdefault(cid, []).append((horizon, (typ, kind, ts, units, av, i)))
    summary["customers"] = len(timelines)

    lines = []

    def emit(cust, dim, frm, to, t, cause):
        counts[dim] = counts.get(dim, 0) + 1
        lines.append('{"id":%s,"customer_id":%s,"seq":%d,"dimension":"%s","from":%s,'
                     '"to":%s,"at":"%s","cause":"%s"}\n'
                     % (json_str("%s:%d" % (cust.cid, cust.seq)), json_str(cust.cid), cust.seq,
                        dim, "null" if frm is None else json_str(frm),
                        "null" if to is None else json_str(to), segref.format_ts(t), cause))

    sim = Sim(cfg, ruleset, brute, builtin_mode, emit)
    for cid in sorted(timelines, key=lambda c: c.encode("utf-8", "surrogatepass")):
        lines.clear()
        sim.simulate(Customer(cid, sim), timelines[cid], end)
        out.write("".join(lines))
    if brute:
        summary["non_candidate_changes"] = len(sim.non_candidate)
        summary["non_candidate_examples"] = [
            {"customer_id": c, "at": segref.format_ts(s)} for c, s in sim.non_candidate[:5]]
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description="independent reference of docs/rules.md")
    ap.add_argument("input", nargs="?", default="-")
    ap.add_argument("--config", help="segd YAML config (segments.rules and the built-ins)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override one built-in key, e.g. segments.window=600s")
    ap.add_argument("--until", help="RFC 3339 end of time")
    ap.add_argument("--brute-force", action="store_true",
                    help="evaluate every rule at every second of the history")
    ap.add_argument("--builtin-instants", choices=("enabled", "all"), default="enabled",
                    help="candidate instants of the enabled built-ins only (docs/rules.md), "
                         "or of all four (docs/segments.md)")
    ap.add_argument("--check", action="store_true", help="only check the configuration")
    args = ap.parse_args(argv)
    try:
        if args.config:
            cfg, ruleset = load(args.config, args.set)
        else:
            cfg = segref.load_config(argparse.Namespace(config=None, config_json=None,
                                                        set=args.set))
            ruleset = RuleSet(cfg, [])
    except (ConfigError, ValueError) as e:
        print("segrules: %s" % e, file=sys.stderr)
        return 3
    if args.check:
        print("%s: ok (%d rules)" % (args.config, len(ruleset.rules)))
        return 0
    until = None
    if args.until is not None:
        until = segref.parse_rfc3339(args.until)
        if until is None:
            print("segrules: bad --until %r" % args.until, file=sys.stderr)
            return 2
    try:
        stream = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
    except OSError as e:
        print("segrules: %s" % e, file=sys.stderr)
        return 1
    with stream:
        summary = run(stream, cfg, ruleset, until, sys.stdout, args.brute_force,
                      args.builtin_instants)
    sys.stdout.flush()
    print(json.dumps(summary, sort_keys=True), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
