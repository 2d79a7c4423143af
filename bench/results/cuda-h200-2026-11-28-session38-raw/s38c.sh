#!/bin/bash
# Session 38, nvidia-h200-x2 (~330 s): pd37 (branch s37-per-device-smem) under the two-device test,
# then every CUDA test on GPU 0 (15 shards, 200 s limits) while GPU 1 runs: A B A B A B of wm37 (main)
# against an37 (s37-affine4-noinline) at MHA 32K / 128K and GQA 4 32K, then ncu on wm37's whole-SM
# mxfp4 kernel at GQA 4 128K at the GPU's own clock (is the loop waiting on memory on the H200?).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in pd37 wm37 an37; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  cat pb/$a/COMMIT
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/pd37/qsdpa_tests
timeout 200 $T --gtest_filter='CudaAttentionDevices.*' > "$OUT/devices.log" 2>&1
echo "devices test rc $?"; grep -E "^device|splits, cluster|^\[  (PASSED|FAILED|SKIPPED) " "$OUT/devices.log"
gpu1() {
  ab() {  # name bin heads contexts
    CUDA_VISIBLE_DEVICES=1 timeout 60 pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads $3 --context $4 \
      --formats affine4,affine4-g32,mxfp4,nvfp4 --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
  }
  for r in 1 2 3; do
    for b in wm37 an37; do
      [ "$SECONDS" -gt 220 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
      ab m-$b-$r $b 32:32 32768,131072
      ab g-$b-$r $b 32:8 32768
    done
  done
  CUDA_VISIBLE_DEVICES=1 timeout 90 ncu --clock-control none --kernel-name-base mangled \
    -k "regex:mma_partials.*FamE3ELS._3ELb0ELi16E" -s 3 -c 1 --section SpeedOfLight \
    --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy \
    --section SchedulerStats \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
    pb/wm37/qsdpa bench --device cuda --formats mxfp4 --context 131072 --heads 32:8 --min-seconds 0 > "$OUT/ncu.log" 2>&1
  echo "ncu rc $?"
}
gpu1 > "$OUT/gpu1.txt" 2>&1 &
g1=$!
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  CUDA_VISIBLE_DEVICES=0 GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-pd37-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "pd37 tests (GPU 0): passed $(grep -h '^\[  PASSED' $OUT/t-pd37-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-pd37-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-pd37-*.log | sort -u | head
for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-pd37-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-pd37-$s.log | tail -1)"; done
echo "tests done at ${SECONDS}s"
wait $g1
cat "$OUT/gpu1.txt"
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[mg]-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(row["hkv"], row["context"], row["k_format"])][side].append(row["time_us"])
print("hkv ctx    format             wm37 (main)           an37   change")
for k in sorted(t, key=str):
    a, b = t[k]["wm37"], t[k]["an37"]
    print("%3d %7d %-11s " % k + "%20s %20s" % (" ".join("%.2f" % v for v in a), " ".join("%.2f" % v for v in b)),
          "%+.2f" % (sum(b) / len(b) - sum(a) / len(a)) if a and b else "")
PY
grep -E "Duration|DRAM Throughput|Memory Throughput|Compute \(SM\) Throughput|SM Frequency|Warp Cycles Per Issued|Issue Slots Busy|Issued Ipc|No Eligible|Achieved Occupancy|Registers Per" "$OUT/ncu.log" | head -16
grep -E "issue_stalled" "$OUT/ncu.log" | awk '$NF + 0 >= 0.1' | sed -E 's/ +/ /g' | sort -k3 -nr | head -12
echo "elapsed ${SECONDS}s"
