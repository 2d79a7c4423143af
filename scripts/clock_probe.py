#!/usr/bin/env python3
"""Experiment (session 19): does a short decode call's time depend on what the GPU ran just before?
Times cuDNN's fp16 SDPA at B=1, Hq=32, Hkv=8, D=128, N=2048 (rotating copies, as torch_sdpa.py) on a
fresh GPU, right after sustained load (1 GiB device copies, as the bench's copy-peak measurement),
and after an idle pause, while nvidia-smi logs the SM clock, power and throttle reasons.
Written in session 19; first run in session 20 (docs/gpu-tests.md, session 20): the SM clock stayed
at 1980 MHz while cuDNN's ungated 2K call went from 9.1 to 9.8-9.9 us with a build on the host.
Usage (GPU machine): python3 scripts/clock_probe.py OUT_DIR [load_seconds]"""
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from torch_sdpa import BACKENDS, time_backend  # noqa: E402

out = sys.argv[1]
load_s = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
smi = subprocess.Popen(
    ["nvidia-smi", "--query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active",
     "--format=csv", "-lms", "250"], stdout=open(os.path.join(out, "smi.csv"), "w"))
t0 = time.time()
gen = torch.Generator(device="cuda").manual_seed(1)
n, copies = 2048, 13
q = torch.randn(1, 32, 1, 128, device="cuda", dtype=torch.float16, generator=gen)
ks = [torch.randn(1, 8, n, 128, device="cuda", dtype=torch.float16, generator=gen) for _ in range(copies)]
vs = [torch.randn(1, 8, n, 128, device="cuda", dtype=torch.float16, generator=gen) for _ in range(copies)]
src = torch.empty(1 << 29, device="cuda", dtype=torch.float16)
dst = torch.empty_like(src)


def probe(label):
    us = [time_backend(BACKENDS["cudnn"], q, ks, vs, 0.3) for _ in range(3)]
    print(f"{time.time() - t0:6.1f} s  {label:28s} cuDNN 2K: " + " ".join(f"{u:.2f}" for u in us), flush=True)


probe("fresh")
probe("fresh again")
end = time.time() + load_s
while time.time() < end:
    for _ in range(20):
        dst.copy_(src)
    torch.cuda.synchronize()
probe(f"after {load_s:.0f} s of copies")
probe("again")
time.sleep(10)
probe("after 10 s idle")
end = time.time() + load_s
while time.time() < end:
    time_backend(BACKENDS["cudnn"], q, ks, vs, 1.0)
probe(f"after {load_s:.0f} s of cuDNN 2K")
smi.terminate()
