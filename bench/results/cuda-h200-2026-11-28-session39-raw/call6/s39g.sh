#!/bin/bash
# Session 39, nvidia-h200 (~280 s): qf39 (whole-SM blocks load q before their first tile and its
# 4 prefetched steps; the phase probe had q staged at 4.7 us, behind ~22 MB of requests) against
# mn38 (main): the whole-SM tests and the 4-bit pairwise tests on qf39, then A B A B A B at GQA 4
# 32K / 128K and MHA 32K.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in mn38 qf39; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  echo "$a: $(cat pb/$a/COMMIT)"
done
n=5; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 110 pb/qf39/qsdpa_tests \
    --gtest_filter='CudaAttentionSplits.WholeSm*:CudaAttentionGraph*:CudaAttentionChained*' > "$OUT/t-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "qf39 tests: passed $(grep -h '^\[  PASSED' $OUT/t-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-*.log | sort -u | head
for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-$s.log | tail -1)"; done
echo "tests done at ${SECONDS}s"
for r in 1 2 3; do
  for b in mn38 qf39; do
    [ "$SECONDS" -gt 265 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
    timeout 40 pb/$b/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --context 32768,131072 \
      --formats mxfp4,nvfp4,affine4 --json "$OUT/g-$b-$r.json" > "$OUT/g-$b-$r.log" 2>&1 || tail -3 "$OUT/g-$b-$r.log"
    timeout 40 pb/$b/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:32 --context 32768 \
      --formats mxfp4,nvfp4,affine4 --json "$OUT/m-$b-$r.json" > "$OUT/m-$b-$r.log" 2>&1 || tail -3 "$OUT/m-$b-$r.log"
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[gm]-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(row["hkv"], row["context"], row["k_format"])][side].append(row["time_us"])
print("hkv ctx    format        mn38 (main)               qf39   change")
for k in sorted(t, key=str):
    a, b = t[k]["mn38"], t[k]["qf39"]
    print("%2d %7d %-7s " % k + "%22s %22s" % (" ".join("%.2f" % v for v in a), " ".join("%.2f" % v for v in b)),
          "%+.1f%%" % (100 * (sum(b) / len(b) / (sum(a) / len(a)) - 1)) if a and b else "")
PY
echo "elapsed ${SECONDS}s"
