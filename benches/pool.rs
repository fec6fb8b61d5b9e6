//! Max and average pooling (`f32`), forward alone and forward + backward, on two shapes: a
//! LeNet-style `[64, 6, 24, 24]` with 2×2 windows, and a ResNet-stem-style `[8, 64, 112, 112]`
//! with 3×3 windows, stride 2, padding 1.
//!
//! - `<op>_forward`: the op under `no_grad`.
//! - `<op>_fwd_bwd`: the recorded op and its backward from a gradient of ones.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench pool
//! RAYON_NUM_THREADS=2 cargo bench --bench pool
//! ```
//!
//! `benches/compare/pool_torch.py` times the same calls in PyTorch.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::{AvgPool2dConfig, MaxPool2dConfig, Tensor, no_grad};

fn bench_pool(c: &mut Criterion) {
    let threads = rayon::current_num_threads();
    let cases = [("64x6x24x24_k2", [64, 6, 24, 24], 2, 2, 0), ("8x64x112x112_k3s2p1", [8, 64, 112, 112], 3, 2, 1)];
    let mut rng = StdRng::seed_from_u64(0);
    for (name, shape, k, s, p) in cases {
        let n: usize = shape.iter().product();
        let x = Tensor::<f32>::from_vec((0..n).map(|_| rng.random_range(-1.0..1.0)).collect(), &shape);
        let max = MaxPool2dConfig::new(k).stride(s).padding(p);
        let avg = AvgPool2dConfig::new(k).stride(s).padding(p);
        let out_shape = x.max_pool2d(max).shape().to_vec();
        let ones = Tensor::<f32>::ones(&out_shape);
        let leaf = x.clone().requires_grad();

        let mut g = c.benchmark_group(format!("pool_{name}_f32_{threads}threads"));
        g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
        g.bench_function("max_pool2d_forward", |b| b.iter(|| no_grad(|| black_box(&x).max_pool2d(max))));
        g.bench_function("max_pool2d_fwd_bwd", |b| {
            b.iter(|| black_box(&leaf).max_pool2d(max).backward_with_grad(black_box(&ones)))
        });
        g.bench_function("avg_pool2d_forward", |b| b.iter(|| no_grad(|| black_box(&x).avg_pool2d(avg))));
        g.bench_function("avg_pool2d_fwd_bwd", |b| {
            b.iter(|| black_box(&leaf).avg_pool2d(avg).backward_with_grad(black_box(&ones)))
        });
        g.finish();
    }
}

// No plots: criterion's plotting backend panics when no system font is available, and the
// numbers are what matters here.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench_pool
}
criterion_main!(benches);
