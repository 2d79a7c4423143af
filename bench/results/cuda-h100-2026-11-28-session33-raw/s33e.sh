#!/bin/bash
# Session 33, call 5: L2 prefetch of the rows N steps ahead (pf, QSDPA_L2_PREFETCH=N; 0 = off, the
# same binary) against lb3 (no prefetch code): whole-SM tests with N = 2, then two rounds.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in lb3 pf fin32; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
QSDPA_L2_PREFETCH=2 timeout 150 pb/pf/qsdpa_tests --gtest_filter='*CudaAttentionSplits.WholeSm*:*TensorCoreShapes/mxfp4' > "$OUT/t-pf2.log" 2>&1
grep -E "^\[  (PASSED|FAILED) " "$OUT/t-pf2.log"
bench() {  # name bin N
  QSDPA_L2_PREFETCH=$3 pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --context 32768,131072 \
    --formats mxfp4,nvfp4,affine4 --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2; do
  bench base$r lb3 0
  for n in 0 2 3 5; do bench pf$n-$r pf $n; done
done
python3 - "$OUT" <<'PY'
import json, glob, os, re, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in glob.glob(os.path.join(sys.argv[1], "[bp]*.json")):
    side = re.sub(r"-?\d$", "", os.path.basename(f)[:-5])
    for r in json.load(open(f))["rows"]:
        t[(r["k_format"], r["context"])][side].append(r["time_us"])
sides = ["base", "pf0", "pf2", "pf3", "pf5"]
print("%-8s %7s " % ("format", "context") + " ".join("%14s" % s for s in sides))
for k in sorted(t):
    print("%-8s %7d " % k + " ".join("%14s" % " ".join("%.2f" % v for v in t[k][s]) for s in sides))
PY
# The 8-row affine4 kernels (tile code 1) have more local accesses with lb3 (5 -> 10 a step, fewer
# instructions): B 8, Lq 2, 32K against main's kernels (fin32), A B A B.
for r in 1 2; do
  for b in fin32 lb3; do
    pb/$b/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --batch 8 --lq 2 --context 32768 --formats affine4,affine4-g32,mxfp4 \
      --json "$OUT/lq2-$b-$r.json" > "$OUT/lq2-$b-$r.log" 2>&1 || tail -3 "$OUT/lq2-$b-$r.log"
    grep -E "^ *(affine4|affine4-g32|mxfp4):" "$OUT/lq2-$b-$r.log" | sed "s/^/$b /"
  done
done
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
