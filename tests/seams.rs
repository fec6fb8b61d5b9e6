//! The seams later features build on: modules with several inputs (`Module::forward_many`,
//! `ScaledDotProductAttention`); the gradient hook between backward and the optimizer step
//! (`Trainer::grad_hook`, `Callback::on_after_backward`), down to a data-parallel all-reduce
//! across two threads; optimizer state keyed by dotted parameter names; and dropout masks drawn
//! from the step's key `(seed, epoch, step, rank)` rather than from a generator shared by
//! threads.

use std::sync::{Barrier, Mutex};
use std::thread;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::loss::{Reduction, bce, mse};
use tensorgrad::nn::{
    Activation, Dense, Dropout, Embedding, Linear, Lstm, LstmConfig, Module, Param, Relu, ScaledDotProductAttention,
    Sequential, StepKey,
};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer, ParamList, Sgd, SgdConfig};
use tensorgrad::train::{
    Callback, FitOptions, StepContext, TrainContext, Trainer, Validation, load_checkpoint, save_checkpoint,
};
use tensorgrad::{Error, Gradients, Tensor, gradcheck, io};

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

fn weights(m: &dyn Module) -> Vec<(String, Vec<u32>)> {
    m.named_parameters().into_iter().map(|(n, t)| (n, bits(&t))).collect()
}

fn bce_mean(p: &Tensor, y: &Tensor) -> Tensor {
    bce(p, y, Reduction::Mean)
}

fn quiet(epochs: usize, batch_size: usize) -> FitOptions<'static> {
    FitOptions { epochs, batch_size, verbose: false, ..FitOptions::default() }
}

/// `n` rows of 4 features and a 0/1 label (whether the features sum above 0).
fn table(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut r = rng(seed);
    let x: Vec<f32> = (0..n * 4).map(|_| r.random_range(-1.0..1.0)).collect();
    let y: Vec<f32> = x.chunks(4).map(|row| if row.iter().sum::<f32>() > 0.0 { 1.0 } else { 0.0 }).collect();
    (Tensor::from_vec(x, &[n, 4]), Tensor::from_vec(y, &[n, 1]))
}

/// Dense(4 → 16, relu) → Dropout(0.3) → Dense(16 → 1, sigmoid).
fn mlp(seed: u64) -> Sequential {
    let mut r = rng(seed);
    Sequential::new()
        .add_named("hidden", Dense::new(4, 16, Some(Activation::Relu), &mut r))
        .add_named("dropout", Dropout::new(0.3, 0))
        .add_named("out", Dense::new(16, 1, Some(Activation::Sigmoid), &mut r))
}

/// The flagship's shape, small: Embedding(mask_zero) → Lstm (dropout and recurrent dropout) →
/// Dense(sigmoid).
fn recurrent(seed: u64) -> Sequential {
    let mut r = rng(seed);
    let lstm = LstmConfig { dropout: 0.2, recurrent_dropout: 0.2, ..LstmConfig::new(8, 12) };
    Sequential::new()
        .add_named("embedding", Embedding::new(40, 8, &mut r).with_mask_zero(true))
        .add_named("lstm", Lstm::new(lstm, &mut r))
        .add_named("dense", Dense::new(12, 1, Some(Activation::Sigmoid), &mut r))
}

/// Post-padded id sequences `[n, 9]` and labels (whether id 3 occurs).
fn sequences(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut r = rng(seed);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let len = r.random_range(2..9);
        let seq: Vec<f32> = (0..9).map(|t| if t < len { r.random_range(1..40) as f32 } else { 0.0 }).collect();
        ys.push(if seq.contains(&3.0) { 1.0 } else { 0.0 });
        xs.extend(seq);
    }
    (Tensor::from_vec(xs, &[n, 9]), Tensor::from_vec(ys, &[n, 1]))
}

// =============================================================================================
// 1. Modules with several inputs
// =============================================================================================

/// `a·x + y·z`: a three-input module with a parameter.
struct MulAdd<E: tensorgrad::Element = f32> {
    a: Param<E>,
}

impl<E: tensorgrad::Element> Module<E> for MulAdd<E> {
    #[track_caller]
    fn forward(&self, _x: &Tensor<E>) -> Tensor<E> {
        panic!("MulAdd: takes 3 inputs (x, y, z); call forward_many")
    }

    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        let [x, y, z] = inputs else { panic!("MulAdd: takes 3 inputs (x, y, z), got {}", inputs.len()) };
        *x * &self.a.tensor() + *y * *z
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        f(if prefix.is_empty() { "a".to_string() } else { format!("{prefix}.a") }, &self.a)
    }
}

