//! Long runs: memory stays flat over thousands of training steps, and the graph of a step is
//! freed once its loss and gradients are dropped.
//!
//! A counting global allocator (this test binary's own: it wraps the system allocator and keeps
//! the live bytes in an atomic) measures the whole process. The tests in this file take a lock,
//! so they never measure each other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::Tensor;
use tensorgrad::loss::{Reduction, bce};
use tensorgrad::nn::{Activation, Dense, Embedding, Lstm, LstmConfig, Module, Sequential};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer};

// ---------------------------------------------------------------------------------------------
// The counting allocator
// ---------------------------------------------------------------------------------------------

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated and not yet freed, by the whole process.
fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Held by each test, so that one test's allocations never land in another's measurement.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------------------------
// The flagship model on small batches
// ---------------------------------------------------------------------------------------------

const VOCAB: usize = 1000;
const BATCH: usize = 8;
const SEQ: usize = 20;

/// Embedding(1000, 16, mask_zero) → Lstm(16 → 32, dropout 0.2, recurrent_dropout 0.2) →
/// Dense(1, sigmoid): the flagship sentiment model's shape.
fn flagship(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    let lstm = LstmConfig { dropout: 0.2, recurrent_dropout: 0.2, seed, ..LstmConfig::new(16, 32) };
    Sequential::new()
        .add_named("embedding", Embedding::new(VOCAB, 16, &mut rng).with_mask_zero(true))
        .add_named("lstm", Lstm::new(lstm, &mut rng))
        .add_named("dense", Dense::new(32, 1, Some(Activation::Sigmoid), &mut rng))
}

/// `count` batches of `[BATCH, SEQ]` ids, each sequence padded with zeros after a random length,
/// with 0/1 labels; made up front, so the training loop allocates only what a step needs.
fn batches(count: usize, seed: u64) -> Vec<(Tensor, Tensor)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let mut ids = Vec::with_capacity(BATCH * SEQ);
            let mut labels = Vec::with_capacity(BATCH);
            for _ in 0..BATCH {
                let len = rng.random_range(1..=SEQ);
                ids.extend((0..SEQ).map(|t| if t < len { rng.random_range(1..VOCAB) as f32 } else { 0.0 }));
                labels.push(if rng.random_bool(0.5) { 1.0 } else { 0.0 });
            }
            (Tensor::from_vec(ids, &[BATCH, SEQ]), Tensor::from_vec(labels, &[BATCH, 1]))
        })
        .collect()
}

/// One training step; returns the loss.
fn step(model: &Sequential, opt: &mut Adam, (x, y): &(Tensor, Tensor)) -> f32 {
    let loss = bce(&model.forward(x), y, Reduction::Mean);
    let grads = loss.backward();
    opt.step(&grads);
    loss.item()
}

fn kib(bytes: isize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Live bytes may differ by this much between two points of a steady loop: room for the test
/// harness and for allocator-level noise, far below what keeping one step's graph would cost
/// (tens of KiB per step, so tens of MiB over the run).
const SLACK: isize = 128 * 1024;

#[test]
fn memory_stays_flat_over_1500_training_steps() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const STEPS: usize = 1500;
    let data = batches(50, 1);
    let model = flagship(1);
    let mut opt = Adam::new(model.parameters(), AdamConfig { lr: 1e-3, ..AdamConfig::default() });

    let mut at_100 = None;
    let mut highest_after_100 = isize::MIN;
    let mut losses = Vec::with_capacity(STEPS);
    for i in 1..=STEPS {
        losses.push(step(&model, &mut opt, &data[i % data.len()]));
        if i == 100 {
            at_100 = Some(live());
        } else if i > 100 && i % 50 == 0 {
            highest_after_100 = highest_after_100.max(live());
        }
    }
    let at_100 = at_100.unwrap();
    let at_end = live();
    assert!(losses.iter().all(|l| l.is_finite()), "the training diverged");
    assert!(
        at_end <= at_100 + SLACK,
        "live bytes grew from {} after step 100 to {} after step {STEPS}",
        kib(at_100),
        kib(at_end)
    );
    assert!(
        highest_after_100 <= at_100 + SLACK,
        "live bytes reached {} between steps 100 and {STEPS}, from {} after step 100",
        kib(highest_after_100),
        kib(at_100)
    );
}

#[test]
fn the_graph_of_a_step_is_freed_after_backward() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let data = batches(4, 2);
    let model = flagship(2);
    let mut opt = Adam::new(model.parameters(), AdamConfig { lr: 1e-3, ..AdamConfig::default() });
    // Warm up: the optimizer's state, rayon's threads and any lazily made table exist from now on.
    for batch in &data {
        step(&model, &mut opt, batch);
    }

    let (x, y) = &data[0];
    let before = live();
    let pred = model.forward(x);
    let loss = bce(&pred, y, Reduction::Mean);
    let grads = loss.backward();
    let with_graph = live();
    // The graph and the gradients are real memory (the embedding gradient alone is 62.5 KiB)...
    assert!(with_graph > before + 64 * 1024, "the graph took only {}", kib(with_graph - before));
    drop(pred);
    drop(loss);
    drop(grads);
    // ...and all of it is returned once the loss and the gradients are dropped.
    let after = live();
    assert!(
        after <= before + SLACK / 4,
        "{} still live after dropping the loss and the gradients (the graph held {})",
        kib(after - before),
        kib(with_graph - before)
    );

    // The same with an optimizer step while the graph is alive (the update then copies the
    // parameters, since the graph still reads their old values): nothing is left either.
    let before = live();
    let pred = model.forward(x);
    let loss = bce(&pred, y, Reduction::Mean);
    let grads = loss.backward();
    opt.step(&grads);
    drop(pred);
    drop(loss);
    drop(grads);
    let after = live();
    assert!(after <= before + SLACK / 4, "{} still live after a step and its graph were dropped", kib(after - before));
}
