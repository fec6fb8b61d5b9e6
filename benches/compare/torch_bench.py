#!/usr/bin/env python3
"""The PyTorch and NumPy side of `benches/compare/`: one named workload, timed.

The mirror of `examples/bench_compare.rs`: the same workload names, shapes, dtype (float32),
model, loss and optimizer, the same flags, and the same output line, e.g.

    python torch_bench.py --impl torch --workload lstm_train --threads 2 --iters 10

prints

    RESULT impl=torch workload=lstm_train threads=2 iters=10 inner=1 median_s=... min_s=... rate= unit= samples_s=...

`median_s`/`min_s` are seconds per repetition (a sample's time divided by `--inner`), after
`--warmup` untimed iterations. `rate` is GFLOP/s for products (2*m*k*n), GB/s for memory-bound
ops (bytes read + written once), or empty. A workload that an implementation does not have
exits with status 4 and prints `SKIP`.

`--info` (instead of `--workload`) prints what the library runs on, one `INFO key=value` line per
fact (the value is the rest of the line), and exits; `compare.py` puts it above its tables.
NumPy: its version, the BLAS it was built with and the kernel core that BLAS picked for this CPU
at run time (OpenBLAS's `get_corename`, read with ctypes), and NumPy's own SIMD dispatch targets.
PyTorch: its version, the CPU capability its kernels were dispatched to, and the BLAS/LAPACK,
MKL and oneDNN lines of `torch.__config__.show()`.

Threads: the caller sets OMP_NUM_THREADS / MKL_NUM_THREADS / OPENBLAS_NUM_THREADS before the
interpreter starts (the BLAS pools are sized at import); for PyTorch this script also calls
torch.set_num_threads. NumPy's elementwise ops are single-threaded whatever the setting.
"""

import argparse
import os
import re
import statistics
import sys
import time

LSTM_BATCH, LSTM_STEPS, VOCAB, EMB, HIDDEN = 128, 100, 10000, 16, 128

# Stride-1, undilated, ungrouped 2-D convolutions, as `ConvShape` in examples/bench_compare.rs:
# (batch, in channels, out channels, side of the square input, kernel side, padding, bias).
CONV_SHAPES = {
    # LeNet's two convolutions at batch 64 (the second on the pooled output of the first).
    "lenet": [(64, 1, 6, 28, 5, 0, True), (64, 6, 16, 12, 5, 0, True)],
    # A ResNet basic block's 3x3 convolution at the first stage's resolution.
    "block": [(8, 64, 64, 56, 3, 1, False)],
    # Few channels on a large image: a detector's stem.
    "320": [(2, 3, 16, 320, 3, 1, True)],
}


def conv_flop(n, cin, cout, side, k, pad, bias):
    """Multiply-adds x 2 of the forward pass (bias adds not counted)."""
    out = side + 2 * pad - k + 1
    return 2.0 * n * cout * out * out * cin * k * k


def gflop(m, k, n):
    return 2.0 * m * k * n / 1e9, "GFLOP/s"


def gbytes(elements):
    return 4.0 * elements / 1e9, "GB/s"


# --------------------------------------------------------------------------------------------
# NumPy
# --------------------------------------------------------------------------------------------


def numpy_workload(name):
    import numpy as np

    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)

    def matmul(m, k, n, transposed_a=False):
        # A transposed A is the view x.T of a C-contiguous [k, m] array: no copy.
        a = rand(k, m).T if transposed_a else rand(m, k)
        b = rand(k, n)
        return (lambda: a @ b), gflop(m, k, n)

    if name == "matmul_256":
        return matmul(256, 256, 256)
    if name == "matmul_1024":
        return matmul(1024, 1024, 1024)
    if name == "matmul_2048":
        return matmul(2048, 2048, 2048)
    if name == "matmul_lstm_gates":
        return matmul(128, 144, 512)
    if name == "matmul_lstm_wgrad":
        return matmul(144, 128, 512, transposed_a=True)
    if name == "bcast_add":
        x, b = rand(1024, 1024), rand(1024)
        return (lambda: x + b), gbytes(2 * 1024 * 1024 + 1024)
    if name in ("sum_dim_last", "sum_dim_first"):
        x, axis = rand(1024, 1024), (1 if name == "sum_dim_last" else 0)
        return (lambda: x.sum(axis=axis)), gbytes(1024 * 1024 + 1024)
    if name == "sigmoid_1m":
        x = rand(1 << 20)

        def sigmoid():
            # One new output, then in place: the fairest NumPy spelling of 1 / (1 + e^-x).
            y = np.negative(x)
            np.exp(y, out=y)
            np.add(y, 1.0, out=y)
            np.reciprocal(y, out=y)
            return y

        return sigmoid, gbytes(2 << 20)
    if name == "noop":
        return (lambda: None), None
    return None