#[test]
fn a_three_input_module_computes_and_differentiates_through_forward_many() {
    let m = MulAdd { a: Param::new(Tensor::from_slice(&[2.0f64, -1.0])) };
    let x = Tensor::from_slice(&[1.0f64, 3.0]).requires_grad();
    let y = Tensor::from_slice(&[4.0f64, 5.0]).requires_grad();
    let z = Tensor::from_slice(&[6.0f64, 7.0]).requires_grad();
    let out = m.forward_many(&[&x, &y, &z]);
    assert_eq!(out.to_vec(), [2.0 + 24.0, -3.0 + 35.0]);
    let g = out.sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), [2.0, -1.0]);
    assert_eq!(g.get(&y).unwrap().to_vec(), [6.0, 7.0]);
    assert_eq!(g.get(&z).unwrap().to_vec(), [4.0, 5.0]);
    assert_eq!(g.get(&m.a.value()).unwrap().to_vec(), [1.0, 3.0]);
    // Against central differences, through the parameter too.
    let inputs = [x.detach(), y.detach(), z.detach(), Tensor::from_slice(&[2.0, -1.0])];
    let check = gradcheck(
        |xs| {
            m.bind_parameters(&xs[3..]);
            m.forward_many(&[&xs[0], &xs[1], &xs[2]])
        },
        &inputs,
    );
    assert!(check.is_ok(), "{}", check.unwrap_err());
}

#[test]
fn sequential_feeds_several_inputs_to_its_first_module_and_keeps_one_input_working() {
    let fc = Linear::<f64>::new(2, 3, &mut rng(1));
    let model: Sequential<f64> = Sequential::new()
        .add_named("muladd", MulAdd { a: Param::new(Tensor::from_slice(&[0.5, 2.0])) })
        .add_named("fc", fc.clone())
        .add(Relu);
    let (x, y, z) =
        (Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]), Tensor::ones(&[2, 2]), Tensor::full(&[2, 2], 3.0));
    let expected = fc.forward(&(&x * &Tensor::from_slice(&[0.5, 2.0]) + &y * &z)).relu();
    assert_eq!(model.forward_many(&[&x, &y, &z]).to_vec(), expected.to_vec());
    let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["muladd.a", "fc.weight", "fc.bias"]);
    // One input is `forward`, for every module.
    let mlp: Sequential<f64> = Sequential::new().add(fc.clone()).add(Relu);
    assert_eq!(mlp.forward_many(&[&x]).to_vec(), mlp.forward(&x).to_vec());
    assert_eq!(fc.forward_many(&[&x]).to_vec(), fc.forward(&x).to_vec());
    // So does a boxed module.
    let boxed: Box<dyn Module<f64>> = Box::new(MulAdd { a: Param::new(Tensor::from_slice(&[0.5, 2.0])) });
    assert_eq!(boxed.forward_many(&[&x, &y, &z]).to_vec(), (&x * &Tensor::from_slice(&[0.5, 2.0]) + &y * &z).to_vec());
}

#[test]
#[should_panic(expected = "forward_many: Linear takes one input, got 2")]
fn a_one_input_module_refuses_two() {
    let fc = Linear::<f32>::new(2, 2, &mut rng(0));
    let x = Tensor::ones(&[1, 2]);
    fc.forward_many(&[&x, &x]);
}

#[test]
#[should_panic(expected = "forward_many: an empty Sequential takes one input, got 3")]
fn an_empty_sequential_refuses_several_inputs() {
    let x = Tensor::<f32>::ones(&[1, 2]);
    Sequential::new().forward_many(&[&x, &x, &x]);
}

