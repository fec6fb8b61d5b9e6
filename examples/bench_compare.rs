//! # One named benchmark workload, timed, in a machine-readable line
//!
//! The tensorgrad side of `benches/compare/` (which runs the same workloads with PyTorch and NumPy
//! and prints one table). It is a developer tool, not part of the library.
//!
//! ```sh
//! cargo run --release --example bench_compare -- --workload lstm_train --threads 2 --iters 10
//! cargo run --release --example bench_compare -- --list
//! cargo run --release --example bench_compare -- --info --threads 2
//! ```
//!
//! Flags: `--workload NAME` (required unless `--info` or `--list`), `--threads N` (rayon's global
//! pool; default 1), `--iters N` timed samples (default 10), `--warmup N` untimed iterations before
//! them (default 3), `--inner N` repetitions of the workload per sample (default 1; use it for
//! sub-millisecond workloads so that one sample is well above the clock's resolution).
//!
//! `--info` (instead of `--workload`) prints what [`tensorgrad::cpu_info`] reports for this machine
//! with a rayon pool of `--threads` threads, one `INFO key=value` line per fact (the value is the
//! rest of the line), and exits; `benches/compare/compare.py` puts it at the top of its tables:
//!
//! ```text
//! INFO cpu=Intel(R) Xeon(R) Processor
//! INFO simd=avx512
//! INFO sgemm_tile=12x32
//! INFO sgemm_kc=256
//! INFO sgemm_mc=252
//! INFO sgemm_nc=4096
//! INFO dgemm_tile=12x16
//! ...
//! INFO l1d_bytes=49152
//! INFO l2_bytes=2097152
//! INFO l3_bytes=272629760
//! INFO threads=2
//! INFO fork_join_us=6.21
//! INFO summary=Intel(R) Xeon(R) Processor | kernels avx512 | L1d 48 KiB, ... | fork-join 6.2 µs
//! ```
//!
//! `simd` is the vector build every kernel uses (`avx512`, `avx2+fma` or `portable`; the
//! environment variable `TENSORGRAD_SIMD` caps it), the `sgemm_*`/`dgemm_*` keys are the `f32`
//! and `f64` matrix-multiply plans (register tile rows x columns, then the cache blocking), the
//! cache sizes are per core except L3, `fork_join_us` is empty with a one-thread pool and
//! `summary` is `CpuInfo`'s one-line `Display`.
//!
//! Output of a workload: one line,
//!
//! ```text
//! RESULT impl=tensorgrad workload=matmul_1024 threads=2 iters=10 inner=1 median_s=0.0213 min_s=0.0208 rate=100.8 unit=GFLOP/s samples_s=0.0213,...
//! ```
//!
//! where `median_s` and `min_s` are seconds per repetition (a sample's time divided by `inner`)
//! and `rate` is derived from the median: GFLOP/s for products (2·m·k·n per product), GB/s for
//! memory-bound ops (bytes read + bytes written, each once), or empty.
//!
//! The workloads are defined identically in `benches/compare/torch_bench.py`: same shapes, `f32`,
//! same model, loss and optimizer. Probes (`probe_*`) measure the machine, not tensorgrad: the
//! clock from a chain of dependent integer adds, and the peak FMA throughput with 256- and
//! 512-bit vectors on every thread.

use std::hint::black_box;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::loss::{Reduction, bce_with_logits, cross_entropy};
use tensorgrad::models::resnet::{ResNet, ResNetDepth};
use tensorgrad::nn::{
    Conv2d, Embedding, Flatten, Linear, Lstm, LstmConfig, MaxPool2d, Module, Relu, Sequential, TransformerEncoder,
    TransformerEncoderLayer, TransformerLayerConfig,
};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use tensorgrad::{Conv2dOptions, ConvPadding, Tensor, no_grad};

