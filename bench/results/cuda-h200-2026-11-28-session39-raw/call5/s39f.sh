#!/bin/bash
# Session 39, nvidia-h200-x2 (~300 s): mev39 (main + the merge kernels' griddepcontrol.launch_dependents
# at their start behind QSDPA_MERGE_EARLY_NEXT=1; 0, the default, is main). GPU 0: every CUDA test
# with the switch on (15 shards, 200 s limits). GPU 1: A B A B A B of the switch, one binary, GQA 4
# 4K / 32K / 128K and MHA 32K. The phase probe (call 4) put ~2-3 us between a call's merge end and
# the next call's first block; the next call's launch waits for the merge grid to end.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/mev39.tar.xz || exit 1
echo "mev39: $(cat pb/mev39/COMMIT)"
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/mev39/qsdpa_tests
gpu1() {
  ab() {  # name switch heads contexts
    CUDA_VISIBLE_DEVICES=1 QSDPA_MERGE_EARLY_NEXT=$2 timeout 60 pb/mev39/qsdpa bench --device cuda --min-seconds 0.1 --heads $3 --context $4 \
      --formats f16,mxfp4,nvfp4,affine4,mxfp8,turbo4 --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1 || tail -3 "$OUT/$1.log"
  }
  for r in 1 2 3; do
    for s in 0 1; do
      [ "$SECONDS" -gt 230 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
      ab g-e$s-$r $s 32:8 4096,32768,131072
      ab m-e$s-$r $s 32:32 32768
    done
  done
}
gpu1 > "$OUT/gpu1.txt" 2>&1 &
g1=$!
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  CUDA_VISIBLE_DEVICES=0 QSDPA_MERGE_EARLY_NEXT=1 GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "mev39 tests, QSDPA_MERGE_EARLY_NEXT=1 (GPU 0): passed $(grep -h '^\[  PASSED' $OUT/t-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-*.log | sort -u | head
for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-$s.log | tail -1)"; done
echo "tests done at ${SECONDS}s"
CUDA_VISIBLE_DEVICES=0 QSDPA_MERGE_EARLY_NEXT=1 timeout 60 pb/mev39/qsdpa_cli_tests > "$OUT/cli.log" 2>&1; echo "cli tests rc $?"; tail -2 "$OUT/cli.log"
wait $g1
cat "$OUT/gpu1.txt"
python3 - "$OUT" <<'PY'
import json, glob, os, sys, collections
t = collections.defaultdict(lambda: collections.defaultdict(list))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "[mg]-*.json"))):
    h, side, r = os.path.basename(f)[:-5].split("-")
    for row in json.load(open(f))["rows"]:
        t[(row["hkv"], row["context"], row["k_format"])][side].append(row["time_us"])
print("hkv ctx    format        e0 (main)                  e1   change")
for k in sorted(t, key=str):
    a, b = t[k]["e0"], t[k]["e1"]
    print("%2d %7d %-7s " % k + "%22s %22s" % (" ".join("%.2f" % v for v in a), " ".join("%.2f" % v for v in b)),
          "%+.1f%%" % (100 * (sum(b) / len(b) / (sum(a) / len(a)) - 1)) if a and b else "")
PY
echo "elapsed ${SECONDS}s"
