#!/usr/bin/env bash
# On the GPU machine: build with CUDA (sm_90a), run the CUDA tests (+ compute-sanitizer on a subset),
# the other tests, then `qsdpa bench --device cuda` at the reference shapes with PyTorch's SDPA timed
# in the same run (scripts/torch_sdpa.py); prints a short table last. Needs third_party_carry/
# (scripts/prepare-carry.sh) carried along. Writes logs and bench JSON to $OUT.
# Usage there: QSDPA_COMMIT=<commit> bash scripts/gpu-check.sh   (the copy has no .git)
#   QSDPA_STAGES="build tests sanitizer cpu bench" picks stages (default: all);
#   QSDPA_BENCH_CONTEXTS / QSDPA_BENCH_FORMATS / QSDPA_BENCH_HEADS narrow the bench; QSDPA_TEST_REGEX
#   narrows stage tests (default: every test whose name holds "Cuda");
#   stage "shapes" benches issue 3's other shapes at 32K (Lq 1, 4, 8 and 32, B 8 and 32, D 64 and 256)
#   and prints the Lq 4 and 8 times over the Lq 1 time of the same run;
#   stage "sharded" builds with NCCL and runs qsdpa_sharded_bench on all GPUs (issue 4);
#   stage "ncusrc" samples one kernel's stall reasons per SASS instruction (QSDPA_NCU_KERNEL, _FORMAT, _CONTEXT);
#   stage "ncubal" measures how evenly the SMs are busy in the split kernel (mxfp4) and the merge's time,
#   with warm caches, and both kernels' stalls on instruction fetch, memory, barriers and fixed latency;
#   stage "ncu" profiles the tensor-core kernel (mxfp4, 128K or QSDPA_NCU_CONTEXT) and the merge kernel once each;
#   stage "ab" builds the tree again with QSDPA_AB_FLAGS as the CUDA flags (an experiment's -D switch;
#   several variants separated by '|') and benches the builds in turn in this call (QSDPA_AB_ARGS: the
#   bench's shape and formats, several sets separated by ';'),
#   so that a variant is compared with its baseline on the same card at the same moment (METHOD.md);
#   QSDPA_AB_TREE=<dir> builds the variants from another source tree instead (e.g. main's, carried
#   in a git-ignored folder: the variant is then the old code and "baseline" this tree), and a
#   variant written "@<dir> flags" builds from <dir> alone;
#   stage "abenv" does the same with environment settings of one build (QSDPA_AB_ENVS, '|' between);
#   stage "phases" times marks inside the blocks of one call (QSDPA_PHASE_RUNS, src/cuda/phase_times.cuh;
#   per-block CSV files and their ends by launch rank, scripts/phase_ranks.py); with QSDPA_PREBUILT it
#   takes the probed build from QSDPA_PHASE_PREBUILT (`carry-build.sh ph -DQSDPA_PHASE_TIMES`).
# QSDPA_PREBUILT=<archive> (scripts/carry-build.sh's third_party_carry/bin.tar.xz, built on the
# development machine) skips the build here: the tests then run as nproc shards of the test binary at
# once (QSDPA_TEST_REGEX a plain substring of the test names); stage ab takes its variants from
# QSDPA_AB_PREBUILT (archives, '|' between) instead of QSDPA_AB_FLAGS, stage phases from
# QSDPA_PHASE_PREBUILT; stages sharded and cpu, which need a build here, are refused.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/qsdpa-gpu-out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
STAGES=${QSDPA_STAGES:-"tests sanitizer cpu bench"}
has() { [[ " $STAGES " == *" $1 "* ]]; }
# A carry-build.sh archive unpacked (by Python: the image may lack xz) and linked in as build folder
# $2's tools/qsdpa and tests/qsdpa_tests; the binaries find their libraries beside them.
use_prebuilt() {
  python3 - "$1" build-prebuilt <<'PY' || exit 1
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    try:
        t.extractall(sys.argv[2], filter="data")
    except TypeError:  # Python without extraction filters
        t.extractall(sys.argv[2])
PY
  local dir="$PWD/build-prebuilt/$(basename "$1" .tar.xz)"
  mkdir -p "$2/tools" "$2/tests"
  ln -sf "$dir/qsdpa" "$2/tools/qsdpa"
  ln -sf "$dir/qsdpa_tests" "$2/tests/qsdpa_tests"
  [ ! -e "$dir/qsdpa_cli_tests" ] || ln -sf "$dir/qsdpa_cli_tests" "$2/tests/qsdpa_cli_tests"
  echo "$2: prebuilt $(cat "$dir/COMMIT")"
}
prebuilt=${QSDPA_PREBUILT:-}
if [ -n "$prebuilt" ]; then
  for stage in sharded cpu; do
    if has $stage; then echo "stage $stage needs a build on this machine: not with QSDPA_PREBUILT"; exit 1; fi
  done
  use_prebuilt "$prebuilt" build-gpu
  if has phases; then use_prebuilt "${QSDPA_PHASE_PREBUILT:?set QSDPA_PHASE_PREBUILT for stage phases with QSDPA_PREBUILT}" build-gpu-phase; fi