/// The workloads this binary knows, with a one-line description.
const WORKLOADS: &[(&str, &str)] = &[
    ("matmul_256", "[256,256] x [256,256]"),
    ("matmul_1024", "[1024,1024] x [1024,1024]"),
    ("matmul_2048", "[2048,2048] x [2048,2048]"),
    ("matmul_lstm_gates", "[128,144] x [144,512] (an LSTM step's gate product)"),
    ("matmul_lstm_wgrad", "[144,128]^T x [128,512]: transposed view of a contiguous [128,144] (weight gradient)"),
    ("bcast_add", "x[1024,1024] + b[1024]"),
    ("sigmoid_1m", "sigmoid over 2^20 f32"),
    ("layer_norm_train", "layer_norm over the last dim of x[2048, 128] with weight and bias, forward + backward"),
    ("sdpa_train", "scaled_dot_product_attention, q/k/v [32, 4, 128, 32], forward + backward"),
    ("sdpa_causal_train", "causal scaled_dot_product_attention, q/k/v [4, 4, 512, 32], forward + backward"),
    ("sdpa_fwd", "scaled_dot_product_attention, q/k/v [32, 4, 128, 32], forward only (no autograd)"),
    ("sum_dim_last", "x[1024,1024].sum_dim(1): one sum per row"),
    ("sum_dim_first", "x[1024,1024].sum_dim(0): one sum per column"),
    ("autograd_mul8", "a * b, two 8-element tensors requiring grad (op recorded, output dropped)"),
    ("autograd_mul8_backward", "(a * b).sum().backward() on two 8-element tensors"),
    ("lstm_train", "Embedding(10000,16) -> LSTM(16->128) -> Linear(128,1), BCE-with-logits, Adam; B=128, T=100"),
    ("lstm_fwd", "the same model's forward pass without autograd (inference)"),
    ("lstm_predict1", "the flagship's predict: that model on one snippet of 100 tokens, no autograd, sigmoid"),
    ("lstm_train_unfused", "lstm_train with the cell composed op by op (fused = false)"),
    ("mlp_train", "MLP 784-512-512-10 (ReLU), batch 256, cross-entropy, SGD step"),
    ("encoder_train", "TransformerEncoder d128 4 heads ff512 4 layers dropout 0.1, B32 T64, Adam step"),
    ("conv2d_lenet_fwd", "LeNet's convs, bias, no padding: 1->6 k5 on [64,1,28,28] and 6->16 k5 on [64,6,12,12]"),
    ("conv2d_lenet_bwd", "backward only of conv2d_lenet_fwd (graph kept): input + weight grads of both, fixed dy"),
    ("conv2d_block_fwd", "ResNet basic-block conv: 64->64 k3 p1 on [8,64,56,56], no bias"),
    ("conv2d_block_bwd", "backward only of conv2d_block_fwd (graph kept): input + weight grads, fixed dy"),
    ("conv2d_320_fwd", "3->16 k3 p1 on [2,3,320,320], bias"),
    ("conv2d_320_bwd", "backward only of conv2d_320_fwd (graph kept): input + weight grads, fixed dy"),
    ("resnet18_train", "ResNet-18 (10 classes), [16,3,64,64], train mode, cross-entropy, SGD momentum 0.9 step"),
    ("cnn_mnist_train", "examples/cnn_mnist.rs's LeNet, [64,1,28,28], cross-entropy, Adam step"),
    ("noop", "nothing (baseline for peak memory)"),
    ("probe_clock", "machine probe: 20 dependent integer adds per loop (rate = GHz)"),
    ("probe_fma256", "machine probe: 12 independent 256-bit FMA chains per thread (rate = GFLOP/s)"),
    ("probe_fma512", "machine probe: 12 independent 512-bit FMA chains per thread (rate = GFLOP/s)"),
];

struct Args {
    workload: String,
    info: bool,
    threads: usize,
    iters: usize,
    warmup: usize,
    inner: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench_compare --workload NAME [--threads N] [--iters N] [--warmup N] [--inner N] | --info [--threads N] | --list\nworkloads:"
    );
    for (name, what) in WORKLOADS {
        eprintln!("  {name:24} {what}");
    }
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args { workload: String::new(), info: false, threads: 1, iters: 10, warmup: 3, inner: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--list" {
            for (name, what) in WORKLOADS {
                println!("{name}\t{what}");
            }
            std::process::exit(0);
        }
        if flag == "--info" {
            args.info = true;
            continue;
        }
        let Some(value) = it.next() else { usage() };
        let number = || value.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--workload" => args.workload = value.clone(),
            "--threads" => args.threads = number().max(1),
            "--iters" => args.iters = number().max(1),
            "--warmup" => args.warmup = number(),
            "--inner" => args.inner = number().max(1),
            _ => usage(),
        }
    }
    if !args.info && !WORKLOADS.iter().any(|(n, _)| *n == args.workload) {
        usage();
    }
    args
}