# --------------------------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------------------------


def torch_workload(name):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=gen, dtype=torch.float32) * 2 - 1

    def matmul(m, k, n, transposed_a=False):
        a = rand(k, m).t() if transposed_a else rand(m, k)
        assert a.is_contiguous() != transposed_a
        b = rand(k, n)
        return (lambda: torch.matmul(a, b)), gflop(m, k, n)

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

    class LstmCellByOps(LstmModel):
        """The same model and parameters, the recurrence written op by op (no fused kernel)."""

        def forward(self, ids):
            x = self.emb(ids)
            w_ih, w_hh = self.lstm.weight_ih_l0, self.lstm.weight_hh_l0
            xp = torch.matmul(x, w_ih.t()) + (self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0)
            h = torch.zeros(ids.shape[0], HIDDEN)
            c = torch.zeros(ids.shape[0], HIDDEN)
            w_t = w_hh.t()
            for t in range(ids.shape[1]):
                z = xp[:, t] + h.matmul(w_t)
                i, f, g, o = z.chunk(4, 1)
                i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
                c = f * c + i * g
                h = o * c.tanh()
            return self.fc(h)

    def lstm_data():
        ids = torch.randint(0, VOCAB, (LSTM_BATCH, LSTM_STEPS), generator=gen)
        y = torch.randint(0, 2, (LSTM_BATCH, 1), generator=gen).float()
        return ids, y

    def lstm_train(model):
        ids, y = lstm_data()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(model(ids), y)
            loss.backward()
            opt.step()
            return loss.item()

        return step, None

    if name == "matmul_256":
        return matmul(256, 256, 256)
    if name == "matmul_1024":
        return matmul(1024, 1024, 1024)
    if name == "matmul_2048":
        return matmul(2048, 2048, 2048)
    if name == "matmul_lstm_gates":
        return matmul(128, 144, 512)
    if name == "matmul_lstm_wgrad":
        return matmul(144, 128, 512, transposed_a=True)
    if name == "bcast_add":
        x, b = rand(1024, 1024), rand(1024)
        return (lambda: x + b), gbytes(2 * 1024 * 1024 + 1024)
    if name in ("sum_dim_last", "sum_dim_first"):
        x, dim = rand(1024, 1024), (1 if name == "sum_dim_last" else 0)
        return (lambda: x.sum(dim=dim)), gbytes(1024 * 1024 + 1024)
    if name == "sigmoid_1m":
        x = rand(1 << 20)
        return (lambda: torch.sigmoid(x)), gbytes(2 << 20)
    if name == "layer_norm_train":
        x, w, b = rand(2048, 128).requires_grad_(), rand(128).requires_grad_(), rand(128).requires_grad_()
        u = rand(2048, 128)

        def ln_fwd_bwd():
            # As tensorgrad's backward(), which returns fresh gradients: do not accumulate.
            x.grad = w.grad = b.grad = None
            (torch.nn.functional.layer_norm(x, [128], w, b, 1e-5) * u).sum().backward()

        return ln_fwd_bwd, None
    if name in ("sdpa_train", "sdpa_causal_train", "sdpa_fwd"):
        causal = name == "sdpa_causal_train"
        shape = (4, 4, 512, 32) if causal else (32, 4, 128, 32)
        grad = name != "sdpa_fwd"
        q, k, v = (rand(*shape).requires_grad_(grad) for _ in range(3))
        u = rand(*shape)
        sdpa = torch.nn.functional.scaled_dot_product_attention

        def attn():
            if not grad:
                with torch.no_grad():
                    return sdpa(q, k, v, is_causal=causal)
            # As tensorgrad's backward(), which returns fresh gradients: do not accumulate.
            q.grad = k.grad = v.grad = None
            (sdpa(q, k, v, is_causal=causal) * u).sum().backward()

        return attn, None
    if name == "autograd_mul8":
        a, b = rand(8).requires_grad_(), rand(8).requires_grad_()
        return (lambda: a * b), None
    if name == "autograd_mul8_backward":
        a, b = rand(8).requires_grad_(), rand(8).requires_grad_()

        def fwd_bwd():
            # As tensorgrad's backward(), which returns fresh gradients: do not accumulate.
            a.grad = None
            b.grad = None
            (a * b).sum().backward()

        return fwd_bwd, None
    if name == "lstm_train":
        return lstm_train(LstmModel())
    if name == "lstm_train_unfused":
        return lstm_train(LstmCellByOps())
    if name == "lstm_fwd":
        model = LstmModel().eval()
        ids, _ = lstm_data()

        def fwd():
            with torch.no_grad():
                return model(ids)

        return fwd, None
    if name == "lstm_predict1":
        # The flagship's inference: one snippet of LSTM_STEPS tokens, sigmoid on the logit.
        model = LstmModel().eval()
        ids, _ = lstm_data()
        one = ids[:1]

        def predict():
            with torch.no_grad():
                return torch.sigmoid(model(one)).item()

        return predict, None
    if name == "mlp_train":
        mlp = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
        x = torch.randn(256, 784, generator=gen)
        targets = torch.randint(0, 10, (256,), generator=gen)
        opt = torch.optim.SGD(mlp.parameters(), lr=0.01)

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(mlp(x), targets)
            loss.backward()
            opt.step()
            return loss.item()

        return step, None
    if name == "encoder_train":
        layer = nn.TransformerEncoderLayer(128, 4, 512, 0.1, batch_first=True)
        enc = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
        x = torch.randn(32, 64, 128, generator=gen)
        u = torch.randn(32, 64, 128, generator=gen)
        opt = torch.optim.Adam(enc.parameters(), lr=1e-3)

        def enc_step():
            opt.zero_grad(set_to_none=True)
            loss = (enc(x) * u).sum()
            loss.backward()
            opt.step()
            return loss.item()

        return enc_step, None
    if name.startswith("conv2d_") and name.rsplit("_", 1)[1] in ("fwd", "bwd"):
        # The convolutions, each on its own input (not chained). `_fwd`: the forward pass of each,
        # nothing requiring grad. `_bwd`: the backward pass only: input and weight require grad
        # (the bias is a constant), each forward runs once before timing, and one repetition is
        # torch.autograd.grad of all outputs with fixed random upstream gradients, giving the input
        # and weight gradients; retain_graph=True keeps the graph for the next repetition.
        shapes = CONV_SHAPES.get(name[len("conv2d_"):].rsplit("_", 1)[0])
        if shapes is None:
            return None
        backward = name.endswith("_bwd")
        convs = []
        for n, cin, cout, side, k, pad, bias in shapes:
            x = rand(n, cin, side, side).requires_grad_(backward)
            w = rand(cout, cin, k, k).requires_grad_(backward)
            b = rand(cout) if bias else None
            convs.append((x, w, b, pad))
        work = sum(conv_flop(*s) for s in shapes) * (2 if backward else 1) / 1e9, "GFLOP/s"
        if not backward:

            def conv_fwd():
                for x, w, b, pad in convs:
                    F.conv2d(x, w, b, padding=pad)

            return conv_fwd, work
        ys = [F.conv2d(x, w, b, padding=pad) for x, w, b, pad in convs]
        dys = [rand(*y.shape) for y in ys]
        leaves = [t for x, w, _, _ in convs for t in (x, w)]

        def conv_bwd():
            return torch.autograd.grad(ys, leaves, dys, retain_graph=True)

        return conv_bwd, work
    if name == "resnet18_train":
        import torchvision

        # Training mode: batch norm uses the batch's statistics and updates its running ones.
        model = torchvision.models.resnet18(num_classes=10).train()
        x = torch.randn(16, 3, 64, 64, generator=gen)
        targets = torch.randint(0, 10, (16,), generator=gen)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def resnet_step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), targets)
            loss.backward()
            opt.step()
            return loss.item()

        return resnet_step, None
    if name == "cnn_mnist_train":
        # examples/cnn_mnist.rs's LeNet.
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * 4 * 4, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
        x = torch.rand(64, 1, 28, 28, generator=gen)
        targets = torch.randint(0, 10, (64,), generator=gen)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def lenet_step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), targets)
            loss.backward()
            opt.step()
            return loss.item()

        return lenet_step, None
    if name == "noop":
        return (lambda: None), None
    return None


