#!/usr/bin/env python3
"""A/B table of a device call's bench runs: the times of each side, round by round, and the change.

The probe scripts run `qsdpa bench --json DIR/<set>-<side>-<round>.json` (e.g. g-mn38-1.json,
m-tv1-2.json: any set name, a side name without dashes, a round number) with the sides alternating
inside each round, then print this table last:

    python3 scripts/ab_table.py DIR A B     # B's mean against A's, per (KV heads, context, format)
    python3 scripts/ab_table.py DIR         # sides in the order their names sort

Rows whose shape one side lacks show that side empty and no change.
"""
import collections
import glob
import json
import os
import sys


def load(folder):
    """{(hkv, context, k_format, v_format): {side: [time_us per round, in round order]}}"""
    times = collections.defaultdict(lambda: collections.defaultdict(list))
    runs = []
    for path in glob.glob(os.path.join(folder, "*-*-*.json")):
        parts = os.path.basename(path)[:-len(".json")].split("-")
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        runs.append((int(parts[2]), parts[1], path))
    for _, side, path in sorted(runs):
        with open(path) as f:
            for row in json.load(f)["rows"]:
                key = (row["hkv"], row["context"], row["k_format"], row.get("v_format", row["k_format"]))
                times[key][side].append(row["time_us"])
    return times


def main(argv):
    if len(argv) not in (2, 4):
        sys.exit(__doc__)
    times = load(argv[1])
    sides = argv[2:] or sorted({s for per_side in times.values() for s in per_side})
    if len(sides) != 2:
        sys.exit(f"ab_table: expected two sides, found {sides}")
    a, b = sides
    print(f"hkv context format        {a:>24} {b:>24}  change")
    for (hkv, ctx, kf, vf), per_side in sorted(times.items()):
        name = kf if kf == vf else f"{kf}:{vf}"
        ta, tb = per_side.get(a, []), per_side.get(b, [])
        change = f"{100 * (sum(tb) / len(tb)) / (sum(ta) / len(ta)) - 100:+.1f}%" if ta and tb else ""
        print(f"{hkv:3d} {ctx:7d} {name:13s} {' '.join(f'{t:.2f}' for t in ta):>24} "
              f"{' '.join(f'{t:.2f}' for t in tb):>24}  {change}")


if __name__ == "__main__":
    main(sys.argv)
