//! Threads: tensors, modules, optimizers and the trainer's inputs are `Send + Sync`; training in
//! two threads at once gives the same bits as the same runs one after the other; many threads
//! running inference on one shared model agree bit for bit with a single thread; and training
//! gives identical bits in rayon pools of 1, 2 and 4 threads, matmuls large enough to be split
//! included.

use std::thread;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::data::{TextDataset, Tokenizer};
use tensorgrad::loss::{Reduction, bce};
use tensorgrad::nn::{
    Activation, Dense, Dropout, Embedding, Gru, Linear, Lstm, LstmConfig, LstmState, Mask, Module, Param, Sequential,
};
use tensorgrad::optim::{Adagrad, Adam, AdamConfig, AdamW, Optimizer, RmsProp, Sgd, StepLr};
use tensorgrad::train::{EarlyStopping, Evaluation, FitOptions, History, Metric, ModelCheckpoint, Trainer};
use tensorgrad::{Error, Gradients, Tensor, no_grad};

// ---------------------------------------------------------------------------------------------
// Send + Sync
// ---------------------------------------------------------------------------------------------

fn assert_send_sync<T: Send + Sync>() {}

/// Checked when the test binary compiles; the test only names it in the test list.
const _: fn() = || {
    assert_send_sync::<Tensor<f32>>();
    assert_send_sync::<Tensor<f64>>();
    assert_send_sync::<Gradients<f32>>();
    assert_send_sync::<Gradients<f64>>();
    assert_send_sync::<Param<f32>>();
    assert_send_sync::<Mask<f32>>();
    assert_send_sync::<Sequential<f32>>();
    assert_send_sync::<Sequential<f64>>();
    assert_send_sync::<Lstm<f32>>();
    assert_send_sync::<LstmState<f32>>();
    assert_send_sync::<Gru<f32>>();
    assert_send_sync::<Embedding<f32>>();
    assert_send_sync::<Linear<f32>>();
    assert_send_sync::<Dense<f32>>();
    assert_send_sync::<Dropout>();
    assert_send_sync::<Box<dyn Module<f32>>>();
    assert_send_sync::<Adam<f32>>();
    assert_send_sync::<AdamW<f32>>();
    assert_send_sync::<Sgd<f32>>();
    assert_send_sync::<RmsProp<f32>>();
    assert_send_sync::<Adagrad<f32>>();
    assert_send_sync::<StepLr>();
    // What a `Trainer` is given and gives back.
    assert_send_sync::<FitOptions<'static, f32>>();
    assert_send_sync::<Metric>();
    assert_send_sync::<EarlyStopping<f32>>();
    assert_send_sync::<ModelCheckpoint>();
    assert_send_sync::<History>();
    assert_send_sync::<Evaluation>();
    assert_send_sync::<Tokenizer>();
    assert_send_sync::<TextDataset>();
    assert_send_sync::<Error>();
};

#[test]
fn tensors_modules_optimizers_and_trainer_inputs_are_send_and_sync() {
    // The assertions above are compile-time; this calls them too, so the test is not empty.
    assert_send_sync::<Tensor<f32>>();
    assert_send_sync::<Sequential<f32>>();
    assert_send_sync::<Adam<f32>>();
}

// ---------------------------------------------------------------------------------------------
// The model and data
// ---------------------------------------------------------------------------------------------

const VOCAB: usize = 200;
const SEQ: usize = 12;

/// The flagship shape, small: Embedding(mask_zero) → Lstm (with Keras dropouts) → Dense(sigmoid).
fn flagship(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    let lstm = LstmConfig { dropout: 0.2, recurrent_dropout: 0.2, seed, ..LstmConfig::new(8, 16) };
    Sequential::new()
        .add_named("embedding", Embedding::new(VOCAB, 8, &mut rng).with_mask_zero(true))
        .add_named("lstm", Lstm::new(lstm, &mut rng))
        .add_named("dense", Dense::new(16, 1, Some(Activation::Sigmoid), &mut rng))
}

/// `n` padded id sequences (ids in `1..VOCAB`, zeros after each sequence's length) and a 0/1
/// label: whether the sequence mentions an id below `VOCAB / 4`.
fn sequences(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut ids, mut labels) = (Vec::with_capacity(n * SEQ), Vec::with_capacity(n));
    for _ in 0..n {
        let len = rng.random_range(1..=SEQ);
        let mut positive = false;
        for t in 0..SEQ {
            let id = if t < len { rng.random_range(1..VOCAB) } else { 0 };
            positive |= t < len && id < VOCAB / 4;
            ids.push(id as f32);
        }
        labels.push(if positive { 1.0 } else { 0.0 });
    }
    (Tensor::from_vec(ids, &[n, SEQ]), Tensor::from_vec(labels, &[n, 1]))
}

/// The name, shape and value bits of each of a model's parameters.
type Weights = Vec<(String, Vec<usize>, Vec<u32>)>;

