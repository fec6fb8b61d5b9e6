//! Matrix-multiply throughput (`f32`).
//!
//! Every benchmark sets `Throughput::Elements(2·m·k·n)`: one element is one floating-point
//! operation (a multiply-add counts as two), so the rate criterion prints as `elem/s` is
//! **FLOP/s** (`Gelem/s` = GFLOP/s). The group names end in `FLOP` as a reminder and carry the
//! rayon thread count, so runs with different `RAYON_NUM_THREADS` keep separate baselines:
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench matmul -- square/512
//! RAYON_NUM_THREADS=2 cargo bench --bench matmul
//! ```
//!
//! - `square/n`: `[n, n] × [n, n]`, contiguous, n = 64 … 1024.
//! - `lstm_fwd_128x144_x_144x512`: an LSTM step's input product, batch 128, 144 inputs
//!   (input + hidden), 4·128 gate outputs.
//! - `lstm_wgrad_T144x128_x_128x512`: its weight gradient `xᵀ·G`, with `xᵀ` the transposed view of
//!   the contiguous `[128, 144]` input (no copy).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::Tensor;

fn random(shape: &[usize], rng: &mut StdRng) -> Tensor<f32> {
    Tensor::rand_uniform(shape, -1.0, 1.0, rng)
}

fn flops(m: usize, k: usize, n: usize) -> Throughput {
    Throughput::Elements(2 * (m * k * n) as u64)
}

fn bench_matmul(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let threads = rayon::current_num_threads();

    let mut group = c.benchmark_group(format!("matmul_f32_{threads}threads_FLOP"));
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));

    for n in [64, 128, 256, 512, 1024] {
        let a = random(&[n, n], &mut rng);
        let b = random(&[n, n], &mut rng);
        // Large products take milliseconds each: equal-sized samples fit the time budget.
        group.sampling_mode(if n >= 512 { SamplingMode::Flat } else { SamplingMode::Auto });
        group.throughput(flops(n, n, n));
        group.bench_with_input(BenchmarkId::new("square", n), &(a, b), |bench, (a, b)| {
            bench.iter(|| black_box(a).matmul(black_box(b)))
        });
    }

    group.sampling_mode(SamplingMode::Auto);

    // LSTM forward: x [128, 144] · W [144, 512].
    let x = random(&[128, 144], &mut rng);
    let w = random(&[144, 512], &mut rng);
    group.throughput(flops(128, 144, 512));
    group.bench_function("lstm_fwd_128x144_x_144x512", |bench| bench.iter(|| black_box(&x).matmul(black_box(&w))));

    // LSTM weight gradient: xᵀ [144, 128] (a view of x) · G [128, 512].
    let g = random(&[128, 512], &mut rng);
    let xt = x.t();
    assert!(!xt.is_contiguous(), "the weight-gradient operand must be a transposed view");
    group.throughput(flops(144, 128, 512));
    group.bench_function("lstm_wgrad_T144x128_x_128x512", |bench| bench.iter(|| black_box(&xt).matmul(black_box(&g))));

    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: with the crate's `plot` feature, plotters is built with `ab_glyph`, which has no
    // system fonts registered, and criterion's plotting panics with `FontUnavailable`.
    config = Criterion::default().without_plots();
    targets = bench_matmul
}
criterion_main!(benches);
