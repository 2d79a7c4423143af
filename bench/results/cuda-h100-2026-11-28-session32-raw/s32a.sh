#!/bin/bash
# Session 32, call 1: staged loads (st4 = -DQSDPA_STAGES=4) against main (main32): the whole-SM
# tests on st4 (default, and with mxfp4 / nvfp4 forced onto whole-SM blocks), then A B A B.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in main32 st4; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/st4/qsdpa_tests
( [ -n "${SKIP_TESTS:-}" ] || timeout 250 $T --gtest_filter='*WholeSmBlocksAgree*' > "$OUT/t1.log" 2>&1 ) &
( [ -n "${SKIP_TESTS:-}" ] || QSDPA_WHOLE_SM_FP4_KEYS=0 timeout 250 $T --gtest_filter='*WholeSmBlocksOfEach*' > "$OUT/t2.log" 2>&1 ) &
( [ -n "${SKIP_TESTS:-}" ] || QSDPA_WHOLE_SM_FP4_KEYS=0 QSDPA_WHOLE_SM=2048 timeout 250 $T --gtest_filter='*SplitCounts*:*Merges*' > "$OUT/t3.log" 2>&1 ) &
wait
grep -hE "^\[  (PASSED|FAILED) |FAILED|splits, cluster" "$OUT"/t*.log | head -40
bench() {  # name bin VAR=value args...
  local name=$1 bin=$2 envs=$3; shift 3
  env $envs pb/$bin/qsdpa bench --device cuda --heads 32:8 --min-seconds 0.1 "$@" --json "$OUT/$name.json" > "$OUT/$name.log" 2>&1 \
    || tail -3 "$OUT/$name.log"
}
for r in 1 2; do
  bench a$r-long main32 X=1 --context 65536,131072 --formats mxfp4,nvfp4,affine4
  bench b$r-long st4 X=1 --context 65536,131072 --formats mxfp4,nvfp4,affine4
  bench a$r-32k main32 X=1 --context 32768 --formats mxfp4,nvfp4,affine4
  bench b$r-32k st4 QSDPA_WHOLE_SM_FP4_KEYS=0 --context 32768 --formats mxfp4,nvfp4,affine4
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(list)
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[ab][12]-*.json"))):
    side = os.path.basename(f)[0]
    for r in json.load(open(f))["rows"]:
        t[(r["k_format"], r["context"])].append((side, r["time_us"], r.get("percent_of_peak", r.get("pct_peak"))))
for k in sorted(t):
    print(k, " ".join("%s %.2f" % (s, v) for s, v, _ in t[k]))
PY
