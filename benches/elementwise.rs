//! Elementwise, broadcast, reduction and softmax throughput (`f32`), and the fixed cost of one
//! tiny op through autograd.
//!
//! Throughput is `Throughput::Bytes`: the bytes each op must read and write once (an `n`-element
//! binary op reads `2·4n` and writes `4n` bytes), so criterion's `GiB/s` compares directly with
//! the machine's memory bandwidth. Group names carry the rayon thread count, so runs with
//! different `RAYON_NUM_THREADS` keep separate baselines:
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench elementwise -- 'add/'
//! RAYON_NUM_THREADS=2 cargo bench --bench elementwise
//! ```
//!
//! - `map_*`: `add`, `mul` (two `[n]` tensors), `bcast_add` (`[n/1024, 1024] + [1024]`),
//!   `sigmoid`, `exp`, for n = 2¹⁰ … 2²⁴ (1K … 16M elements).
//! - `reduce_*`: `sum` of `[n]`; `sum_dim` over the rows (dim 1) and the columns (dim 0) of
//!   `[n/1024, 1024]`.
//! - `softmax_*`: softmax over the last dim of `[rows, cols]`, for MLP logits (`[256, 10]`) and
//!   wide rows (`[1024, 1024]`).
//! - `autograd_*`: `a * b` on two 8-element tensors that require a gradient, without and with
//!   `(a * b).sum().backward()`; the time is the per-op overhead of the graph.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::Tensor;

const SIZES: [usize; 4] = [1 << 10, 1 << 16, 1 << 20, 1 << 24];

fn random(shape: &[usize], rng: &mut StdRng) -> Tensor<f32> {
    Tensor::rand_uniform(shape, -1.0, 1.0, rng)
}

fn bytes(elements: usize) -> Throughput {
    Throughput::Bytes(4 * elements as u64)
}

fn label(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{}M", n >> 20),
        n if n >= 1 << 10 => format!("{}K", n >> 10),
        n => n.to_string(),
    }
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let threads = rayon::current_num_threads();
    let mut g = c.benchmark_group(format!("{name}_f32_{threads}threads"));
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    g
}

fn bench_maps(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let mut g = group(c, "map");
    for n in SIZES {
        let a = random(&[n], &mut rng);
        let b = random(&[n], &mut rng);
        let id = label(n);
        g.throughput(bytes(3 * n));
        g.bench_function(BenchmarkId::new("add", &id), |bench| bench.iter(|| black_box(&a) + black_box(&b)));
        g.bench_function(BenchmarkId::new("mul", &id), |bench| bench.iter(|| black_box(&a) * black_box(&b)));

        let x = a.reshape(&[n / 1024, 1024]);
        let bias = random(&[1024], &mut rng);
        g.throughput(bytes(2 * n + 1024));
        g.bench_function(BenchmarkId::new("bcast_add", &id), |bench| bench.iter(|| black_box(&x) + black_box(&bias)));

        g.throughput(bytes(2 * n));
        g.bench_function(BenchmarkId::new("sigmoid", &id), |bench| bench.iter(|| black_box(&a).sigmoid()));
        g.bench_function(BenchmarkId::new("exp", &id), |bench| bench.iter(|| black_box(&a).exp()));
    }
    g.finish();
}

fn bench_reductions(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut g = group(c, "reduce");
    for n in SIZES {
        let a = random(&[n], &mut rng);
        let m = a.reshape(&[n / 1024, 1024]);
        let id = label(n);
        g.throughput(bytes(n));
        g.bench_function(BenchmarkId::new("sum", &id), |bench| bench.iter(|| black_box(&a).sum()));
        g.bench_function(BenchmarkId::new("sum_dim1_rows", &id), |bench| {
            bench.iter(|| black_box(&m).sum_dim(1, false))
        });
        g.bench_function(BenchmarkId::new("sum_dim0_cols", &id), |bench| {
            bench.iter(|| black_box(&m).sum_dim(0, false))
        });
    }
    g.finish();
}

fn bench_softmax(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2);
    let mut g = group(c, "softmax");
    for (rows, cols) in [(256, 10), (1024, 1024)] {
        let x = random(&[rows, cols], &mut rng);
        g.throughput(bytes(2 * rows * cols));
        g.bench_function(BenchmarkId::new("rows", format!("{rows}x{cols}")), |bench| {
            bench.iter(|| black_box(&x).softmax(1))
        });
        g.bench_function(BenchmarkId::new("log_softmax_rows", format!("{rows}x{cols}")), |bench| {
            bench.iter(|| black_box(&x).log_softmax(1))
        });
    }
    g.finish();
}

fn bench_autograd_overhead(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(3);
    let mut g = group(c, "autograd");
    g.measurement_time(Duration::from_secs(2));
    let a = random(&[8], &mut rng).requires_grad();
    let b = random(&[8], &mut rng).requires_grad();
    let (ca, cb) = (a.detach(), b.detach());
    g.bench_function("mul8_no_graph", |bench| bench.iter(|| black_box(&ca) * black_box(&cb)));
    g.bench_function("mul8_recorded", |bench| bench.iter(|| black_box(&a) * black_box(&b)));
    g.bench_function("mul8_recorded_sum_backward", |bench| {
        bench.iter(|| (black_box(&a) * black_box(&b)).sum().backward())
    });
    g.finish();
}

// No plots: criterion's plotting backend panics when no system font is available, and the
// numbers are what matters here.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench_maps, bench_reductions, bench_softmax, bench_autograd_overhead
}
criterion_main!(benches);