/// A workload: `run()` is one repetition; `work` is the FLOPs or bytes of one repetition.
struct Workload {
    run: Box<dyn FnMut()>,
    work: Option<(f64, &'static str)>,
}

fn gflop(m: usize, k: usize, n: usize) -> Option<(f64, &'static str)> {
    Some((2.0 * (m * k * n) as f64 / 1e9, "GFLOP/s"))
}

fn gbytes(elements: usize) -> Option<(f64, &'static str)> {
    Some((4.0 * elements as f64 / 1e9, "GB/s"))
}

fn random(shape: &[usize], rng: &mut StdRng) -> Tensor<f32> {
    Tensor::rand_uniform(shape, -1.0, 1.0, rng)
}

fn matmul(m: usize, k: usize, n: usize, transposed_a: bool, rng: &mut StdRng) -> Workload {
    // A transposed `A` is the view `xᵀ` of a contiguous `[k, m]` tensor: no copy.
    let a = if transposed_a { random(&[k, m], rng).t() } else { random(&[m, k], rng) };
    let b = random(&[k, n], rng);
    Workload { run: Box::new(move || drop(black_box(black_box(&a).matmul(black_box(&b))))), work: gflop(m, k, n) }
}

/// The seed LSTM classifier: Embedding(10000, 16) → LSTM(16 → 128) → Linear(128, 1).
struct LstmModel {
    emb: Embedding,
    lstm: Lstm,
    fc: Linear,
    ids: Vec<usize>,
    labels: Tensor<f32>,
}

const LSTM_BATCH: usize = 128;
const LSTM_STEPS: usize = 100;

impl LstmModel {
    fn new(fused: bool, rng: &mut StdRng) -> Self {
        let emb = Embedding::new(10_000, 16, &mut *rng);
        let lstm = Lstm::new(LstmConfig { fused, ..LstmConfig::new(16, 128) }, &mut *rng);
        let fc = Linear::new(128, 1, &mut *rng);
        let ids = (0..LSTM_BATCH * LSTM_STEPS).map(|_| rng.random_range(0..10_000)).collect();
        let labels = (0..LSTM_BATCH).map(|_| rng.random_range(0..2u8) as f32).collect();
        LstmModel { emb, lstm, fc, ids, labels: Tensor::from_vec(labels, &[LSTM_BATCH, 1]) }
    }

    fn logits(&self) -> Tensor<f32> {
        let x = self.emb.forward_ids(&self.ids, &[LSTM_BATCH, LSTM_STEPS]);
        self.fc.forward(&self.lstm.forward(&x))
    }