#[test]
fn attention_matches_a_hand_computation() {
    // One query [1, 0] over keys [1, 0] and [0, 1], scale 1/√2: weights ∝ (e^{1/√2}, 1).
    let q = Tensor::from_vec(vec![1.0f64, 0.0], &[1, 2]);
    let k = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[2, 2]);
    let v = Tensor::from_vec(vec![10.0, 0.0, 0.0, 20.0], &[2, 2]);
    let attn = ScaledDotProductAttention::new();
    let e = (1.0f64 / 2f64.sqrt()).exp();
    let (w0, w1) = (e / (e + 1.0), 1.0 / (e + 1.0));
    let out = attn.forward_many(&[&q, &k, &v]).to_vec();
    assert!((out[0] - 10.0 * w0).abs() < 1e-12 && (out[1] - 20.0 * w1).abs() < 1e-12, "{out:?}");
    // A mask blocking the first key leaves only the second.
    let mask = Tensor::from_vec(vec![0.0, 1.0], &[1, 2]);
    assert_eq!(attn.forward_many(&[&q, &k, &v, &mask]).to_vec(), [0.0, 20.0]);
    // Every key blocked: zeros (not NaN), as PyTorch gives.
    let none = Tensor::zeros(&[1, 2]);
    assert_eq!(attn.forward_many(&[&q, &k, &v, &none]).to_vec(), [0.0, 0.0]);
    // Another scale; forward is self-attention.
    let out = ScaledDotProductAttention::with_scale(0.0).forward_many(&[&q, &k, &v]).to_vec();
    assert_eq!(out, [5.0, 10.0]);
    assert_eq!(attn.forward(&k).to_vec(), attn.forward_many(&[&k, &k, &k]).to_vec());
    assert_eq!(Module::<f64>::num_parameters(&attn), 0);
}

#[test]
fn attention_gradients_match_central_differences() {
    let mut r = rng(7);
    let q = Tensor::randn(&[2, 3, 4], 0.0, 1.0, &mut r);
    let k = Tensor::randn(&[2, 5, 4], 0.0, 1.0, &mut r);
    let v = Tensor::randn(&[2, 5, 3], 0.0, 1.0, &mut r);
    // A causal-style mask broadcast over the batch.
    let mask = Tensor::from_vec((0..15).map(|i| if i % 5 <= i / 5 + 1 { 1.0 } else { 0.0 }).collect(), &[3, 5]);
    let attn = ScaledDotProductAttention::new();
    let check = gradcheck(|xs| attn.forward_many(&[&xs[0], &xs[1], &xs[2], &mask]), &[q, k, v]);
    assert!(check.is_ok(), "{}", check.unwrap_err());
}

#[test]
#[should_panic(expected = "ScaledDotProductAttention: takes 3 or 4 inputs (query, key, value[, mask]), got 2")]
fn attention_refuses_two_inputs() {
    let x = Tensor::<f32>::ones(&[2, 3]);
    ScaledDotProductAttention::new().forward_many(&[&x, &x]);
}

#[test]
#[should_panic(expected = "ScaledDotProductAttention: query size 3 ≠ key size 4 (query [2, 3], key [5, 4])")]
fn attention_refuses_mismatched_sizes() {
    let (q, k) = (Tensor::<f32>::ones(&[2, 3]), Tensor::ones(&[5, 4]));
    ScaledDotProductAttention::new().forward_many(&[&q, &k, &k]);
}

#[test]
#[should_panic(expected = "ScaledDotProductAttention: mask of shape [3] does not broadcast to the scores [2, 5]")]
fn attention_refuses_a_mask_that_does_not_broadcast() {
    let (q, k, m) = (Tensor::<f32>::ones(&[2, 4]), Tensor::ones(&[5, 4]), Tensor::ones(&[3]));
    ScaledDotProductAttention::new().forward_many(&[&q, &k, &k, &m]);
}

// =============================================================================================
// 2. The gradient hook between backward and the optimizer step
// =============================================================================================

#[test]
fn a_hook_that_zeroes_the_gradients_leaves_the_parameters_unchanged() {
    let (x, y) = table(40, 1);
    let mut model = mlp(2);
    let before = weights(&model);
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.05, ..Default::default() });
    Trainer::new(&mut model, &mut opt, bce_mean)
        .grad_hook(|grads, _| {
            for (_, g) in grads.iter_mut() {
                *g = &*g * 0.0;
            }
            Ok(())
        })
        .clip_grad_norm(1.0)
        .fit(&x, &y, &quiet(3, 8))
        .unwrap();
    assert_eq!(weights(&model), before);
    // Without the hook the same run moves them.
    let mut moved = mlp(2);
    let mut opt = Adam::new(moved.named_parameters(), AdamConfig { lr: 0.05, ..Default::default() });
    Trainer::new(&mut moved, &mut opt, bce_mean).fit(&x, &y, &quiet(3, 8)).unwrap();
    assert_ne!(weights(&moved), before);
}

