#!/usr/bin/env bash
# Compare tensorgrad with PyTorch and NumPy on the same workloads, interleaved; print one table.
#
#   benches/compare/run.sh                 # everything, 1 and 2 threads, 5 rounds
#   ROUNDS=3 benches/compare/run.sh --only matmul_1024,lstm_train
#   COMPARE_VENV=/path/to/existing/venv benches/compare/run.sh --memory --probes
#
# A developer tool: the crate's tests never need Python. The virtualenv lives OUTSIDE the
# repository, in $COMPARE_VENV (default ${TMPDIR:-/tmp}/tensorgrad-compare-venv). It is created
# and given torch and numpy on first use, and reused afterwards; point COMPARE_VENV at any venv
# that already has both to skip the install. Extra arguments go to compare.py
# (--rounds N, --threads 1,2, --only a,b, --scale F, --memory, --probes, --json FILE).
#
# Environment: PYTHON (interpreter used to create the venv, default python3), TORCH_INDEX_URL
# (default: PyPI; point it at a CPU-only wheel index to avoid the CUDA libraries),
# CARGO_TARGET_DIR (honoured: the binary is taken from where cargo built it).
#
# The results table comes after a "Machine" block (CPU model and family/model numbers, vector
# flags, tensorgrad's kernels and GEMM plan, the measured FMA peak, NumPy's and PyTorch's BLAS),
# and every later table repeats a one-line summary of it: each table says which CPU it ran on.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${COMPARE_VENV:-${TMPDIR:-/tmp}/tensorgrad-compare-venv}"
venv="$(mkdir -p "$(dirname "$venv")" && cd "$(dirname "$venv")" && pwd)/$(basename "$venv")"

case "$venv/" in
"$repo"/*)
    echo "run.sh: the virtualenv must live outside the repository ($venv is inside $repo)" >&2
    exit 1
    ;;
esac

py="$venv/bin/python"
if [[ ! -x "$py" ]]; then
    echo "run.sh: creating a virtualenv in $venv" >&2
    "${PYTHON:-python3}" -m venv "$venv"
fi
if ! "$py" -c 'import torch, numpy' >/dev/null 2>&1; then
    echo "run.sh: installing torch and numpy into $venv" >&2
    "$py" -m pip install --quiet --upgrade pip
    "$py" -m pip install --quiet numpy
    # PyPI's torch (it pulls the CUDA wheels, ~3 GB, and runs on the CPU); set TORCH_INDEX_URL
    # to a CPU-only wheel index where one is reachable.
    if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
        "$py" -m pip install --quiet torch --index-url "$TORCH_INDEX_URL"
    else
        "$py" -m pip install --quiet torch
    fi
fi

echo "run.sh: building the tensorgrad side (release)" >&2
(cd "$repo" && cargo build --release --example bench_compare >&2)
target="${CARGO_TARGET_DIR:-target}"
[[ "$target" = /* ]] || target="$repo/$target"
bin="$target/release/examples/bench_compare"

{
    echo "rustc: $(rustc --version)"
    echo "python: $("$py" -c 'import sys; print(sys.version.split()[0])')"
    echo "torch: $("$py" -c 'import torch; print(torch.__version__)')"
    echo "numpy: $("$py" -c 'import numpy; print(numpy.__version__)')"
    echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p') ($(nproc) CPUs)"
} >&2

exec "$py" "$here/compare.py" --tg-bin "$bin" --python "$py" "$@"