# --------------------------------------------------------------------------------------------
# --info: what each library runs on
# --------------------------------------------------------------------------------------------


def openblas_runtime():
    """(corename, config) of the OpenBLAS loaded in this process (after `import numpy`), or Nones.

    OpenBLAS built with DYNAMIC_ARCH picks its kernels for the CPU at load time; its build
    configuration string names only the build target. The loaded library says which core it chose.
    """
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            libs = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return None, None
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        found = []
        for what in ("get_corename", "get_config"):
            value = None
            for prefix, suffix in (("openblas_", ""), ("openblas_", "64_"), ("scipy_openblas_", "64_"),
                                   ("scipy_openblas_", "")):
                fn = getattr(lib, f"{prefix}{what}{suffix}", None)
                if fn is not None:
                    fn.restype = ctypes.c_char_p
                    value = fn().decode(errors="replace").strip()
                    break
            found.append(value)
        if any(found):
            return tuple(found)
    return None, None


def numpy_info():
    import numpy as np

    info = {"numpy_version": np.__version__}
    try:
        cfg = np.show_config(mode="dicts")  # NumPy >= 1.26
    except TypeError:
        cfg = None
    if cfg:
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
        if blas.get("openblas configuration"):
            info["blas_build_config"] = " ".join(blas["openblas configuration"].split())
        simd = cfg.get("SIMD Extensions", {})
        if simd:
            info["simd_baseline"] = " ".join(simd.get("baseline", []))
            info["simd_found"] = " ".join(simd.get("found", []))
    else:
        import io
        from contextlib import redirect_stdout

        out = io.StringIO()
        with redirect_stdout(out):
            np.show_config()
        libs = [line.split("=", 1)[1].strip() for line in out.getvalue().splitlines()
                if line.strip().startswith("libraries") and "blas" in line.lower()]
        if libs:
            info["blas"] = libs[0]
    core, config = openblas_runtime()
    if core:
        info["blas_core"] = core
    if config:
        info["blas_runtime_config"] = " ".join(config.split())
    return info


