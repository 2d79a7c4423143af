#!/bin/bash
# Session 35, call 3: the prologue's L2 prefetch of the steps after the first (pp2: 2 steps, pp4:
# 4 steps; every rolling family, every kernel) against mb35 (main's kernels), A B C A B C in one
# call, all with the new batch rule. Then the SASS-free check that the variants still pass the
# CUDA tests that cover the rolling kernels (a quick subset; the full run follows for the winner).
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in mb35 pp2 pp4; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  cat pb/$a/COMMIT
done
ab() {  # name bin heads contexts formats
  pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads $3 --context $4 \
    --formats $5 --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2; do
  for b in mb35 pp2 pp4; do
    ab g-$b-$r $b 32:8 4096,32768,131072 mxfp4,nvfp4,affine4,mxfp8,affine8,turbo4
    ab m-$b-$r $b 32:32 32768 mxfp4,mxfp8,affine4
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[gm]-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(h, row["context"], row["k_format"])][side].append(row["time_us"])
        t[(h, row["context"], "f16")][side].append(row["f16_time_us"])
print("heads ctx    format         mb35             pp2             pp4")
for k in sorted(t):
    print("%-2s %7d %-8s " % k + " ".join("%15s" % " ".join("%.2f" % v for v in t[k][s][:2]) for s in ["mb35", "pp2", "pp4"]))
PY
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