    fn parameters(&self) -> Vec<Tensor<f32>> {
        [self.emb.parameters(), self.lstm.parameters(), self.fc.parameters()].concat()
    }
}

fn lstm_train(fused: bool, rng: &mut StdRng) -> Workload {
    let model = LstmModel::new(fused, rng);
    let mut opt = Adam::new(model.parameters(), AdamConfig { lr: 1e-3, ..Default::default() });
    let run = move || {
        let loss = bce_with_logits(&model.logits(), &model.labels, None, Reduction::Mean);
        let grads = loss.backward();
        opt.step(&grads);
        black_box(loss.item());
    };
    Workload { run: Box::new(run), work: None }
}

fn lstm_fwd(rng: &mut StdRng) -> Workload {
    let mut model = LstmModel::new(true, rng);
    model.lstm.eval();
    Workload { run: Box::new(move || drop(black_box(no_grad(|| model.logits())))), work: None }
}

fn lstm_predict1(rng: &mut StdRng) -> Workload {
    let mut model = LstmModel::new(true, rng);
    model.lstm.eval();
    let ids = model.ids[..LSTM_STEPS].to_vec();
    let run = move || {
        let p = no_grad(|| {
            let x = model.emb.forward_ids(&ids, &[1, LSTM_STEPS]);
            model.fc.forward(&model.lstm.forward(&x)).sigmoid()
        });
        black_box(p.item());
    };
    Workload { run: Box::new(run), work: None }
}

fn mlp_train(rng: &mut StdRng) -> Workload {
    let mlp: Sequential = Sequential::new()
        .add(Linear::new(784, 512, &mut *rng))
        .add(Relu)
        .add(Linear::new(512, 512, &mut *rng))
        .add(Relu)
        .add(Linear::new(512, 10, &mut *rng));
    let x = Tensor::randn(&[256, 784], 0.0, 1.0, &mut *rng);
    let targets: Vec<usize> = (0..256).map(|_| rng.random_range(0..10)).collect();
    let mut opt = Sgd::new(mlp.parameters(), SgdConfig { lr: 0.01, ..Default::default() });
    let run = move || {
        let loss = cross_entropy(&mlp.forward(&x), &targets, 0.0, Reduction::Mean);
        let grads = loss.backward();
        opt.step(&grads);
        black_box(loss.item());
    };
    Workload { run: Box::new(run), work: None }
}

/// PyTorch's `nn.TransformerEncoder` settings: d_model 128, 4 heads, feed-forward 512, 4 layers,
/// dropout 0.1, ReLU, post-norm, batch first; a batch of 32 sequences of 64 steps, Adam.
fn encoder_train(rng: &mut StdRng) -> Workload {
    let cfg = TransformerLayerConfig { dim_feedforward: 512, batch_first: true, ..TransformerLayerConfig::new(128, 4) };
    let enc: TransformerEncoder = TransformerEncoder::new(TransformerEncoderLayer::new(cfg, &mut *rng), 4, None);
    let x = Tensor::randn(&[32, 64, 128], 0.0, 1.0, &mut *rng);
    let u = Tensor::randn(&[32, 64, 128], 0.0, 1.0, &mut *rng);
    let mut opt = Adam::new(enc.named_parameters(), AdamConfig::default());
    let run = move || {
        let loss = (&enc.forward(&x) * &u).sum();
        let grads = loss.backward();
        opt.step(&grads);
        black_box(loss.item());
    };
    Workload { run: Box::new(run), work: None }
}

/// One stride-1, undilated, ungrouped 2-D convolution of a benchmark: input `[n, cin, side,
/// side]`, weight `[cout, cin, k, k]`, `pad` zeros on every side, and a bias or not.
#[derive(Clone, Copy)]
struct ConvShape {
    n: usize,
    cin: usize,
    cout: usize,
    side: usize,
    k: usize,
    pad: usize,
    bias: bool,
}

impl ConvShape {
    /// Multiply-adds × 2 of the forward pass (the bias adds are not counted). The backward's
    /// input gradient and weight gradient are each this much again.
    fn flop(&self) -> f64 {
        let out = self.side + 2 * self.pad - self.k + 1;
        2.0 * (self.n * self.cout * out * out * self.cin * self.k * self.k) as f64
    }
}

/// LeNet's two convolutions at batch 64 (the second on the pooled output of the first).
const CONV_LENET: &[ConvShape] = &[
    ConvShape { n: 64, cin: 1, cout: 6, side: 28, k: 5, pad: 0, bias: true },
    ConvShape { n: 64, cin: 6, cout: 16, side: 12, k: 5, pad: 0, bias: true },
];
/// A ResNet basic block's 3×3 convolution at the first stage's resolution.
const CONV_BLOCK: &[ConvShape] = &[ConvShape { n: 8, cin: 64, cout: 64, side: 56, k: 3, pad: 1, bias: false }];
/// Few channels on a large image: a detector's stem.
const CONV_320: &[ConvShape] = &[ConvShape { n: 2, cin: 3, cout: 16, side: 320, k: 3, pad: 1, bias: true }];

/// The convolutions `shapes`, each on its own input (they are not chained).
///
/// `backward = false`: the forward pass of each, nothing requiring gradients (no graph recorded).
/// `backward = true`: the backward pass only. The input and the weight require gradients (the
/// bias, when there is one, is a constant); each forward is run once, before timing, and one
/// repetition is `y.backward_with_grad(dy)` on each output with a fixed random `dy`, giving the
/// input and weight gradients. tensorgrad's graph is not consumed by a backward pass, so the same
/// one is walked every time (PyTorch's side uses `retain_graph=True`).
fn conv_workload(shapes: &[ConvShape], backward: bool, rng: &mut StdRng) -> Workload {
    let mut convs = Vec::new();
    for s in shapes {
        let leaf = |t: Tensor<f32>| if backward { t.requires_grad() } else { t };
        let x = leaf(random(&[s.n, s.cin, s.side, s.side], rng));
        let w = leaf(random(&[s.cout, s.cin, s.k, s.k], rng));
        let b = s.bias.then(|| random(&[s.cout], rng));
        let opts = Conv2dOptions {
            stride: [1, 1],
            padding: ConvPadding::Explicit([s.pad, s.pad]),
            dilation: [1, 1],
            groups: 1,
        };
        convs.push((x, w, b, opts));
    }
    let flop: f64 = shapes.iter().map(ConvShape::flop).sum::<f64>() * if backward { 2.0 } else { 1.0 };
    let work = Some((flop / 1e9, "GFLOP/s"));
    if !backward {
        let run = move || {
            for (x, w, b, opts) in &convs {
                drop(black_box(black_box(x).conv2d(w, b.as_ref(), *opts)));
            }
        };
        return Workload { run: Box::new(run), work };
    }
    let outs: Vec<(Tensor<f32>, Tensor<f32>)> = convs
        .iter()
        .map(|(x, w, b, opts)| {
            let y = x.conv2d(w, b.as_ref(), *opts);
            let dy = random(y.shape(), rng);
            (y, dy)
        })
        .collect();
    let run = move || {
        for (y, dy) in &outs {
            drop(black_box(y.backward_with_grad(dy)));
        }
    };
    Workload { run: Box::new(run), work }
}

/// torchvision's `resnet18(num_classes=10)` in training mode (batch norm normalises with the
/// batch's statistics and updates its running ones): one SGD step (lr 0.01, momentum 0.9) on
/// cross-entropy, 16 random 3×64×64 images.
fn resnet18_train(rng: &mut StdRng) -> Workload {
    let mut model: ResNet = ResNet::new(ResNetDepth::R18, 10, &mut *rng);
    model.train();
    let x = Tensor::randn(&[16, 3, 64, 64], 0.0, 1.0, &mut *rng);
    let targets: Vec<usize> = (0..16).map(|_| rng.random_range(0..10)).collect();
    let mut opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() });
    let run = move || {
        let loss = cross_entropy(&model.forward(&x), &targets, 0.0, Reduction::Mean);
        let grads = loss.backward();
        let l = loss.item();
        // As `Trainer::fit` does: the graph is freed before the in-place update, which would
        // otherwise copy each weight still held by it.
        drop(loss);
        opt.step(&grads);
        black_box(l);
    };
    Workload { run: Box::new(run), work: None }
}

