#!/usr/bin/env python3
"""Runs every workload with tensorgrad, PyTorch and NumPy, interleaved, and prints one table.

Called by `run.sh` (which makes the virtualenv and builds the tensorgrad binary); it can also be
run directly:

    python compare.py --tg-bin target/release/examples/bench_compare [--rounds 5] [--threads 1,2]
                      [--only matmul_1024,lstm_train] [--memory] [--probes] [--json out.json]

For each workload and thread count, each round runs one process per implementation, in the
order tensorgrad, PyTorch, NumPy (A B C A B C ...). Every process builds its inputs, runs
`warmup` untimed iterations, then `iters` timed samples of `inner` repetitions. The table
reports the median of all samples pooled over the rounds; the spread column is the
interquartile range of those samples relative to the median.

Ratios are times (tensorgrad / reference, lower is better); each is checked against the
target from the performance issue, written as a time ratio as well.

Every table says which machine it was measured on: before the first one, a header block gives
the CPU model (`lscpu`'s "Model name", CPU family and model numbers), its vector flags, the
kernels and matrix-multiply plan tensorgrad picked (`bench_compare --info`), the measured f32 FMA
peak at 1 thread and at every thread count of the run (`probe_fma512` where tensorgrad's kernels
are AVX-512, else `probe_fma256`; the median of a few runs), and the BLAS that NumPy and PyTorch
use (`torch_bench.py --info`). The later tables repeat a one-line summary of it. Matrix products
also show tensorgrad's GFLOP/s as a percentage of the measured peak at the same thread count.
`--json` stores the header under "machine".
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TORCH_BENCH = HERE / "torch_bench.py"

# name: (iters, inner, warmup, impls, target); the targets are those of the kernels issue
# (matmul ≥ 1.0× the faster of NumPy and PyTorch; LSTM step ≤ 0.6×, forward ≤ 1.0×, batch-1
# predict ≤ 0.5× PyTorch; elementwise and sums ≥ 1.0× PyTorch).
#   target: ("best", max_ratio) against the faster reference; ("torch", max_ratio, threads or None)
#   against PyTorch; ("abs_us", limit) absolute per-op time; None = informational.
WORKLOADS = {
    "matmul_256": (15, 20, 2, ("tensorgrad", "torch", "numpy"), ("best", 1.0)),
    "matmul_1024": (10, 1, 2, ("tensorgrad", "torch", "numpy"), ("best", 1.0)),
    "matmul_2048": (5, 1, 1, ("tensorgrad", "torch", "numpy"), ("best", 1.0)),
    "matmul_lstm_gates": (15, 20, 2, ("tensorgrad", "torch", "numpy"), ("best", 1.0)),
    "matmul_lstm_wgrad": (15, 20, 2, ("tensorgrad", "torch", "numpy"), ("best", 1.0)),
    "bcast_add": (15, 10, 2, ("tensorgrad", "torch", "numpy"), ("torch", 1.0, None)),
    "sigmoid_1m": (15, 10, 2, ("tensorgrad", "torch", "numpy"), ("torch", 1.0, None)),
    "sum_dim_last": (15, 10, 2, ("tensorgrad", "torch", "numpy"), ("torch", 1.0, None)),
    "sum_dim_first": (15, 10, 2, ("tensorgrad", "torch", "numpy"), ("torch", 1.0, None)),
    "layer_norm_train": (15, 5, 2, ("tensorgrad", "torch"), None),
    "sdpa_train": (10, 1, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "sdpa_causal_train": (10, 1, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "sdpa_fwd": (10, 1, 2, ("tensorgrad", "torch"), None),
    "autograd_mul8": (15, 20000, 1, ("tensorgrad", "torch"), ("abs_us", 0.3)),
    "autograd_mul8_backward": (15, 5000, 1, ("tensorgrad", "torch"), None),
    "lstm_fwd": (10, 1, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "lstm_predict1": (15, 10, 2, ("tensorgrad", "torch"), ("torch", 0.5, None)),
    "lstm_train": (8, 1, 2, ("tensorgrad", "torch"), ("torch", 0.6, None)),
    "lstm_train_unfused": (4, 1, 1, ("tensorgrad", "torch"), None),
    "mlp_train": (10, 1, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "encoder_train": (8, 1, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    # Convolutional networks (issue 14: ≤ 1.0× PyTorch at 1 and 2 threads). `_fwd` is the
    # forward pass of the convolutions alone; `_bwd` the backward pass alone (input and weight
    # gradients from a fixed upstream gradient, the graph built once before timing).
    "conv2d_lenet_fwd": (15, 10, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "conv2d_lenet_bwd": (15, 2, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "conv2d_block_fwd": (10, 1, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "conv2d_block_bwd": (10, 1, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "conv2d_320_fwd": (10, 1, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "conv2d_320_bwd": (10, 1, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "resnet18_train": (4, 1, 1, ("tensorgrad", "torch"), ("torch", 1.0, None)),
    "cnn_mnist_train": (10, 3, 2, ("tensorgrad", "torch"), ("torch", 1.0, None)),
}

LABEL = {"tensorgrad": "tensorgrad", "torch": "PyTorch", "numpy": "NumPy"}
RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)


def parse_result(text):
    m = RESULT_RE.search(text)
    if not m:
        return None
    fields = dict(kv.split("=", 1) for kv in m.group(1).split(" "))
    fields["samples"] = [float(s) for s in fields["samples_s"].split(",") if s]
    return fields


def command(impl, workload, threads, iters, inner, warmup, tg_bin, python):
    args = ["--workload", workload, "--threads", str(threads), "--iters", str(iters)]
    args += ["--inner", str(inner), "--warmup", str(warmup)]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
        env[var] = str(threads)
    if impl == "tensorgrad":
        return [str(tg_bin)] + args, env
    if impl == "numpy":
        # NumPy's bundled OpenBLAS picks its own kernels and cache sizes for this CPU.
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return [python, str(TORCH_BENCH), "--impl", impl] + args, env


def run_one(cmd, env, timeout=900):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode == 4:
        return None
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    r = parse_result(p.stdout)
    if r is None:
        raise RuntimeError(f"no RESULT line from {' '.join(cmd)}:\n{p.stdout}\n{p.stderr}")
    return r


def fmt_time(s):
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def quartiles(xs):
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return q[0], q[2]


def cell(res):
    if res is None:
        return "—"
    med = res["median"]
    txt = fmt_time(med)
    if res.get("rate_unit"):
        txt += f" ({res['work'] / med:.1f} {res['rate_unit']})"
    return txt


def judge(target, threads, tg, refs):
    """(ratio text, target text, met text)."""
    if tg is None:
        return "—", "—", "—"
    ref_meds = {k: v["median"] for k, v in refs.items() if v is not None}
    best_name = min(ref_meds, key=ref_meds.get) if ref_meds else None
    if target is None:
        if best_name is None:
            return "—", "(info)", ""
        return f"{tg['median'] / ref_meds[best_name]:.2f} vs {LABEL[best_name]}", "(info)", ""
    kind = target[0]
    if kind == "abs_us":
        limit = target[1]
        us = tg["median"] * 1e6
        ratio = f"{tg['median'] / ref_meds['torch']:.2f} vs PyTorch" if "torch" in ref_meds else "—"
        return ratio, f"≤ {limit} µs", ("met" if us <= limit else f"**not met** ({us:.2f} µs)")
    if kind == "best":
        limit = target[1]
        r = tg["median"] / ref_meds[best_name]
        speed = 1 / limit
        ttxt = f"≤ {limit:.2f} (≥ {speed:.1f}× speed)" if abs(limit - 1) > 1e-9 else "≤ 1.00"
        return f"{r:.2f} vs {LABEL[best_name]}", ttxt, ("met" if r <= limit else "**not met**")
    if kind == "torch":
        limit, at = target[1], target[2]
        r = tg["median"] / ref_meds["torch"]
        if at is not None and threads != at:
            return f"{r:.2f} vs PyTorch", f"(target at {at} threads)", ""
        return f"{r:.2f} vs PyTorch", f"≤ {limit:.2f}", ("met" if r <= limit else "**not met**")
    raise ValueError(target)


# --------------------------------------------------------------------------------------------
# The machine: what every table was measured on
# --------------------------------------------------------------------------------------------

# The x86 vector flags that matter for these kernels, in the order printed.
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512_fp16", "amx_tile")
PEAK_ITERS = 5


def lscpu():
    """`lscpu`'s "Key: value" lines as a dict (empty where there is no lscpu)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30,
                             env=dict(os.environ, LC_ALL="C")).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def cpu_flags(fields):
    flags = fields.get("Flags", "")
    if not flags:
        try:
            with open("/proc/cpuinfo") as f:
                flags = next((line.split(":", 1)[1] for line in f if line.startswith("flags")), "")
        except OSError:
            pass
    return set(flags.split())