fi
nccl_flags=()
if has sharded; then
  # NCCL comes with PyTorch's wheels there (nvidia-nccl-cu13): headers and libnccl.so.2.
  nccl_root=$(python3 -c "import glob, os, nvidia; print(next(os.path.dirname(os.path.dirname(h)) for p in nvidia.__path__ for h in glob.glob(p + '/**/include/nccl.h', recursive=True)))")
  echo "NCCL from $nccl_root"
  nccl_flags=(-DQSDPA_NCCL=ON "-DCMAKE_PREFIX_PATH=$nccl_root")
fi
[ -n "$prebuilt" ] ||
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DQSDPA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a "${nccl_flags[@]}" \
  -DQSDPA_VENDOR_DIR="$PWD/third_party_carry" -DQSDPA_COMMIT_OVERRIDE="${QSDPA_COMMIT:-}" >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
# Stage ab's variant builds start now, beside the main one (each alone takes ~3 min, mostly one
# instance file on one core; together they take about as long as one).
ab_build_pids=()
if has ab && [ -n "$prebuilt" ]; then
  IFS='|' read -ra ab_archives <<<"${QSDPA_AB_PREBUILT:?set QSDPA_AB_PREBUILT for stage ab with QSDPA_PREBUILT}"
  for v in "${!ab_archives[@]}"; do use_prebuilt "${ab_archives[$v]}" "build-gpu-b$v"; done
elif has ab; then
  IFS='|' read -ra ab_variants <<<"${QSDPA_AB_FLAGS:?set QSDPA_AB_FLAGS for stage ab}"
  for v in "${!ab_variants[@]}"; do
    tree=${QSDPA_AB_TREE:-.} flags=${ab_variants[$v]}
    if [[ $flags == @* ]]; then  # "@<dir> flags": this variant from another tree
      read -r tree flags <<<"${flags#@}"
    fi
    (cmake -S "$tree" -B "build-gpu-b$v" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQSDPA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
      "-DCMAKE_CUDA_FLAGS=$flags" -DQSDPA_VENDOR_DIR="$PWD/third_party_carry" \
      -DQSDPA_COMMIT_OVERRIDE="${QSDPA_COMMIT:-}+ab$v" >"$OUT/configure-b$v.log" 2>&1 &&
      cmake --build "build-gpu-b$v" -j"$(nproc)" --target qsdpa_cli >"$OUT/build-b$v.log" 2>&1) &
    ab_build_pids+=($!)
  done
fi
phase_build_pid=
if has phases && [ -z "$prebuilt" ]; then  # stage phases' probed build, likewise
  (cmake -S . -B build-gpu-phase -G Ninja -DCMAKE_BUILD_TYPE=Release -DQSDPA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
    "-DCMAKE_CUDA_FLAGS=-DQSDPA_PHASE_TIMES" -DQSDPA_VENDOR_DIR="$PWD/third_party_carry" \
    -DQSDPA_COMMIT_OVERRIDE="${QSDPA_COMMIT:-}+phases" >"$OUT/configure-phase.log" 2>&1 &&
    cmake --build build-gpu-phase -j"$(nproc)" --target qsdpa_cli >"$OUT/build-phase.log" 2>&1) &
  phase_build_pid=$!
fi
if [ -z "$prebuilt" ]; then
  cmake --build build-gpu -j"$(nproc)" >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -60; exit 1; }
  grep -E "spill" "$OUT/build.log" | grep -v " 0 bytes spill" | sort | uniq -c | head -10
