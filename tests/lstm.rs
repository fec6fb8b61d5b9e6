//! The LSTM: the fused recurrence against the cell composed from primitive ops, gradients
//! against central differences (f64), masks, stacking, bidirectional runs.

use approx::assert_relative_eq;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::nn::{Lstm, LstmConfig, Mask, Module};
use tensorgrad::{Tensor, gradcheck};

fn config(input: usize, hidden: usize) -> LstmConfig {
    LstmConfig::new(input, hidden)
}

fn randn(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::randn(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

/// Builds the fused and the reference LSTM with identical weights.
fn pair(cfg: LstmConfig) -> (Lstm<f64>, Lstm<f64>) {
    let fused = Lstm::new(LstmConfig { fused: true, ..cfg.clone() }, &mut StdRng::seed_from_u64(7));
    let reference = Lstm::new(LstmConfig { fused: false, ..cfg }, &mut StdRng::seed_from_u64(7));
    (fused, reference)
}

fn assert_all_close(a: &Tensor<f64>, b: &Tensor<f64>) {
    assert_eq!(a.shape(), b.shape());
    for (x, y) in a.to_vec().iter().zip(b.to_vec()) {
        assert_relative_eq!(*x, y, epsilon = 1e-12, max_relative = 1e-10);
    }
}

fn check_fused_matches_reference(cfg: LstmConfig, mask: Option<Mask<f64>>) {
    check_fused_matches_reference_with(cfg, mask, 3, true);
}

/// `b` of 16 or more runs the fused kernel in several blocks of batch rows when the pool has
/// two threads or more; without `x_grad` the kernel skips the input's gradient.
fn check_fused_matches_reference_with(cfg: LstmConfig, mask: Option<Mask<f64>>, b: usize, x_grad: bool) {
    let t = 5;
    let (fused, reference) = pair(cfg.clone());
    let x = randn(&[b, t, cfg.input_size], 1);
    let x = if x_grad { x.requires_grad() } else { x };
    let w_out = randn(&[b, t, cfg.hidden_size * if cfg.bidirectional { 2 } else { 1 }], 2);
    let mut grads = Vec::new();
    for m in [&fused, &reference] {
        let out = m.forward_full(&x, None, mask.as_ref());
        let loss = (&out.output * &w_out).sum() + out.state.h.sum() * 0.5 + out.state.c.powf(2.0).sum();
        grads.push((out, loss.backward()));
    }
    let ((of, gf), (or, gr)) = (&grads[0], &grads[1]);
    assert_all_close(&of.output, &or.output);
    assert_all_close(&of.state.h, &or.state.h);
    assert_all_close(&of.state.c, &or.state.c);
    if x_grad {
        assert_all_close(gf.get(&x).unwrap(), gr.get(&x).unwrap());
    } else {
        assert!(gf.get(&x).is_none());
    }
    let (pf, pr) = (fused.named_parameters(), reference.named_parameters());
    for ((name, a), (_, b)) in pf.iter().zip(&pr) {
        assert_eq!(gf.get(a).map(|g| g.shape().to_vec()), Some(a.shape().to_vec()), "{name}");
        assert_all_close(gf.get(a).unwrap(), gr.get(b).unwrap());
    }
}

#[test]
fn fused_matches_reference_in_parallel_blocks_with_and_without_input_gradient() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    pool.install(|| {
        let lengths: Vec<usize> = (0..20).map(|i| 1 + i % 5).collect();
        for x_grad in [true, false] {
            let mut cfg = config(4, 6);
            cfg.num_layers = 2;
            cfg.bidirectional = true;
            check_fused_matches_reference_with(cfg.clone(), Some(Mask::from_lengths(&lengths, 5)), 20, x_grad);
            check_fused_matches_reference_with(cfg, None, 20, x_grad);
        }
    });
}

#[test]
fn fused_matches_reference_single_layer() {
    check_fused_matches_reference(config(4, 6), None);
}

#[test]
fn fused_matches_reference_with_mask() {
    check_fused_matches_reference(config(4, 6), Some(Mask::from_lengths(&[5, 2, 3], 5)));
}

#[test]
fn fused_matches_reference_stacked_bidirectional_masked() {
    let cfg = LstmConfig { num_layers: 2, bidirectional: true, ..config(3, 4) };
    check_fused_matches_reference(cfg, Some(Mask::from_lengths(&[1, 5, 4], 5)));
}

#[test]
fn fused_matches_reference_with_recurrent_and_input_dropout() {
    let cfg = LstmConfig { dropout: 0.3, recurrent_dropout: 0.4, seed: 11, ..config(4, 5) };
    check_fused_matches_reference(cfg, Some(Mask::from_lengths(&[5, 3, 4], 5)));
}

/// Gradcheck of the whole layer with respect to its input and every parameter.
fn gradcheck_lstm(cfg: LstmConfig, lengths: Option<&[usize]>) {
    let (b, t) = (2, 4);
    let lstm = Lstm::<f64>::new(cfg.clone(), &mut StdRng::seed_from_u64(3));
    let params: Vec<Tensor<f64>> = lstm.named_parameters().into_iter().map(|(_, p)| p).collect();
    let mask = lengths.map(|l| Mask::from_lengths(l, t));
    let mut inputs = vec![randn(&[b, t, cfg.input_size], 5)];
    inputs.extend(params.iter().map(|p| Tensor::from_vec(p.to_vec(), p.shape())));
    let result = gradcheck(
        |xs| {
            // Evaluate the layer at the perturbed parameter tensors gradcheck hands in.
            lstm.bind_parameters(&xs[1..]);
            let out = lstm.forward_full(&xs[0], None, mask.as_ref());
            let flat = |t: &Tensor<f64>| t.reshape(&[t.numel()]);
            Tensor::cat(&[flat(&out.output), flat(&out.state.h), flat(&out.state.c)], 0)
        },
        &inputs,
    );
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

#[test]
fn gradcheck_fused_lstm() {
    gradcheck_lstm(config(3, 2), None);
}

#[test]
fn gradcheck_fused_lstm_masked() {
    gradcheck_lstm(config(3, 2), Some(&[4, 2]));
}

#[test]
fn gradcheck_reference_lstm_stacked_bidirectional_masked() {
    let cfg = LstmConfig { num_layers: 2, bidirectional: true, fused: false, ..config(2, 2) };
    gradcheck_lstm(cfg, Some(&[3, 4]));
}

#[test]
fn gradcheck_fused_lstm_stacked_bidirectional() {
    let cfg = LstmConfig { num_layers: 2, bidirectional: true, ..config(2, 2) };
    gradcheck_lstm(cfg, Some(&[1, 4]));
}

#[test]
fn masked_final_state_is_the_state_at_the_last_real_step() {
    let lstm = Lstm::<f64>::new(config(3, 4), &mut StdRng::seed_from_u64(0));
    let x = randn(&[1, 6, 3], 9);
    let full = lstm.forward_full(&x.narrow(1, 0, 4), None, None);
    let masked = lstm.forward_full(&x, None, Some(&Mask::from_lengths(&[4], 6)));
    assert_all_close(&full.state.h, &masked.state.h);
    assert_all_close(&full.state.c, &masked.state.c);
    // Padded steps output zeros.
    assert!(masked.output.narrow(1, 4, 2).to_vec().iter().all(|&v| v == 0.0));
}

#[test]
fn reverse_direction_reads_each_sequence_from_its_last_real_step() {
    let cfg = LstmConfig { bidirectional: true, ..config(2, 3) };
    let lstm = Lstm::<f64>::new(cfg, &mut StdRng::seed_from_u64(0));
    let x = randn(&[1, 5, 2], 4);
    let short = lstm.forward_full(&x.narrow(1, 0, 3), None, None);
    let padded = lstm.forward_full(&x, None, Some(&Mask::from_lengths(&[3], 5)));
    assert_all_close(&short.state.h, &padded.state.h);
    assert_all_close(&short.output, &padded.output.narrow(1, 0, 3));
}

#[test]
#[should_panic(expected = "cannot be differentiated twice")]
fn fused_lstm_refuses_a_recorded_backward() {
    let lstm = Lstm::<f64>::new(config(2, 2), &mut StdRng::seed_from_u64(0));
    let x = randn(&[1, 3, 2], 1).requires_grad();
    lstm.forward(&x).sum().backward_with_graph();
}

#[test]
fn reference_lstm_has_second_derivatives() {
    let cfg = LstmConfig { fused: false, ..config(2, 2) };
    let result = gradcheck(
        |xs| {
            let lstm = Lstm::<f64>::new(cfg.clone(), &mut StdRng::seed_from_u64(0));
            let y = lstm.forward(&xs[0]).powf(2.0).sum();
            let g = y.backward_with_graph();
            g.get(&xs[0]).unwrap().sum()
        },
        &[randn(&[1, 3, 2], 2)],
    );
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

#[test]
#[should_panic(expected = "Lstm: expected input [batch, seq, 3], got [2, 3]")]
fn wrong_rank_input_names_the_module() {
    let lstm = Lstm::<f32>::new(config(3, 2), &mut StdRng::seed_from_u64(0));
    lstm.forward(&Tensor::zeros(&[2, 3]));
}

#[test]
#[should_panic(expected = "Lstm: expected input [batch, seq, 3], got [2, 5, 4]")]
fn wrong_feature_size_names_the_module() {
    let lstm = Lstm::<f32>::new(config(3, 2), &mut StdRng::seed_from_u64(0));
    lstm.forward(&Tensor::zeros(&[2, 5, 4]));
}

#[test]
fn parameter_names_follow_pytorch() {
    let cfg = LstmConfig { num_layers: 2, bidirectional: true, ..config(3, 4) };
    let lstm = Lstm::<f32>::new(cfg, &mut StdRng::seed_from_u64(0));
    let names: Vec<(String, Vec<usize>)> =
        lstm.named_parameters().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
    assert_eq!(names[0], ("weight_ih_l0".to_string(), vec![16, 3]));
    assert_eq!(names[1], ("weight_hh_l0".to_string(), vec![16, 4]));
    assert_eq!(names[4], ("weight_ih_l0_reverse".to_string(), vec![16, 3]));
    assert_eq!(names[8], ("weight_ih_l1".to_string(), vec![16, 8]));
    assert_eq!(names.len(), 16);
}

// ---------------------------------------------------------------------------------------------
// GRU
// ---------------------------------------------------------------------------------------------

use tensorgrad::nn::{Gru, GruConfig};

/// `v[i] = 0.5·sin(0.37·i + k)`, the filling used by tests/fixtures/gru/make_reference.py.
fn filled(shape: &[usize], k: usize) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| 0.5 * (0.37 * i as f64 + k as f64).sin()).collect(), shape)
}

