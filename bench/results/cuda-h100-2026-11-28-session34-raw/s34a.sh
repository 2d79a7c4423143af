#!/bin/bash
# Session 34, call 1: the 4-warp L2 prefetch (p4w, branch s33-prefetch-4warp) under the CUDA tests,
# then A B A B against main's kernels (lb3) at 4K-32K, GQA 4 and MHA; then issue 3's item 3 shapes
# (gpu-check's stage shapes) on main.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in lb3 p4w; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/p4w/qsdpa_tests
n=16; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-p4w-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "p4w tests: passed $(grep -h '^\[  PASSED' $OUT/t-p4w-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-p4w-*.log | sort -u | head
ab() {  # name bin heads contexts
  pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads $3 --context $4 \
    --formats mxfp4,nvfp4 --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2; do
  for b in lb3 p4w; do
    ab g-$b-$r $b 32:8 4096,8192,16384,32768
    ab m-$b-$r $b 32:32 4096,32768
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, re, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[gm]-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(h, row["k_format"], row["context"])][side].append(row["time_us"])
print("heads format  context            lb3            p4w")
for k in sorted(t):
    print("%-5s %-7s %7d " % k + " ".join("%14s" % " ".join("%.2f" % v for v in t[k][s]) for s in ["lb3", "p4w"]))
PY
QSDPA_PREBUILT=third_party_carry/lb3.tar.xz QSDPA_STAGES=shapes timeout 280 bash scripts/gpu-check.sh > "$OUT/shapes.log" 2>&1
tail -60 "$OUT/shapes.log"
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
