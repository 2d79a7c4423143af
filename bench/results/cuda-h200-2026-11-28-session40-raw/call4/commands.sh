# Session 40, calls 4 and 5 (nvidia-h200-x2, warm after call 3): gpu-check's stage bench on ws40
# (0480e31), PyTorch timed in the same call, GPU 0 only; GQA 4 in call 4, MHA in call 5.
OUT=$OUT/g QSDPA_PREBUILT=third_party_carry/ws40.tar.xz QSDPA_STAGES=bench QSDPA_BENCH_HEADS=32:8 \
  CUDA_VISIBLE_DEVICES=0 timeout 330 bash scripts/gpu-check.sh > $OUT/bench-g.log 2>&1   # 43 s
OUT=$OUT/m QSDPA_PREBUILT=third_party_carry/ws40.tar.xz QSDPA_STAGES=bench QSDPA_BENCH_HEADS=32:32 \
  CUDA_VISIBLE_DEVICES=0 timeout 200 bash scripts/gpu-check.sh > $OUT/bench-m.log 2>&1   # 101 s
