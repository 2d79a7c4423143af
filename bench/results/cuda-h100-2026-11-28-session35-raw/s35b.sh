#!/bin/bash
# Session 35, call 2: the bench's batch rule (94e5696: every timed graph replay holds >= 8 calls over
# >= 2 copies) against the old one (QSDPA_BENCH_MIN_BATCH=1: one call per copy, 1 copy where it
# alone exceeds 2x the L2), same binary, A B A B, qsdpa and PyTorch; then the README bench (stage
# bench) with the new rule. Kernels: byte-identical to d92118e's except nothing (tools only).
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/mb35.tar.xz || exit 1
cat pb/mb35/COMMIT
for r in 1 2; do
  for mb in 1 8; do
    QSDPA_BENCH_MIN_BATCH=$mb pb/mb35/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 \
      --context 32768,131072 --formats mxfp4,nvfp4,affine4,mxfp8 --json "$OUT/mb$mb-$r.json" > "$OUT/mb$mb-$r.log" 2>&1 \
      || tail -3 "$OUT/mb$mb-$r.log"
  done
done
for mb in 1 8; do
  QSDPA_BENCH_MIN_BATCH=$mb timeout 90 python3 scripts/torch_sdpa.py "$OUT/mb$mb-1.json" --min-seconds 0.1 > "$OUT/torch-mb$mb.log" 2>&1 || tail -3 "$OUT/torch-mb$mb.log"
done
python3 - "$OUT" <<'PY'
import json, os, sys, collections
o = sys.argv[1]
t = collections.defaultdict(list)
for mb in (1, 8):
    for r in (1, 2):
        d = json.load(open(os.path.join(o, f"mb{mb}-{r}.json")))
        for row in d["rows"]:
            t[(row["k_format"], row["context"], mb)].append((row["time_us"], row["f16_time_us"], row["copies"], row.get("batch_calls"), 100 * row["gbps"] / d["peak_gbps"]))
            if r == 1 and "torch_best_time_us" in row:
                t[("torch", row["context"], mb)] = [(row["torch_best_time_us"], 0, row["torch_copies"], row.get("torch_batch_calls"), 0)]
print("format   context  old (1 call/copy): us [f16] copies,batch %peak   | new (>=8 calls, >=2 copies)")
for k in sorted({(a, b) for a, b, _ in t}):
    line = "%-8s %7d " % k
    for mb in (1, 8):
        v = t[k + (mb,)]
        line += " | " + " ".join("%.2f [%.1f] %s,%s %.1f%%" % x for x in v)
    print(line)
PY
QSDPA_PREBUILT=third_party_carry/mb35.tar.xz QSDPA_STAGES=bench timeout 330 bash scripts/gpu-check.sh > "$OUT/bench.log" 2>&1
tail -45 "$OUT/bench.log"
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