def torch_info(threads):
    import torch

    torch.set_num_threads(threads)
    info = {"torch_version": torch.__version__, "threads": str(torch.get_num_threads())}
    try:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # PyTorch < 2.0
        pass
    shown = torch.__config__.show()
    for key in ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP"):
        m = re.search(rf"\b{key}=([^,\s]*)", shown)
        if m:
            info[key.lower()] = m.group(1)
    for line in shown.splitlines():
        line = line.strip().lstrip("- ").strip()
        if "Math Kernel Library" in line:
            info["mkl"] = line
        elif "MKL-DNN" in line or "oneDNN" in line:
            info["onednn"] = line
        elif "OpenBLAS" in line:
            info["openblas"] = line
        elif line.startswith("CPU capability usage"):
            info.setdefault("cpu_capability", line.split(":", 1)[1].strip())
    return info


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--impl", choices=["torch", "numpy"], required=True)
    p.add_argument("--workload")
    p.add_argument("--info", action="store_true", help="print what the library runs on and exit")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--inner", type=int, default=1)
    a = p.parse_args()

    if a.info:
        info = torch_info(a.threads) if a.impl == "torch" else numpy_info()
        for key, value in info.items():
            print(f"INFO {key}={value}")
        return
    if not a.workload:
        p.error("--workload is required (or --info)")

    if a.impl == "torch":
        import torch

        torch.set_num_threads(a.threads)
        made = torch_workload(a.workload)
    else:
        made = numpy_workload(a.workload)
    if made is None:
        print(f"SKIP impl={a.impl} workload={a.workload}")
        sys.exit(4)
    run, work = made

    inner = max(1, a.inner)
    for _ in range(a.warmup * inner):
        run()
    samples = []
    for _ in range(max(1, a.iters)):
        start = time.perf_counter()
        for _ in range(inner):
            run()
        samples.append((time.perf_counter() - start) / inner)
    med = statistics.median(samples)
    rate, unit = ("", "")
    if work is not None:
        rate, unit = (f"{work[0] / med:.4f}", work[1])
    listed = ",".join(f"{s:.6e}" for s in samples)
    print(
        f"RESULT impl={a.impl} workload={a.workload} threads={a.threads} iters={len(samples)} inner={inner} "
        f"median_s={med:.6e} min_s={min(samples):.6e} rate={rate} unit={unit} samples_s={listed}"
    )
    sys.stdout.flush()
    # Environment facts for the report, on stderr.
    if os.environ.get("BENCH_VERBOSE"):
        if a.impl == "torch":
            import torch

            print(f"torch {torch.__version__} threads={torch.get_num_threads()}", file=sys.stderr)
            print(torch.__config__.show(), file=sys.stderr)
        else:
            import numpy as np

            print(f"numpy {np.__version__}", file=sys.stderr)
            np.show_config()


if __name__ == "__main__":
    main()
