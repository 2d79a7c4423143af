#!/bin/bash
# Prepared in session 42 for the next session; nvidia-h200-x4 (x2: GPUs 2-3's parts skipped).
# Archives (third_party_carry): mn42 = main e86be15 (carry-build.sh mn42); pz0 = the same kernels
# but the 8-bit 4-warp prologue prefetch on (session 42's baseline of that A/B; its bench still
# draws data on one thread, so time its processes apart from mn42's).
# GPU 0: gpu-check stage shapes on mn42, in full (B 32, D 64, D 256 were cut in session 42), timed.
# GPU 1: A B x3 pz0 / mn42 at MHA 128K and B 32 32K, mxfp8 / affine8 (session 42's open question),
#        each process timed (is the parallel data draw enough, or do the baselines dominate?).
# GPU 2: ncu source counters of tile code 2 (Lq 4, GQA 4, mxfp4, 128K): where the "wait" stalls fall.
# GPU 3: the same for the 4-warp Lq 1 kernel (QSDPA_WHOLE_SM=0), for comparison.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
ngpu=$(nvidia-smi -L | wc -l)
for s in mn42 pz0; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$s.tar.xz || exit 1
  echo "$s: $(cat pb/$s/COMMIT)"
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden" NCCL_NVLS_ENABLE=0
pids=()
(
  t0=$SECONDS
  CUDA_VISIBLE_DEVICES=0 OUT=$OUT/shapes QSDPA_PREBUILT=third_party_carry/mn42.tar.xz QSDPA_STAGES=shapes timeout 500 bash scripts/gpu-check.sh
  echo "shapes done in $((SECONDS - t0)) s"
) > "$OUT/gpu0.txt" 2>&1 &
pids+=($!)
(
  ab() {  # set side round bench-args...
    local set=$1 side=$2 r=$3 t0=$SECONDS; shift 3
    mkdir -p "$OUT/$set"
    CUDA_VISIBLE_DEVICES=1 timeout 150 pb/$side/qsdpa bench --device cuda --min-seconds 0.1 "$@" \
      --json "$OUT/$set/$set-$side-$r.json" > "$OUT/$set/$set-$side-$r.log" 2>&1 || tail -3 "$OUT/$set/$set-$side-$r.log"
    echo "$set $side $r: $((SECONDS - t0)) s"
  }
  for r in 1 2 3; do
    for s in pz0 mn42; do
      [ "$SECONDS" -gt 420 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
      ab m $s $r --heads 32:32 --context 131072 --formats affine8,mxfp8
      ab c $s $r --heads 32:8 --batch 32 --context 32768 --formats affine8,mxfp8
    done
  done
  for set in m c; do echo "== set $set"; python3 scripts/ab_table.py "$OUT/$set" pz0 mn42; done
  python3 - "$OUT" <<'PY'
import glob, json, os, sys
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[mc]", "*.json"))):
    rows = json.load(open(f))["rows"]
    print(os.path.basename(f), " ".join(f"{r['k_format']} {r['time_us']:.1f}us {r.get('sm_clock_mhz', 0):.0f}MHz" for r in rows))
PY
) > "$OUT/gpu1.txt" 2>&1 &
pids+=($!)
src() {  # gpu name kernel-regex env bench-args...
  local gpu=$1 name=$2 k=$3 e=$4; shift 4
  env $e CUDA_VISIBLE_DEVICES=$gpu timeout 300 ncu --clock-control none --kernel-name-base mangled -k "regex:$k" -s 6 -c 1 \
    --section SourceCounters --section WarpStateStats -f -o "$OUT/src-$name" \
    pb/mn42/qsdpa bench --device cuda --formats mxfp4 --heads 32:8 --min-seconds 0 "$@" > "$OUT/src-$name.log" 2>&1
  ncu -i "$OUT/src-$name.ncu-rep" --page source --csv --print-source sass > "$OUT/src-$name.csv" 2> "$OUT/src-$name.err"
  echo "src $name rc $? at ${SECONDS}s"
}
if [ "$ngpu" -ge 3 ]; then
  src 2 lq4 'mma_partials.*ILi128ELi2ELNS1_3FamE3ELS3_3ELb0ELi4E' "X=1" --context 131072 --lq 4 > "$OUT/gpu2.txt" 2>&1 &
  pids+=($!)
fi
if [ "$ngpu" -ge 4 ]; then
  src 3 lq1w4 'mma_partials.*ILi128ELi0ELNS1_3FamE3ELS3_3ELb0ELi4E' "QSDPA_WHOLE_SM=0" --context 131072 > "$OUT/gpu3.txt" 2>&1 &
  pids+=($!)
fi
for p in "${pids[@]}"; do wait $p; done
echo "== GPU 0"; grep -v "^|" "$OUT/gpu0.txt" | tail -12
echo "== GPU 2/3"; cat "$OUT/gpu2.txt" "$OUT/gpu3.txt" 2>/dev/null
echo "== GPU 1"; cat "$OUT/gpu1.txt"
rm -f "$OUT"/*.ncu-rep  # the CSVs hold what is needed; the reports are large
echo "elapsed ${SECONDS}s"
