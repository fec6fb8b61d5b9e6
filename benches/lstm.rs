//! The LSTM classifier: forward pass and full training step (`f32`).
//!
//! The model is `Embedding(vocab, emb) → LSTM(emb → hidden) → Linear(hidden, 1)` on the final
//! hidden state, with BCE-with-logits and Adam (lr 1e-3), batch first:
//!
//! - `seed`: the seed model, batch 128, 100 steps, `Embedding(10000, 16)`, hidden 128.
//! - `small`: batch 16, 20 steps, `Embedding(1000, 8)`, hidden 32 (where per-op overhead shows).
//!
//! Benchmarks per config: `forward` (inference under `no_grad`), `forward_recorded` (the
//! training forward that builds the graph), `train_step` (forward, backward, Adam step), and
//! `train_step_unfused` (the cell composed op by op, `LstmConfig { fused: false, .. }`).
//! Group names carry the rayon thread count:
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench lstm
//! RAYON_NUM_THREADS=2 cargo bench --bench lstm -- seed/train_step
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::loss::{Reduction, bce_with_logits};
use tensorgrad::nn::{Embedding, Linear, Lstm, LstmConfig, Module};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
use tensorgrad::{Tensor, no_grad};

#[derive(Clone, Copy)]
struct Config {
    name: &'static str,
    batch: usize,
    steps: usize,
    vocab: usize,
    emb: usize,
    hidden: usize,
}

const SEED: Config = Config { name: "seed", batch: 128, steps: 100, vocab: 10_000, emb: 16, hidden: 128 };
const SMALL: Config = Config { name: "small", batch: 16, steps: 20, vocab: 1_000, emb: 8, hidden: 32 };

struct Model {
    cfg: Config,
    emb: Embedding,
    lstm: Lstm,
    fc: Linear,
    ids: Vec<usize>,
    labels: Tensor<f32>,
}

impl Model {
    fn new(cfg: Config, fused: bool) -> Self {
        let mut rng = StdRng::seed_from_u64(0);
        let emb = Embedding::new(cfg.vocab, cfg.emb, &mut rng);
        let lstm = Lstm::new(LstmConfig { fused, ..LstmConfig::new(cfg.emb, cfg.hidden) }, &mut rng);
        let fc = Linear::new(cfg.hidden, 1, &mut rng);
        let ids = (0..cfg.batch * cfg.steps).map(|_| rng.random_range(0..cfg.vocab)).collect();
        let labels = (0..cfg.batch).map(|_| rng.random_range(0..2u8) as f32).collect();
        Model { cfg, emb, lstm, fc, ids, labels: Tensor::from_vec(labels, &[cfg.batch, 1]) }
    }

    fn logits(&self) -> Tensor<f32> {
        let x = self.emb.forward_ids(&self.ids, &[self.cfg.batch, self.cfg.steps]);
        self.fc.forward(&self.lstm.forward(&x))
    }

    fn loss(&self) -> Tensor<f32> {
        bce_with_logits(&self.logits(), &self.labels, None, Reduction::Mean)
    }

    fn optimizer(&self) -> Adam {
        let params = [self.emb.parameters(), self.lstm.parameters(), self.fc.parameters()].concat();
        Adam::new(params, AdamConfig { lr: 1e-3, ..Default::default() })
    }
}

fn bench_config(c: &mut Criterion, cfg: Config) {
    let threads = rayon::current_num_threads();
    let mut g = c.benchmark_group(format!("lstm_f32_{threads}threads/{}", cfg.name));
    if cfg.name == "seed" {
        // Tens to hundreds of milliseconds per iteration: equal-sized samples, a few seconds.
        g.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(5));
    } else {
        g.sample_size(20).measurement_time(Duration::from_secs(2));
    }
    g.warm_up_time(Duration::from_secs(1));

    let mut model = Model::new(cfg, true);
    model.lstm.eval();
    g.bench_function("forward", |b| b.iter(|| no_grad(|| black_box(&model).logits())));
    model.lstm.train();
    g.bench_function("forward_recorded", |b| b.iter(|| black_box(&model).loss()));

    let mut opt = model.optimizer();
    g.bench_function("train_step", |b| {
        b.iter(|| {
            let loss = model.loss();
            opt.step(&loss.backward());
            loss.item()
        })
    });

    let unfused = Model::new(cfg, false);
    let mut opt = unfused.optimizer();
    g.bench_function("train_step_unfused", |b| {
        b.iter(|| {
            let loss = unfused.loss();
            opt.step(&loss.backward());
            loss.item()
        })
    });
    g.finish();
}

fn bench_lstm(c: &mut Criterion) {
    bench_config(c, SMALL);
    bench_config(c, SEED);
}

// No plots: criterion's plotting backend panics when no system font is available, and the
// numbers are what matters here.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench_lstm
}
criterion_main!(benches);
