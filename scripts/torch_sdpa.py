#!/usr/bin/env python3
"""Times PyTorch's fp16 SDPA backends (cuDNN, FlashAttention, memory-efficient) on the shapes of a
`qsdpa bench --device cuda` JSON and writes, into each row, torch_best_time_us, torch_backend,
torch_copies, torch_batch_calls, torch_timing, torch_sm_clock_mhz (the SM clock right after the best backend's timing, measured as the
bench's sm_clock_mhz) and speedup_vs_torch (= torch_best_time_us / time_us). Run it on the same GPU
right after the bench.

Measurement as `qsdpa bench --device cuda` does it (SPEC §5): K/V copies rotated so that together
they exceed twice the L2 (at least 2), CUDA events around a batch of back-to-back calls (at least 8, cycling over
the copies, captured once in a CUDA graph and replayed, so Python's dispatch is not timed) divided by the batch size, median after warm-up; the GPU
spins (torch.cuda._sleep) while the host enqueues the events and the replay, so that only GPU time is
timed (qsdpa bench's cuda::HostGate; QSDPA_BENCH_NO_GATE=1: without it). The backend is chosen once, outside the timed region. GQA goes
through enable_gqa=True (no repeated K/V).

Usage: python3 scripts/torch_sdpa.py bench.json [--min-seconds 0.2]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
}


def batch_calls(copies):
    """Calls per timed batch, cycling over the copies: at least MIN_BATCH (qsdpa bench's batch_calls)."""
    calls = max(copies, MIN_BATCH)
    return -(-calls // copies) * copies


def time_backend(backend, q, ks, vs, min_seconds):
    # The batch (batch_calls: at least MIN_BATCH calls, cycling over the copies) is captured once in a
    # CUDA graph and replayed, so that Python's dispatch (~20-40 us a call, longer than the kernel at
    # N <= 4K) stays out of the timed region, and the replay's own start is spread over the batch.
    gqa = ks[0].shape[1] != q.shape[1]
    calls = batch_calls(len(ks))
    with sdpa_kernel([backend]):
        for i in range(3):
            F.scaled_dot_product_attention(q, ks[i % len(ks)], vs[i % len(ks)], enable_gqa=gqa)
        torch.cuda.synchronize()
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for i in range(calls):
                    F.scaled_dot_product_attention(q, ks[i % len(ks)], vs[i % len(ks)], enable_gqa=gqa)
            run = graph.replay
        except RuntimeError as e:  # not capturable: time eager calls (Python dispatch included)
            print(f"  graph capture failed ({str(e).splitlines()[0][:80]}); timing eager calls")
            torch.cuda.synchronize()

            def run():
                for i in range(calls):
                    F.scaled_dot_product_attention(q, ks[i % len(ks)], vs[i % len(ks)], enable_gqa=gqa)
        torch.cuda.synchronize()
        for _ in range(2):
            run()
        torch.cuda.synchronize()
        times, enqueue_s = [], []
        start = time.time()
        while len(times) < 10 or (time.time() - start < min_seconds and len(times) < 2000):
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            # The GPU spins while the host enqueues the events and the replay, so that the events
            # time the GPU alone and not the replay's host time (qsdpa bench: cuda::HostGate).
            if GATE_CYCLES:
                torch.cuda._sleep(GATE_CYCLES)
            t = time.perf_counter()
            a.record()
            run()
            b.record()
            enqueue_s.append(time.perf_counter() - t)
            b.synchronize()
            times.append(a.elapsed_time(b) * 1e3 / calls)
    slow = max(enqueue_s)
    if GATE_CYCLES and slow > 0.5 * GATE_CYCLES / 2e9:  # the spin (~1 ms) may have ended before the enqueue did
        print(f"  warning: an enqueue took {slow * 1e6:.0f} us, near the gate's spin", file=sys.stderr)
    return statistics.median(times)


# ~1 ms at the H100's ~2 GHz (a graph replay's enqueue takes ~5-50 us); QSDPA_BENCH_NO_GATE=1: none,
# as before session 20 (an A/B switch, as qsdpa bench's).
GATE_CYCLES = 0 if os.environ.get("QSDPA_BENCH_NO_GATE") else 2_000_000
# Calls per timed batch (session 35, as qsdpa bench): at least 8, over at least 2 copies;
# QSDPA_BENCH_MIN_BATCH=1: one call per copy, from 1 copy, as before (an A/B switch).
MIN_BATCH = min(64, max(1, int(os.environ.get("QSDPA_BENCH_MIN_BATCH", "8"))))


def sm_clock_mhz(cycles=2_000_000):
    """The SM clock now, as qsdpa bench measures it (cuda::sm_clock_mhz): a one-thread kernel
    spinning a fixed count of clock64() cycles (torch.cuda._sleep), timed by events."""
    try:
        torch.cuda._sleep(1000)
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        torch.cuda._sleep(cycles)
        b.record()
        b.synchronize()
        return cycles / (a.elapsed_time(b) * 1e3)
    except (AttributeError, RuntimeError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json")
    ap.add_argument("--min-seconds", type=float, default=0.2)
    args = ap.parse_args()
    with open(args.json) as f:
        doc = json.load(f)
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    doc["torch_version"] = torch.__version__
    doc["torch_device_name"] = torch.cuda.get_device_name(0)
    cache = {}
    for row in doc["rows"]:
        key = (row["batch"], row["hq"], row["hkv"], row["dim"], row["lq"], row["context"])
        if key not in cache:
            B, hq, hkv, D, lq, n = key
            gen = torch.Generator(device="cuda").manual_seed(7)
            q = torch.randn(B, hq, lq, D, device="cuda", dtype=torch.float16, generator=gen)
            kv_bytes = 2 * B * hkv * n * D * 2
            # as qsdpa bench (16 at most until session 18; 2 at least since session 35)
            copies = max(2 if MIN_BATCH > 1 else 1, min(256, -(-2 * l2 // kv_bytes)))
            ks = [torch.randn(B, hkv, n, D, device="cuda", dtype=torch.float16, generator=gen) for _ in range(copies)]
            vs = [torch.randn(B, hkv, n, D, device="cuda", dtype=torch.float16, generator=gen) for _ in range(copies)]
            results, clocks = {}, {}
            for name, backend in BACKENDS.items():
                try:
                    results[name] = time_backend(backend, q, ks, vs, args.min_seconds)
                    clocks[name] = sm_clock_mhz()  # the clock the backend just ran at
                except RuntimeError as e:  # a backend that does not take this shape
                    results[name] = None
                    print(f"  {name} skipped at {key}: {str(e).splitlines()[0][:100]}")
            del ks, vs
            torch.cuda.empty_cache()
            ok = {k: v for k, v in results.items() if v is not None}
            best = min(ok, key=ok.get) if ok else None
            cache[key] = (best, ok.get(best), results, copies, clocks.get(best))
            print(f"torch {key}: " + ", ".join(f"{k} {v:.1f} us" for k, v in ok.items()))
        best, best_us, results, copies, clock = cache[key]
        row["torch_backend"] = best
        row["torch_copies"] = copies
        row["torch_batch_calls"] = batch_calls(copies)
        row["torch_timing"] = "cuda-graph-gated" if GATE_CYCLES else "cuda-graph"  # as the row's "timing"
        row["torch_sm_clock_mhz"] = clock
        row["torch_best_time_us"] = best_us
        row["torch_times_us"] = results
        row["speedup_vs_torch"] = best_us / row["time_us"] if best_us else None
    out_dir = os.path.dirname(os.path.abspath(args.json))
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".torch_sdpa.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
