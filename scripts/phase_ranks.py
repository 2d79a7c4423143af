#!/usr/bin/env python3
"""When the split kernel's blocks end their loops, by launch rank and by SM.

Reads the per-block CSV that a -DQSDPA_PHASE_TIMES build writes where QSDPA_PHASE_CSV points
(src/cuda/phase_times.cuh; stage phases of scripts/gpu-check.sh sets it). A wave's SMs take blocks
in index order, so block i has launch rank i // SMs; per SM, the order of the blocks' starts gives a
local rank too. Prints, per launch rank, when its blocks start their loops and end them (mark 7:
the block's last warp done), how often the launch rank is also the block's rank on its SM, and the
loop's end by local rank; then the spread of the SMs' last ends.

Session 24 found the ranks end in order (mxfp4 128K: rank 0 at 53.0 µs, rank 3 at 60.7 on
average), but giving the early ranks more keys (branch s24-split-weights) evened the ranks' means
without moving the last block: the SMs' last ends vary from run to run, not with the SM or rank.

  phase_ranks.py CSV
"""
import csv
import statistics
import sys


def main():
    rows = [r for r in csv.DictReader(open(sys.argv[1])) if float(r["m0"]) >= 0 and float(r["m7"]) >= 0]
    sms = len({r["sm"] for r in rows})
    by_sm = {}
    for r in rows:
        by_sm.setdefault(r["sm"], []).append(r)
    local = {}
    for blocks in by_sm.values():
        for i, r in enumerate(sorted(blocks, key=lambda r: (float(r["m0"]), int(r["block"])))):
            local[r["block"]] = i
    ranks = max(int(r["block"]) // sms for r in rows) + 1
    print(f"{len(rows)} blocks on {sms} SMs, {ranks} launch ranks (µs from the first block's start)")
    print("rank  blocks  loop start  loop end (mean min max)  same local rank  | by local rank: loop end mean")
    for k in range(ranks):
        rk = [r for r in rows if int(r["block"]) // sms == k]
        e = [float(r["m7"]) for r in rk]
        s = [float(r["m2"]) for r in rk]
        agree = sum(local[r["block"]] == k for r in rk) / max(1, len(rk))
        lk = [float(r["m7"]) for r in rows if local[r["block"]] == k]
        print(f"{k:4d}  {len(rk):6d}  {statistics.mean(s):10.2f}  {statistics.mean(e):8.2f} {min(e):6.2f} {max(e):6.2f}"
              f"  {agree:15.2f}  | {statistics.mean(lk) if lk else float('nan'):8.2f}")
    last = sorted(max(float(r["m7"]) for r in blocks) for blocks in by_sm.values())
    print(f"SMs' last loop end: min {last[0]:.2f}, p50 {last[len(last) // 2]:.2f}, max {last[-1]:.2f}")


if __name__ == "__main__":
    main()
