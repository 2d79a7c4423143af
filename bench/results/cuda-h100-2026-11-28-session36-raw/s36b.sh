#!/bin/bash
# Session 36, call 2: ep36 (the whole-SM epilogue: lane w weighs warp w, shuffles share the weights)
# under the CUDA tests, the CLI's CUDA test and memcheck over the whole-SM tests; A B A B against
# fin35 (main's kernels) on the shapes that run whole-SM blocks; issue 3's D 256 row at Hq 32.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in fin35 ep36; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  cat pb/$a/COMMIT
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/ep36/qsdpa_tests
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-ep36-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "ep36 tests: passed $(grep -h '^\[  PASSED' $OUT/t-ep36-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-ep36-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-ep36-*.log | sort -u | head
QSDPA_CLI_PATH="$PWD/pb/ep36/qsdpa" timeout 60 pb/ep36/qsdpa_cli_tests --gtest_filter="*Cuda*" > "$OUT/cli.log" 2>&1; echo "cli tests rc $?"; grep -E "^\[  (PASSED|FAILED) " "$OUT/cli.log"
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 $T --gtest_filter='*CudaAttentionSplits.WholeSm*' \
  > "$OUT/memcheck.log" 2>&1; echo "memcheck rc $?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | sort | uniq -c | tr '\n' ' ')"; grep -E "^\[  (PASSED|FAILED) " "$OUT/memcheck.log"
ab() {  # name bin heads contexts formats [more bench flags]
  local name=$1 bin=$2 heads=$3 ctx=$4 fmts=$5; shift 5
  pb/$bin/qsdpa bench --device cuda --min-seconds 0.1 --heads $heads --context $ctx --formats $fmts "$@" \
    --json "$OUT/$name.json" > "$OUT/$name.log" 2>&1 || tail -3 "$OUT/$name.log"
}
for r in 1 2; do
  for b in fin35 ep36; do
    ab g-$b-$r $b 32:8 32768,131072 mxfp4,nvfp4,affine4
    ab m-$b-$r $b 32:32 32768,131072 mxfp4
    ab b-$b-$r $b 32:8 32768 mxfp4,nvfp4 --batch 8
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[gmb]-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(h, row["context"], row["k_format"])][side].append(row["time_us"])
print("set ctx    format         fin35           ep36")
for k in sorted(t):
    print("%-2s %7d %-12s " % k + " ".join("%15s" % " ".join("%.2f" % v for v in t[k][s][:2]) for s in ["fin35", "ep36"]))
PY
fmts=f16,affine8,affine4,affine4-g32,mxfp8,mxfp4,nvfp4
pb/ep36/qsdpa bench --device cuda --heads 32:8 --context 32768 --min-seconds 0.1 --dim 256 --formats $fmts,turbo4,turbo3 \
  --json "$OUT/bench-d256.json" > "$OUT/bench-d256.log" 2>&1 || tail -3 "$OUT/bench-d256.log"
python3 scripts/torch_sdpa.py "$OUT/bench-d256.json" --min-seconds 0.1 > "$OUT/torch-d256.log" 2>&1 || tail -5 "$OUT/torch-d256.log"
python3 scripts/report.py bench "$OUT/bench-d256.json" | tail -n +3
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
