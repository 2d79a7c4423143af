#!/usr/bin/env python3
"""Stall samples of the hot loop's instructions in an `ncu --page source --csv --print-source sass`
export (gpu-check's stage ncusrc): the loop is the set of instructions executed the most times.
    python3 loop_stalls.py ncu-source.csv.gz
"""
import collections, csv, gzip, sys

path = sys.argv[1]
rows = list(csv.reader(gzip.open(path, "rt") if path.endswith(".gz") else open(path)))
hdr, data = rows[1], rows[2:]
ix = {h: i for i, h in enumerate(hdr)}


def num(x):
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return 0.0


recs = [dict(src=r[ix["Source"]], samples=num(r[ix["Warp Stall Sampling (All Samples)"]]),
             ex=num(r[ix["Instructions Executed"]]),
             stalls={h[6:]: num(r[ix[h]]) for h in hdr if h.startswith("stall_") and "(Not" not in h})
        for r in data if len(r) >= len(hdr)]
top = max(x["ex"] for x in recs)
loop = [x for x in recs if x["ex"] == top]
total, in_loop = sum(x["samples"] for x in recs), sum(x["samples"] for x in loop)
print(f"hot loop: {len(loop)} instructions executed {top:.0f} times each; {in_loop:.0f} of {total:.0f} samples")
mix = collections.Counter()
for x in loop:
    mix.update(x["stalls"])
print("stall mix:", ", ".join(f"{k} {100 * v / in_loop:.0f}%" for k, v in mix.most_common(8)))
by_op, count = collections.defaultdict(collections.Counter), collections.Counter()
for x in loop:
    words = x["src"].split()
    op = (words[1] if words[0].startswith("@") else words[0]).split(".")[0]
    count[op] += 1
    by_op[op].update(x["stalls"])
    by_op[op]["(samples)"] += x["samples"]
for op, c in sorted(by_op.items(), key=lambda kv: -kv[1]["(samples)"])[:12]:
    s = c.pop("(samples)")
    print(f"{op:8s} {count[op]:4d} {100 * s / in_loop:5.1f}%  " + ", ".join(f"{k} {v:.0f}" for k, v in c.most_common(4)))
