#!/bin/bash
# Session 39, nvidia-h200 (~150 s): im39 (E2M1's odd values shifted by an IMAD.HI on the FMA pipe:
# the whole-SM mxfp4 loop's ALU-pipe instructions 189 -> 177, its common path 369 -> 383; nvfp4's
# 180 -> 173 with 3 local accesses) against mn38 (main), A B A B A B at GQA 4 32K / 128K, after
# the E2M1 families' CUDA tests on im39.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in mn38 im39; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  echo "$a: $(cat pb/$a/COMMIT)"
done
n=6; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 100 pb/im39/qsdpa_tests \
    --gtest_filter='*CudaAttention.*mxfp4*:*CudaAttention.*nvfp4*:CudaAttentionSplits.WholeSm*' > "$OUT/t-im39-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "im39 tests: passed $(grep -h '^\[  PASSED' $OUT/t-im39-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-im39-*.log | sort -u | head
for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-im39-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-im39-$s.log | tail -1)"; done
echo "tests done at ${SECONDS}s"
for r in 1 2 3; do
  for b in mn38 im39; do
    timeout 40 pb/$b/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --context 32768,131072 \
      --formats mxfp4,nvfp4,affine4 --json "$OUT/g-$b-$r.json" > "$OUT/g-$b-$r.log" 2>&1 || tail -3 "$OUT/g-$b-$r.log"
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "g-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(row["context"], row["k_format"])][side].append(row["time_us"])
print("ctx    format        mn38 (main)               im39   change")
for k in sorted(t):
    a, b = t[k]["mn38"], t[k]["im39"]
    print("%7d %-8s " % k + "%22s %22s" % (" ".join("%.2f" % v for v in a), " ".join("%.2f" % v for v in b)),
          "%+.1f%%" % (100 * (sum(b) / len(b) / (sum(a) / len(a)) - 1)) if a and b else "")
PY
echo "elapsed ${SECONDS}s"
