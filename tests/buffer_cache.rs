//! The buffer cache (`tensorgrad::memory`): a kernel that takes a cached buffer must overwrite or
//! clear every element of it, so results are the same bits whether the cache is full of stale
//! values or turned off. The tests in this file take a lock: they change the process-wide limit.

use std::sync::Mutex;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::loss::{Reduction, bce_with_logits};
use tensorgrad::nn::{Embedding, Linear, Lstm, LstmConfig, Module};
use tensorgrad::{Tensor, memory};

static LOCK: Mutex<()> = Mutex::new(());

/// Fills the cache with NaN buffers of every size class from 16 Ki to 2 Mi elements (the workload needs no more), a few of
/// each, so that any kernel reusing one without writing all of it shows NaN in its result.
fn poison_cache() {
    let mut keep = Vec::new();
    let mut n = 1usize << 14;
    while n <= 1 << 20 {
        for q in 4..8 {
            for _ in 0..3 {
                keep.push(Tensor::<f32>::full(&[n / 4 * q], f32::NAN));
                keep.push(Tensor::<f32>::full(&[n / 4 * q - 5], f32::NAN));
            }
        }
        n *= 2;
    }
    drop(keep);
    assert!(memory::cached_bytes() > 0, "the poisoned buffers were cached");
}

/// A workload touching every kernel that takes buffers from the cache, forward and backward.
fn workload() -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(7);
    let a = Tensor::<f32>::randn(&[300, 200], 0.0, 1.0, &mut rng).requires_grad();
    let b = Tensor::<f32>::randn(&[200, 150], 0.0, 1.0, &mut rng).requires_grad();
    let bias = Tensor::<f32>::randn(&[150], 0.0, 1.0, &mut rng).requires_grad();
    let batched = Tensor::<f32>::randn(&[4, 100, 64], 0.0, 1.0, &mut rng);
    let y = (&a.matmul(&b) + &bias).sigmoid();
    let z = Tensor::cat(&[y.t(), y.t().exp()], 0); // [300, 300], from transposed views
    let s = z.sum_dim(1, false);
    let picked = z.index_select(0, &(0..300).rev().collect::<Vec<_>>());
    let gathered = z.gather(1, &(0..300).map(|i| (i * 7) % 300).collect::<Vec<_>>());
    let bm = batched.matmul(&batched.transpose(1, 2));
    let wide = Tensor::<f32>::randn(&[3, 40_000], 0.0, 1.0, &mut rng).requires_grad();
    let col_sums = wide.sum_dim(0, false); // a reduction with a large output
    let loss = s.sum() + picked.tanh().mean() + gathered.sum() + bm.mean() + col_sums.powf(2.0).mean();
    let grads = loss.backward();

    // The flagship's layers: embedding, LSTM (fused kernel), linear, BCE with logits.
    let emb: Embedding = Embedding::new(500, 16, &mut rng);
    let lstm: Lstm = Lstm::new(LstmConfig::new(16, 64), &mut rng);
    let fc: Linear = Linear::new(64, 1, &mut rng);
    let ids: Vec<f32> = (0..64 * 40).map(|i| ((i * 31) % 500) as f32).collect();
    let x = Tensor::from_vec(ids, &[64, 40]);
    let target = Tensor::from_vec((0..64).map(|i| (i % 2) as f32).collect(), &[64, 1]);
    let h = lstm.forward(&emb.forward(&x)); // the last step's output, [64, 64]
    let lstm_loss = bce_with_logits(&fc.forward(&h), &target, None, Reduction::Mean);
    let lstm_grads = lstm_loss.backward();

    let mut out =
        vec![y.to_vec(), z.to_vec(), s.to_vec(), bm.to_vec(), col_sums.to_vec(), h.to_vec(), lstm_loss.to_vec()];
    for t in [&a, &b, &bias, &wide] {
        out.push(grads.get(t).expect("gradient").to_vec());
    }
    let mut params = emb.parameters();
    params.extend(lstm.parameters());
    params.extend(fc.parameters());
    for p in &params {
        out.push(lstm_grads.get(p).expect("gradient").to_vec());
    }
    out
}

#[test]
fn stale_cached_buffers_never_leak_into_results() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    memory::set_cache_limit(0);
    assert_eq!(memory::cached_bytes(), 0);
    let reference = workload();
    // Room for every poisoned class at once (~0.5 GiB), so none is evicted before use.
    memory::set_cache_limit(1 << 30);
    for _ in 0..2 {
        poison_cache();
        let got = workload();
        assert_eq!(got.len(), reference.len());
        for (i, (g, r)) in got.iter().zip(&reference).enumerate() {
            let same = g.len() == r.len() && g.iter().zip(r).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "result {i} differs when buffers come from the cache");
        }
    }
    memory::set_cache_limit(memory::DEFAULT_CACHE_LIMIT);
}

#[test]
fn the_cache_keeps_to_its_limit_and_clears() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    memory::set_cache_limit(1 << 20);
    memory::clear_cache();
    let tensors: Vec<Tensor<f32>> = (0..8).map(|_| Tensor::zeros(&[256, 256])).collect(); // 256 KiB each
    drop(tensors);
    let cached = memory::cached_bytes();
    assert!(cached <= 1 << 20, "{cached} bytes cached over a limit of 1 MiB");
    assert!(cached >= 3 * 256 * 1024, "only {cached} bytes cached");
    // A buffer larger than the limit is never kept.
    drop(Tensor::<f64>::zeros(&[1 << 18]));
    assert!(memory::cached_bytes() <= 1 << 20);
    // Lowering the limit frees the oldest buffers at once.
    memory::set_cache_limit(300 * 1024);
    assert!(memory::cached_bytes() <= 300 * 1024);
    memory::clear_cache();
    assert_eq!(memory::cached_bytes(), 0);
    // Small buffers are left to the allocator.
    drop(Tensor::<f32>::zeros(&[100]));
    assert_eq!(memory::cached_bytes(), 0);
    memory::set_cache_limit(memory::DEFAULT_CACHE_LIMIT);
    assert_eq!(memory::cache_limit(), memory::DEFAULT_CACHE_LIMIT);
}

#[test]
fn a_cached_buffer_is_reused_for_the_next_tensor_of_its_class() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    memory::set_cache_limit(memory::DEFAULT_CACHE_LIMIT);
    memory::clear_cache();
    let x = Tensor::<f32>::ones(&[100_000]);
    let y = &x * 3.0;
    drop(y);
    let before = memory::cached_bytes();
    assert!(before >= 400_000);
    let z = &x + 1.0; // 99_000 < n ≤ 100_000 share a class: the buffer of `y` is taken back
    assert_eq!(memory::cached_bytes(), 0, "the cached buffer was taken");
    assert!(z.to_vec().iter().all(|&v| v == 2.0));
}