/// The LeNet of `examples/cnn_mnist.rs`: one Adam step (lr 1e-3) on cross-entropy, 64 random
/// images in [0, 1).
fn cnn_mnist_train(rng: &mut StdRng) -> Workload {
    let model: Sequential = Sequential::new()
        .add(Conv2d::new(1, 6, [5, 5], &mut *rng))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(6, 16, [5, 5], &mut *rng))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Linear::new(16 * 4 * 4, 120, &mut *rng))
        .add(Relu)
        .add(Linear::new(120, 84, &mut *rng))
        .add(Relu)
        .add(Linear::new(84, 10, &mut *rng));
    let x = Tensor::rand_uniform(&[64, 1, 28, 28], 0.0, 1.0, &mut *rng);
    let targets: Vec<usize> = (0..64).map(|_| rng.random_range(0..10)).collect();
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 1e-3, ..Default::default() });
    let run = move || {
        let loss = cross_entropy(&model.forward(&x), &targets, 0.0, Reduction::Mean);
        let grads = loss.backward();
        let l = loss.item();
        // As `Trainer::fit` does: the graph is freed before the in-place update, which would
        // otherwise copy each weight still held by it.
        drop(loss);
        opt.step(&grads);
        black_box(l);
    };
    Workload { run: Box::new(run), work: None }
}

