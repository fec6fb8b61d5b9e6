//! The layers of `tensorgrad::nn` (everything but the recurrent layers, which tests/lstm.rs
//! covers): gradients against central differences (f64) with respect to the input and every
//! parameter, forward values against hand computations, initialisation statistics, dropout
//! behaviour, freezing, masks, and the messages of bad inputs.

use approx::{assert_abs_diff_eq, assert_relative_eq};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::nn::init::{Init, fans};
use tensorgrad::nn::{
    Activation, Dense, Dropout, Embedding, Gelu, LeakyRelu, Linear, Lstm, LstmConfig, Mask, Module, Relu, Sequential,
    Sigmoid, Softmax, Tanh,
};
use tensorgrad::{Tensor, gradcheck};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn randn(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::randn(shape, 0.0, 1.0, &mut rng(seed))
}

/// Normal values pushed at least 0.2 away from zero, for functions with a kink at 0.
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor<f64> {
    let v = randn(shape, seed).to_vec().into_iter().map(|x| x + 0.2 * x.signum()).collect();
    Tensor::from_vec(v, shape)
}

/// Fresh copies of a module's parameters, in `named_parameters` order.
fn param_copies<M: Module<f64>>(m: &M) -> Vec<Tensor<f64>> {
    m.named_parameters().into_iter().map(|(_, p)| Tensor::from_vec(p.to_vec(), p.shape())).collect()
}

fn names<M: Module<f64>>(m: &M) -> Vec<String> {
    m.named_parameters().into_iter().map(|(n, _)| n).collect()
}

