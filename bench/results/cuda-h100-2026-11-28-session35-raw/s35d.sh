#!/bin/bash
# Session 35, call 4: fin35 (8ec398d: the prologue prefetch where call 3 found it gained) under the
# CUDA tests, the CLI's CUDA test and memcheck over the changed kernels; A B A B against mb35
# (main's kernels); then the README bench (stage bench) on fin35.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in mb35 fin35; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  cat pb/$a/COMMIT
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/fin35/qsdpa_tests
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-fin35-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "fin35 tests: passed $(grep -h '^\[  PASSED' $OUT/t-fin35-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-fin35-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-fin35-*.log | sort -u | head
QSDPA_CLI_PATH="$PWD/pb/fin35/qsdpa" timeout 60 pb/fin35/qsdpa_cli_tests --gtest_filter="*Cuda*" > "$OUT/cli.log" 2>&1; echo "cli tests rc $?"; grep -E "^\[  (PASSED|FAILED) " "$OUT/cli.log"
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 $T \
  --gtest_filter='*CudaAttention.*/mxfp8:*CudaAttention.*/affine8:*CudaAttention.*/mxfp4:*CudaAttentionSplits*:*TensorCoreShapes/mxfp8*:*TensorCoreShapes/nvfp4*' \
  > "$OUT/memcheck.log" 2>&1; echo "memcheck rc $?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | sort | uniq -c | tr '\n' ' ')"; grep -E "^\[  (PASSED|FAILED) " "$OUT/memcheck.log"
ab() {  # name bin heads contexts formats
  pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads $3 --context $4 \
    --formats $5 --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2; do
  for b in mb35 fin35; do
    ab g-$b-$r $b 32:8 4096,32768,131072 mxfp4,nvfp4,mxfp8,affine8
    ab m-$b-$r $b 32:32 32768 mxfp4,mxfp8
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
print("heads ctx    format         mb35           fin35")
for k in sorted(t):
    print("%-2s %7d %-8s " % k + " ".join("%15s" % " ".join("%.2f" % v for v in t[k][s][:2]) for s in ["mb35", "fin35"]))
PY
QSDPA_PREBUILT=third_party_carry/fin35.tar.xz QSDPA_STAGES=bench timeout 300 bash scripts/gpu-check.sh > "$OUT/bench.log" 2>&1
grep -A24 "Hkv=8" "$OUT/bench.log" | tail -20
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
