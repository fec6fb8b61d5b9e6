#!/usr/bin/env python3
"""`examples/cnn_mnist.rs` trained with PyTorch: the same model, data, batch and optimiser.

Reads the vendored `data/mnist_5k/mnist_5k.csv.gz` (784 pixels 0..255 then the label per row),
shuffles the rows with a seeded generator and holds out 1,000 for testing (the same sizes as the
example; the split itself differs, since the generators differ), scales pixels to [0, 1], and
trains in float32 on the CPU:

    Conv2d(1, 6, 5) -> ReLU -> MaxPool2d(2) -> Conv2d(6, 16, 5) -> ReLU -> MaxPool2d(2) -> Flatten
    -> Linear(256, 120) -> ReLU -> Linear(120, 84) -> ReLU -> Linear(84, 10)

with cross-entropy, Adam (lr 1e-3), batches of 64, 10 epochs, the training set shuffled every
epoch, the test set evaluated after every epoch (as the example's validation pass). PyTorch's
default initialisation, as the crate's layers. Prints seconds per epoch (training + validation,
as the crate's history counts them) and the last line `test_accuracy=<f> test_loss=<f>`.

    python benches/compare/cnn_mnist_torch.py --threads 1
"""

import argparse
import gzip
import os
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "data", "mnist_5k", "mnist_5k.csv.gz")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    with gzip.open(a.data, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    order = np.random.default_rng(a.seed).permutation(len(rows))
    test, train = rows[order[:1000]], rows[order[1000:]]

    def tensors(r):
        return torch.from_numpy(r[:, :784] / 255.0).reshape(-1, 1, 28, 28), torch.from_numpy(r[:, 784]).long()

    (x_train, y_train), (x_test, y_test) = tensors(train), tensors(test)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    print(f"torch {torch.__version__}, {a.threads} threads, {len(x_train)} train / {len(x_test)} test")

    def evaluate():
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(x_test[i:i + 256]) for i in range(0, len(x_test), 256)])
        model.train()
        return F.cross_entropy(logits, y_test).item(), (logits.argmax(1) == y_test).float().mean().item()

    seconds = []
    for epoch in range(a.epochs):
        start = time.perf_counter()
        perm = torch.randperm(len(x_train))
        total, n = 0.0, 0
        for i in range(0, len(x_train), a.batch_size):
            idx = perm[i:i + a.batch_size]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        val_loss, val_acc = evaluate()
        seconds.append(time.perf_counter() - start)
        print(f"Epoch {epoch + 1}/{a.epochs} - {seconds[-1]:.2f}s - loss: {total / n:.4f} - val_loss: {val_loss:.4f} - val_accuracy: {val_acc:.4f}")
    loss, acc = evaluate()
    print(f"{statistics.median(seconds):.3f} s per epoch (median), {sum(seconds) / len(seconds):.3f} mean")
    print(f"test_accuracy={acc:.4f} test_loss={loss:.4f}")


if __name__ == "__main__":
    main()
