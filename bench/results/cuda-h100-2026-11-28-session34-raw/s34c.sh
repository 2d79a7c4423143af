#!/bin/bash
# Session 34, call 3: fin34 (main + the 4-warp mxfp4 / nvfp4 L2 prefetch; its kernels are p8's or
# main's, SASS compared) under the CUDA tests; A B A B against lb3 at Lq 4 / 8 (32K, GQA 4, the
# row-tile kernels that also prefetch); then the bench stage with PyTorch for the README.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in lb3 fin34; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
cat pb/fin34/COMMIT
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/fin34/qsdpa_tests
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-fin34-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "fin34 tests: passed $(grep -h '^\[  PASSED' $OUT/t-fin34-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-fin34-*.log | sort -u | head
QSDPA_CLI_PATH="$PWD/pb/fin34/qsdpa" timeout 60 pb/fin34/qsdpa_cli_tests --gtest_filter="*Cuda*" > "$OUT/cli.log" 2>&1; echo "cli tests rc $?"; grep -E "^\[  (PASSED|FAILED) " "$OUT/cli.log"
ab() {  # name bin lq
  pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --lq $3 --context 32768 \
    --formats mxfp4,nvfp4 --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2; do
  for b in lb3 fin34; do
    for lq in 1 4 8; do ab q$lq-$b-$r $b $lq; done
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "q*-*.json"))):
    q, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(q, row["k_format"])][side].append(row["time_us"])
print("lq  format             lb3           fin34")
for k in sorted(t):
    print("%-3s %-7s " % k + " ".join("%15s" % " ".join("%.2f" % v for v in t[k][s]) for s in ["lb3", "fin34"]))
PY
QSDPA_PREBUILT=third_party_carry/fin34.tar.xz QSDPA_STAGES=bench timeout 300 bash scripts/gpu-check.sh > "$OUT/bench.log" 2>&1
tail -45 "$OUT/bench.log"
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
