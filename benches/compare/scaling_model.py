#!/usr/bin/env python3
"""An alpha-beta model of data-parallel training steps, for docs/DISTRIBUTED.md.

    python benches/compare/scaling_model.py --lstm-ms 42.8 --mlp-ms 4.4

A step on p nodes = the compute of one node's share (measured: one process, one thread, the
per-process batch) + the gradient all-reduce that the backward pass could not hide.

All-reduce of N bytes over p nodes, each link with latency alpha and bandwidth beta:
  ring (bandwidth-optimal):      2(p-1) alpha + 2(p-1)/p N/beta
  recursive halving + doubling:  2 log2(p) alpha + 2(p-1)/p N/beta  (Rabenseifner; what MPI
                                 libraries pick for large buffers on many nodes)
The model takes the faster of the two for each size, as an MPI library's tuning tables aim to.

Exposed communication: without overlap, all of it; with overlap, what remains after the
backward pass of the layers that finish early, taken here as the backward pass minus the last
bucket's share (backward = 2/3 of the step's compute, a common rule for these models), bucketed
with `--bucket-mb`. Efficiency = compute / (compute + exposed); with the per-node batch fixed
(weak scaling), throughput = p x efficiency x one node's.

Where it stops holding: one process per node and a full-bisection network (no congestion, no
oversubscribed switch links), steady per-step compute with no stragglers, the reduction's own
arithmetic free (true at network speeds below memory bandwidth), and the network's alpha and
beta as assumed below rather than measured.
"""

import argparse
import math

NETWORKS = [  # name, alpha (s), beta (bytes/s): assumptions, not measurements
    ("10 Gb/s Ethernet (TCP)", 25e-6, 10e9 / 8 * 0.9),
    ("25 Gb/s Ethernet (TCP)", 20e-6, 25e9 / 8 * 0.9),
    ("100 Gb/s InfiniBand/RoCE (RDMA)", 3e-6, 100e9 / 8 * 0.9),
]
MODELS = {  # name: gradient bytes (f32)
    "seed LSTM": 4 * (10_000 * 16 + 4 * 128 * (16 + 128) + 2 * 4 * 128 + 128 + 1),
    "MLP 784-512-512-10": 4 * (784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10),
}


def allreduce(n, p, alpha, beta):
    if p == 1:
        return 0.0
    bw = 2 * (p - 1) / p * n / beta
    ring = 2 * (p - 1) * alpha + bw
    rab = 2 * math.ceil(math.log2(p)) * alpha + bw
    return min(ring, rab)


def step(compute, n, p, alpha, beta, bucket, overlap):
    buckets = max(1, math.ceil(n / bucket))
    sizes = [min(bucket, n - i * bucket) for i in range(buckets)]
    comm = sum(allreduce(b, p, alpha, beta) for b in sizes)
    if not overlap or buckets == 1:
        return compute + comm
    # The backward pass hides the buckets before the last one.
    hidden = min(comm - allreduce(sizes[-1], p, alpha, beta), compute * 2 / 3)
    return compute + comm - hidden


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lstm-ms", type=float, required=True, help="measured step, one process, one thread")
    ap.add_argument("--mlp-ms", type=float, required=True)
    a = ap.parse_args()
    compute = {"seed LSTM": a.lstm_ms / 1e3, "MLP 784-512-512-10": a.mlp_ms / 1e3}
    buckets_mb = (0.25, 0.5, 1, 2, 4, 8, 25)
    for model, n in MODELS.items():
        print(f"\n{model}: {n / 1e6:.2f} MB of gradients, compute {compute[model] * 1e3:.1f} ms per step")
        print("Scaling efficiency: one 25 MiB bucket after the backward pass / buckets overlapped with it, "
              "at the bucket size that does best")
        print("| network | 4 nodes | 16 nodes | 64 nodes |")
        print("|---|---|---|---|")
        for net, alpha, beta in NETWORKS:
            cells = []
            for p in (4, 16, 64):
                c = compute[model]
                plain = c / step(c, n, p, alpha, beta, 25 * 2**20, False)
                best = max(buckets_mb, key=lambda mb: c / step(c, n, p, alpha, beta, mb * 2**20, True))
                over = c / step(c, n, p, alpha, beta, best * 2**20, True)
                cells.append(f"{plain:.0%} / {over:.0%} ({best:g} MiB)")
            print(f"| {net} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
