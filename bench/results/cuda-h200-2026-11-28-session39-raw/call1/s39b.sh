#!/bin/bash
# Prepared in session 38 (not run yet; ~150 s, any H100 or H200): does the 4-bit whole-SM loop's pace
# depend on how many warps an SM holds? ws8 (branch s38-whole-sm-warps, -DQSDPA_WHOLE_SM_WARPS=8:
# the same one-block-a-SM split with 8 warps, 128 registers each) against mn38 (16 warps). If the
# loop is latency-bound (the H200's profile: 1.5 eligible warps of 4, 39% of cycles none), halving
# the warps costs up to ~2x; if a shared pipe sets the pace, much less. First the whole-SM test on
# ws8 (its results must hold for the timing to mean anything).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in mn38 ws8; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  echo "$a: $(cat pb/$a/COMMIT)"
done
timeout 120 pb/ws8/qsdpa_tests --gtest_filter='CudaAttentionSplits.WholeSm*' > "$OUT/ws8-test.log" 2>&1
echo "ws8 whole-SM tests rc $?"; grep -E "warps$|^\[  (PASSED|FAILED) " "$OUT/ws8-test.log" | head -12
for r in 1 2; do
  for b in mn38 ws8; do
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
print("ctx    format     mn38 (16 warps)    ws8 (8 warps)   ratio")
for k in sorted(t):
    a, b = t[k]["mn38"], t[k]["ws8"]
    print("%7d %-8s " % k + "%16s %16s" % (" ".join("%.2f" % v for v in a), " ".join("%.2f" % v for v in b)),
          "%.2f" % ((sum(b) / len(b)) / (sum(a) / len(a))) if a and b else "")
PY
echo "elapsed ${SECONDS}s"