fn build(name: &str, threads: usize) -> Workload {
    let mut rng = StdRng::seed_from_u64(0);
    let rng = &mut rng;
    match name {
        "matmul_256" => matmul(256, 256, 256, false, rng),
        "matmul_1024" => matmul(1024, 1024, 1024, false, rng),
        "matmul_2048" => matmul(2048, 2048, 2048, false, rng),
        "matmul_lstm_gates" => matmul(128, 144, 512, false, rng),
        "matmul_lstm_wgrad" => matmul(144, 128, 512, true, rng),
        "bcast_add" => {
            let x = random(&[1024, 1024], rng);
            let b = random(&[1024], rng);
            // Reads x and b, writes the output.
            Workload { run: Box::new(move || drop(black_box(&x + &b))), work: gbytes(2 * 1024 * 1024 + 1024) }
        }
        "sum_dim_last" | "sum_dim_first" => {
            let x = random(&[1024, 1024], rng);
            let dim = if name == "sum_dim_last" { 1 } else { 0 };
            // Reads x, writes 1024 sums.
            Workload { run: Box::new(move || drop(black_box(x.sum_dim(dim, false)))), work: gbytes(1024 * 1024 + 1024) }
        }
        "sigmoid_1m" => {
            let x = random(&[1 << 20], rng);
            Workload { run: Box::new(move || drop(black_box(x.sigmoid()))), work: gbytes(2 << 20) }
        }
        "layer_norm_train" => {
            let x = random(&[2048, 128], rng).requires_grad();
            let w = random(&[128], rng).requires_grad();
            let b = random(&[128], rng).requires_grad();
            let u = random(&[2048, 128], rng);
            Workload {
                run: Box::new(move || {
                    drop(black_box((&x.layer_norm(&[128], Some(&w), Some(&b), 1e-5) * &u).sum().backward()))
                }),
                work: None,
            }
        }
        "sdpa_train" | "sdpa_causal_train" | "sdpa_fwd" => {
            let causal = name == "sdpa_causal_train";
            let shape: &[usize] = if causal { &[4, 4, 512, 32] } else { &[32, 4, 128, 32] };
            let grad = name != "sdpa_fwd";
            let leaf = |t: Tensor<f32>| if grad { t.requires_grad() } else { t };
            let (q, k, v) = (leaf(random(shape, rng)), leaf(random(shape, rng)), leaf(random(shape, rng)));
            let u = random(shape, rng);
            let opts = tensorgrad::SdpaOptions { is_causal: causal, ..Default::default() };
            Workload {
                run: Box::new(move || {
                    if grad {
                        drop(black_box((&q.scaled_dot_product_attention(&k, &v, opts) * &u).sum().backward()))
                    } else {
                        drop(black_box(tensorgrad::no_grad(|| q.scaled_dot_product_attention(&k, &v, opts))))
                    }
                }),
                work: None,
            }
        }
        "autograd_mul8" => {
            let a = random(&[8], rng).requires_grad();
            let b = random(&[8], rng).requires_grad();
            Workload { run: Box::new(move || drop(black_box(&a * &b))), work: None }
        }
        "autograd_mul8_backward" => {
            let a = random(&[8], rng).requires_grad();
            let b = random(&[8], rng).requires_grad();
            Workload { run: Box::new(move || drop(black_box((&a * &b).sum().backward()))), work: None }
        }
        "lstm_train" => lstm_train(true, rng),
        "lstm_train_unfused" => lstm_train(false, rng),
        "lstm_fwd" => lstm_fwd(rng),
        "lstm_predict1" => lstm_predict1(rng),
        "mlp_train" => mlp_train(rng),
        "encoder_train" => encoder_train(rng),
        "conv2d_lenet_fwd" => conv_workload(CONV_LENET, false, rng),
        "conv2d_lenet_bwd" => conv_workload(CONV_LENET, true, rng),
        "conv2d_block_fwd" => conv_workload(CONV_BLOCK, false, rng),
        "conv2d_block_bwd" => conv_workload(CONV_BLOCK, true, rng),
        "conv2d_320_fwd" => conv_workload(CONV_320, false, rng),
        "conv2d_320_bwd" => conv_workload(CONV_320, true, rng),
        "resnet18_train" => resnet18_train(rng),
        "cnn_mnist_train" => cnn_mnist_train(rng),
        "noop" => Workload { run: Box::new(|| black_box(())), work: None },
        "probe_clock" => {
            // One repetition: 10⁸ dependent adds, one cycle each → rate in GHz.
            Workload { run: Box::new(|| probes::dependent_adds(5_000_000)), work: Some((0.1, "GHz")) }
        }
        "probe_fma256" => {
            let loops = 2_000_000u64;
            // 12 FMAs × 8 lanes × 2 FLOP per loop, on every thread.
            let flop = (loops * 12 * 8 * 2 * threads as u64) as f64 / 1e9;
            Workload {
                run: Box::new(move || probes::on_threads(threads, loops, probes::fma256)),
                work: Some((flop, "GFLOP/s")),
            }
        }
        "probe_fma512" => {
            let loops = 1_000_000u64;
            let flop = (loops * 12 * 16 * 2 * threads as u64) as f64 / 1e9;
            Workload {
                run: Box::new(move || probes::on_threads(threads, loops, probes::fma512)),
                work: Some((flop, "GFLOP/s")),
            }
        }
        _ => usage(),
    }
}

