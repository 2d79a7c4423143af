#!/bin/bash
# Session 34, call 2: p8 (the 4-warp L2 prefetch extended to the 8-bit pairs) under the CUDA tests
# and memcheck, then A B A B against main's kernels (lb3): GQA 4 32K / 128K, MHA 32K.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in lb3 p8; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
cat pb/p8/COMMIT
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/p8/qsdpa_tests
( timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 $T \
    --gtest_filter='*TensorCoreShapes/mxfp8*:*TensorCoreShapes/affine8*:*TensorCoreShapes/mxfp4:*TensorCoreShapes/nvfp4*:*CudaAttention.*/mxfp8_mxfp4:*CudaAttentionSplits.SplitCounts*' \
    > "$OUT/memcheck.log" 2>&1; echo "memcheck rc $?" >> "$OUT/memcheck.log" ) &
mc=$!
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-p8-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "p8 tests: passed $(grep -h '^\[  PASSED' $OUT/t-p8-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-p8-*.log | sort -u | head
wait $mc
echo "== memcheck: $(grep -E 'ERROR SUMMARY|rc [0-9]+' "$OUT/memcheck.log" | sort | uniq -c | tr '\n' ' ')"
grep -E "^\[  (PASSED|FAILED) " "$OUT/memcheck.log" | tail -3
ab() {  # name bin heads contexts formats
  pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads $3 --context $4 \
    --formats $5 --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2; do
  for b in lb3 p8; do
    ab g-$b-$r $b 32:8 32768,131072 mxfp8,affine8,mxfp4,nvfp4
    ab m-$b-$r $b 32:32 32768 mxfp8,affine8
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, re, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
peak = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[gm]-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    d = json.load(open(f)); peak.append(d.get("peak_gbps"))
    for row in d["rows"]:
        t[(h, row["k_format"], row["context"])][side].append((row["time_us"], row["gbps"]))
print("peaks", peak)
print("heads format  context                  lb3                  p8   (us, % of 2955)")
for k in sorted(t):
    print("%-5s %-7s %7d " % k + " ".join("%20s" % " ".join("%.2f" % v for v, _ in t[k][s]) for s in ["lb3", "p8"]),
          " ".join("%.1f%%" % (100 * g / 2955) for _, g in t[k]["p8"]))
PY
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
