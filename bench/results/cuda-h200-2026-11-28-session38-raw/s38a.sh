#!/bin/bash
# Prepared in session 37 for the next session (not run yet; ~480 s): an37 (branch
# s37-affine4-noinline: main + the whole-SM epilogue called noinline for affine 4-bit only; its affine
# 4-bit loops match ni36's, its mxfp4 / nvfp4 loops main's in length) under every CUDA test (200 s
# shard limits: the whole-SM test's CPU reference takes 130-152 s in a shard), memcheck over the
# whole-SM tests, then A B A B against wm37 (main) at GQA 4 4K and 128K.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in wm37 an37; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  cat pb/$a/COMMIT
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/an37/qsdpa_tests
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-an37-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "an37 tests: passed $(grep -h '^\[  PASSED' $OUT/t-an37-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-an37-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-an37-*.log | sort -u | head
for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-an37-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-an37-$s.log | tail -1)"; done
echo "tests done at ${SECONDS}s"
timeout 190 compute-sanitizer --tool memcheck --error-exitcode 9 $T --gtest_filter='CudaAttentionSplits.WholeSm*' > "$OUT/memcheck.log" 2>&1
echo "memcheck rc $?"; grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) " "$OUT/memcheck.log" | sort | uniq -c
ab() {  # name bin
  timeout 50 pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --context 4096,131072 \
    --formats affine4,affine4-g32,mxfp4,nvfp4 --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2 3; do
  for b in wm37 an37; do
    [ "$SECONDS" -gt 500 ] && { echo "stopped at ${SECONDS}s"; break 2; }
    ab g-$b-$r $b
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "g-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(row["context"], row["k_format"])][side].append(row["time_us"])
print("ctx    format             wm37 (main)           an37   change")
for k in sorted(t):
    a, b = t[k]["wm37"], t[k]["an37"]
    print("%7d %-11s " % k + "%20s %20s" % (" ".join("%.2f" % v for v in a), " ".join("%.2f" % v for v in b)),
          "%+.2f" % (sum(b) / len(b) - sum(a) / len(a)) if a and b else "")
PY
echo "elapsed ${SECONDS}s"
