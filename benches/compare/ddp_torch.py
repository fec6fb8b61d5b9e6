#!/usr/bin/env python3
"""PyTorch DistributedDataParallel (Gloo, CPU) baseline for our MPI data-parallel training.

Usage (the script spawns its own ranks on 127.0.0.1; or run it under `torchrun`):

    python ddp_torch.py --workload lstm_train --world 2 --threads 1            # DDP, 2 ranks x 64
    python ddp_torch.py --workload mlp_train  --world 2 --threads 1            # DDP, 2 ranks x 128
    python ddp_torch.py --workload lstm_train --world 1 --threads 2 --per-rank-batch 128
    python ddp_torch.py --workload allreduce  --world 2                        # all_reduce sweep
    torchrun --nproc-per-node 2 ddp_torch.py --workload mlp_train

Training workloads (same models as torch_bench.py, float32):
  lstm_train  Embedding(10000,16) -> LSTM(16,128) -> Linear(128,1) on h_n, BCE-with-logits,
              Adam lr 1e-3, 100 tokens; --per-rank-batch defaults to 64.
  mlp_train   784-512-512-10 ReLU MLP, cross-entropy, SGD lr 0.01; --per-rank-batch 128.
Each rank has its own seeded data. With --world 1 the model is not wrapped in DDP and no process
group is created. After --warmup steps and a barrier, each of --iters steps (zero_grad, forward,
backward, step, loss.item()) is timed; rank 0 prints

    RESULT impl=torch_ddp_gloo workload=.. world=.. threads=.. per_rank_batch=.. median_s=..
           min_s=.. samples_s=.. median_maxrank_s=.. iters=..

median_s / min_s are over rank 0's step times; median_maxrank_s is the median over steps of the
slowest rank's time for that step; samples_s = world * per_rank_batch / median_s.

allreduce: dist.all_reduce(SUM) of float32 tensors of 4 B .. 64 MiB (powers of 2), 10 warmup
calls, then 1000 (<= 64 KiB) / 100 (<= 4 MiB) / 20 timed calls after a barrier; avg_us is the
per-call time averaged over ranks, busbw_GBps = bytes * 2(W-1)/W / time (1e9 bytes/s):

    ALLREDUCE impl=gloo bytes=.. avg_us=.. busbw_GBps=.. world=.. iters=..
"""

import argparse
import os
import socket
import statistics
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", required=True, choices=["lstm_train", "mlp_train", "allreduce"])
    p.add_argument("--world", type=int, default=2, help="ranks to spawn (ignored under torchrun)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads per rank")
    p.add_argument("--per-rank-batch", type=int, default=None, help="default 64 (lstm) / 128 (mlp)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--max-bytes", type=int, default=64 << 20, help="allreduce: largest message")
    a = p.parse_args()
    if a.per_rank_batch is None:
        a.per_rank_batch = 64 if a.workload == "lstm_train" else 128
    return a


ARGS = parse_args()
# Size the OpenMP/BLAS pools before torch is imported (spawned children re-import this module).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

VOCAB, EMB, HIDDEN, STEPS = 10000, 16, 128, 100


class LstmModel(nn.Module):
    """Embedding(10000, 16) -> LSTM(16 -> 128, batch_first) -> Linear(128, 1) on h_n."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, EMB)
        self.lstm = nn.LSTM(EMB, HIDDEN, batch_first=True)
        self.fc = nn.Linear(HIDDEN, 1)

    def forward(self, ids):
        _, (h, _) = self.lstm(self.emb(ids))
        return self.fc(h[-1])


def build(workload, batch, rank):
    torch.manual_seed(0)  # same initial weights everywhere (DDP also broadcasts rank 0's)
    gen = torch.Generator().manual_seed(1000 + rank)  # different data per rank
    if workload == "lstm_train":
        model = LstmModel()
        x = torch.randint(0, VOCAB, (batch, STEPS), generator=gen)
        y = torch.randint(0, 2, (batch, 1), generator=gen).float()
        return model, x, y, F.binary_cross_entropy_with_logits, lambda p: torch.optim.Adam(p, lr=1e-3)
    model = nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    )
    x = torch.randn(batch, 784, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    return model, x, y, F.cross_entropy, lambda p: torch.optim.SGD(p, lr=0.01)


def train(a, rank, world):
    model, x, y, loss_fn, make_opt = build(a.workload, a.per_rank_batch, rank)
    if world > 1:
        model = DDP(model)  # bucket_cap_mb=25 (default)
    opt = make_opt(model.parameters())

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    if world > 1:
        dist.barrier()
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)

    slowest = torch.tensor(times, dtype=torch.float64)
    if world > 1:
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    if rank == 0:
        med = statistics.median(times)
        print(
            f"RESULT impl=torch_ddp_gloo workload={a.workload} world={world} threads={a.threads} "
            f"per_rank_batch={a.per_rank_batch} median_s={med:.6f} min_s={min(times):.6f} "
            f"samples_s={world * a.per_rank_batch / med:.1f} "
            f"median_maxrank_s={statistics.median(slowest.tolist()):.6f} iters={a.iters}",
            flush=True,
        )


def allreduce_sweep(a, rank, world):
    nbytes = 4
    while nbytes <= a.max_bytes:
        iters = 1000 if nbytes <= 64 << 10 else 100 if nbytes <= 4 << 20 else 20
        buf = torch.ones(nbytes // 4, dtype=torch.float32)
        for _ in range(10):
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        per_call = torch.tensor([(time.perf_counter() - t0) / iters], dtype=torch.float64)
        dist.all_reduce(per_call, op=dist.ReduceOp.SUM)
        avg = per_call.item() / world
        if rank == 0:
            busbw = nbytes * 2 * (world - 1) / world / avg / 1e9
            print(
                f"ALLREDUCE impl=gloo bytes={nbytes} avg_us={avg * 1e6:.2f} "
                f"busbw_GBps={busbw:.6f} world={world} iters={iters}",
                flush=True,
            )
        nbytes *= 2


def run(rank, world, init_method, a):
    torch.set_num_threads(a.threads)
    distributed = world > 1 or a.workload == "allreduce"
    if distributed:
        dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world)
    try:
        if a.workload == "allreduce":
            allreduce_sweep(a, rank, world)
        else:
            train(a, rank, world)
        if distributed:
            # Without this, a rank that tears its Gloo pairs down first can make the other
            # abort ("terminate called without an active exception") after its last collective.
            dist.barrier()
    finally:
        if distributed:
            dist.destroy_process_group()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    a = ARGS
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # under torchrun
        run(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), "env://", a)
        return
    world = a.world
    if world == 1 and a.workload != "allreduce":
        run(0, 1, None, a)
        return
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # only loopback here
    init_method = f"tcp://127.0.0.1:{free_port()}"
    mp.spawn(run, args=(world, init_method, a), nprocs=world, join=True)


if __name__ == "__main__":
    main()
