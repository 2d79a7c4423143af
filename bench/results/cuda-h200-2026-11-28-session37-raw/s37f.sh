#!/bin/bash
# Session 37, call 5 (H200, the session's last ~250 s): more A B A B rounds of ep36 (main) and wm37
# (the warp merge) at GQA 4: 4K and 128K (mxfp4, nvfp4, affine4), 32K (mxfp4, affine4).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in ep36 wm37; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
ab() {  # name bin contexts formats
  timeout 40 pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --context $3 --formats $4 \
    --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2; do
  for b in ep36 wm37; do
    [ "$SECONDS" -gt 150 ] && { echo "stopped at ${SECONDS}s"; break 2; }
    ab g-$b-$r $b 4096,131072 mxfp4,nvfp4,affine4
    ab h-$b-$r $b 32768 mxfp4,affine4
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[gh]-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(row["context"], row["k_format"])][side].append(row["time_us"])
print("ctx    format          ep36          wm37   change")
for k in sorted(t):
    a, b = t[k]["ep36"], t[k]["wm37"]
    print("%7d %-8s " % k + "%13s %13s" % (" ".join("%.2f" % v for v in a), " ".join("%.2f" % v for v in b)),
          "%+.2f" % (sum(b) / len(b) - sum(a) / len(a)) if a and b else "")
PY
echo "elapsed ${SECONDS}s"