def parse_info(text):
    """`INFO key=value` lines (the value is the rest of the line) as a dict."""
    info = {}
    for line in text.splitlines():
        if line.startswith("INFO ") and "=" in line:
            key, value = line[5:].split("=", 1)
            info[key.strip()] = value.strip()
    return info


def run_info(cmd, env):
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
        print(f"compare.py: {' '.join(cmd)}: {e}", file=sys.stderr)
        return {}
    if p.returncode != 0:
        print(f"compare.py: {' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}", file=sys.stderr)
    return parse_info(p.stdout)


def machine_info(tg_bin, python, threads_list):
    """The CPU, tensorgrad's kernels, the measured FMA peak and the references' BLAS, as a dict."""
    fields = lscpu()
    flags = cpu_flags(fields)
    cpu = {
        "model_name": fields.get("Model name") or platform.processor() or platform.machine(),
        "vendor": fields.get("Vendor ID", ""),
        "family": fields.get("CPU family", ""),
        "model": fields.get("Model", ""),
        "stepping": fields.get("Stepping", ""),
        "cpus": fields.get("CPU(s)", str(os.cpu_count() or "")),
        "threads_per_core": fields.get("Thread(s) per core", ""),
        "hypervisor": fields.get("Hypervisor vendor", ""),
        "flags_known": bool(flags),
        "vector_flags": [f for f in VECTOR_FLAGS if f in flags],
        "vector_flags_absent": [f for f in VECTOR_FLAGS if f not in flags] if flags else [],
    }
    counts = sorted({1, *threads_list})
    tg = {}
    for t in counts:
        _, env = command("tensorgrad", "noop", t, 1, 1, 0, tg_bin, python)
        tg[t] = run_info([str(tg_bin), "--info", "--threads", str(t)], env)
    simd = tg[1].get("simd", "")
    probe = {"avx512": "probe_fma512", "avx2+fma": "probe_fma256"}.get(simd)
    peak = {}
    load = os.getloadavg()[0]
    if probe:
        for t in counts:
            cmd, env = command("tensorgrad", probe, t, PEAK_ITERS, 1, 1, tg_bin, python)
            try:
                r = run_one(cmd, env)
            except (RuntimeError, subprocess.SubprocessError) as e:
                print(f"compare.py: {probe} at {t} thread(s) failed: {e}", file=sys.stderr)
                r = None
            if r and r["rate"]:
                peak[t] = float(r["rate"])
    refs = {}
    for impl in ("numpy", "torch"):
        _, env = command(impl, "noop", 1, 1, 1, 0, tg_bin, python)
        refs[impl] = run_info([python, str(TORCH_BENCH), "--impl", impl, "--info"], env)
    return {"cpu": cpu, "tensorgrad": tg, "peak_probe": probe, "peak_gflops": peak,
            "peak_iters": PEAK_ITERS, "peak_load_average": load, "numpy": refs["numpy"], "torch": refs["torch"]}