/// The name, shape and bits of every parameter.
fn weights(model: &impl Module) -> Weights {
    model
        .named_parameters()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec(), t.to_vec().iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn tensor_bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

/// Trains a fresh flagship model with `Trainer::fit` (2 epochs, batches of 16, Adam, BCE) and
/// returns its weights and the loss history.
fn train_run(seed: u64) -> (Weights, Vec<u64>) {
    let (x, y) = sequences(96, seed + 100);
    let mut model = flagship(seed);
    let mut opt = Adam::new(model.parameters(), AdamConfig { lr: 0.01, ..AdamConfig::default() });
    let options = FitOptions { epochs: 2, batch_size: 16, seed, verbose: false, ..FitOptions::default() };
    let history = Trainer::new(&mut model, &mut opt, |p: &Tensor, y: &Tensor| bce(p, y, Reduction::Mean))
        .metrics(&[Metric::Accuracy])
        .fit(&x, &y, &options)
        .unwrap();
    let losses = history.get("loss").unwrap().iter().map(|v| v.to_bits()).collect();
    (weights(&model), losses)
}

// ---------------------------------------------------------------------------------------------
// Training in two threads at once
// ---------------------------------------------------------------------------------------------

#[test]
fn two_models_trained_in_two_threads_at_once_match_the_same_runs_one_after_the_other() {
    let one_after_the_other = [train_run(1), train_run(2)];
    assert_ne!(one_after_the_other[0].0, one_after_the_other[1].0, "the two runs should differ");
    let at_once = thread::scope(|s| {
        let a = s.spawn(|| train_run(1));
        let b = s.spawn(|| train_run(2));
        [a.join().unwrap(), b.join().unwrap()]
    });
    assert!(at_once == one_after_the_other, "training in two threads at once changed the bits");
}

// ---------------------------------------------------------------------------------------------
// Inference from many threads on one shared model
// ---------------------------------------------------------------------------------------------

#[test]
fn eight_threads_of_inference_on_one_shared_model_agree_with_one_thread() {
    let mut model = flagship(3);
    // Train a little so the weights are not the initial ones, then switch dropout off.
    let (x, y) = sequences(64, 3);
    let mut opt = Adam::new(model.parameters(), AdamConfig { lr: 0.01, ..AdamConfig::default() });
    for start in (0..64).step_by(16) {
        let loss = bce(&model.forward(&x.narrow(0, start, 16)), &y.narrow(0, start, 16), Reduction::Mean);
        opt.step(&loss.backward());
    }
    model.eval();
    let model = &model;

    let batches: Vec<Tensor> = (0..6).map(|i| sequences(8 + 5 * i, 50 + i as u64).0).collect();
    let predict = |batch: &Tensor| no_grad(|| model.forward(batch));
    let reference: Vec<Vec<u32>> = batches.iter().map(|b| tensor_bits(&predict(b))).collect();
    assert!(reference.iter().flatten().all(|&b| f32::from_bits(b).is_finite()));

    let results: Vec<Vec<Vec<u32>>> = thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (batches, predict) = (&batches, &predict);
                s.spawn(move || {
                    // Each thread walks the batches from a different start, several times over.
                    let mut out = vec![Vec::new(); batches.len()];
                    for round in 0..4 {
                        for k in 0..batches.len() {
                            let i = (k + t + round) % batches.len();
                            let bits = tensor_bits(&predict(&batches[i]));
                            if round == 0 {
                                out[i] = bits;
                            } else {
                                assert_eq!(out[i], bits, "thread {t}: batch {i} changed between rounds");
                            }
                        }
                    }
                    // No graph was recorded in this thread.
                    assert!(predict(&batches[0]).op_name().is_none());
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, out) in results.iter().enumerate() {
        assert!(*out == reference, "thread {t} disagrees with the single-threaded run");
    }
}

// ---------------------------------------------------------------------------------------------
// Identical bits for 1, 2 and 4 rayon threads
// ---------------------------------------------------------------------------------------------

/// A short training run that exercises the split paths: a `[256, 512] · [512, 384]` matmul
/// (2²⁵ multiply-adds, far above the 2¹⁸ split threshold) with elementwise ops over 98 304
/// elements (above the 2¹⁵ split threshold), plus the flagship model on small batches.
fn pool_run() -> Vec<Vec<u32>> {
    let mut rng = StdRng::seed_from_u64(11);
    let x = Tensor::rand_uniform(&[256, 512], -1.0f32, 1.0, &mut rng);
    let target = Tensor::rand_uniform(&[256, 1], 0.0f32, 1.0, &mut rng);
    let mlp: Sequential = Sequential::new()
        .add(Dense::new(512, 384, Some(Activation::Tanh), &mut rng))
        .add(Dense::new(384, 1, Some(Activation::Sigmoid), &mut rng));
    let mut opt = Adam::new(mlp.parameters(), AdamConfig { lr: 1e-3, ..AdamConfig::default() });
    let mut out = Vec::new();
    for _ in 0..3 {
        let loss = bce(&mlp.forward(&x), &target, Reduction::Mean);
        out.push(tensor_bits(&loss));
        opt.step(&loss.backward());
    }
    out.extend(weights(&mlp).into_iter().map(|(_, _, bits)| bits));

    // A batched product of transposed views, also split.
    let a = Tensor::rand_uniform(&[4, 96, 160], -1.0f32, 1.0, &mut rng);
    let b = Tensor::rand_uniform(&[4, 96, 128], -1.0f32, 1.0, &mut rng);
    out.push(tensor_bits(&a.transpose(1, 2).matmul(&b)));

    let (w, losses) = train_run(5);
    out.extend(w.into_iter().map(|(_, _, bits)| bits));
    out.push(losses.iter().map(|&v| v as u32).chain(losses.iter().map(|&v| (v >> 32) as u32)).collect());
    out
}

#[test]
fn training_gives_identical_bits_in_rayon_pools_of_1_2_and_4_threads() {
    let runs: Vec<Vec<Vec<u32>>> = [1, 2, 4]
        .into_iter()
        .map(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap().install(pool_run))
        .collect();
    assert!(runs[0] == runs[1], "1 and 2 threads differ");
    assert!(runs[0] == runs[2], "1 and 4 threads differ");
}
