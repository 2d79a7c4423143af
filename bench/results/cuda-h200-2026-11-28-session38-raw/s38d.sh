#!/bin/bash
# Session 38, call 3 (nvidia-h200-x2, ~520 s): mn38 (main: an37's epilogue, pd37's per-device
# workspace and attributes, the warp merge's constant folded) under every CUDA test and the CLI's CUDA
# test on GPU 0, then gpu-check's stage bench on GPU 0 alone (the README's H200 table). Meanwhile on
# GPU 1: A B C A B C of mn38 against pw2 / pw4 (an37 + an L2 prefetch 2 / 4 steps ahead in the
# whole-SM mxfp4 / nvfp4 loops) at GQA 4 32K / 128K, then memcheck over merge-heavy tests.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in mn38 pw2 pw4; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  echo "$a: $(cat pb/$a/COMMIT)"
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/mn38/qsdpa_tests
gpu1() {
  export CUDA_VISIBLE_DEVICES=1
  for r in 1 2 3; do
    for b in mn38 pw2 pw4; do
      timeout 50 pb/$b/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --context 32768,131072 \
        --formats mxfp4,nvfp4 --json "$OUT/g-$b-$r.json" > "$OUT/g-$b-$r.log" 2>&1 || tail -3 "$OUT/g-$b-$r.log"
    done
  done
  echo "A/B done at ${SECONDS}s"
  F='*CudaAttention.*/mxfp4:*CudaAttention.*/affine4:*CudaAttention.*/f16:*CudaAttentionGraph*'
  timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 $T --gtest_filter="$F" > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc $?"; grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) " "$OUT/memcheck.log" | sort | uniq -c
  echo "GPU 1 done at ${SECONDS}s"
}
gpu1 > "$OUT/gpu1.txt" 2>&1 &
g1=$!
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  CUDA_VISIBLE_DEVICES=0 GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-mn38-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "mn38 tests (GPU 0): passed $(grep -h '^\[  PASSED' $OUT/t-mn38-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-mn38-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-mn38-*.log | sort -u | head
for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-mn38-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-mn38-$s.log | tail -1)"; done
CUDA_VISIBLE_DEVICES=0 QSDPA_CLI_PATH="$PWD/pb/mn38/qsdpa" timeout 60 pb/mn38/qsdpa_cli_tests --gtest_filter="*Cuda*" > "$OUT/cli.log" 2>&1; echo "cli tests rc $?"; grep -E "^\[  (PASSED|FAILED) " "$OUT/cli.log"
echo "tests done at ${SECONDS}s"
CUDA_VISIBLE_DEVICES=0 QSDPA_PREBUILT=third_party_carry/mn38.tar.xz QSDPA_STAGES=bench timeout $((575 - SECONDS)) bash scripts/gpu-check.sh > "$OUT/bench.log" 2>&1
echo "bench rc $? at ${SECONDS}s"
wait $g1
cat "$OUT/gpu1.txt"
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "g-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(row["context"], row["k_format"])][side].append(row["time_us"])
print("ctx    format            mn38 (main)                  pw2                  pw4")
for k in sorted(t):
    c = t[k]
    print("%7d %-8s " % k + " ".join("%22s" % " ".join("%.2f" % v for v in c[s]) for s in ("mn38", "pw2", "pw4")))
PY
grep -v "^$" "$OUT/bench.log" | tail -40
echo "elapsed ${SECONDS}s"
