#!/usr/bin/env python3
"""PyTorch's side of `benches/pool.rs`: the same four calls on the same two shapes (float32),
timed with a plain loop (median of 20 repetitions after 3 warm-up calls).

    OMP_NUM_THREADS=1 python benches/compare/pool_torch.py --threads 1
    OMP_NUM_THREADS=2 python benches/compare/pool_torch.py --threads 2
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def timed(f, reps=20, warmup=3):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = [("64x6x24x24_k2", (64, 6, 24, 24), 2, 2, 0), ("8x64x112x112_k3s2p1", (8, 64, 112, 112), 3, 2, 1)]
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}")
    for name, shape, k, s, p in cases:
        x = torch.rand(shape, dtype=torch.float32) * 2 - 1
        leaf = x.clone().requires_grad_(True)
        for op, f in [("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d)]:
            with torch.no_grad():
                fwd = timed(lambda: f(x, k, s, p))
            out = f(x, k, s, p)
            ones = torch.ones_like(out)
            both = timed(lambda: torch.autograd.grad(f(leaf, k, s, p), leaf, ones))
            print(f"{name} {op}_forward {fwd * 1e3:.3f} ms  {op}_fwd_bwd {both * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
