#!/bin/bash
# Session 42, call 4, nvidia-h200 (~120 s). pz0 / pp0 (call 3) where the 8-bit 4-warp kernels run
# long or many: MHA 128K (call 3's bench saw affine8 +5.6% there, at a power-limited clock), B 8
# and B 32 at 32K. A B x3, alternating.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for s in pz0 pp0; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$s.tar.xz || exit 1
done
ab() {  # set side round bench-args...
  local set=$1 side=$2 r=$3; shift 3
  mkdir -p "$OUT/$set"
  timeout 100 pb/$side/qsdpa bench --device cuda --min-seconds 0.1 "$@" \
    --json "$OUT/$set/$set-$side-$r.json" > "$OUT/$set/$set-$side-$r.log" 2>&1 || tail -3 "$OUT/$set/$set-$side-$r.log"
}
for r in 1 2 3; do
  for s in pz0 pp0; do
    [ "$SECONDS" -gt 200 ] && { echo "stopped at ${SECONDS}s"; break 2; }
    ab m $s $r --heads 32:32 --context 131072 --formats mxfp8,affine8
    ab b $s $r --heads 32:8 --batch 8 --context 32768 --formats mxfp8,affine8
    ab c $s $r --heads 32:8 --batch 32 --context 32768 --formats mxfp8,affine8
  done
  echo "round $r done at ${SECONDS}s"
done
for set in m b c; do echo "== set $set"; python3 scripts/ab_table.py "$OUT/$set" pz0 pp0; done
python3 - "$OUT" <<'PY'
import glob, json, os, sys
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*", "*.json"))):
    rows = json.load(open(f))["rows"]
    print(os.path.basename(f), " ".join(f"{r['k_format']} {r['time_us']:.1f}us {r.get('sm_clock_mhz', 0):.0f}MHz" for r in rows))
PY
echo "elapsed ${SECONDS}s"
