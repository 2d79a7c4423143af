#!/bin/bash
# Session 37, call 2 (H200): wm37 (main + the one-warp merge in 1-warp blocks with a 100 KB shared-
# memory ask, gated to grids of <= 2 blocks an SM on sm_90) under the CUDA tests, the CLI's CUDA test
# and memcheck over merge-heavy tests; then A B A B against ep36 (main) over GQA 4, MHA and B 8.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in ep36 wm37; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  cat pb/$a/COMMIT
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/wm37/qsdpa_tests
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 150 $T --gtest_filter='*Cuda*' > "$OUT/t-wm37-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "wm37 tests: passed $(grep -h '^\[  PASSED' $OUT/t-wm37-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-wm37-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-wm37-*.log | sort -u | head
QSDPA_CLI_PATH="$PWD/pb/wm37/qsdpa" timeout 60 pb/wm37/qsdpa_cli_tests --gtest_filter="*Cuda*" > "$OUT/cli.log" 2>&1; echo "cli tests rc $?"; grep -E "^\[  (PASSED|FAILED) " "$OUT/cli.log"
F='*CudaAttention.*/mxfp4:*CudaAttention.*/affine4:*CudaAttention.*/f16:*CudaAttentionGraph*'
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 $T --gtest_filter="$F" > "$OUT/memcheck.log" 2>&1
echo "memcheck rc $?"; grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) " "$OUT/memcheck.log" | sort | uniq -c
echo "tests done at ${SECONDS}s"
ab() {  # name bin heads contexts formats [more bench flags]
  local name=$1 bin=$2 heads=$3 ctx=$4 fmts=$5; shift 5
  timeout 80 pb/$bin/qsdpa bench --device cuda --min-seconds 0.1 --heads $heads --context $ctx --formats $fmts "$@" \
    --json "$OUT/$name.json" > "$OUT/$name.log" 2>&1 || tail -3 "$OUT/$name.log"
}
for r in 1 2 3; do
  [ "$SECONDS" -gt 360 ] && { echo "round $r skipped at ${SECONDS}s"; break; }
  for b in ep36 wm37; do
    ab g-$b-$r $b 32:8 4096,32768,131072 mxfp4,nvfp4,affine4,mxfp8,f16
    ab m-$b-$r $b 32:32 32768,131072 mxfp4,affine4
    ab b-$b-$r $b 32:8 32768 mxfp4 --batch 8
  done
  echo "round $r done at ${SECONDS}s"
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[gmb]-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(h, row["context"], row["k_format"])][side].append(row["time_us"])
print("set ctx    format       ep36 (rounds)        wm37 (rounds)       change")
for k in sorted(t):
    a, b = t[k]["ep36"], t[k]["wm37"]
    print("%-2s %7d %-8s " % k + "%22s %22s" % (" ".join("%.2f" % v for v in a), " ".join("%.2f" % v for v in b)),
          "%+.2f" % (sum(b) / len(b) - sum(a) / len(a)) if a and b else "")
PY
echo "elapsed ${SECONDS}s"