/// Gradcheck of `m` with respect to its input `x` and every parameter: gradcheck's leaves are
/// bound as the parameters inside the closure.
fn gradcheck_module<M: Module<f64>>(m: &M, x: Tensor<f64>) {
    let mut inputs = vec![x];
    inputs.extend(param_copies(m));
    let result = gradcheck(
        |xs| {
            m.bind_parameters(&xs[1..]);
            m.forward(&xs[0])
        },
        &inputs,
    );
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

fn assert_all_close(a: &Tensor<f64>, b: &Tensor<f64>, eps: f64) {
    assert_eq!(a.shape(), b.shape());
    for (x, y) in a.to_vec().iter().zip(b.to_vec()) {
        assert_relative_eq!(*x, y, epsilon = eps, max_relative = eps);
    }
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

// ---------------------------------------------------------------------------------------------
// Linear and Dense
// ---------------------------------------------------------------------------------------------

#[test]
fn gradcheck_linear_2d() {
    let fc = Linear::<f64>::new(4, 3, &mut rng(0));
    assert_eq!(names(&fc), ["weight", "bias"]);
    gradcheck_module(&fc, randn(&[5, 4], 1));
}

#[test]
fn gradcheck_linear_3d() {
    let fc = Linear::<f64>::new(3, 2, &mut rng(2));
    gradcheck_module(&fc, randn(&[2, 4, 3], 3));
}

#[test]
fn gradcheck_linear_without_bias_2d_and_3d() {
    let fc = Linear::<f64>::with_init(3, 4, Init::GlorotUniform, None, &mut rng(4));
    assert_eq!(names(&fc), ["weight"]);
    assert!(fc.bias().is_none());
    gradcheck_module(&fc, randn(&[3, 3], 5));
    gradcheck_module(&fc, randn(&[2, 3, 3], 6));
}

#[test]
fn gradcheck_linear_on_a_non_contiguous_3d_input() {
    // [T, B, F] transposed to [B, T, F]: the leading dims cannot be folded without a copy.
    let fc = Linear::<f64>::new(3, 2, &mut rng(7));
    let mut inputs = vec![randn(&[4, 2, 3], 8)];
    inputs.extend(param_copies(&fc));
    let result = gradcheck(
        |xs| {
            fc.bind_parameters(&xs[1..]);
            fc.forward(&xs[0].transpose(0, 1))
        },
        &inputs,
    );
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

#[test]
fn linear_matches_hand_computation() {
    // W: [2, 3], b: [2]
    let w = vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.75];
    let b = vec![0.1, -0.2];
    let fc = Linear::from_tensors(Tensor::from_vec(w.clone(), &[2, 3]), Some(Tensor::from_vec(b.clone(), &[2])));
    assert_eq!((fc.in_features(), fc.out_features()), (3, 2));
    let xv: Vec<f64> = (0..12).map(|i| 0.3 * i as f64 - 1.7).collect();
    let hand = |rows: usize, bias: bool| -> Vec<f64> {
        let mut out = Vec::new();
        for r in 0..rows {
            for o in 0..2 {
                let dot: f64 = (0..3).map(|i| xv[r * 3 + i] * w[o * 3 + i]).sum();
                out.push(dot + if bias { b[o] } else { 0.0 });
            }
        }
        out
    };
    // 2-D input
    let y = fc.forward(&Tensor::from_vec(xv.clone(), &[4, 3]));
    assert_eq!(y.shape(), &[4, 2]);
    assert_all_close(&y, &Tensor::from_vec(hand(4, true), &[4, 2]), 1e-12);
    // 3-D input [B, T, F]
    let y = fc.forward(&Tensor::from_vec(xv.clone(), &[2, 2, 3]));
    assert_eq!(y.shape(), &[2, 2, 2]);
    assert_all_close(&y, &Tensor::from_vec(hand(4, true), &[2, 2, 2]), 1e-12);
    // 1-D input
    let y = fc.forward(&Tensor::from_vec(xv[..3].to_vec(), &[3]));
    assert_eq!(y.shape(), &[2]);
    assert_all_close(&y, &Tensor::from_vec(hand(1, true), &[2]), 1e-12);
    // Without a bias
    let nb = Linear::from_tensors(Tensor::from_vec(w.clone(), &[2, 3]), None);
    let y = nb.forward(&Tensor::from_vec(xv.clone(), &[4, 3]));
    assert_all_close(&y, &Tensor::from_vec(hand(4, false), &[4, 2]), 1e-12);
}

#[test]
fn linear_on_non_contiguous_input_matches_contiguous() {
    let fc = Linear::<f64>::new(3, 5, &mut rng(9));
    let x = randn(&[4, 2, 3], 10);
    let xt = x.transpose(0, 1);
    assert!(!xt.is_contiguous());
    let a = fc.forward(&xt);
    let b = fc.forward(&xt.contiguous());
    assert_eq!(a.shape(), &[2, 4, 5]);
    assert_all_close(&a, &b, 1e-12);
}

#[test]
fn linear_init_bounds_follow_pytorch() {
    let (inf, outf) = (16, 300);
    let fc = Linear::<f64>::new(inf, outf, &mut rng(11));
    let bound = 1.0 / (inf as f64).sqrt();
    let w = fc.weight().value().to_vec();
    let b = fc.bias().unwrap().value().to_vec();
    assert_eq!(fc.weight().value().shape(), &[outf, inf]);
    assert_eq!(fc.bias().unwrap().value().shape(), &[outf]);
    assert!(max_abs(&w) <= bound);
    assert!(max_abs(&b) <= bound);
    // The bound is reached (4800 and 300 uniform draws), and both signs occur.
    assert!(max_abs(&w) > 0.99 * bound);
    assert!(max_abs(&b) > 0.95 * bound);
    assert!(w.iter().any(|&v| v < 0.0) && w.iter().any(|&v| v > 0.0));
    // Uniform on ±a has standard deviation a/√3.
    let (mean, std) = mean_std(&w);
    assert_abs_diff_eq!(mean, 0.0, epsilon = 0.02);
    assert_relative_eq!(std, bound / 3f64.sqrt(), max_relative = 0.05);
}

const ACTIVATIONS: [Activation; 7] = [
    Activation::Linear,
    Activation::Sigmoid,
    Activation::Relu,
    Activation::Tanh,
    Activation::Softmax,
    Activation::LeakyRelu(0.1),
    Activation::Gelu,
];

#[test]
fn gradcheck_dense_with_each_activation() {
    for (k, act) in ACTIVATIONS.into_iter().enumerate() {
        let dense = Dense::<f64>::new(3, 4, Some(act), &mut rng(20 + k as u64));
        assert_eq!(names(&dense), ["weight", "bias"], "{act:?}");
        for x in [randn(&[3, 3], 30 + k as u64), randn(&[2, 2, 3], 40 + k as u64)] {
            // Keep the pre-activations away from the kinks of Relu and LeakyRelu.
            let z = dense.linear().forward(&x).to_vec();
            assert!(z.iter().all(|v| v.abs() > 1e-3), "{act:?}: a pre-activation is too close to 0");
            gradcheck_module(&dense, x);
        }
    }
}

#[test]
fn dense_is_linear_then_activation() {
    for (k, act) in ACTIVATIONS.into_iter().enumerate() {
        let dense = Dense::<f64>::new(5, 3, Some(act), &mut rng(50 + k as u64));
        let x = randn(&[4, 5], 60);
        let want = act.apply(&dense.linear().forward(&x));
        assert_all_close(&dense.forward(&x), &want, 1e-14);
    }
    // No activation is the identity activation.
    let dense = Dense::<f64>::new(5, 3, None, &mut rng(70));
    let x = randn(&[4, 5], 71);
    assert_all_close(&dense.forward(&x), &dense.linear().forward(&x), 1e-14);
    // Softmax rows sum to one.
    let dense = Dense::<f64>::new(5, 3, Some(Activation::Softmax), &mut rng(72));
    let p = dense.forward(&randn(&[2, 4, 5], 73));
    for row in p.to_vec().chunks(3) {
        assert_relative_eq!(row.iter().sum::<f64>(), 1.0, epsilon = 1e-12);
    }
}

// ---------------------------------------------------------------------------------------------
// Activation modules
// ---------------------------------------------------------------------------------------------

#[test]
fn gradcheck_activation_modules() {
    let x = || away_from_zero(&[2, 3, 4], 80);
    gradcheck_module(&Sigmoid, x());
    gradcheck_module(&Relu, x());
    gradcheck_module(&Tanh, x());
    gradcheck_module(&Softmax, x());
    gradcheck_module(&LeakyRelu(0.2), x());
    gradcheck_module(&LeakyRelu::default(), x());
    gradcheck_module(&Gelu, x());
    // GELU is smooth: also fine at and around zero.
    gradcheck_module(&Gelu, Tensor::from_vec(vec![-1e-3, 0.0, 1e-3, -2.5, 3.0], &[5]));
}

#[test]
fn activation_modules_have_no_parameters_and_match_the_functions() {
    let x = away_from_zero(&[3, 4], 81);
    let v = x.to_vec();
    let check = |m: &dyn Module<f64>, f: &dyn Fn(f64) -> f64| {
        assert_eq!(m.num_parameters(), 0);
        assert!(m.named_parameters().is_empty());
        let y = m.forward(&x);
        assert_eq!(y.shape(), x.shape());
        for (a, b) in y.to_vec().iter().zip(&v) {
            assert_relative_eq!(*a, f(*b), epsilon = 1e-12, max_relative = 1e-12);
        }
    };
    check(&Sigmoid, &|x| 1.0 / (1.0 + (-x).exp()));
    check(&Relu, &|x| x.max(0.0));
    check(&Tanh, &f64::tanh);
    check(&LeakyRelu(0.2), &|x| if x > 0.0 { x } else { 0.2 * x });
    check(&LeakyRelu::default(), &|x| if x > 0.0 { x } else { 0.01 * x });
    check(&Gelu, &|x| 0.5 * x * (1.0 + libm::erf(x / 2f64.sqrt())));
    // Softmax over the last dim.
    let y = Softmax.forward(&x).to_vec();
    for (yr, xr) in y.chunks(4).zip(v.chunks(4)) {
        let z: f64 = xr.iter().map(|t| t.exp()).sum();
        for (a, b) in yr.iter().zip(xr) {
            assert_relative_eq!(*a, b.exp() / z, epsilon = 1e-12);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Embedding
// ---------------------------------------------------------------------------------------------

fn ids(values: &[usize], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.iter().map(|&i| i as f64).collect(), shape)
}

#[test]
fn gradcheck_embedding_table_with_repeated_ids() {
    let emb = Embedding::<f64>::new(6, 3, &mut rng(90));
    assert_eq!(names(&emb), ["weight"]);
    let x = ids(&[1, 4, 1, 0, 4, 5, 1, 1], &[2, 4]);
    let result = gradcheck(
        |xs| {
            emb.bind_parameters(xs);
            emb.forward(&x)
        },
        &param_copies(&emb),
    );
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

#[test]
fn embedding_gradient_accumulates_over_repeated_ids() {
    let emb = Embedding::<f64>::new(5, 2, &mut rng(91));
    let x = ids(&[3, 1, 3, 3], &[4]);
    let out = emb.forward(&x);
    assert_eq!(out.shape(), &[4, 2]);
    // Rows are the table's rows.
    let table = emb.weight().value().to_vec();
    for (k, &id) in [3usize, 1, 3, 3].iter().enumerate() {
        assert_eq!(&out.to_vec()[k * 2..k * 2 + 2], &table[id * 2..id * 2 + 2]);
    }
    let w = Tensor::from_vec(vec![1.0, 2.0, 10.0, 20.0, 100.0, 200.0, 1000.0, 2000.0], &[4, 2]);
    let grads = (&out * &w).sum().backward();
    let g = grads.get(&emb.weight().value()).expect("the table gets a gradient").to_vec();
    assert_eq!(g, vec![0.0, 0.0, 10.0, 20.0, 0.0, 0.0, 1101.0, 2202.0, 0.0, 0.0]);
}

#[test]
fn gradcheck_embedding_with_padding_idx() {
    let pad = 2;
    let emb = Embedding::<f64>::new(5, 3, &mut rng(92)).with_padding_idx(pad);
    let raw = [2, 0, 4, 2, 1, 2, 3, 0];
    let x = ids(&raw, &[2, 4]);
    // The padding row is read as a constant: its outputs depend on it but send it no
    // gradient, so the checked function zeroes the padding positions (their true derivative
    // with respect to the table is then zero, matching the analytic one).
    let keep: Vec<f64> = raw.iter().flat_map(|&i| [if i == pad { 0.0 } else { 1.0 }; 3]).collect();
    let keep = Tensor::from_vec(keep, &[2, 4, 3]);
    let mut table = param_copies(&emb);
    // Make the padding row non-zero too, so that only the gradient path keeps it out.
    table[0] = &table[0] + 0.5;
    let result = gradcheck(
        |xs| {
            emb.bind_parameters(xs);
            &emb.forward(&x) * &keep
        },
        &table,
    );
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

#[test]
fn embedding_padding_row_is_zero_and_gets_an_exactly_zero_gradient() {
    let (n, d, pad) = (6, 4, 3);
    let emb = Embedding::<f64>::new(n, d, &mut rng(93)).with_padding_idx(pad);
    let table = emb.weight().value().to_vec();
    assert!(table[pad * d..(pad + 1) * d].iter().all(|&v| v == 0.0), "padding row not zeroed at construction");
    assert!(table[..pad * d].iter().all(|&v| v != 0.0));
    // Bind a table whose padding row is non-zero: the lookup still reads it...
    let bound: Vec<f64> = (0..n * d).map(|i| 0.1 * i as f64 + 0.05).collect();
    emb.bind_parameters(&[Tensor::from_vec(bound.clone(), &[n, d])]);
    let raw = [3, 1, 3, 5, 0, 3];
    let out = emb.forward(&ids(&raw, &[2, 3]));
    for (k, &id) in raw.iter().enumerate() {
        assert_eq!(&out.to_vec()[k * d..(k + 1) * d], &bound[id * d..(id + 1) * d]);
    }
    // ...but sends no gradient to it, while every other looked-up row gets one.
    let w = randn(&[2, 3, d], 94);
    let grads = (&out * &w).sum().backward();
    let g = grads.get(&emb.weight().value()).expect("the table gets a gradient").to_vec();
    assert!(g[pad * d..(pad + 1) * d].iter().all(|&v| v == 0.0), "padding row gradient {:?}", &g[pad * d..]);
    for id in [0, 1, 5] {
        assert!(g[id * d..(id + 1) * d].iter().all(|&v| v != 0.0), "row {id} has no gradient");
    }
    let wv = w.to_vec();
    // Row 5 is used once, at position 3.
    assert_eq!(&g[5 * d..6 * d], &wv[3 * d..4 * d]);
}

#[test]
fn embedding_init_is_standard_normal() {
    let emb = Embedding::<f64>::new(1000, 100, &mut rng(95));
    assert_eq!((emb.num_embeddings(), emb.embedding_dim()), (1000, 100));
    let (mean, std) = mean_std(&emb.weight().value().to_vec());
    assert_abs_diff_eq!(mean, 0.0, epsilon = 0.02);
    assert_abs_diff_eq!(std, 1.0, epsilon = 0.02);
}

#[test]
fn embedding_mask_zero_emits_the_padding_mask() {
    let emb = Embedding::<f64>::new(10, 3, &mut rng(96)).with_mask_zero(true);
    let x = ids(&[3, 1, 0, 0, 2, 5, 7, 0, 4, 0, 0, 0], &[3, 4]);
    let (out, mask) = emb.forward_masked(&x, None);
    assert_eq!(out.shape(), &[3, 4, 3]);
    let mask = mask.expect("mask_zero makes a mask");
    assert_eq!(mask.0.shape(), &[3, 4]);
    assert_eq!(mask.0.to_vec(), Mask::<f64>::from_lengths(&[2, 3, 1], 4).0.to_vec());
    assert_eq!(mask.lengths(), vec![2, 3, 1]);
    // Without mask_zero an incoming mask passes through, and none is made.
    let plain = Embedding::<f64>::new(10, 3, &mut rng(96));
    assert!(plain.forward_masked(&x, None).1.is_none());
    let given = Mask::<f64>::from_lengths(&[4, 1, 2], 4);
    let passed = plain.forward_masked(&x, Some(&given)).1.expect("the mask passes through");
    assert_eq!(passed.0.to_vec(), given.0.to_vec());
    // Padding ids (0) still look up row 0: the mask, not the values, marks them.
    assert_all_close(&out, &plain.forward(&x), 0.0);
}

#[test]
fn sequential_passes_the_embedding_mask_to_an_lstm() {
    let emb = Embedding::<f64>::new(10, 3, &mut rng(97)).with_mask_zero(true);
    let lstm = Lstm::<f64>::new(LstmConfig::new(3, 4), &mut rng(98));
    let model: Sequential<f64> = Sequential::new().add_named("emb", emb.clone()).add_named("lstm", lstm.clone());
    assert_eq!(names(&model)[0], "emb.weight");
    assert_eq!(names(&model)[1], "lstm.weight_ih_l0");
    let x = ids(&[3, 1, 0, 0, 2, 5, 7, 0, 4, 0, 0, 0], &[3, 4]);
    let got = model.forward(&x);
    assert_eq!(got.shape(), &[3, 4]);
    let mask = Mask::from_lengths(&[2, 3, 1], 4);
    let e = emb.forward(&x);
    let (want, _) = lstm.forward_masked(&e, Some(&mask));
    assert_all_close(&got, &want, 1e-12);
    let full = lstm.forward_full(&e, None, Some(&mask));
    assert_all_close(&got, &full.state.h.squeeze(0), 1e-12);
    // The mask matters: running over the padding gives other final states.
    let unmasked = lstm.forward(&e).to_vec();
    assert!(got.to_vec().iter().zip(&unmasked).any(|(a, b)| (a - b).abs() > 1e-6));

    // With return_sequences the Lstm hands the mask on.
    let cfg = LstmConfig { return_sequences: true, ..LstmConfig::new(3, 4) };
    let seq_lstm = Lstm::<f64>::new(cfg, &mut rng(98));
    let model: Sequential<f64> = Sequential::new().add(emb.clone()).add(seq_lstm.clone());
    let (out, m) = model.forward_masked(&x, None);
    assert_eq!(out.shape(), &[3, 4, 4]);
    assert_eq!(m.expect("the mask is passed on").lengths(), vec![2, 3, 1]);
    assert_all_close(&out, &seq_lstm.forward_full(&e, None, Some(&mask)).output, 1e-12);
}

#[test]
fn mask_from_lengths_and_back() {
    let m = Mask::<f32>::from_lengths(&[3, 0, 1], 3);
    assert_eq!(m.0.shape(), &[3, 3]);
    assert_eq!(m.0.to_vec(), [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    assert_eq!(m.lengths(), [3, 0, 1]);
    // lengths() counts the real steps wherever they are (masks made by mask_zero).
    let m = Mask(Tensor::from_vec(vec![0.0f32, 1.0, 0.0, 1.0], &[1, 4]));
    assert_eq!(m.lengths(), [2]);
}

#[test]
fn mask_lengths_of_empty_sequences() {
    // A batch of two sequences of zero steps: each has length 0.
    let m = Mask::<f32>::from_lengths(&[0, 0], 0);
    assert_eq!(m.0.shape(), &[2, 0]);
    assert_eq!(m.lengths(), [0, 0], "one length per sequence of the batch");
}

// ---------------------------------------------------------------------------------------------
// Dropout
// ---------------------------------------------------------------------------------------------

#[test]
fn gradcheck_dropout_training_with_a_fixed_mask() {
    let x = randn(&[4, 5], 100);
    // Same seed, same mask: the module is rebuilt on every evaluation.
    let f = |xs: &[Tensor<f64>]| Dropout::new(0.4, 7).forward(&xs[0]);
    let y = f(std::slice::from_ref(&x)).to_vec();
    assert!(y.contains(&0.0), "the mask drops nothing");
    assert!(y.iter().any(|&v| v != 0.0), "the mask drops everything");
    let result = gradcheck(f, &[x]);
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

#[test]
fn gradcheck_dropout_eval_is_the_identity() {
    let mut drop = Dropout::new(0.5, 3);
    drop.set_training(false);
    let x = randn(&[3, 4], 101);
    assert_all_close(&drop.forward(&x), &x, 0.0);
    gradcheck_module(&drop, x);
}

#[test]
fn dropout_drops_a_fraction_p_and_scales_the_rest() {
    for p in [0.1, 0.3, 0.5, 0.8] {
        let drop = Dropout::new(p, 5);
        assert_eq!(drop.p(), p);
        assert!(drop.is_training());
        let y = drop.forward(&Tensor::<f32>::ones(&[100_000])).to_vec();
        let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64 / 1e5;
        assert_abs_diff_eq!(zeros, p, epsilon = 0.01);
        let keep = (1.0 / (1.0 - p)) as f32;
        for &v in y.iter().filter(|&&v| v != 0.0) {
            assert_relative_eq!(v, keep, max_relative = 1e-6);
        }
        // The mean is kept (inverted dropout).
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / 1e5;
        assert_abs_diff_eq!(mean, 1.0, epsilon = 0.05);
    }
}

#[test]
fn dropout_p_zero_and_eval_mode_are_the_identity() {
    let x = Tensor::from_vec((0..50).map(|i| i as f32 - 20.0).collect(), &[5, 10]);
    let zero = Dropout::new(0.0, 1);
    assert_eq!(zero.forward(&x).to_vec(), x.to_vec());
    let mut drop = Dropout::new(0.9, 1);
    drop.set_training(false);
    assert!(!drop.is_training());
    assert_eq!(drop.forward(&x).to_vec(), x.to_vec());
    assert_eq!(drop.mask::<f32>(&[3, 3]).to_vec(), vec![1.0; 9]);
    // The Module methods switch it too.
    Module::<f32>::train(&mut drop);
    assert!(drop.is_training());
    assert_ne!(drop.forward(&x).to_vec(), x.to_vec());
    Module::<f32>::eval(&mut drop);
    assert!(!drop.is_training());
    assert_eq!(drop.forward(&x).to_vec(), x.to_vec());
}

#[test]
fn dropout_same_seed_same_masks() {
    let a = Dropout::new(0.5, 42);
    let b = Dropout::new(0.5, 42);
    let c = Dropout::new(0.5, 43);
    let a1 = a.mask::<f64>(&[2000]).to_vec();
    let a2 = a.mask::<f64>(&[2000]).to_vec();
    assert_eq!(a1, b.mask::<f64>(&[2000]).to_vec());
    assert_eq!(a2, b.mask::<f64>(&[2000]).to_vec());
    assert_ne!(a1, a2, "successive masks are fresh draws");
    assert_ne!(a1, c.mask::<f64>(&[2000]).to_vec(), "another seed, another mask");
    // forward uses the same stream as mask.
    let d = Dropout::new(0.5, 42);
    assert_eq!(d.forward(&Tensor::<f64>::ones(&[2000])).to_vec(), a1);
    // A clone carries on from the same state.
    let e = d.clone();
    assert_eq!(d.mask::<f64>(&[100]).to_vec(), e.mask::<f64>(&[100]).to_vec());
}

#[test]
fn sequential_eval_and_train_switch_contained_dropout() {
    let fc = Linear::<f32>::new(8, 64, &mut rng(110));
    let mut model: Sequential = Sequential::new().add(fc.clone()).add(Dropout::new(0.5, 3)).add(Relu);
    let x = Tensor::<f32>::from_vec((0..32).map(|i| (i as f32 * 0.37).sin()).collect(), &[4, 8]);
    let plain = fc.forward(&x).relu().to_vec();
    let dropped = model.forward(&x).to_vec();
    assert_ne!(dropped, plain, "training mode drops");
    model.eval();
    assert_eq!(model.forward(&x).to_vec(), plain);
    assert_eq!(model.forward(&x).to_vec(), plain);
    model.train();
    let again = model.forward(&x).to_vec();
    assert_ne!(again, plain, "training mode drops again");
    // A nested Sequential is switched as well.
    let mut outer: Sequential = Sequential::new().add(Sequential::new().add(Dropout::new(0.5, 4)));
    let ones = Tensor::<f32>::ones(&[1000]);
    assert!(outer.forward(&ones).to_vec().contains(&0.0));
    outer.eval();
    assert_eq!(outer.forward(&ones).to_vec(), vec![1.0; 1000]);
}

// ---------------------------------------------------------------------------------------------
// Sequential, freezing, parameter counts
// ---------------------------------------------------------------------------------------------

fn mlp(seed: u64) -> Sequential<f64> {
    let mut r = rng(seed);
    Sequential::new().add(Linear::new(3, 5, &mut r)).add(Tanh).add(Linear::new(5, 2, &mut r)).add(Sigmoid)
}

#[test]
fn gradcheck_sequential_mlp() {
    let model = mlp(120);
    assert_eq!(model.len(), 4);
    assert!(!model.is_empty());
    assert_eq!(names(&model), ["0.weight", "0.bias", "2.weight", "2.bias"]);
    let shapes: Vec<Vec<usize>> = model.named_parameters().iter().map(|(_, t)| t.shape().to_vec()).collect();
    assert_eq!(shapes, [vec![5, 3], vec![5], vec![2, 5], vec![2]]);
    gradcheck_module(&model, randn(&[4, 3], 121));
    gradcheck_module(&model, randn(&[2, 3, 3], 122));
}

#[test]
fn sequential_matches_its_layers_composed() {
    let mut r = rng(123);
    let (l0, l2) = (Linear::<f64>::new(3, 5, &mut r), Linear::<f64>::new(5, 2, &mut r));
    let model = Sequential::new().add(l0.clone()).add(Tanh).add(l2.clone()).add(Sigmoid);
    let x = randn(&[4, 3], 124);
    assert_all_close(&model.forward(&x), &l2.forward(&l0.forward(&x).tanh()).sigmoid(), 1e-14);
    // Empty: the identity.
    let empty = Sequential::<f64>::new();
    assert!(empty.is_empty());
    assert_all_close(&empty.forward(&x), &x, 0.0);
    // Nested and named children give dotted names.
    let nested: Sequential<f64> =
        Sequential::new().add_named("encoder", mlp(1)).add_named("head", Dense::new(2, 1, None, &mut r));
    assert_eq!(
        names(&nested),
        ["encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias", "head.weight", "head.bias"]
    );
}

#[test]
fn num_parameters_counts_every_scalar() {
    assert_eq!(mlp(0).num_parameters(), 3 * 5 + 5 + 5 * 2 + 2);
    assert_eq!(Linear::<f64>::with_init(7, 3, Init::Zeros, None, &mut rng(0)).num_parameters(), 21);
    assert_eq!(Embedding::<f64>::new(11, 4, &mut rng(0)).num_parameters(), 44);
    assert_eq!(Module::<f64>::num_parameters(&Dropout::new(0.5, 0)), 0);
    // Frozen parameters still count.
    let m = mlp(0);
    assert!(m.set_trainable("0.weight", false));
    assert_eq!(m.num_parameters(), 32);
}

#[test]
fn freezing_removes_a_parameter_from_training_and_unfreezing_restores_it() {
    let model = mlp(130);
    let x = randn(&[4, 3], 131);
    let w0 = model.named_parameters()[0].1.clone();
    let ids_of = |m: &Sequential<f64>| m.parameters().iter().map(|t| t.id()).collect::<Vec<_>>();
    assert_eq!(model.parameters().len(), 4);
    assert!(ids_of(&model).contains(&w0.id()));

    assert!(model.set_trainable("0.weight", false));
    assert!(!model.set_trainable("0.nonexistent", false));
    assert!(!model.set_trainable("weight", false));
    let params = model.parameters();
    assert_eq!(params.len(), 3);
    assert!(!ids_of(&model).contains(&w0.id()));
    // Still listed (and with the same value) in named_parameters.
    assert_eq!(names(&model), ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(model.named_parameters()[0].1.id(), w0.id());
    let frozen_out = model.forward(&x);
    let grads = frozen_out.sum().backward();
    assert!(grads.get(&w0).is_none(), "a gradient reached the frozen weight");
    for p in &params {
        assert!(grads.get(p).is_some());
    }

    assert!(model.set_trainable("0.weight", true));
    assert_eq!(model.parameters().len(), 4);
    assert!(ids_of(&model).contains(&w0.id()));
    let out = model.forward(&x);
    // Freezing does not change the forward values.
    assert_all_close(&out, &frozen_out, 0.0);
    let grads = out.sum().backward();
    assert_eq!(grads.get(&w0).expect("the unfrozen weight gets a gradient").shape(), &[5, 3]);
}

#[test]
fn frozen_embedding_gets_no_gradient() {
    let emb = Embedding::<f64>::new(5, 2, &mut rng(132));
    assert!(emb.set_trainable("weight", false));
    assert!(emb.parameters().is_empty());
    let out = emb.forward(&ids(&[1, 2], &[2]));
    assert!(!out.needs_grad());
}

#[test]
fn cloned_modules_have_their_own_parameters() {
    let fc = Linear::<f64>::new(2, 2, &mut rng(133));
    let copy = fc.clone();
    let before = copy.weight().value().to_vec();
    assert_eq!(fc.weight().value().to_vec(), before);
    fc.weight().value().update_(|w| w.iter_mut().for_each(|v| *v += 1.0));
    assert_eq!(copy.weight().value().to_vec(), before);
    assert_ne!(fc.weight().value().id(), copy.weight().value().id());
}

// ---------------------------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------------------------

#[test]
fn fans_follow_pytorch_layout() {
    assert_eq!(fans(&[]), (1, 1));
    assert_eq!(fans(&[7]), (7, 7));
    assert_eq!(fans(&[3, 5]), (5, 3));
    assert_eq!(fans(&[4, 2, 3, 3]), (18, 36));
    assert_eq!(fans(&[6, 4, 5]), (20, 30));
}

#[test]
fn glorot_uniform_bound() {
    let shape = [200, 300];
    let bound = (6.0f64 / 500.0).sqrt();
    let v = Init::GlorotUniform.tensor::<f64>(&shape, &mut rng(140)).to_vec();
    assert!(max_abs(&v) <= bound);
    assert!(max_abs(&v) > 0.999 * bound);
    let (mean, std) = mean_std(&v);
    assert_abs_diff_eq!(mean, 0.0, epsilon = 0.002);
    assert_relative_eq!(std, bound / 3f64.sqrt(), max_relative = 0.02);
    // A conv-like shape: fans include the receptive field.
    let bound = (6.0f64 / (4.0 * 9.0 + 8.0 * 9.0)).sqrt();
    let v = Init::GlorotUniform.tensor::<f64>(&[8, 4, 3, 3], &mut rng(141)).to_vec();
    assert!(max_abs(&v) <= bound);
    assert!(max_abs(&v) > 0.95 * bound);
}

#[test]
fn glorot_normal_std() {
    let v = Init::GlorotNormal.tensor::<f64>(&[200, 300], &mut rng(142)).to_vec();
    let (mean, std) = mean_std(&v);
    assert_abs_diff_eq!(mean, 0.0, epsilon = 0.002);
    assert_relative_eq!(std, (2.0f64 / 500.0).sqrt(), max_relative = 0.02);
}

#[test]
fn kaiming_uniform_and_normal() {
    let (out, inp) = (200, 500);
    let bound = (6.0f64 / inp as f64).sqrt();
    let v = Init::KaimingUniform.tensor::<f64>(&[out, inp], &mut rng(143)).to_vec();
    assert!(max_abs(&v) <= bound);
    assert!(max_abs(&v) > 0.999 * bound);
    let (_, std) = mean_std(&v);
    assert_relative_eq!(std, bound / 3f64.sqrt(), max_relative = 0.02);

    let v = Init::KaimingNormal.tensor::<f64>(&[out, inp], &mut rng(144)).to_vec();
    let (mean, std) = mean_std(&v);
    assert_abs_diff_eq!(mean, 0.0, epsilon = 0.003);
    assert_relative_eq!(std, (2.0f64 / inp as f64).sqrt(), max_relative = 0.02);
}

#[test]
fn uniform_normal_constant_zeros() {
    let v = Init::Uniform(-0.05, 0.05).tensor::<f64>(&[100, 100], &mut rng(145)).to_vec();
    assert!(v.iter().all(|&x| (-0.05..0.05).contains(&x)));
    let v = Init::Normal(3.0, 0.5).tensor::<f64>(&[100, 100], &mut rng(146)).to_vec();
    let (mean, std) = mean_std(&v);
    assert_abs_diff_eq!(mean, 3.0, epsilon = 0.02);
    assert_relative_eq!(std, 0.5, max_relative = 0.03);
    let c = Init::Constant(0.25).tensor::<f32>(&[3, 4], &mut rng(0));
    assert_eq!(c.shape(), &[3, 4]);
    assert_eq!(c.to_vec(), vec![0.25f32; 12]);
    let z = Init::Zeros.tensor::<f64>(&[2, 3, 4], &mut rng(0));
    assert_eq!(z.shape(), &[2, 3, 4]);
    assert_eq!(z.to_vec(), vec![0.0; 24]);
    // Linear with constant initialisers.
    let fc = Linear::<f64>::with_init(3, 2, Init::Constant(0.5), Some(Init::Zeros), &mut rng(0));
    let y = fc.forward(&Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]));
    assert_eq!(y.to_vec(), vec![3.0, 3.0]);
}

/// `WᵀW` (`transpose_first`) or `WWᵀ` of a 2-D `W`.
fn gram(w: &Tensor<f64>, transpose_first: bool) -> Tensor<f64> {
    if transpose_first { w.t().matmul(w) } else { w.matmul(&w.t()) }
}

fn assert_scaled_identity(m: &Tensor<f64>, scale: f64) {
    let n = m.shape()[0];
    assert_eq!(m.shape(), &[n, n]);
    for i in 0..n {
        for j in 0..n {
            let want = if i == j { scale } else { 0.0 };
            assert_abs_diff_eq!(m.get(&[i, j]), want, epsilon = 1e-10);
        }
    }
}

#[test]
fn orthogonal_tall_wide_square_and_gain() {
    // Tall: orthonormal columns, WᵀW = I.
    let w = Init::Orthogonal(1.0).tensor::<f64>(&[8, 5], &mut rng(150));
    assert_eq!(w.shape(), &[8, 5]);
    assert_scaled_identity(&gram(&w, true), 1.0);
    // Wide: orthonormal rows, WWᵀ = I.
    let w = Init::Orthogonal(1.0).tensor::<f64>(&[5, 8], &mut rng(151));
    assert_scaled_identity(&gram(&w, false), 1.0);
    // Square: both.
    let w = Init::Orthogonal(1.0).tensor::<f64>(&[6, 6], &mut rng(152));
    assert_scaled_identity(&gram(&w, true), 1.0);
    assert_scaled_identity(&gram(&w, false), 1.0);
    // Gain g: WᵀW = g²·I.
    let w = Init::Orthogonal(2.0).tensor::<f64>(&[7, 4], &mut rng(153));
    assert_scaled_identity(&gram(&w, true), 4.0);
    let w = Init::Orthogonal(0.5).tensor::<f64>(&[3, 9], &mut rng(154));
    assert_scaled_identity(&gram(&w, false), 0.25);
    // More than two dims are flattened to [shape[0], rest]: [4, 2, 3] → wide [4, 6].
    let w = Init::Orthogonal(1.0).tensor::<f64>(&[4, 2, 3], &mut rng(155));
    assert_eq!(w.shape(), &[4, 2, 3]);
    assert_scaled_identity(&gram(&w.reshape(&[4, 6]), false), 1.0);
    // Different draws for different seeds.
    let a = Init::Orthogonal(1.0).tensor::<f64>(&[4, 4], &mut rng(1)).to_vec();
    let b = Init::Orthogonal(1.0).tensor::<f64>(&[4, 4], &mut rng(2)).to_vec();
    assert_ne!(a, b);
}

// ---------------------------------------------------------------------------------------------
// Bad inputs
// ---------------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "Embedding: id 10 at position 2 is out of range for a vocabulary of 10")]
fn embedding_id_out_of_range() {
    let emb = Embedding::<f32>::new(10, 3, &mut rng(0));
    emb.forward(&Tensor::from_vec(vec![1.0, 9.0, 10.0, 3.0], &[2, 2]));
}

#[test]
#[should_panic(expected = "Embedding: id 7 at position 1 is out of range for a vocabulary of 5")]
fn embedding_forward_ids_out_of_range() {
    Embedding::<f32>::new(5, 3, &mut rng(0)).forward_ids(&[0, 7, 9], &[3]);
}

#[test]
#[should_panic(expected = "Embedding: id -1 at position 1 is not a non-negative whole number")]
fn embedding_negative_id() {
    let emb = Embedding::<f32>::new(10, 3, &mut rng(0));
    emb.forward(&Tensor::from_vec(vec![2.0, -1.0, 3.0], &[3]));
}

#[test]
#[should_panic(expected = "Embedding: id 2.5 at position 0 is not a non-negative whole number")]
fn embedding_fractional_id() {
    let emb = Embedding::<f32>::new(10, 3, &mut rng(0));
    emb.forward(&Tensor::from_vec(vec![2.5, 1.0], &[2]));
}

#[test]
#[should_panic(expected = "Embedding: id NaN at position 0 is not a non-negative whole number")]
fn embedding_nan_id() {
    let emb = Embedding::<f64>::new(10, 3, &mut rng(0));
    emb.forward_masked(&Tensor::from_vec(vec![f64::NAN], &[1, 1]), None);
}

#[test]
#[should_panic(expected = "Embedding: needs a vocabulary and a dimension of at least 1, got 0 × 4")]
fn embedding_empty_vocabulary() {
    Embedding::<f32>::new(0, 4, &mut rng(0));
}

#[test]
#[should_panic(expected = "Embedding: padding id 5 is out of range for a vocabulary of 5")]
fn embedding_padding_idx_out_of_range() {
    let _ = Embedding::<f32>::new(5, 2, &mut rng(0)).with_padding_idx(5);
}

#[test]
#[should_panic(expected = "Linear: expected input [..., 3], got [2, 4]")]
fn linear_wrong_feature_size() {
    Linear::<f32>::new(3, 2, &mut rng(0)).forward(&Tensor::zeros(&[2, 4]));
}

#[test]
#[should_panic(expected = "Linear: expected input [..., 3], got [5, 2, 4]")]
fn dense_wrong_feature_size_3d() {
    Dense::<f32>::new(3, 2, Some(Activation::Relu), &mut rng(0)).forward(&Tensor::zeros(&[5, 2, 4]));
}

#[test]
#[should_panic(expected = "Linear: expected input [..., 3], got []")]
fn linear_scalar_input() {
    Linear::<f32>::new(3, 2, &mut rng(0)).forward(&Tensor::scalar(1.0));
}

#[test]
#[should_panic(expected = "Dropout: dropout probability 1 must be in [0, 1)")]
fn dropout_p_one() {
    Dropout::new(1.0, 0);
}

#[test]
#[should_panic(expected = "Dropout: dropout probability -0.1 must be in [0, 1)")]
fn dropout_p_negative() {
    Dropout::new(-0.1, 0);
}

#[test]
#[should_panic(expected = "Dropout: dropout probability NaN must be in [0, 1)")]
fn dropout_p_nan() {
    Dropout::new(f64::NAN, 0);
}

#[test]
#[should_panic(expected = "Sequential: layer name \"fc\" must be non-empty, without dots, and unique")]
fn sequential_duplicate_name() {
    let mut r = rng(0);
    let _: Sequential = Sequential::new().add_named("fc", Linear::new(2, 2, &mut r)).add_named("fc", Relu);
}

#[test]
#[should_panic(expected = "Sequential: layer name \"a.b\" must be non-empty, without dots, and unique")]
fn sequential_dotted_name() {
    let _: Sequential = Sequential::new().add_named("a.b", Relu);
}

#[test]
#[should_panic(expected = "Mask::from_lengths: length 5 of sequence 1 exceeds the sequence length 4")]
fn mask_length_longer_than_sequence() {
    Mask::<f32>::from_lengths(&[4, 5, 2], 4);
}

#[test]
#[should_panic(expected = "bind_parameters: 1 tensors given for 2 parameters")]
fn bind_parameters_too_few() {
    let fc = Linear::<f64>::new(3, 2, &mut rng(0));
    fc.bind_parameters(&[Tensor::zeros(&[2, 3])]);
}

#[test]
#[should_panic(expected = "bind_parameters: 3 tensors given for 2 parameters")]
fn bind_parameters_too_many() {
    let fc = Linear::<f64>::new(3, 2, &mut rng(0));
    fc.bind_parameters(&[Tensor::zeros(&[2, 3]), Tensor::zeros(&[2]), Tensor::zeros(&[2])]);
}

#[test]
#[should_panic(expected = "bind_parameters: tensor for weight has shape [3, 2], the parameter has [2, 3]")]
fn bind_parameters_wrong_shape() {
    let fc = Linear::<f64>::new(3, 2, &mut rng(0));
    fc.bind_parameters(&[Tensor::zeros(&[3, 2]), Tensor::zeros(&[2])]);
}

#[test]
#[should_panic(expected = "Lstm (dropout): dropout probability 1.5 must be in [0, 1)")]
fn lstm_dropout_above_one() {
    let cfg = LstmConfig { dropout: 1.5, ..LstmConfig::new(3, 2) };
    Lstm::<f32>::new(cfg, &mut rng(0));
}

/// A `u64` seed is a source of random numbers like `&mut StdRng::seed_from_u64(seed)`, for
/// every constructor that draws, and the re-exported `rand` is the version they take.
#[test]
fn a_seed_initialises_like_a_generator_seeded_with_it() {
    use tensorgrad::nn::{Dense, Embedding, Gru, GruConfig, Init, Linear, Lstm, LstmConfig, Module};
    use tensorgrad::rand::{SeedableRng, rngs::StdRng};
    let rng = || StdRng::seed_from_u64(11);
    let params = |m: &dyn Module<f32>| m.parameters().iter().map(|p| p.to_vec()).collect::<Vec<_>>();
    assert_eq!(params(&Linear::new(5, 3, 11)), params(&Linear::new(5, 3, &mut rng())));
    assert_eq!(params(&Dense::new(5, 3, None, 11)), params(&Dense::new(5, 3, None, &mut rng())));
    assert_eq!(params(&Embedding::new(9, 4, 11)), params(&Embedding::new(9, 4, &mut rng())));
    assert_eq!(params(&Lstm::new(LstmConfig::new(3, 4), 11)), params(&Lstm::new(LstmConfig::new(3, 4), &mut rng())));
    assert_eq!(params(&Gru::new(GruConfig::new(3, 4), 11)), params(&Gru::new(GruConfig::new(3, 4), &mut rng())));
    let a: Tensor = Init::GlorotUniform.tensor(&[4, 6], 11);
    assert_eq!(a.to_vec(), Init::GlorotUniform.tensor::<f32>(&[4, 6], &mut rng()).to_vec());
    assert_eq!(
        Tensor::<f64>::randn(&[7], 0.0, 1.0, 11).to_vec(),
        Tensor::<f64>::randn(&[7], 0.0, 1.0, &mut rng()).to_vec()
    );
    let u = Tensor::<f32>::rand_uniform(&[7], -1.0, 1.0, 11);
    assert_eq!(u.to_vec(), Tensor::<f32>::rand_uniform(&[7], -1.0, 1.0, &mut rng()).to_vec());
    // One generator shared by two layers gives them different draws; the same seed twice does not.
    let mut shared = rng();
    let (first, second) = (Linear::<f32>::new(5, 3, &mut shared), Linear::<f32>::new(5, 3, &mut shared));
    assert_ne!(params(&first), params(&second));
}
