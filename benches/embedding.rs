//! Embedding lookup and its backward (`f32`): the seed model's table `[10000, 16]` and a batch
//! of 128 sequences of 100 ids.
//!
//! - `gather`: `Embedding::forward_ids` under `no_grad` → `[128, 100, 16]`.
//! - `gather_recorded`: the same lookup building the graph (what training does).
//! - `backward`: the backward of a recorded lookup alone (the forward is built outside the
//!   timed region): the 12 800 gradient rows are added into a `[10000, 16]` table gradient.
//! - `index_select`: the tensor op underneath, on the table directly.
//!
//! Throughput is `Throughput::Bytes` of the rows moved: each of the 12 800 rows is read and
//! written once (2 · 12 800 · 16 · 4 bytes).
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench embedding
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::nn::Embedding;
use tensorgrad::{Tensor, no_grad};

const VOCAB: usize = 10_000;
const DIM: usize = 16;
const BATCH: usize = 128;
const STEPS: usize = 100;

fn bench_embedding(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let emb = Embedding::new(VOCAB, DIM, &mut rng);
    let ids: Vec<usize> = (0..BATCH * STEPS).map(|_| rng.random_range(0..VOCAB)).collect();
    let grad_out = Tensor::<f32>::ones(&[BATCH, STEPS, DIM]);
    let table = emb.weight().value().detach();

    let threads = rayon::current_num_threads();
    let mut g = c.benchmark_group(format!("embedding_10000x16_f32_{threads}threads"));
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Bytes((2 * BATCH * STEPS * DIM * 4) as u64));

    g.bench_function("gather", |b| b.iter(|| no_grad(|| emb.forward_ids(black_box(&ids), &[BATCH, STEPS]))));
    g.bench_function("gather_recorded", |b| b.iter(|| emb.forward_ids(black_box(&ids), &[BATCH, STEPS])));
    g.bench_function("backward", |b| {
        b.iter_batched(
            || emb.forward_ids(&ids, &[BATCH, STEPS]),
            |out| out.backward_with_grad(black_box(&grad_out)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("index_select", |b| b.iter(|| black_box(&table).index_select(0, black_box(&ids))));
    g.finish();
}

// No plots: criterion's plotting backend panics when no system font is available, and the
// numbers are what matters here.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench_embedding
}
criterion_main!(benches);
