#!/bin/bash
# Session 33, call 1: lb2 (lane base pointers in shared memory + row addresses by mul.wide.u32)
# against main's kernels (fin32): lb2's full CUDA test suite, then A B A B on the reference shapes.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in fin32 lb2; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
QSDPA_PREBUILT=third_party_carry/lb2.tar.xz QSDPA_STAGES=tests timeout 260 bash scripts/gpu-check.sh > "$OUT/tests.log" 2>&1
tail -8 "$OUT/tests.log"
mkdir -p "$OUT/tests" && mv "$OUT"/gtest-*.log "$OUT"/cuda-tests.log "$OUT"/cli-tests.log "$OUT/tests/" 2>/dev/null
bench() {  # name bin args...
  local name=$1 bin=$2; shift 2
  pb/$bin/qsdpa bench --device cuda --min-seconds 0.1 "$@" --json "$OUT/$name.json" > "$OUT/$name.log" 2>&1 || tail -3 "$OUT/$name.log"
}
F=f16,affine8,affine4,affine4-g32,mxfp8,mxfp4,nvfp4,turbo4,turbo3
for r in 1 2; do
  bench a$r-gqa fin32 --heads 32:8 --context 32768,131072 --formats $F
  bench b$r-gqa lb2 --heads 32:8 --context 32768,131072 --formats $F
done
bench a1-mha fin32 --heads 32:32 --context 131072 --formats $F
bench b1-mha lb2 --heads 32:32 --context 131072 --formats $F
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(list); peak = {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[ab][12]-*.json"))):
    b = os.path.basename(f); side, shape = b[0], b.split("-")[1].split(".")[0]
    j = json.load(open(f))
    for r in j["rows"]:
        t[(shape, r["k_format"], r["context"])].append((side, r["time_us"]))
        peak[(shape, r["k_format"], r["context"], side)] = 100 * r["gbps"] / j["peak_gbps"]
for k in sorted(t):
    a = [v for s, v in t[k] if s == "a"]; b = [v for s, v in t[k] if s == "b"]
    print("%-4s %-12s %7d  main %s  new %s  ratio %.3f  new %%peak %.1f" % (k[0], k[1], k[2], " ".join("%.2f" % v for v in a),
          " ".join("%.2f" % v for v in b), (sum(b) / len(b)) / (sum(a) / len(a)), peak[k + ("b",)]))
PY
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
