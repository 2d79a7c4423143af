#!/bin/bash
# Session 38, call 6 (nvidia-h200, ~170 s): are the whole-SM warps of one scheduler in lockstep (ncu:
# 1.54 eligible warps of 4 on average while 39% of cycles have none)? A B C A B C of mn38 (main)
# against st300 / st100 (the warps w, w+4, w+8, w+12 of a block starting 0, 1, 2, 3 x 300 / 100 ns
# apart), GQA 4 32K / 128K, mxfp4, nvfp4, affine4.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in mn38 st300 st100; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
  echo "$a: $(cat pb/$a/COMMIT)"
done
for r in 1 2; do
  for b in mn38 st300 st100; do
    [ "$SECONDS" -gt 190 ] && { echo "stopped at ${SECONDS}s"; break 2; }
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
print("ctx    format        mn38 (main)          st300          st100")
for k in sorted(t):
    c = t[k]
    print("%7d %-8s " % k + " ".join("%14s" % " ".join("%.2f" % v for v in c[s]) for s in ("mn38", "st300", "st100")))
PY
echo "elapsed ${SECONDS}s"
