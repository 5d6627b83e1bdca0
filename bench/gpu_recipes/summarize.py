"""Table of gpu_recipes.py results: per variant mean/min/max dev accuracy over seeds, and the paired
difference to the baseline (same seed = same initial weights, dropout draws and shuffle order).

Usage: python bench/gpu_recipes/summarize.py results.jsonl
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


def main(path: str) -> None:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    by = defaultdict(dict)
    for r in rows:
        by[r["variant"]][r["seed"]] = r
    base = by.get("baseline", {})
    base_cost = None
    if base:
        b = next(iter(base.values()))
        base_cost = b["images_seen"] * b["fwd_mflops"]
    print(f"{'variant':11s} {'n':>2s} {'mean%':>7s} {'min%':>6s} {'max%':>6s} {'errs':>6s} "
          f"{'CER':>7s} {'seen':>7s} {'rel.cost':>8s} {'paired diff vs base (pp)':>26s}  per-seed %")
    for v, seeds in by.items():
        accs = [seeds[s]["dev_acc"] * 100 for s in sorted(seeds)]
        errs = statistics.mean(seeds[s]["dev_errors"] for s in seeds)
        cer = statistics.mean(seeds[s]["dev_cer"] for s in seeds)
        r0 = next(iter(seeds.values()))
        cost = r0["images_seen"] * r0["fwd_mflops"] / base_cost if base_cost else float("nan")
        paired = [100 * (seeds[s]["dev_acc"] - base[s]["dev_acc"]) for s in sorted(seeds) if s in base]
        if v != "baseline" and len(paired) > 1:
            m, sd = statistics.mean(paired), statistics.stdev(paired)
            se = sd / len(paired) ** 0.5
            wins = sum(p > 0 for p in paired), sum(p < 0 for p in paired)
            diff = f"{m:+.3f} +- {se:.3f} (W{wins[0]}/L{wins[1]})"
        else:
            diff = ""
        print(f"{v:11s} {len(accs):2d} {statistics.mean(accs):7.3f} {min(accs):6.2f} {max(accs):6.2f} "
              f"{errs:6.1f} {cer:7.4f} {r0['images_seen']:7d} {cost:8.2f} {diff:>26s}  "
              + " ".join(f"{a:.2f}" for a in accs))
    groups = {}
    for r in rows:
        groups[r["group"]] = (r["runs_in_group"], r["compile_s"], r["group_train_s"], r["group_eval_s"],
                              r["steps"])
    print("\ngroup: runs vmapped, compile s, train s (all runs together), eval s, steps")
    for g, t in sorted(groups.items()):
        print(g, t)


if __name__ == "__main__":
    main(sys.argv[1])
