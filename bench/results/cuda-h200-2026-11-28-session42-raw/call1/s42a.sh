#!/bin/bash
# Session 42 (prepared in session 41), nvidia-h200-x4 (or x2) (~450 s). wt3 (branch s41-wide-tile-3): two row
# tiles at D 128 for mxfp4, nvfp4 and mxfp8 at 3 blocks a SM (168 registers) instead of 2 (255).
# mn41 here = pf1.tar.xz (main 36709af's kernels). GPU 0: every CUDA test on wt3 (15 shards), the
# CLI's CUDA test. GPU 2 (if there): every CUDA test on pf1 (main's kernels). GPU 1: A B x3 (mn41, wt3) at Lq 4 and Lq 8, GQA 4.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for s in pf1 wt3; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$s.tar.xz || exit 1
  echo "$s: $(cat pb/$s/COMMIT)"
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
gpu1() {
  ab() {  # set side round bench-args...
    local set=$1 side=$2 r=$3; shift 3
    local bin=$side envs=()
    case $side in
      none) ;;
    esac
    mkdir -p "$OUT/$set"
    env "${envs[@]}" CUDA_VISIBLE_DEVICES=1 timeout 120 pb/$bin/qsdpa bench --device cuda --min-seconds 0.1 "$@" \
      --json "$OUT/$set/$set-$side-$r.json" > "$OUT/$set/$set-$side-$r.log" 2>&1 || tail -3 "$OUT/$set/$set-$side-$r.log"
  }
  for r in 1 2 3; do
    for s in pf1 wt3; do
      [ "$SECONDS" -gt 400 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
      ab q $s $r --lq 4 --heads 32:8 --context 4096,16384,32768,131072 --formats mxfp4,nvfp4,mxfp8
      ab o $s $r --lq 8 --heads 32:8 --context 32768,131072 --formats mxfp4,nvfp4,mxfp8
      ab b $s $r --lq 4 --batch 4 --heads 32:8 --context 32768 --formats mxfp4,nvfp4,mxfp8
    done
    echo "round $r done at ${SECONDS}s"
  done
}
gpu1 > "$OUT/gpu1.txt" 2>&1 &
g1=$!
ngpu=$(nvidia-smi -L | wc -l)
run_suite() {  # side gpu
  local side=$1 gpu=$2 n=15 pids=() s
  for s in $(seq 0 $((n-1))); do
    CUDA_VISIBLE_DEVICES=$gpu GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 240 pb/$side/qsdpa_tests --gtest_filter='*Cuda*' > "$OUT/t-$side-$s.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait $p; done
  echo "$side tests (GPU $gpu): passed $(grep -h '^\[  PASSED' $OUT/t-$side-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-$side-*.log | awk '{s+=$4} END {print s}'), failed:"
  grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-$side-*.log | sort -u | head
  for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-$side-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-$side-$s.log | tail -1)"; done
  echo "$side tests done at ${SECONDS}s"
  grep -h " warps" $OUT/t-$side-*.log | sort | uniq | head -40
  CUDA_VISIBLE_DEVICES=$gpu QSDPA_CLI_PATH="$PWD/pb/$side/qsdpa" timeout 60 pb/$side/qsdpa_cli_tests --gtest_filter='*Cuda*' > "$OUT/cli-$side.log" 2>&1
  echo "$side CLI CUDA tests rc $?: $(grep -E '^\[  (PASSED|FAILED)' $OUT/cli-$side.log | tr '\n' ' ')"
}
g2=
if [ "$ngpu" -ge 3 ]; then run_suite pf1 2 > "$OUT/tests-pf1.txt" 2>&1 & g2=$!; fi
run_suite wt3 0 | tee "$OUT/tests-summary.txt"
[ -n "$g2" ] && { wait $g2; cat "$OUT/tests-pf1.txt"; }
wait $g1
cat "$OUT/gpu1.txt"
for set in q o b; do echo "== set $set"; python3 scripts/ab_table.py "$OUT/$set" pf1 wt3; done
echo "elapsed ${SECONDS}s"
