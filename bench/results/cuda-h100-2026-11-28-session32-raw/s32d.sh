#!/bin/bash
# Session 32, call 6: fin32 (main + 8-row whole-SM clusters, the tree that lands) on the split tests,
# memcheck of the new test, one A/B round at B 8 Lq 2; then ncu's warp stall reasons of the
# whole-SM mxfp4 kernel at 128K, main32 against st3 (staged loads).
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in main32 fin32 st3; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
n=8
for ((i = 0; i < n; i++)); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$i timeout 200 pb/fin32/qsdpa_tests --gtest_filter='*CudaAttentionSplits*' > "$OUT/split-$i.log" 2>&1 &
done
( timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 pb/fin32/qsdpa_tests --gtest_filter='*WholeSmClustersOfEightRows*' > "$OUT/memcheck.log" 2>&1; echo "memcheck rc $?" >> "$OUT/memcheck.log" ) &
wait
grep -hE "^\[  (PASSED|FAILED) |^\[==========\] [0-9]+ tests? from .* ran|splits, cluster" "$OUT"/split-*.log | sort | uniq -c
grep -E "ERROR SUMMARY|memcheck rc|PASSED|FAILED" "$OUT/memcheck.log"
for b in main32 fin32; do
  pb/$b/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --batch 8 --lq 2 --context 32768 --formats affine4,mxfp4,nvfp4 \
    --json "$OUT/$b-b8lq2.json" > "$OUT/$b-b8lq2.log" 2>&1 || tail -3 "$OUT/$b-b8lq2.log"
  grep -E "^ *(affine4|mxfp4|nvfp4) " "$OUT/$b-b8lq2.log" | sed "s/^/$b /"
done
for b in main32 st3; do
  timeout 120 ncu --kernel-name-base mangled -k "regex:mma_partials.*FamE3ELS3_3ELb0ELi16E" -s 4 -c 1 --section SpeedOfLight \
    --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
    pb/$b/qsdpa bench --device cuda --formats mxfp4 --context 131072 --heads 32:8 --min-seconds 0 > "$OUT/ncu-$b.log" 2>&1
  echo "== ncu $b"
  grep -E "Duration|DRAM Throughput|Warp Cycles Per Issued|Shared Memory Configuration Size|Dynamic Shared" "$OUT/ncu-$b.log" | head -8
  grep -E "issue_stalled" "$OUT/ncu-$b.log" | awk '$NF + 0 >= 0.1' | sed -E 's/ +/ /g' | sort -k3 -nr | head -10
done
