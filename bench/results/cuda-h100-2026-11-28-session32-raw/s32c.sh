#!/bin/bash
# Session 32, call 4: main32 against new32 (padded partial rows + 8-row whole-SM clusters), A B A B,
# then new32's CUDA tests in shards and the sanitizers (gpu-check.sh stages tests sanitizer).
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in main32 new32; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
bench() {  # name bin args...
  local name=$1 bin=$2; shift 2
  pb/$bin/qsdpa bench --device cuda --min-seconds 0.1 "$@" --json "$OUT/$name.json" > "$OUT/$name.log" 2>&1 || tail -3 "$OUT/$name.log"
}
[ -n "${SKIP_AB:-}" ] || for r in 1 2; do
  for b in main32 new32; do
    bench $b-$r-ref $b --heads 32:8 --context 32768,131072 --formats mxfp4,nvfp4,affine4
    bench $b-$r-b8lq2 $b --heads 32:8 --batch 8 --lq 2 --context 32768 --formats affine4,mxfp4,nvfp4
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(list)
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*-[12]-*.json"))):
    side, _, shape = os.path.basename(f)[:-5].split("-")
    for r in json.load(open(f))["rows"]:
        if r["k_format"] in ("mxfp4", "nvfp4", "affine4"):
            t[(shape, r["k_format"], r["context"])].append((side, r["time_us"]))
for k in sorted(t):
    print(k, " ".join("%s %.2f" % (s, v) for s, v in sorted(t[k])))
PY
if [ -n "${RACE_ONLY:-}" ]; then
  export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
  timeout 260 compute-sanitizer --tool racecheck --error-exitcode 9 pb/new32/qsdpa_tests \
    --gtest_filter='*WholeSmClustersOfEightRows*:*MergesAgree*:*SplitCounts*' > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc $?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | sort | uniq -c | tr '\n' ' ')"
  grep -hE "^\[  (PASSED|FAILED|      OK) |splits, cluster" "$OUT/racecheck.log"
  exit 0
fi
QSDPA_PREBUILT=third_party_carry/new32.tar.xz QSDPA_STAGES="tests sanitizer" timeout 430 bash scripts/gpu-check.sh > "$OUT/check.log" 2>&1
tail -12 "$OUT/check.log"
grep -h "splits, cluster" "$OUT"/gtest-*.log | sort | uniq