fi
# The prebuilt test binary in nproc shards at once, its summary in ctest's words (for the summary).
gtest_shards() {
  local n pids=() rc=0
  n=$(nproc)
  for ((i = 0; i < n; i++)); do
    GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$i ./build-gpu/tests/qsdpa_tests --gtest_filter="*$1*" >"$OUT/gtest-$i.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  local ran failed_names failed
  ran=$(cat "$OUT"/gtest-*.log | sed -nE 's/^\[==========\] ([0-9]+) tests? from .* ran.*/\1/p' | awk '{s += $1} END {print s + 0}')
  failed_names=$(cat "$OUT"/gtest-*.log | grep -E '^\[  FAILED  \] [A-Za-z_].*\.' | sort -u)
  failed=$(grep -c . <<<"$failed_names")
  [ -z "$failed_names" ] || echo "$failed_names"
  [ "$ran" -gt 0 ] || rc=1
  echo "$(( ran > 0 ? 100 * (ran - failed) / ran : 0 ))% tests passed, $failed tests failed out of $ran (gtest shards)"
  return $rc
}
./build-gpu/tools/qsdpa info | head -6 | tee "$OUT/info.txt"
cuda_rc=0
if has tests; then
  if [ -n "$prebuilt" ]; then
    gtest_shards "${QSDPA_TEST_REGEX:-Cuda}" >"$OUT/cuda-tests.log" 2>&1 || cuda_rc=$?
    # The CLI's CUDA test (archives since session 27 carry its binary; it runs the moved CLI).
    if [ -e build-gpu/tests/qsdpa_cli_tests ]; then
      QSDPA_CLI_PATH="$PWD/build-gpu/tools/qsdpa" ./build-gpu/tests/qsdpa_cli_tests --gtest_filter="*${QSDPA_TEST_REGEX:-Cuda}*" \
        >"$OUT/cli-tests.log" 2>&1 || cuda_rc=1
      grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/cli-tests.log" | sed 's/^/qsdpa_cli_tests: /' >>"$OUT/cuda-tests.log"
    fi
  else
    ctest --test-dir build-gpu -R "${QSDPA_TEST_REGEX:-Cuda}" -j"$(nproc)" --timeout 600 >"$OUT/cuda-tests.log" 2>&1 || cuda_rc=$?
  fi
  tail -4 "$OUT/cuda-tests.log"
  grep -E "Failed|\*\*\*" "$OUT/cuda-tests.log" | head -20
fi
if has sanitizer && command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 9 ./build-gpu/tests/qsdpa_tests \
    --gtest_filter='*CudaAttention.*/mxfp8_turbo3:*TensorCoreShapes/turbo4:*TensorCoreShapes/mxfp4:*TensorCoreShapes/f16:*CudaDequantize*/turbo3:*CudaDequantize*/affine3:*CudaAttentionStatus*:*CudaAppend*/nvfp4:*CudaAppend*/turbo3:*CudaAppendStatus*:*CudaAttentionChained*:*CudaAttentionSplits*:*TensorCoreShapes/affine4*:*CudaAttentionAlignment*' \
    >"$OUT/memcheck.log" 2>&1; echo "memcheck rc $?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | sort | uniq -c | tr '\n' ' ')"
  compute-sanitizer --tool racecheck --error-exitcode 9 ./build-gpu/tests/qsdpa_tests \
    --gtest_filter='*CudaAttentionStatus*:*CudaDequantize*/nvfp4:*TensorCoreShapes/affine4*:*CudaAttentionSplits*:*CudaAttentionChained*' >"$OUT/racecheck.log" 2>&1
  echo "racecheck rc $?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | sort | uniq -c | tr '\n' ' ')"
fi
cpu_rc=0
if has cpu; then
  ctest --test-dir build-gpu -E 'Cuda' -j"$(nproc)" --timeout 600 >"$OUT/cpu-tests.log" 2>&1 || cpu_rc=$?