/// Machine probes in inline assembly, so that the compiler cannot change what is measured.
mod probes {
    #[cfg(target_arch = "x86_64")]
    use std::arch::asm;

    /// `loops` iterations of 20 dependent `add`s (one cycle of latency each).
    #[cfg(target_arch = "x86_64")]
    pub fn dependent_adds(loops: u64) {
        // SAFETY: touches only the two named registers; no memory, no stack.
        unsafe {
            asm!(
                "2:",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                "sub {n}, 1",
                "jnz 2b",
                x = inout(reg) 0u64 => _,
                n = inout(reg) loops => _,
                options(nomem, nostack),
            );
        }
    }

    /// `loops` iterations of 12 independent 256-bit FMAs on zeroed registers.
    #[cfg(target_arch = "x86_64")]
    pub fn fma256(loops: u64) {
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
            eprintln!("probe_fma256: this CPU has no AVX2+FMA");
            std::process::exit(3);
        }
        // SAFETY: the features are present; every vector register is declared clobbered
        // (clobber_abi), and no memory or stack is touched.
        unsafe {
            asm!(
                "vxorps ymm0, ymm0, ymm0", "vxorps ymm1, ymm1, ymm1", "vxorps ymm2, ymm2, ymm2",
                "vxorps ymm3, ymm3, ymm3", "vxorps ymm4, ymm4, ymm4", "vxorps ymm5, ymm5, ymm5",
                "vxorps ymm6, ymm6, ymm6", "vxorps ymm7, ymm7, ymm7", "vxorps ymm8, ymm8, ymm8",
                "vxorps ymm9, ymm9, ymm9", "vxorps ymm10, ymm10, ymm10", "vxorps ymm11, ymm11, ymm11",
                "vxorps ymm14, ymm14, ymm14", "vxorps ymm15, ymm15, ymm15",
                "2:",
                "vfmadd231ps ymm0, ymm14, ymm15", "vfmadd231ps ymm1, ymm14, ymm15",
                "vfmadd231ps ymm2, ymm14, ymm15", "vfmadd231ps ymm3, ymm14, ymm15",
                "vfmadd231ps ymm4, ymm14, ymm15", "vfmadd231ps ymm5, ymm14, ymm15",
                "vfmadd231ps ymm6, ymm14, ymm15", "vfmadd231ps ymm7, ymm14, ymm15",
                "vfmadd231ps ymm8, ymm14, ymm15", "vfmadd231ps ymm9, ymm14, ymm15",
                "vfmadd231ps ymm10, ymm14, ymm15", "vfmadd231ps ymm11, ymm14, ymm15",
                "sub rcx, 1",
                "jnz 2b",
                "vzeroupper",
                inout("rcx") loops => _,
                clobber_abi("C"),
                options(nomem, nostack),
            );
        }
    }

    /// `loops` iterations of 12 independent 512-bit FMAs on zeroed registers.
    #[cfg(target_arch = "x86_64")]
    pub fn fma512(loops: u64) {
        if !std::is_x86_feature_detected!("avx512f") {
            eprintln!("probe_fma512: this CPU has no AVX-512");
            std::process::exit(3);
        }
        // SAFETY: as `fma256`; zmm0–zmm15 are caller-saved and covered by clobber_abi.
        unsafe {
            asm!(
                "vpxord zmm0, zmm0, zmm0", "vpxord zmm1, zmm1, zmm1", "vpxord zmm2, zmm2, zmm2",
                "vpxord zmm3, zmm3, zmm3", "vpxord zmm4, zmm4, zmm4", "vpxord zmm5, zmm5, zmm5",
                "vpxord zmm6, zmm6, zmm6", "vpxord zmm7, zmm7, zmm7", "vpxord zmm8, zmm8, zmm8",
                "vpxord zmm9, zmm9, zmm9", "vpxord zmm10, zmm10, zmm10", "vpxord zmm11, zmm11, zmm11",
                "vpxord zmm14, zmm14, zmm14", "vpxord zmm15, zmm15, zmm15",
                "2:",
                "vfmadd231ps zmm0, zmm14, zmm15", "vfmadd231ps zmm1, zmm14, zmm15",
                "vfmadd231ps zmm2, zmm14, zmm15", "vfmadd231ps zmm3, zmm14, zmm15",
                "vfmadd231ps zmm4, zmm14, zmm15", "vfmadd231ps zmm5, zmm14, zmm15",
                "vfmadd231ps zmm6, zmm14, zmm15", "vfmadd231ps zmm7, zmm14, zmm15",
                "vfmadd231ps zmm8, zmm14, zmm15", "vfmadd231ps zmm9, zmm14, zmm15",
                "vfmadd231ps zmm10, zmm14, zmm15", "vfmadd231ps zmm11, zmm14, zmm15",
                "sub rcx, 1",
                "jnz 2b",
                "vzeroupper",
                inout("rcx") loops => _,
                clobber_abi("C"),
                options(nomem, nostack),
            );
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn dependent_adds(_: u64) {
        eprintln!("probes need x86_64");
        std::process::exit(3);
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn fma256(_: u64) {
        dependent_adds(0)
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn fma512(_: u64) {
        dependent_adds(0)
    }

    /// Runs `f(loops)` on `threads` OS threads at once.
    pub fn on_threads(threads: usize, loops: u64, f: fn(u64)) {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(move || f(loops));
            }
        });
    }
}

