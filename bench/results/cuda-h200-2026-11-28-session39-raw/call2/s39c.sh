#!/bin/bash
# Session 39, nvidia-h200-x2 (~330 s): tv1 (turbo values take the levels' hi term alone) under every
# CUDA test on GPU 0 (15 shards, 200 s limits) while GPU 1 runs A B A B A B of mn38 (main) against
# tv1 on the turbo formats (GQA 4 32K / 128K, MHA 32K, GQA 4 4K) and mxfp4 as a control.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in mn38 tv1; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  echo "$a: $(cat pb/$a/COMMIT)"
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/tv1/qsdpa_tests
gpu1() {
  ab() {  # name bin heads contexts
    CUDA_VISIBLE_DEVICES=1 timeout 60 pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads $3 --context $4 \
      --formats turbo2,turbo3,turbo4,mxfp4 --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
  }
  for r in 1 2 3; do
    for b in mn38 tv1; do
      [ "$SECONDS" -gt 230 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
      ab g-$b-$r $b 32:8 4096,32768,131072
      ab m-$b-$r $b 32:32 32768
    done
  done
}
gpu1 > "$OUT/gpu1.txt" 2>&1 &
g1=$!
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  CUDA_VISIBLE_DEVICES=0 GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-tv1-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "tv1 tests (GPU 0): passed $(grep -h '^\[  PASSED' $OUT/t-tv1-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-tv1-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-tv1-*.log | sort -u | head
grep -h -B3 "^\[  FAILED  \] [A-Za-z].*ms)" $OUT/t-tv1-*.log | grep -v "^\[ " | head -30
for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-tv1-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-tv1-$s.log | tail -1)"; done
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
print("hkv ctx    format        mn38 (main)               tv1   change")
for k in sorted(t, key=str):
    a, b = t[k]["mn38"], t[k]["tv1"]
    print("%2d %7d %-7s " % k + "%22s %22s" % (" ".join("%.2f" % v for v in a), " ".join("%.2f" % v for v in b)),
          "%+.1f%%" % (100 * (sum(b) / len(b) / (sum(a) / len(a)) - 1)) if a and b else "")
PY
echo "elapsed ${SECONDS}s"