fi
if has bench; then
  formats=${QSDPA_BENCH_FORMATS:-f16,affine8,affine4,affine4-g32,mxfp8,mxfp4,nvfp4,turbo4,turbo3}
  for heads in ${QSDPA_BENCH_HEADS:-32:8 32:32}; do
    json="$OUT/bench-${heads/:/-}.json"
    ./build-gpu/tools/qsdpa bench --device cuda --heads "$heads" --formats "$formats" \
      --context "${QSDPA_BENCH_CONTEXTS:-1024,4096,32768,131072}" --json "$json" >"$OUT/bench-${heads/:/-}.log" 2>&1 \
      || { tail -5 "$OUT/bench-${heads/:/-}.log"; continue; }
    python3 scripts/torch_sdpa.py "$json" >"$OUT/torch-${heads/:/-}.log" 2>&1 || tail -5 "$OUT/torch-${heads/:/-}.log"
    python3 scripts/report.py bench "$json"
  done
fi
if has shapes; then
  fmts=f16,affine8,affine4,affine4-g32,mxfp8,mxfp4,nvfp4  # issue 3's item 1 formats (and item 3's)
  while read -r name heads args; do
    json="$OUT/bench-$name.json"
    # shellcheck disable=SC2086
    ./build-gpu/tools/qsdpa bench --device cuda --heads "$heads" --context 32768 --min-seconds 0.1 $args \
      --json "$json" >"$OUT/bench-$name.log" 2>&1 || { tail -5 "$OUT/bench-$name.log"; continue; }
    python3 scripts/torch_sdpa.py "$json" --min-seconds 0.1 >"$OUT/torch-$name.log" 2>&1 || tail -5 "$OUT/torch-$name.log"
    python3 scripts/report.py bench "$json" | tail -n +3
  done <<EOF2
lq1 32:8 --formats $fmts,turbo4,turbo3
lq4 32:8 --lq 4 --formats $fmts,turbo4,turbo3
lq8 32:8 --lq 8 --formats $fmts,turbo4,turbo3
lq32 32:8 --lq 32 --formats f16,affine4,mxfp4,mxfp8
b8 32:8 --batch 8 --formats $fmts,turbo4,turbo3
b32 32:8 --batch 32 --formats f16,affine4,mxfp4,mxfp8,turbo4
d64 32:8 --dim 64 --formats $fmts,turbo4
d256 32:8 --dim 256 --formats $fmts,turbo4,turbo3
EOF2
  python3 scripts/report.py lq-ratios "$OUT/bench-lq1.json" "$OUT/bench-lq4.json" "$OUT/bench-lq8.json"
fi
# ncu at the GPU's own clock (session 33: at ncu's default, the clock locked to base, the 4-bit loop
# looked bound by issue; at the clock the benchmark runs at it waits on memory). QSDPA_NCU_CLOCK=base
# gives the older profiles' setting.
ncu_clock=${QSDPA_NCU_CLOCK:-none}
if has ncu && command -v ncu >/dev/null; then
  # The merge: the first merge kernel the bench launches after 6 (at 128K mxfp4's whole-SM blocks
  # merge in clusters, so session 38's run caught the f16 baseline's merge_slice_kernel).
  for k in 'mma_partials.*FamE3ELS3_3E' 'merge_[a-z]*_kernel'; do
    ncu --clock-control "$ncu_clock" --kernel-name-base mangled -k "regex:$k" -s 6 -c 1 --section SpeedOfLight --section Occupancy \
      --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
      --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,regex:sm__inst_executed_pipe_.*\.avg\.pct_of_peak_sustained_active' \
      ./build-gpu/tools/qsdpa bench --device cuda --formats mxfp4 --context "${QSDPA_NCU_CONTEXT:-131072}" --heads 32:8 --min-seconds 0 \
      >"$OUT/ncu-${k%%_*}.log" 2>&1
    grep -E "Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Grid Size|Compute \(SM\)" "$OUT/ncu-${k%%_*}.log" | head -12
    # Stall reasons (cycles per issued instruction) and pipe use above 1 (the rest is noise).
    grep -E "issue_stalled|inst_executed_pipe" "$OUT/ncu-${k%%_*}.log" | awk '$NF + 0 >= 0.1' | sed -E 's/ +/ /g' | sort -k3 -nr | head -16
  done