fn reference_line(name: &str) -> Vec<f64> {
    let text = include_str!("fixtures/gru/reference.txt");
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap();
    let list = line[name.len() + 1..].trim().trim_start_matches('[').trim_end_matches(']');
    list.split(',').map(|v| v.trim().parse().unwrap()).collect()
}

#[test]
fn gru_matches_pytorch() {
    // PyTorch nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True), float64.
    let cfg = GruConfig { num_layers: 2, bidirectional: true, return_sequences: true, ..GruConfig::new(3, 4) };
    let gru = Gru::<f64>::new(cfg, &mut StdRng::seed_from_u64(0));
    let params: Vec<Tensor<f64>> =
        gru.named_parameters().iter().enumerate().map(|(k, (_, p))| filled(p.shape(), k)).collect();
    gru.bind_parameters(&params);
    let out = gru.forward_full(&filled(&[2, 5, 3], 100), None, None);
    for (got, want) in [(out.output, reference_line("output")), (out.h, reference_line("h"))] {
        for (a, b) in got.to_vec().iter().zip(&want) {
            assert_relative_eq!(*a, *b, epsilon = 1e-14);
        }
        assert_eq!(got.numel(), want.len());
    }
}

#[test]
fn gradcheck_gru_stacked_bidirectional_masked() {
    let cfg = GruConfig { num_layers: 2, bidirectional: true, ..GruConfig::new(2, 3) };
    let gru = Gru::<f64>::new(cfg, &mut StdRng::seed_from_u64(1));
    let mask = Mask::from_lengths(&[2, 4], 4);
    let mut inputs = vec![randn(&[2, 4, 2], 8)];
    inputs.extend(gru.named_parameters().iter().map(|(_, p)| Tensor::from_vec(p.to_vec(), p.shape())));
    let result = gradcheck(
        |xs| {
            gru.bind_parameters(&xs[1..]);
            let out = gru.forward_full(&xs[0], None, Some(&mask));
            Tensor::cat(&[out.output.reshape(&[out.output.numel()]), out.h.reshape(&[out.h.numel()])], 0)
        },
        &inputs,
    );
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

#[test]
fn gru_parameter_shapes_follow_pytorch() {
    let gru = Gru::<f32>::new(GruConfig::new(3, 4), &mut StdRng::seed_from_u64(0));
    let shapes: Vec<(String, Vec<usize>)> =
        gru.named_parameters().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
    assert_eq!(
        shapes,
        vec![
            ("weight_ih_l0".to_string(), vec![12, 3]),
            ("weight_hh_l0".to_string(), vec![12, 4]),
            ("bias_ih_l0".to_string(), vec![12]),
            ("bias_hh_l0".to_string(), vec![12]),
        ]
    );
}

#[test]
#[should_panic(expected = "Gru: expected input [batch, seq, 3], got [2, 3]")]
fn gru_wrong_rank_names_the_module() {
    Gru::<f32>::new(GruConfig::new(3, 2), &mut StdRng::seed_from_u64(0)).forward(&Tensor::zeros(&[2, 3]));
}