#[test]
fn the_hook_runs_once_per_batch_with_the_step_and_the_named_parameters() {
    let (x, y) = table(50, 3);
    let mut model = mlp(4);
    model.set_trainable("hidden.bias", false);
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
    let mut calls = Vec::new();
    let mut batch_losses = Vec::new();
    struct Losses<'a>(&'a mut Vec<u64>);
    impl Callback for Losses<'_> {
        fn on_batch_end(&mut self, _b: usize, loss: f64, _ctx: &mut TrainContext<'_, f32>) -> tensorgrad::Result<()> {
            self.0.push(loss.to_bits());
            Ok(())
        }
    }
    let options = FitOptions { seed: 9, rank: 2, ..quiet(3, 16) };
    Trainer::new(&mut model, &mut opt, bce_mean)
        .grad_hook(|grads, step| {
            let names: Vec<&str> = step.params.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["hidden.weight", "out.weight", "out.bias"], "trainable parameters only");
            for (name, p) in step.params {
                assert_eq!(grads.get(p).map(|g| g.shape().to_vec()), Some(p.shape().to_vec()), "{name}");
            }
            assert_eq!(grads.len(), 3);
            assert_eq!(step.inputs.shape()[0], step.targets.shape()[0]);
            assert_eq!(step.key.seed, 9);
            assert_eq!(step.key.rank, 2);
            calls.push((step.key.epoch, step.batch, step.key.step, step.inputs.shape()[0], step.loss.to_bits()));
            Ok(())
        })
        .callback(Losses(&mut batch_losses))
        .fit(&x, &y, &options)
        .unwrap();
    let expected: Vec<(usize, usize, usize, usize)> =
        (0..3).flat_map(|e| (0..4).map(move |b| (e, b, e * 4 + b, if b == 3 { 2 } else { 16 }))).collect();
    let got: Vec<(usize, usize, usize, usize)> = calls.iter().map(|&(e, b, s, n, _)| (e, b, s, n)).collect();
    assert_eq!(got, expected, "one call per batch, in order");
    let hook_losses: Vec<u64> = calls.iter().map(|c| c.4).collect();
    assert_eq!(hook_losses, batch_losses, "the hook sees the batch's loss");
}

#[test]
fn the_hook_sees_the_gradients_before_clipping_and_the_optimizer_uses_what_it_leaves() {
    let (x, y) = table(8, 5);
    let mut model: Sequential = Sequential::new().add_named("fc", Linear::new(4, 1, &mut rng(6)));
    let before: Vec<Vec<f32>> = model.parameters().iter().map(Tensor::to_vec).collect();
    let mut opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.5, ..Default::default() });
    let mut norms = Vec::new();
    Trainer::new(&mut model, &mut opt, |p: &Tensor, t: &Tensor| mse(p, t, Reduction::Mean))
        .grad_hook(|grads, step| {
            let sq: f32 = grads.iter().flat_map(|(_, g)| g.to_vec()).map(|v| v * v).sum();
            norms.push(sq.sqrt());
            // Replace every gradient by 0.25: the clipping after the hook sees norm 0.25·√5.
            for (_, p) in step.params {
                grads.insert(p, Tensor::full(p.shape(), 0.25));
            }
            Ok(())
        })
        .clip_grad_norm(1e-3)
        .fit(&x, &y, &FitOptions { shuffle: false, ..quiet(1, 8) })
        .unwrap();
    assert!(norms[0] > 1e-2, "the hook ran before clipping: norm {}", norms[0]);
    // One step of SGD along the clipped constant gradient: every element moved by the same amount.
    let c = 1e-3 / (0.25 * 5f64.sqrt() + 1e-6);
    let step = (0.5 * 0.25 * c) as f32;
    for (b, a) in before.iter().zip(model.parameters()) {
        for (b, a) in b.iter().zip(a.to_vec()) {
            assert!((b - a - step).abs() < 1e-6, "{b} → {a}, expected a step of {step}");
        }
    }
}

#[test]
fn an_error_from_the_hook_ends_fit_before_the_update() {
    let (x, y) = table(16, 7);
    let mut model = mlp(8);
    let mut opt = Adam::new(model.parameters(), AdamConfig::default());
    let mut calls = 0;
    let result = Trainer::new(&mut model, &mut opt, bce_mean)
        .grad_hook(|_, step| {
            calls += 1;
            if step.key.step == 1 {
                let source = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "rank 1 went away");
                return Err(Error::Io { op: "all-reduce the gradients with", path: "tcp://rank1".into(), source });
            }
            Ok(())
        })
        .fit(&x, &y, &quiet(2, 8));
    let err = result.expect_err("the hook's error ends fit");
    assert_eq!(err.to_string(), "cannot all-reduce the gradients with tcp://rank1: rank 1 went away");
    assert_eq!(calls, 2);
    assert_eq!(opt.state_dict()[0].1.item(), 1.0, "one step taken, not two");
}