fi
if has ncusrc && command -v ncu >/dev/null; then
  # Where the warps of one kernel wait, per SASS instruction (sampled stall reasons), as CSV.
  ncu --clock-control "$ncu_clock" --kernel-name-base mangled -k "regex:${QSDPA_NCU_KERNEL:-mma_partials.*FamE3ELS3_3E}" -s 6 -c 1 \
    --section SourceCounters --section WarpStateStats -f -o "$OUT/ncu-src" \
    ./build-gpu/tools/qsdpa bench --device cuda --formats "${QSDPA_NCU_FORMAT:-mxfp4}" --context "${QSDPA_NCU_CONTEXT:-131072}" \
    --heads 32:8 --min-seconds 0 >"$OUT/ncu-src.log" 2>&1 || tail -5 "$OUT/ncu-src.log"
  ncu -i "$OUT/ncu-src.ncu-rep" --page source --csv --print-source sass >"$OUT/ncu-source.csv" 2>"$OUT/ncu-source.err" \
    || head -5 "$OUT/ncu-source.err"
  ncu -i "$OUT/ncu-src.ncu-rep" --page details >"$OUT/ncu-src-details.txt" 2>&1
  grep -E "Warp Cycles Per Issued|Duration" "$OUT/ncu-src-details.txt" | head -4
fi
if has ncubal && command -v ncu >/dev/null; then
  # How evenly the SMs are busy over one call (the split kernel's tail) and the merge's duration, at
  # boost clocks with warm caches (--clock-control none --cache-control none), as in a timed call.
  # One kernel per ncu run: an alternation in -k's regex matched only the merge kernel (session 7).
  for ctx in ${QSDPA_NCU_CONTEXTS:-32768 131072}; do
    for k in 'mma_partials.*FamE3ELS3_3E' 'merge_[a-z]*_kernel'; do  # merge_warp_kernel or merge_slice_kernel
      log="$OUT/ncu-bal-$ctx-${k%%_*}.log"
      ncu --kernel-name-base mangled -k "regex:$k" -s 6 -c 1 --clock-control none --cache-control none \
        --metrics gpu__time_duration.sum,sm__cycles_active.avg,sm__cycles_active.min,sm__cycles_active.max,sm__cycles_elapsed.max,smsp__warps_active.avg.pct_of_peak_sustained_active,'regex:smsp__average_warps_issue_stalled_(no_instruction|long_scoreboard|barrier|wait)_per_issue_active\.ratio' \
        ./build-gpu/tools/qsdpa bench --device cuda --formats mxfp4 --context "$ctx" --heads 32:8 --min-seconds 0 >"$log" 2>&1
      echo "== ncu balance, mxfp4 at $ctx: ${k%%_*}"; grep -E "duration|cycles_|warps_active|stalled" "$log" | sed -E 's/ +/ /g' | head -12
    done
  done
fi
if has phases; then
  # Where a call's time goes inside its blocks (src/cuda/phase_times.cuh): a build with
  # -DQSDPA_PHASE_TIMES, then one bench process per "format:context[:Hq-Hkv[:D]]" word of
  # QSDPA_PHASE_RUNS (default heads 32-8, D 128), each printing at exit when the blocks of its last
  # call reached each mark.
  [ -z "$phase_build_pid" ] || wait "$phase_build_pid" || { tail -5 "$OUT/configure-phase.log"; grep -E "error" -A3 "$OUT/build-phase.log" | head -40; exit 1; }
  for run in ${QSDPA_PHASE_RUNS:-mxfp4:1024 mxfp4:4096 mxfp4:32768 mxfp4:131072 f16:1024 turbo3:1024 affine4:4096}; do
    IFS=: read -r fmt ctx heads dim <<<"$run"
    heads=${heads:-32-8} dim=${dim:-128}
    for bin in build-gpu build-gpu-phase; do  # the plain build's time beside the probed one's
      csv_dir="$OUT/phase-$fmt-$ctx-$heads-$dim-csv" && mkdir -p "$csv_dir"  # the probe's per-block marks
      QSDPA_PHASE_CSV="$csv_dir" ./$bin/tools/qsdpa bench --device cuda --formats "$fmt" --context "$ctx" --heads "${heads/-/:}" --dim "$dim" \
        --min-seconds 0.1 >"$OUT/phase-$fmt-$ctx-$heads-$dim-$bin.log" 2>&1 || tail -5 "$OUT/phase-$fmt-$ctx-$heads-$dim-$bin.log"
    done
    echo "== phases: $fmt at $ctx, heads $heads, D $dim (time: plain build, probed build)"
    grep -hE "^ *$fmt +[0-9]" "$OUT/phase-$fmt-$ctx-$heads-$dim-build-gpu.log" "$OUT/phase-$fmt-$ctx-$heads-$dim-build-gpu-phase.log" | head -2
    grep -A12 "phase times" "$OUT/phase-$fmt-$ctx-$heads-$dim-build-gpu-phase.log"
    [ -f "$csv_dir/the_split_kernel.csv" ] && python3 scripts/phase_ranks.py "$csv_dir/the_split_kernel.csv"
  done
