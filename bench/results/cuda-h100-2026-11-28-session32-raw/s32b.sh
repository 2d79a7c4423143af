#!/bin/bash
# Session 32, call 2: main32 / st4 / st3 at 32K (whole-SM forced for the staged builds) and 64K-128K.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in main32 st4 st3; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
bench() {  # name bin VAR=value args...
  local name=$1 bin=$2 envs=$3; shift 3
  env $envs pb/$bin/qsdpa bench --device cuda --heads 32:8 --min-seconds 0.1 "$@" --json "$OUT/$name.json" > "$OUT/$name.log" 2>&1 \
    || tail -3 "$OUT/$name.log"
}
for r in 1 2; do
  for b in main32 st4 st3; do
    bench $b-$r-long $b X=1 --context 131072 --formats mxfp4,nvfp4,affine4
    bench $b-$r-32k $b QSDPA_WHOLE_SM_FP4_KEYS=0 --context 32768 --formats mxfp4,affine4
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(list)
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*-[12]-*.json"))):
    side = os.path.basename(f).split("-")[0]
    for r in json.load(open(f))["rows"]:
        t[(r["k_format"], r["context"])].append((side, r["time_us"]))
for k in sorted(t):
    if k[0] in ("mxfp4", "nvfp4", "affine4"):
        print(k, " ".join("%s %.2f" % (s, v) for s, v in sorted(t[k])))
PY