/// Each rank's gradients, by parameter name, for the others to read.
type Slots = Mutex<Vec<Vec<(String, Vec<f32>)>>>;

/// One rank of a data-parallel run in threads: trains a replica on its shard, averaging the
/// gradients with the other ranks in a hook (rank order, walking the named parameters).
fn data_parallel_rank(
    rank: usize,
    world: usize,
    x: &Tensor,
    y: &Tensor,
    slots: &Slots,
    barrier: &Barrier,
) -> Vec<(String, Vec<u32>)> {
    let n = x.shape()[0] / world;
    let shard: Vec<usize> = (rank * n..(rank + 1) * n).collect();
    let (xs, ys) = (x.index_select(0, &shard), y.index_select(0, &shard));
    let mut model = recurrent(11); // the same initial weights on every rank
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.01, ..Default::default() });
    let options = FitOptions { seed: 5, rank, ..quiet(2, 8) };
    Trainer::new(&mut model, &mut opt, bce_mean)
        .grad_hook(|grads, step| {
            let mine = step.params.iter().map(|(name, p)| (name.clone(), grads.get(p).unwrap().to_vec())).collect();
            slots.lock().unwrap()[rank] = mine;
            barrier.wait();
            {
                let all = slots.lock().unwrap();
                // No assertion between the two waits: a panic here would leave the other rank
                // waiting. The ranks list the same names in the same order (checked below).
                for (i, (_, p)) in step.params.iter().enumerate() {
                    let mut sum = vec![0.0f32; p.numel()];
                    for r in all.iter() {
                        sum.iter_mut().zip(&r[i].1).for_each(|(s, g)| *s += g);
                    }
                    let mean = sum.into_iter().map(|s| s / world as f32).collect();
                    grads.insert(p, Tensor::from_vec(mean, p.shape()));
                }
            }
            barrier.wait(); // nobody overwrites a slot before everyone has read it
            Ok(())
        })
        .fit(&xs, &ys, &options)
        .unwrap();
    weights(&model)
}

