#!/usr/bin/env python3
"""Data-parallel training steps, ours against PyTorch DDP (Gloo), interleaved in one run.

    cargo build --release --features mpi --example distributed_bench
    python benches/compare/distributed_compare.py --rounds 5 [--workloads lstm,mlp]

Each round runs, for each workload, in this order: our 2 MPI processes x 1 thread (global batch
split in two), our 1 process x 2 threads (whole batch), PyTorch DDP 2 ranks x 1 thread, PyTorch
1 process x 2 threads. Each run prints the median step time over its timed steps (for 2 ranks,
of the slower rank's time per step); this script prints, per configuration, the median over the
rounds, and the ratios. Needs `mpirun` (Open MPI) and a Python with torch (run.sh makes one).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BATCH = {"lstm": 128, "mlp": 256}  # global batch: the single-process benchmarks' sizes


def run(cmd, env_extra):
    env = dict(os.environ, **env_extra)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
            return float(fields.get("median_maxrank_s", fields["median_s"]))
    sys.exit(f"no RESULT from {' '.join(cmd)}:\n{out.stdout}\n{out.stderr}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--workloads", default="lstm,mlp")
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--bin", default=os.path.join(ROOT, "target/release/examples/distributed_bench"))
    a = p.parse_args()
    mpirun = ["mpirun", "--oversubscribe", "-np", "2"]
    if os.geteuid() == 0:
        mpirun.insert(1, "--allow-run-as-root")
    torch = [a.python, os.path.join(HERE, "ddp_torch.py")]
    configs = {}
    for w in a.workloads.split(","):
        b = BATCH[w]
        it = ["--iters", str(a.iters)]
        configs[w] = [
            ("ours 2x1", mpirun + [a.bin, "step", "--workload", w, "--per-rank-batch", str(b // 2)] + it,
             {"RAYON_NUM_THREADS": "1"}),
            ("ours 1x2", [a.bin, "step", "--workload", w, "--per-rank-batch", str(b)] + it, {"RAYON_NUM_THREADS": "2"}),
            ("torch DDP 2x1", torch + ["--workload", f"{w}_train", "--world", "2", "--threads", "1",
                                       "--per-rank-batch", str(b // 2)] + it, {}),
            ("torch 1x2", torch + ["--workload", f"{w}_train", "--world", "1", "--threads", "2",
                                   "--per-rank-batch", str(b)] + it, {}),
        ]
    times = {(w, name): [] for w, cs in configs.items() for name, _, _ in cs}
    for r in range(a.rounds):
        for w, cs in configs.items():
            for name, cmd, env in cs:
                t = run(cmd, env)
                times[(w, name)].append(t)
                print(f"round {r + 1} {w} {name}: {t * 1e3:.2f} ms", flush=True)
    print()
    print("| workload (global batch) | ours 2 proc x 1 thr | ours 1 proc x 2 thr | torch DDP 2 x 1 | torch 1 x 2 |"
          " ours 2x1 / ours 1x2 | ours 2x1 / torch DDP |")
    print("|---|---|---|---|---|---|---|")
    for w in configs:
        m = {name: statistics.median(times[(w, name)]) for name, _, _ in configs[w]}
        print(f"| {w} ({BATCH[w]}) | {m['ours 2x1'] * 1e3:.2f} ms | {m['ours 1x2'] * 1e3:.2f} ms | "
              f"{m['torch DDP 2x1'] * 1e3:.2f} ms | {m['torch 1x2'] * 1e3:.2f} ms | "
              f"{m['ours 2x1'] / m['ours 1x2']:.2} | {m['ours 2x1'] / m['torch DDP 2x1']:.2} |")


if __name__ == "__main__":
    main()
