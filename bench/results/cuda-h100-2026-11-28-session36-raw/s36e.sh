#!/bin/bash
# Session 36, call 5 (timing only, ~100 s of device time left): does the one-warp merge kernel lose
# at 128K because its blocks crowd the 4 SMs the whole-SM split blocks leave free? ep36 (main) vs
# mws36 (the warp merge in 1-warp blocks asking 100 KB of shared memory: at most 2 an SM) vs mw36
# (the warp merge in 4-warp blocks, call 4's build).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
for a in ep36 mws36 mw36; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
ab() {  # name bin
  timeout 40 pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --context 4096,131072 --formats mxfp4,nvfp4 \
    --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2; do
  for b in ep36 mws36 mw36; do
    [ "$SECONDS" -gt 80 ] && { echo "stopped at ${SECONDS}s"; break 2; }
    ab g-$b-$r $b
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "g-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(row["context"], row["k_format"])][side].append(row["time_us"])
print("ctx    format    ep36          mws36         mw36")
for k in sorted(t):
    print("%7d %-8s " % k + " ".join("%13s" % " ".join("%.2f" % v for v in t[k][s]) for s in ["ep36", "mws36", "mw36"]))
PY
echo "elapsed ${SECONDS}s"