#[test]
fn an_all_reduce_hook_keeps_two_data_parallel_replicas_identical() {
    let (x, y) = sequences(64, 12);
    let world = 2;
    let slots = Mutex::new(vec![Vec::new(); world]);
    let barrier = Barrier::new(world);
    let replicas: Vec<Vec<(String, Vec<u32>)>> = thread::scope(|s| {
        let handles: Vec<_> = (0..world)
            .map(|rank| {
                let (x, y, slots, barrier) = (&x, &y, &slots, &barrier);
                s.spawn(move || data_parallel_rank(rank, world, x, y, slots, barrier))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(replicas[0] == replicas[1], "the replicas drifted apart");
    let names: Vec<String> =
        slots.into_inner().unwrap().into_iter().flat_map(|r| r.into_iter().map(|(n, _)| n)).collect();
    assert_eq!(names[..names.len() / 2], names[names.len() / 2..], "the ranks walked the parameters in one order");
    assert_ne!(replicas[0], weights(&recurrent(11)), "the replicas trained");
}

#[test]
fn a_step_context_is_what_a_callback_gets_too() {
    // A data-parallel plugin is one callback: it can see the start of training and every step.
    struct Counter<'a>(&'a mut usize);
    impl Callback for Counter<'_> {
        fn on_after_backward(&mut self, grads: &mut Gradients, step: &StepContext<'_, f32>) -> tensorgrad::Result<()> {
            assert_eq!(grads.len(), step.params.len());
            *self.0 += 1;
            Ok(())
        }
    }
    let (x, y) = table(20, 9);
    let mut model = mlp(9);
    let mut opt = Adam::new(model.parameters(), AdamConfig::default());
    let mut count = 0;
    Trainer::new(&mut model, &mut opt, bce_mean).callback(Counter(&mut count)).fit(&x, &y, &quiet(2, 10)).unwrap();
    assert_eq!(count, 4);
}

// =============================================================================================
// 3. Optimizer state keyed by dotted parameter names
// =============================================================================================

#[test]
fn optimizer_state_is_keyed_by_dotted_names() {
    let (x, y) = sequences(16, 1);
    let model = recurrent(3);
    let mut opt = Adam::new(model.named_parameters(), AdamConfig::default());
    opt.step(&bce_mean(&model.forward(&x), &y).backward());
    let keys: Vec<String> = opt.state_dict().into_iter().map(|(k, _)| k).collect();
    let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
    let expected: Vec<String> =
        names.iter().flat_map(|n| ["step", "exp_avg", "exp_avg_sq"].map(|f| format!("{n}.{f}"))).collect();
    assert_eq!(keys, expected);
    assert!(keys.contains(&"lstm.weight_ih_l0.exp_avg".to_string()));
    let opt_names: Vec<String> = opt.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(opt_names, names);
    // Given without names, the state is keyed by position, as before.
    let mut positional = Adam::new(model.parameters(), AdamConfig::default());
    positional.step(&bce_mean(&model.forward(&x), &y).backward());
    assert_eq!(positional.state_dict()[0].0, "0.step");
    assert_eq!(positional.named_parameters()[1].0, "1");
}

#[test]
fn named_and_positional_optimizers_take_the_same_steps() {
    let (x, y) = sequences(32, 2);
    let run = |named: bool| {
        let mut model = recurrent(4);
        let cfg = AdamConfig { lr: 0.01, ..Default::default() };
        let mut opt = if named { Adam::new(model.named_parameters(), cfg) } else { Adam::new(model.parameters(), cfg) };
        Trainer::new(&mut model, &mut opt, bce_mean).fit(&x, &y, &quiet(2, 8)).unwrap();
        weights(&model)
    };
    assert!(run(true) == run(false));
}

#[test]
fn a_named_state_loads_into_an_optimizer_given_the_parameters_in_another_order() {
    let (x, y) = sequences(24, 3);
    let steps = 4;
    let step = |model: &Sequential, opt: &mut Adam, s: usize| {
        let rows: Vec<usize> = (0..8).map(|i| (s * 8 + i) % 24).collect();
        opt.step(&bce_mean(&model.forward(&x.index_select(0, &rows)), &y.index_select(0, &rows)).backward());
    };
    let mut model = recurrent(5);
    model.eval(); // no dropout: the two runs must see the same forward passes
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.02, ..Default::default() });
    for s in 0..steps {
        step(&model, &mut opt, s);
    }
    let straight = weights(&model);

    let mut model = recurrent(5);
    model.eval();
    let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.02, ..Default::default() });
    step(&model, &mut opt, 0);
    step(&model, &mut opt, 1);
    let state = opt.state_dict();
    // Another process: the same model, its parameters handed over in reverse order.
    let mut reversed = model.named_parameters();
    reversed.reverse();
    let mut resumed = Adam::new(reversed, AdamConfig { lr: 0.02, ..Default::default() });
    resumed.load_state_dict(&state).unwrap();
    for s in 2..steps {
        step(&model, &mut resumed, s);
    }
    assert!(weights(&model) == straight, "resuming by names changed the trajectory");
}

#[test]
fn a_named_optimizer_refuses_a_positional_state_and_names_what_is_wrong() {
    let w = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).requires_grad();
    let mut g = Gradients::new();
    g.insert(&w, Tensor::from_slice(&[0.5, 0.5]));
    let mut positional = Sgd::new(vec![w.clone()], SgdConfig { momentum: 0.9, ..Default::default() });
    positional.step(&g);
    let mut named =
        Sgd::new(vec![("fc.weight".to_string(), w.clone())], SgdConfig { momentum: 0.9, ..Default::default() });
    let err = named.load_state_dict(&positional.state_dict()).unwrap_err();
    assert_eq!(err.to_string(), "Sgd: cannot load the optimizer state: unexpected 0.step, 0.momentum_buffer");
    named.step(&g);
    let mut state = named.state_dict();
    assert_eq!(state[1].0, "fc.weight.momentum_buffer");
    state[1].1 = Tensor::zeros(&[3]);
    let err = named.load_state_dict(&state).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Sgd: cannot load the optimizer state: invalid fc.weight.momentum_buffer (shape [3], but parameter fc.weight has shape [2])"
    );
}

