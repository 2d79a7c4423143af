#!/bin/bash
# Session 41, nvidia-h200 (~260 s). pf1: fin41 (main 937d0c9) with -DQSDPA_WHOLE_SM_PREFETCH_STEPS=1
# (the whole-SM mxfp4 / nvfp4 prologue asks L2 for 1 step ahead, not 2). A B rounds until ~230 s.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for s in fin41 pf1; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$s.tar.xz || exit 1
  echo "$s: $(cat pb/$s/COMMIT)"
done
ab() {  # set side round bench-args...
  local set=$1 side=$2 r=$3; shift 3
  mkdir -p "$OUT/$set"
  timeout 60 pb/$side/qsdpa bench --device cuda --min-seconds 0.1 "$@" \
    --json "$OUT/$set/$set-$side-$r.json" > "$OUT/$set/$set-$side-$r.log" 2>&1 || tail -3 "$OUT/$set/$set-$side-$r.log"
}
for r in 1 2 3 4 5 6; do
  for s in fin41 pf1; do
    [ "$SECONDS" -gt 225 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
    ab g $s $r --heads 32:8 --context 16384,32768,65536,131072 --formats mxfp4,nvfp4
    ab m $s $r --heads 32:32 --context 32768 --formats mxfp4,nvfp4
  done
  echo "round $r done at ${SECONDS}s"
done
for set in g m; do echo "== set $set"; python3 scripts/ab_table.py "$OUT/$set" fin41 pf1; done
echo "elapsed ${SECONDS}s"