def kib(text):
    try:
        return f"{int(text) >> 10} KiB"
    except ValueError:
        return "?"


def cpu_line(m):
    cpu = m["cpu"]
    ids = ", ".join(f"{k} {cpu[v]}" for k, v in (("family", "family"), ("model", "model")) if cpu[v])
    return cpu["model_name"] + (f" ({ids})" if ids else "")


def peak_line(m):
    peak = m["peak_gflops"]
    if not peak:
        return "not measured" + (" (portable kernels)" if m["tensorgrad"].get(1, {}).get("simd") == "portable" else "")
    return ", ".join(f"{peak[t]:.1f} GFLOP/s at {t} thread{'s' if t > 1 else ''}" for t in sorted(peak))


def short_header(m):
    """One line naming the machine, for the tables after the first."""
    simd = m["tensorgrad"].get(1, {}).get("simd", "?")
    peak = ("measured f32 FMA peak " if m["peak_gflops"] else "f32 FMA peak ") + peak_line(m)
    return f"_Machine: {cpu_line(m)}; tensorgrad kernels {simd}; {peak}._"


def print_header(m):
    cpu, tg1 = m["cpu"], m["tensorgrad"].get(1, {})
    print("## Machine\n")
    ids = [f"CPU family {cpu['family']}" if cpu["family"] else "", f"model {cpu['model']}" if cpu["model"] else "",
           f"stepping {cpu['stepping']}" if cpu["stepping"] else ""]
    extra = ", ".join(x for x in ids if x)
    more = [f"{cpu['cpus']} CPUs" if cpu["cpus"] else "",
            f"{cpu['threads_per_core']} thread(s) per core" if cpu["threads_per_core"] else "",
            f"{cpu['hypervisor']} guest" if cpu["hypervisor"] else ""]
    more = ", ".join(x for x in more if x)
    print(f"- **CPU** (`lscpu`): {cpu['model_name']}" + (f" ({extra})" if extra else "") + (f"; {more}" if more else ""))
    absent = f" (absent: {' '.join(cpu['vector_flags_absent'])})" if cpu["vector_flags_absent"] else ""
    if not cpu["flags_known"]:
        flags = "unknown (no lscpu or /proc/cpuinfo flags)"
    else:
        flags = " ".join(cpu["vector_flags"]) or "none of " + " ".join(VECTOR_FLAGS)
    print(f"- **Vector flags**: {flags}{absent}")
    if tg1:
        def plan(p):
            return (f"{tg1.get(p + '_tile', '?')} tile, kc {tg1.get(p + '_kc', '?')}, "
                    f"mc {tg1.get(p + '_mc', '?')}, nc {tg1.get(p + '_nc', '?')}")

        fj = ", ".join(f"{info['fork_join_us']} µs at {t} threads" for t, info in m["tensorgrad"].items()
                       if info.get("fork_join_us"))
        print(f"- **tensorgrad kernels**: {tg1.get('simd', '?')}; sgemm {plan('sgemm')}; dgemm {plan('dgemm')}; "
              f"caches L1d {kib(tg1.get('l1d_bytes', ''))}, L2 {kib(tg1.get('l2_bytes', ''))}, "
              f"L3 {kib(tg1.get('l3_bytes', ''))}" + (f"; fork-join {fj}" if fj else ""))
    else:
        print("- **tensorgrad kernels**: unknown (`bench_compare --info` failed)")
    how = (f"`{m['peak_probe']}` ({m['peak_probe'][-3:]}-bit FMAs on every thread, median of {m['peak_iters']}; "
           f"load average {m['peak_load_average']:.2f} before)" if m["peak_probe"] else "")
    print(f"- **Measured f32 FMA peak**{' ' + how if how else ''}: {peak_line(m)}")
    np_ = m["numpy"]
    if np_:
        core = f", runtime core {np_['blas_core']}" if np_.get("blas_core") else ""
        simd = f"; NumPy's own SIMD: {np_['simd_found']}" if np_.get("simd_found") else ""
        print(f"- **NumPy** {np_.get('numpy_version', '?')}: BLAS {np_.get('blas', '?')}{core}{simd}")
    th = m["torch"]
    if th:
        parts = [f"BLAS_INFO={th['blas_info']}" if th.get("blas_info") else "",
                 f"LAPACK_INFO={th['lapack_info']}" if th.get("lapack_info") else "",
                 f"CPU capability {th['cpu_capability']}" if th.get("cpu_capability") else "",
                 th.get("mkl", "").replace(" for Intel(R) 64 architecture applications", ""),
                 th.get("onednn", "").split(" (Git Hash")[0], th.get("openblas", "")]
        print(f"- **PyTorch** {th.get('torch_version', '?')}: " + "; ".join(x for x in parts if x))
    print()