fi
if has ab || has abenv; then
  # Stage ab: QSDPA_AB_FLAGS, one or more variants' CUDA flags separated by '|'; variant i builds in
  # build-gpu-b<i>. Stage abenv: QSDPA_AB_ENVS, variants as environment settings of the one build
  # ("NAME=value|NAME=other value"), no extra build: for switches the library reads at run time.
  if has abenv; then
    IFS='|' read -ra ab_variants <<<"${QSDPA_AB_ENVS:?set QSDPA_AB_ENVS for stage abenv}"
  elif [ -n "$prebuilt" ]; then
    IFS='|' read -ra ab_variants <<<"$QSDPA_AB_PREBUILT"
  else
    IFS='|' read -ra ab_variants <<<"${QSDPA_AB_FLAGS:?set QSDPA_AB_FLAGS for stage ab}"
  fi
  has abenv || [ -n "$prebuilt" ] || for v in "${!ab_variants[@]}"; do  # the builds started beside the main one
    wait "${ab_build_pids[$v]}" || { tail -5 "$OUT/configure-b$v.log"; grep -E "error" -A3 "$OUT/build-b$v.log" | head -40; exit 1; }
    grep -E "spill" "$OUT/build-b$v.log" | grep -v " 0 bytes spill" | sort | uniq -c | head -10
  done
  # Several bench argument sets separated by ';' (e.g. one per Lq).
  IFS=';' read -ra ab_sets <<<"${QSDPA_AB_ARGS:-"--heads 32:8 --context 32768,131072 --formats f16,mxfp4,nvfp4,mxfp8,affine4"}"
  for round in 1 2; do  # A B A B: drift between the two shows in the repeat
    for side in a "${!ab_variants[@]}"; do
      bin=./build-gpu/tools/qsdpa label="baseline" env_set=()
      if [ "$side" != a ]; then
        label="with ${ab_variants[$side]}"
        if has abenv; then read -ra env_set <<<"${ab_variants[$side]}"; else bin=./build-gpu-b$side/tools/qsdpa; fi
      fi
      for i in "${!ab_sets[@]}"; do
        run="ab-$side$round-$i"
        # shellcheck disable=SC2086
        env "${env_set[@]}" $bin bench --device cuda ${ab_sets[$i]} --min-seconds 0.1 --json "$OUT/$run.json" >"$OUT/$run.log" 2>&1 \
          || { tail -5 "$OUT/$run.log"; continue; }
        echo "== $label (round $round): ${ab_sets[$i]}"
        python3 scripts/report.py bench "$OUT/$run.json" | grep '^|' | cut -d'|' -f2-6 | tail -n +3
      done
    done
  done
fi
if has sharded; then
  ngpu=$(nvidia-smi -L | wc -l)
  gpus=1; for ((n = 2; n <= ngpu; n *= 2)); do gpus="$gpus $n"; done
  ./build-gpu/tools/qsdpa_sharded_bench --gpus $gpus --check --json "$OUT/sharded.json" 2>&1 | tee "$OUT/sharded.log" | tail -40
fi
echo
echo "== summary =="
printf "%-14s %s\n" "GPU" "$(head -1 "$OUT/gpu.txt")"
has tests && printf "%-14s %s\n" "CUDA tests" "$(grep -E 'tests passed|tests failed' "$OUT/cuda-tests.log" | tail -1) (rc $cuda_rc)"
has tests && grep -q '^qsdpa_cli_tests' "$OUT/cuda-tests.log" &&
  printf "%-14s %s\n" "" "$(grep '^qsdpa_cli_tests' "$OUT/cuda-tests.log" | tail -1)"
has cpu && printf "%-14s %s\n" "other tests" "$(grep -E 'tests passed|tests failed' "$OUT/cpu-tests.log" | tail -1) (rc $cpu_rc)"
[ $cuda_rc -eq 0 ] && [ $cpu_rc -eq 0 ]
