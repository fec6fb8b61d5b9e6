//! 2-D convolution throughput (`f32`): the forward pass, and the forward plus backward pass
//! (gradients of input, weight and bias), on three shapes:
//!
//! - `lenet1`: LeNet's first layer, `[64, 1, 28, 28]` ⋆ 6 filters 5×5;
//! - `lenet2`: LeNet's second layer, `[64, 6, 12, 12]` ⋆ 16 filters 5×5;
//! - `resnet`: a ResNet basic block's convolution, `[8, 64, 56, 56]` ⋆ 64 filters 3×3, padding 1;
//! - `wide`: `[2, 3, 320, 320]` ⋆ 16 filters 3×3, padding 1 (a detector's stem on a big image).
//!
//! The group name carries the rayon thread count, so runs with different `RAYON_NUM_THREADS`
//! keep separate baselines:
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench conv
//! RAYON_NUM_THREADS=2 cargo bench --bench conv -- resnet
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use tensorgrad::{Conv2dOptions, ConvPadding, Tensor};

/// `(name, input shape, weight shape, padding)`.
const CASES: [(&str, [usize; 4], [usize; 4], usize); 4] = [
    ("lenet1", [64, 1, 28, 28], [6, 1, 5, 5], 0),
    ("lenet2", [64, 6, 12, 12], [16, 6, 5, 5], 0),
    ("resnet", [8, 64, 56, 56], [64, 64, 3, 3], 1),
    ("wide", [2, 3, 320, 320], [16, 3, 3, 3], 1),
];

fn bench_conv(c: &mut Criterion) {
    let threads = rayon::current_num_threads();
    let mut group = c.benchmark_group(format!("conv2d_f32_{threads}threads"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    for (name, xs, ws, pad) in CASES {
        let x = Tensor::<f32>::rand_uniform(&xs, -1.0, 1.0, 1);
        let w = Tensor::<f32>::rand_uniform(&ws, -0.1, 0.1, 2);
        let b = Tensor::<f32>::rand_uniform(&[ws[0]], -0.1, 0.1, 3);
        let o = Conv2dOptions { padding: ConvPadding::Explicit([pad, pad]), ..Default::default() };
        group.bench_function(format!("{name}/forward"), |bench| {
            bench.iter(|| black_box(&x).conv2d(black_box(&w), Some(&b), o))
        });
        let (xg, wg, bg) = (x.clone().requires_grad(), w.clone().requires_grad(), b.clone().requires_grad());
        group.bench_function(format!("{name}/forward_backward"), |bench| {
            bench.iter(|| {
                let y = xg.conv2d(&wg, Some(&bg), o);
                black_box(y.sum().backward())
            })
        });
    }
    group.finish();
}

// No plots: criterion's plotting backend panics when no system font is available.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench_conv
}
criterion_main!(benches);