def peak_pct(m, res, threads):
    """tensorgrad's GFLOP/s as a percentage of the measured FMA peak at `threads`, or None."""
    peak = m["peak_gflops"].get(threads)
    if res is None or res.get("rate_unit") != "GFLOP/s" or not peak or not res.get("work"):
        return None
    return 100.0 * res["work"] / res["median"] / peak


def max_rss_kb(cmd, env):
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, env=env, capture_output=True, text=True, timeout=900)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return int(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tg-bin", required=True, type=Path)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 5)))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default="", help="comma-separated workload names")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every iters count")
    ap.add_argument("--memory", action="store_true", help="also measure max RSS (of the --only workloads, else of the LSTM ones)")
    ap.add_argument("--probes", action="store_true", help="also measure clock and FMA peak")
    ap.add_argument("--json", type=Path, help="write every sample here")
    a = ap.parse_args()

    threads_list = [int(t) for t in a.threads.split(",")]
    names = [n for n in WORKLOADS if not a.only or n in a.only.split(",")]
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = os.getloadavg()
    results = {}  # (workload, threads) -> impl -> {median, q1, q3, work, rate_unit, samples}

    machine = machine_info(a.tg_bin, a.python, threads_list)
    print(f"[{time.strftime('%H:%M:%S')}] {short_header(machine)}", file=sys.stderr, flush=True)

    if a.probes:
        print("## Machine probes (tensorgrad binary, inline assembly)\n", flush=True)
        for probe in ("probe_clock", "probe_fma256", "probe_fma512"):
            for t in threads_list:
                cmd, env = command("tensorgrad", probe, t, 7, 1, 1, a.tg_bin, a.python)
                r = run_one(cmd, env)
                if r:
                    work = float(r["rate"]) * float(r["median_s"])
                    print(f"- {probe} threads={t}: median {float(r['rate']):.2f} {r['unit']}, "
                          f"best {work / float(r['min_s']):.2f} {r['unit']}")
        print(flush=True)

    for name in names:
        iters, inner, warmup, impls, target = WORKLOADS[name]
        iters = max(2, round(iters * a.scale))
        for t in threads_list:
            pooled = {impl: [] for impl in impls}
            meta = {}
            for rnd in range(a.rounds):
                for impl in impls:
                    cmd, env = command(impl, name, t, iters, inner, warmup, a.tg_bin, a.python)
                    r = run_one(cmd, env)
                    if r is None:
                        pooled[impl] = None
                        continue
                    pooled[impl].extend(r["samples"])
                    if r["rate"]:
                        meta[impl] = (float(r["rate"]) * float(r["median_s"]), r["unit"])
            row = {}
            for impl, xs in pooled.items():
                if not xs:
                    row[impl] = None
                    continue
                q1, q3 = quartiles(xs)
                med = statistics.median(xs)
                work, unit = meta.get(impl, (None, ""))
                row[impl] = {"median": med, "q1": q1, "q3": q3, "work": work, "rate_unit": unit, "samples": xs}
            results[(name, t)] = row
            spread = " ".join(
                f"{LABEL[i]}±{(row[i]['q3'] - row[i]['q1']) / row[i]['median'] * 50:.0f}%" for i in impls if row.get(i)
            )
            print(f"[{time.strftime('%H:%M:%S')}] {name} threads={t}: "
                  + ", ".join(f"{LABEL[i]} {cell(row.get(i))}" for i in impls) + f"  (IQR/2: {spread})",
                  file=sys.stderr, flush=True)

    load_after = os.getloadavg()
    print_header(machine)
    print(f"Run: {started}; {a.rounds} interleaved rounds per cell; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}\n")
    print("| workload | threads | tensorgrad | tg % of peak | PyTorch | NumPy | ratio tg/best | target (time ratio) | status "
          "| spread (IQR/2: tg, torch, numpy) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---|")
    for (name, t), row in results.items():
        target = WORKLOADS[name][4]
        refs = {k: v for k, v in row.items() if k != "tensorgrad"}
        ratio, ttxt, met = judge(target, t, row.get("tensorgrad"), refs)
        spread = ", ".join(
            f"{(row[i]['q3'] - row[i]['q1']) / row[i]['median'] * 50:.0f}%" if row.get(i) else "—"
            for i in ("tensorgrad", "torch", "numpy")
        )
        pct = peak_pct(machine, row.get("tensorgrad"), t)
        print(f"| {name} | {t} | {cell(row.get('tensorgrad'))} | {'—' if pct is None else f'{pct:.0f}%'} | "
              f"{cell(row.get('torch'))} | "
              f"{cell(row.get('numpy'))} | {ratio} | {ttxt} | {met} | {spread} |")

    # Thread scaling: time at 1 thread / time at 2 threads.
    if 1 in threads_list and 2 in threads_list:
        print("\nThread scaling (median time at 1 thread ÷ median time at 2 threads):\n")
        print(short_header(machine) + "\n")
        print("| workload | tensorgrad | PyTorch | NumPy |")
        print("|---|---:|---:|---:|")
        for name in names:
            r1, r2 = results.get((name, 1), {}), results.get((name, 2), {})
            cells = []
            for impl in ("tensorgrad", "torch", "numpy"):
                if r1.get(impl) and r2.get(impl):
                    cells.append(f"{r1[impl]['median'] / r2[impl]['median']:.2f}×")
                else:
                    cells.append("—")
            print(f"| {name} | " + " | ".join(cells) + " |")

    if a.memory:
        print("\nPeak memory (max RSS from /usr/bin/time -v; `noop` = the process with the library loaded "
              "and nothing run):\n")
        print(short_header(machine) + "\n")
        print("| workload (2 threads) | tensorgrad | PyTorch |")
        print("|---|---:|---:|")
        # With --only, the workloads run; without it, the LSTM's as before.
        for name in ("noop", *names) if a.only else ("noop", "lstm_train", "lstm_fwd"):
            cells = []
            for impl in ("tensorgrad", "torch"):
                cmd, env = command(impl, name, 2, 5, 1, 1, a.tg_bin, a.python)
                kb = max_rss_kb(cmd, env)
                cells.append(f"{kb / 1024:.0f} MiB" if kb else "—")
            print(f"| {name} | " + " | ".join(cells) + " |")

    if a.json:
        out = {}
        for (n, t), row in results.items():
            out[f"{n}@{t}"] = {i: v for i, v in row.items()}
            pct = peak_pct(machine, row.get("tensorgrad"), t)
            if pct is not None:
                out[f"{n}@{t}"]["tensorgrad"] = dict(row["tensorgrad"], pct_of_measured_peak=pct)
        a.json.write_text(json.dumps({"started": started, "host": platform.node(), "machine": machine,
                                      "results": out}, indent=1))


if __name__ == "__main__":
    main()