/// `--info`: what the kernels chose for this CPU and the current rayon pool, one fact per line.
fn print_info() {
    let info = tensorgrad::cpu_info();
    println!("INFO cpu={}", info.name);
    println!("INFO simd={}", info.simd);
    for (prefix, plan) in [("sgemm", &info.gemm_f32), ("dgemm", &info.gemm_f64)] {
        println!("INFO {prefix}_tile={}x{}", plan.tile.0, plan.tile.1);
        println!("INFO {prefix}_kc={}", plan.kc);
        println!("INFO {prefix}_mc={}", plan.mc);
        println!("INFO {prefix}_nc={}", plan.nc);
    }
    println!("INFO l1d_bytes={}", info.l1d_bytes);
    println!("INFO l2_bytes={}", info.l2_bytes);
    println!("INFO l3_bytes={}", info.l3_bytes);
    println!("INFO threads={}", info.threads);
    println!("INFO fork_join_us={}", info.fork_join_us.map(|us| format!("{us:.2}")).unwrap_or_default());
    println!("INFO summary={info}");
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

fn main() {
    let args = parse_args();
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
        .expect("bench_compare: could not build the rayon thread pool");
    if args.info {
        print_info();
        return;
    }
    let mut w = build(&args.workload, args.threads);
    for _ in 0..args.warmup * args.inner {
        (w.run)();
    }
    let mut samples = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let start = Instant::now();
        for _ in 0..args.inner {
            (w.run)();
        }
        samples.push(start.elapsed().as_secs_f64() / args.inner as f64);
    }
    let listed = samples.iter().map(|s| format!("{s:.6e}")).collect::<Vec<_>>().join(",");
    samples.sort_by(f64::total_cmp);
    let med = median(&samples);
    let (rate, unit) = match w.work {
        Some((amount, unit)) => (format!("{:.4}", amount / med), unit),
        None => (String::new(), ""),
    };
    println!(
        "RESULT impl=tensorgrad workload={} threads={} iters={} inner={} median_s={med:.6e} min_s={:.6e} rate={rate} unit={unit} samples_s={listed}",
        args.workload, args.threads, args.iters, args.inner, samples[0],
    );
}
