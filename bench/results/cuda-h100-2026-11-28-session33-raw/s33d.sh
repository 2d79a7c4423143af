#!/bin/bash
# Session 33, call 4: ncu of the whole-SM mxfp4 kernel at 128K (GQA 4), main (fin32) against lb3,
# at the GPU's own clocks (--clock-control none) and, for lb3, at ncu's default locked base clock:
# session 32's profile ran at the locked clock, where the loop is more bound by issue than at boost.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in fin32 lb3; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
prof() {  # name bin clock-control
  timeout 120 ncu --clock-control $3 --kernel-name-base mangled -k "regex:mma_partials.*FamE3ELS3_3ELb0ELi16E" -s 4 -c 1 \
    --section SpeedOfLight --section WarpStateStats --section LaunchStats --section ComputeWorkloadAnalysis \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,sm__cycles_elapsed.avg.per_second,smsp__issue_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum.per_second' \
    pb/$2/qsdpa bench --device cuda --formats mxfp4 --context 131072 --heads 32:8 --min-seconds 0 > "$OUT/ncu-$1.log" 2>&1
  echo "== $1"
  grep -E "Duration|DRAM Throughput|SM Frequency|Warp Cycles Per Issued|Issue Slots Busy|sm__cycles_elapsed.avg.per_second|issue_active|dram__bytes_read|dram__throughput" "$OUT/ncu-$1.log" | sed -E 's/ +/ /g' | head -12
  grep -E "issue_stalled" "$OUT/ncu-$1.log" | awk '$NF + 0 >= 0.1' | sed -E 's/ +/ /g' | sort -k3 -nr | head -8
}
prof main-free fin32 none
prof new-free lb3 none
prof new-base lb3 base
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