#[test]
#[should_panic(expected = "Adam: the parameter name \"fc.weight\" is given to more than one parameter")]
fn two_parameters_with_one_name_are_refused() {
    let (a, b) = (Tensor::<f32>::zeros(&[2]).requires_grad(), Tensor::<f32>::zeros(&[2]).requires_grad());
    Adam::new(vec![("fc.weight".to_string(), a), ("fc.weight".to_string(), b)], AdamConfig::default());
}

#[test]
fn param_lists_come_from_tensors_or_named_tensors() {
    let model = mlp(1);
    let named = ParamList::from(model.named_parameters());
    assert_eq!(named.names(), ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]);
    assert_eq!(named.len(), 4);
    let positional = ParamList::from(model.parameters());
    assert_eq!(positional.names(), ["0", "1", "2", "3"]);
    assert_eq!(positional.tensors()[2].id(), named.tensors()[2].id());
    assert!(ParamList::<f32>::from(Vec::<Tensor>::new()).is_empty());
}

#[test]
fn a_checkpoint_of_a_named_optimizer_stores_and_restores_by_name() {
    let dir = std::env::temp_dir().join(format!("tensorgrad-seams-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("named.ckpt");
    let (x, y) = sequences(32, 4);
    let options = |initial_epoch| FitOptions { seed: 3, initial_epoch, ..quiet(3, 8) };
    let cfg = AdamConfig { lr: 0.01, ..Default::default() };

    let mut straight = recurrent(6);
    let mut opt = Adam::new(straight.named_parameters(), cfg);
    Trainer::new(&mut straight, &mut opt, bce_mean).fit(&x, &y, &options(0)).unwrap();

    let mut first = recurrent(6);
    let mut opt = Adam::new(first.named_parameters(), cfg);
    let history = Trainer::new(&mut first, &mut opt, bce_mean).fit(&x, &y, &FitOptions { epochs: 1, ..options(0) });
    save_checkpoint(&path, &first, &opt, 0, &history.unwrap()).unwrap();
    let stored: Vec<String> = io::load_tensors::<f32>(&path).unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(stored.contains(&"optimizer/lstm.weight_hh_l0.exp_avg_sq".to_string()), "{stored:?}");
    assert!(stored.contains(&"optimizer/dense.bias.step".to_string()));

    let mut resumed = recurrent(99); // other weights: the checkpoint replaces them
    let mut opt = Adam::new(resumed.named_parameters(), cfg);
    let resume = load_checkpoint(&path, &resumed, &mut opt).unwrap();
    Trainer::new(&mut resumed, &mut opt, bce_mean).fit(&x, &y, &options(resume.epoch + 1)).unwrap();
    assert!(weights(&resumed) == weights(&straight), "the resumed run differs");
    std::fs::remove_dir_all(&dir).ok();
}

// =============================================================================================
// 4. Dropout masks from the step's key
// =============================================================================================

/// The model's output for `x` in training mode under `key`.
fn masked_output(model: &Sequential, x: &Tensor, key: StepKey) -> Vec<u32> {
    key.scope(|| bits(&model.forward(x)))
}

fn trained_mode(mut m: Sequential, seed: u64) -> Sequential {
    m.reseed(seed);
    m.train();
    m
}

#[test]
fn the_same_key_draws_the_same_masks_whatever_ran_before() {
    let x = table(32, 1).0;
    let key = StepKey::new(7, 1, 12, 0);
    // A model that drew masks for other steps (and outside any scope) first ...
    let busy = trained_mode(mlp(1), 7);
    for step in 0..5 {
        masked_output(&busy, &x, StepKey { step, ..key });
        busy.forward(&x);
    }
    let after_others = masked_output(&busy, &x, key);
    // ... and a fresh one, as in another process, agree.
    let fresh = trained_mode(mlp(1), 7);
    assert_eq!(masked_output(&fresh, &x, key), after_others);
    assert_eq!(masked_output(&fresh, &x, key), after_others, "and again");
    // The masks do drop: the output differs from evaluation mode.
    let mut eval = mlp(1);
    eval.eval();
    assert_ne!(bits(&eval.forward(&x)), after_others);
}

#[test]
fn other_ranks_steps_epochs_and_seeds_draw_other_masks() {
    let x = table(32, 2).0;
    let model = trained_mode(mlp(2), 3);
    let key = StepKey::new(3, 0, 0, 0);
    let base = masked_output(&model, &x, key);
    for other in [
        StepKey { rank: 1, ..key },
        StepKey { step: 1, ..key },
        StepKey { epoch: 1, ..key },
        StepKey { seed: 4, ..key },
    ] {
        assert_ne!(masked_output(&model, &x, other), base, "{other:?}");
    }
    // The module's seed (its position, after reseeding) matters too.
    let reseeded = trained_mode(mlp(2), 4);
    assert_ne!(masked_output(&reseeded, &x, key), base);
}

#[test]
fn two_threads_sharing_a_model_draw_the_masks_of_their_own_keys() {
    let (x, _) = sequences(16, 3);
    let model = trained_mode(recurrent(3), 1);
    let keys: Vec<StepKey> = (0..12).map(|i| StepKey::new(1, i / 4, i, i % 2)).collect();
    let alone: Vec<Vec<u32>> = keys.iter().map(|&k| masked_output(&model, &x, k)).collect();
    // Both threads run every key, in opposite orders, at the same time, on the one model.
    let (a, b) = thread::scope(|s| {
        let forward = s.spawn(|| keys.iter().map(|&k| masked_output(&model, &x, k)).collect::<Vec<_>>());
        let backward = s.spawn(|| {
            let mut out: Vec<_> = keys.iter().rev().map(|&k| masked_output(&model, &x, k)).collect();
            out.reverse();
            out
        });
        (forward.join().unwrap(), backward.join().unwrap())
    });
    assert!(a == alone && b == alone, "a thread's masks depended on the other thread");
    assert_ne!(alone[0], alone[1], "different keys, different masks");
}

#[test]
fn masks_are_the_same_in_rayon_pools_of_1_2_and_4_threads() {
    let (x, _) = sequences(48, 4);
    let run = || {
        let model = trained_mode(recurrent(4), 2);
        (0..3).map(|step| masked_output(&model, &x, StepKey::new(2, 0, step, 0))).collect::<Vec<_>>()
    };
    let runs: Vec<_> = [1, 2, 4]
        .into_iter()
        .map(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap().install(run))
        .collect();
    assert!(runs[0] == runs[1] && runs[0] == runs[2]);
}

#[test]
fn dropout_in_a_scope_is_still_inverted_dropout_and_evaluation_is_the_identity() {
    let ones = Tensor::<f32>::ones(&[100_000]);
    let mut drop = Dropout::new(0.25, 9);
    let y = StepKey::new(0, 0, 0, 0).scope(|| drop.forward(&ones)).to_vec();
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / 1e5;
    assert!((dropped - 0.25).abs() < 0.01, "{dropped}");
    assert!(y.iter().all(|&v| v == 0.0 || v == (1.0 / 0.75) as f32));
    // Two masks of one module in one scope are two draws.
    let (m1, m2) =
        StepKey::new(0, 0, 0, 0).scope(|| (drop.mask::<f32>(&[1000]).to_vec(), drop.mask::<f32>(&[1000]).to_vec()));
    assert_ne!(m1, m2);
    Module::<f32>::eval(&mut drop);
    assert_eq!(StepKey::new(0, 0, 0, 0).scope(|| drop.forward(&ones)).to_vec(), ones.to_vec());
}

#[test]
fn scopes_nest_and_end_even_on_a_panic() {
    let outer = StepKey::new(1, 0, 0, 0);
    let inner = StepKey::new(2, 0, 0, 0);
    outer.scope(|| {
        assert_eq!(StepKey::current(), Some(outer));
        inner.scope(|| assert_eq!(StepKey::current(), Some(inner)));
        assert_eq!(StepKey::current(), Some(outer));
        let caught = std::panic::catch_unwind(|| inner.scope(|| panic!("inside")));
        assert!(caught.is_err());
        assert_eq!(StepKey::current(), Some(outer));
    });
    assert_eq!(StepKey::current(), None);
}

#[test]
fn fit_draws_rank_dependent_masks_and_repeats_itself() {
    let (x, y) = sequences(48, 5);
    let run = |rank: usize| {
        let mut model = recurrent(7);
        let mut opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.01, ..Default::default() });
        let options = FitOptions { seed: 8, rank, validation: Validation::Split(0.25), ..quiet(2, 12) };
        Trainer::new(&mut model, &mut opt, bce_mean).fit(&x, &y, &options).unwrap();
        weights(&model)
    };
    let rank0 = run(0);
    assert!(run(0) == rank0, "the same run twice differs");
    assert!(run(1) != rank0, "rank 1 drew rank 0's masks");
}
