#!/bin/bash
# Prepared in session 36 for the next session's first call (not run yet; ~330 s):
# 1. the whole-SM test with its two D 64 cases added after session 36's runs, on ep36 (rebuilt at
#    971b843: main's kernels, SASS byte-identical to the measured 96123e6 build);
# 2. ni36 (3cbb0ba, branch s36-noinline-epilogue: the whole-SM epilogue as a noinline function, for
#    affine 4-bit too; its D 128 loops the length and local accesses of fin35's) under all CUDA tests;
# 3. A B A B: ep36 (main) / ni36 / mws36 (the warp merge in 1-warp blocks, at most 2 an SM) / mw36
#    (the warp merge in 4-warp blocks, session 36's call 4) at 4K and 128K, GQA 4.
# Then s37a.sh (stage bench on ep36 or the winner) for the README table.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in ep36 ni36 mws36; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  cat pb/$a/COMMIT
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
timeout 120 pb/ep36/qsdpa_tests --gtest_filter='*WholeSmBlocksOfEachFamilyAndInClusters*' > "$OUT/wholesm-ep36.log" 2>&1
echo "ep36 whole-SM test rc $?"; grep -E "splits, cluster|^\[  (PASSED|FAILED) " "$OUT/wholesm-ep36.log"
T=pb/ni36/qsdpa_tests
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 150 $T --gtest_filter='*Cuda*' > "$OUT/t-ni36-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "ni36 tests: passed $(grep -h '^\[  PASSED' $OUT/t-ni36-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-ni36-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-ni36-*.log | sort -u | head
ab() {  # name bin
  timeout 50 pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --context 4096,131072 --formats mxfp4,nvfp4,affine4 \
    --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2 3; do
  for b in ep36 ni36 mws36; do
    [ "$SECONDS" -gt 480 ] && { echo "stopped at ${SECONDS}s"; break 2; }
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
sides = ["ep36", "ni36", "mws36"]
print("ctx    format   " + " ".join("%13s" % s for s in sides))
for k in sorted(t):
    print("%7d %-8s " % k + " ".join("%13s" % " ".join("%.2f" % v for v in t[k][s]) for s in sides))
PY
echo "elapsed ${SECONDS}s"
