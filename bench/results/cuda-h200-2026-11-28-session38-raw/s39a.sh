#!/bin/bash
# Prepared in session 38 for a session that is lent an H100 (not run yet; ~560 s): do sessions 37-38's
# kernel changes (the one-warp merge, the called affine 4-bit epilogue: mn38, main) gain there too?
# A B A B against ep36 (main before both; carry it from /work/archives/ep36.tar.xz) at
# GQA 4 4K / 32K / 128K and MHA 32K; then the README's H100 table on mn38 (gpu-check's stage bench,
# PyTorch in the same run).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in ep36 mn38; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
ab() {  # name bin heads contexts formats
  timeout 50 pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads $3 --context $4 --formats $5 \
    --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
}
for r in 1 2; do
  for b in ep36 mn38; do
    ab g-$b-$r $b 32:8 4096,131072 mxfp4,nvfp4,affine4
    ab h-$b-$r $b 32:8 32768 mxfp4,affine4
    ab m-$b-$r $b 32:32 32768 mxfp4
  done
done
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[ghm]-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(row["hkv"], row["context"], row["k_format"])][side].append(row["time_us"])
print("hkv ctx    format          ep36          mn38   change")
for k in sorted(t):
    a, b = t[k]["ep36"], t[k]["mn38"]
    print("%3d %7d %-8s " % k + "%13s %13s" % (" ".join("%.2f" % v for v in a), " ".join("%.2f" % v for v in b)),
          "%+.2f" % (sum(b) / len(b) - sum(a) / len(a)) if a and b else "")
PY
echo "A/B done at ${SECONDS}s"
QSDPA_PREBUILT=third_party_carry/mn38.tar.xz QSDPA_STAGES=bench timeout $((570 - SECONDS)) bash scripts/gpu-check.sh > "$OUT/bench.log" 2>&1
echo "bench rc $?"; grep -v "^$" "$OUT/bench.log" | tail -45
echo "elapsed ${SECONDS}s"
