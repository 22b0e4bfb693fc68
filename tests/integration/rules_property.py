#!/usr/bin/python3
"""rules_property: segd replay against the brute-force rule reference on
random (rules, history) pairs. Driven by test_rules_property.sh.

Why: docs/rules.md promises that a rule's value changes only at an event
or at a candidate instant segd computes from the rules, and that segd
publishes each change at its exact second. tests/reference/segrules.py
--brute-force evaluates every rule at every second of the history, so any
instant segd misses, any window edge off by one, any number printed
differently shows up as a difference. gen_rules.py draws the pairs from
fixed seeds: the same cases run every time, and a failing seed reproduces.

Per case:
  1. the reference itself: candidate mode == brute force, and no value
     changes at a second that is not a candidate instant (else the
     reference or the doc is wrong, and the case says so);
  2. segd replay --config C --input H --until U exits 0;
  3. segd's transition lines == the reference's, as sorted multisets.

On a mismatch the case (config.yaml, history.ndjson, both outputs, the
command lines) is saved under OUT/seed-N/ and the seed, the config, the
history and the differing lines of the first differing customer are
printed. If segd cannot run a case at all (exit status != 0) the first such
case is shown and the remaining cases are skipped: they would all say the
same.

Usage: rules_property.py --segd SEGD --out DIR [--cases N] [--seed S]
"""
import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import gen_rules  # noqa: E402
import segref  # noqa: E402
import segrules  # noqa: E402


def by_customer(lines):
    out = {}
    for l in lines:
        out.setdefault(json.loads(l)["customer_id"], []).append(l)
    return out


def minimal_diff(segd_lines, ref_lines):
    """The first customer whose lines differ, and its lines only in segd
    and only in the reference (in seq order)."""
    a, b = by_customer(segd_lines), by_customer(ref_lines)
    for cid in sorted(set(a) | set(b)):
        x, y = a.get(cid, []), b.get(cid, [])
        if sorted(x) != sorted(y):
            only_segd = [l for l in x if l not in y]
            only_ref = [l for l in y if l not in x]
            return cid, only_segd, only_ref
    return None, [], []


def indent(text, n=6):
    return "\n".join(" " * n + l for l in text.rstrip("\n").split("\n"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--segd", required=True)
    ap.add_argument("--out", required=True, help="where failing cases are saved")
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1000, help="first seed")
    ap.add_argument("--only", type=int, help="run this one seed")
    args = ap.parse_args()

    seeds = [args.only] if args.only is not None else list(range(args.seed, args.seed + args.cases))
    tmp = tempfile.mkdtemp(prefix="segd-rules-prop.")
    t0 = time.time()
    ok = ref_bad = segd_bad = 0
    lines_total = 0
    on_cases = off_cases = 0
    stopped = None
    failed_seeds = []
    try:
        for i, seed in enumerate(seeds):
            # Alternate built-ins on (rules read them) and all four off.
            builtins = (seed % 2 == 0)
            on_cases += builtins
            off_cases += not builtins
            cfg_text, hist, until, _ = gen_rules.case(seed, builtins)
            cfg_path = os.path.join(tmp, "config.yaml")
            hist_path = os.path.join(tmp, "history.ndjson")
            with open(cfg_path, "w", encoding="utf-8") as f:
                f.write(cfg_text)
            data = ("\n".join(hist) + "\n").encode("utf-8")
            with open(hist_path, "wb") as f:
                f.write(data)

            cfg, rs = segrules.load(cfg_path)
            u = segref.parse_rfc3339(until)
            outs, summaries = [], []
            for brute in (True, False):
                o = io.StringIO()
                summaries.append(segrules.run(io.BytesIO(data), cfg, rs, u, o, brute))
                outs.append(o.getvalue())
            ref_lines = outs[0].splitlines()
            lines_total += len(ref_lines)
            problems = []
            if outs[0] != outs[1]:
                problems.append("reference: candidate mode differs from brute force")
            if summaries[0]["non_candidate_changes"]:
                problems.append("reference: values change outside candidate instants: %s"
                                % summaries[0]["non_candidate_examples"])

            cmd = [args.segd, "replay", "--config", cfg_path, "--input", hist_path,
                   "--until", until]
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            segd_lines = p.stdout.decode("utf-8", "replace").splitlines()
            if p.returncode != 0:
                problems.append("segd replay exit %d: %s" % (
                    p.returncode, p.stderr.decode("utf-8", "replace").strip()[:600]))
            elif sorted(segd_lines) != sorted(ref_lines):
                cid, only_segd, only_ref = minimal_diff(segd_lines, ref_lines)
                problems.append("transitions differ (segd %d lines, reference %d); first "
                                "differing customer %s:\n    only in segd:\n%s\n    only in "
                                "the reference:\n%s" % (
                                    len(segd_lines), len(ref_lines), cid,
                                    indent("\n".join(only_segd[:15]) or "(none)"),
                                    indent("\n".join(only_ref[:15]) or "(none)")))
            if not problems:
                ok += 1
                continue

            if any(x.startswith("reference") for x in problems):
                ref_bad += 1
            else:
                segd_bad += 1
            failed_seeds.append(seed)
            keep = os.path.join(args.out, "seed-%d" % seed)
            os.makedirs(keep, exist_ok=True)
            shutil.copy(cfg_path, os.path.join(keep, "config.yaml"))
            shutil.copy(hist_path, os.path.join(keep, "history.ndjson"))
            with open(os.path.join(keep, "segd.out"), "w", encoding="utf-8") as f:
                f.write("\n".join(segd_lines) + ("\n" if segd_lines else ""))
            with open(os.path.join(keep, "ref.out"), "w", encoding="utf-8") as f:
                f.write(outs[0])
            with open(os.path.join(keep, "README"), "w", encoding="utf-8") as f:
                f.write("seed %d (built-ins %s)\nsegd replay --config config.yaml --input "
                        "history.ndjson --until %s\ntests/reference/segrules.py --brute-force "
                        "--config config.yaml --until %s history.ndjson\n"
                        % (seed, "on" if builtins else "off", until, until))
            if len(failed_seeds) <= 3:
                print("FAIL seed %d (built-ins %s), saved in %s" % (
                    seed, "on" if builtins else "off", keep))
                for pr in problems:
                    print("    " + pr)
                print("    config:\n" + indent(cfg_text))
                print("    history (--until %s):\n%s" % (until, indent("\n".join(hist))))
            if p.returncode != 0:
                stopped = i + 1
                break
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    run = stopped if stopped is not None else len(seeds)
    print("%d/%d cases agree (%d with built-ins on, %d off; %d reference transitions); "
          "%d reference failures, %d segd differences; %.1f s"
          % (ok, run, on_cases, off_cases, lines_total, ref_bad, segd_bad, time.time() - t0))
    if stopped is not None and stopped < len(seeds):
        print("stopped after case %d: segd could not run it; the other %d cases were skipped"
              % (stopped, len(seeds) - stopped))
    if failed_seeds:
        print("failing seeds: %s (rerun one: %s --segd SEGD --out DIR --only SEED)"
              % (" ".join(map(str, failed_seeds[:20])), sys.argv[0]))
    return 0 if ok == len(seeds) else 1


if __name__ == "__main__":
    sys.exit(main())
