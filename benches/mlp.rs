//! The MLP training step (`f32`): 784-512-512-10 with ReLU, batch 256, cross-entropy, SGD
//! (lr 0.01), as in PyTorch's MNIST examples.
//!
//! - `forward`: inference under `no_grad`.
//! - `train_step`: forward (recording the graph), cross-entropy, backward, SGD step.
//!
//! The work of one step is about 3 × 2·256·(784·512 + 512·512 + 512·10) ≈ 1.03 GFLOP (forward,
//! and the two products per layer of backward), reported as `Throughput::Elements` in FLOP, so
//! criterion's `elem/s` is FLOP/s.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench mlp
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::loss::{Reduction, cross_entropy};
use tensorgrad::nn::{Linear, Module, Relu, Sequential};
use tensorgrad::optim::{Optimizer, Sgd, SgdConfig};
use tensorgrad::{Tensor, no_grad};

const BATCH: usize = 256;
const LAYERS: [(usize, usize); 3] = [(784, 512), (512, 512), (512, 10)];

fn bench_mlp(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let mut mlp: Sequential = Sequential::new();
    for (k, &(i, o)) in LAYERS.iter().enumerate() {
        mlp = mlp.add(Linear::new(i, o, &mut rng));
        if k + 1 < LAYERS.len() {
            mlp = mlp.add(Relu);
        }
    }
    let x = Tensor::randn(&[BATCH, 784], 0.0, 1.0, &mut rng);
    let targets: Vec<usize> = (0..BATCH).map(|_| rng.random_range(0..10)).collect();
    let macs: usize = LAYERS.iter().map(|&(i, o)| BATCH * i * o).sum();

    let threads = rayon::current_num_threads();
    let mut g = c.benchmark_group(format!("mlp_784_512_512_10_f32_{threads}threads_FLOP"));
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));

    g.throughput(Throughput::Elements(2 * macs as u64));
    g.bench_function("forward", |b| b.iter(|| no_grad(|| mlp.forward(black_box(&x)))));

    let mut opt = Sgd::new(mlp.parameters(), SgdConfig { lr: 0.01, ..Default::default() });
    g.throughput(Throughput::Elements(3 * 2 * macs as u64));
    g.bench_function("train_step", |b| {
        b.iter(|| {
            let loss = cross_entropy(&mlp.forward(black_box(&x)), &targets, 0.0, Reduction::Mean);
            opt.step(&loss.backward());
            loss.item()
        })
    });
    g.finish();
}

// No plots: criterion's plotting backend panics when no system font is available, and the
// numbers are what matters here.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench_mlp
}
criterion_main!(benches);
