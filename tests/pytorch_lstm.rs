//! Interop with PyTorch: weights saved by `safetensors.torch.save_file` from a
//! `torch.nn.LSTM(5, 7, batch_first=True)` + `torch.nn.Linear(7, 1)` load into the same model
//! here, which then reproduces PyTorch's outputs and gradients.
//!
//! The files in `tests/fixtures/pytorch_lstm/` were made by `make_fixture.py` there (torch,
//! float32): `model.safetensors` (the weights), `input.safetensors` (x, `[3, 6, 5]`) and
//! `expected.txt` (outputs, final states, `y = fc(h_n[-1])`, and the gradients of
//! `sum(sigmoid(y))` with respect to every parameter and x). Re-run the script to regenerate
//! them; these tests only read the files and never need Python.
//!
//! `expected.txt` format: one record per line, `name d0 d1 ... : v0 v1 ...` (shape before the
//! colon, none for a scalar; row-major values after it, float32 values written as the exact
//! decimal of their float64 widening). Lines starting with `#` are comments.

use std::collections::HashMap;
use std::path::PathBuf;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::nn::{Linear, Lstm, LstmConfig, Module, Sequential};
use tensorgrad::{Error, Tensor, io};

const EXPECTED: &str = include_str!("fixtures/pytorch_lstm/expected.txt");

/// Agreement with PyTorch, float32 against float32: `|ours − torch| ≤ TOL · max(1, |torch|)`.
const TOL: f64 = 1e-5;

const PARAM_NAMES: [&str; 6] =
    ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0", "fc.weight", "fc.bias"];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch_lstm").join(name)
}

struct Record {
    shape: Vec<usize>,
    values: Vec<f64>,
}

fn expected() -> HashMap<String, Record> {
    let mut records = HashMap::new();
    for (lineno, line) in EXPECTED.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, tail) = line.split_once(':').unwrap_or_else(|| panic!("line {}: no ':'", lineno + 1));
        let mut head = head.split_whitespace();
        let name = head.next().unwrap_or_else(|| panic!("line {}: no name", lineno + 1)).to_string();
        let shape: Vec<usize> = head.map(|d| d.parse().unwrap()).collect();
        let values: Vec<f64> = tail.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_eq!(values.len(), shape.iter().product::<usize>(), "line {}: {name}", lineno + 1);
        assert!(records.insert(name.clone(), Record { shape, values }).is_none(), "duplicate record {name}");
    }
    records
}

/// Compares against a record; returns the largest absolute difference.
fn check(records: &HashMap<String, Record>, name: &str, got: &Tensor<f32>) -> f64 {
    let r = records.get(name).unwrap_or_else(|| panic!("no record {name:?}"));
    assert_eq!(got.shape(), r.shape.as_slice(), "{name}: shape");
    let mut worst = 0.0f64;
    for (i, (&g, &e)) in got.to_vec().iter().zip(&r.values).enumerate() {
        let diff = (f64::from(g) - e).abs();
        assert!(diff <= TOL * e.abs().max(1.0), "{name}[{i}]: ours {g}, PyTorch {e} (difference {diff:e})");
        worst = worst.max(diff);
    }
    worst
}

/// The model of the fixture, with random weights until loaded.
fn model(fused: bool) -> Sequential<f32> {
    let mut rng = StdRng::seed_from_u64(0);
    Sequential::new()
        .add_named("lstm", Lstm::new(LstmConfig { fused, ..LstmConfig::new(5, 7) }, &mut rng))
        .add_named("fc", Linear::new(7, 1, &mut rng))
}

fn input() -> Tensor<f32> {
    let mut tensors = io::load_tensors::<f32>(fixture("input.safetensors")).unwrap();
    assert_eq!(tensors.len(), 1);
    let (name, x) = tensors.pop().unwrap();
    assert_eq!(name, "x");
    assert_eq!(x.shape(), &[3, 6, 5]);
    x
}

fn check_against_pytorch(fused: bool) {
    let records = expected();
    let model = model(fused);
    io::load_model(&model, fixture("model.safetensors")).unwrap();
    let params = model.named_parameters();
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, PARAM_NAMES);

    // The LSTM on its own, over the same parameter tensors, for the sequence and the states.
    let lstm = Lstm::<f32>::new(LstmConfig { fused, ..LstmConfig::new(5, 7) }, &mut StdRng::seed_from_u64(1));
    lstm.bind_parameters(&params[..4].iter().map(|(_, t)| t.clone()).collect::<Vec<_>>());

    let x = input().requires_grad();
    let full = lstm.forward_full(&x, None, None);
    let mut worst = 0.0f64;
    worst = worst.max(check(&records, "output", &full.output));
    worst = worst.max(check(&records, "h_n", &full.state.h));
    worst = worst.max(check(&records, "c_n", &full.state.c));

    let y = model.forward(&x);
    worst = worst.max(check(&records, "y", &y));
    let loss = y.sigmoid().sum();
    worst = worst.max(check(&records, "loss", &loss));

    let grads = loss.backward();
    for (name, t) in &params {
        let g = grads.get(t).unwrap_or_else(|| panic!("no gradient for {name}"));
        worst = worst.max(check(&records, &format!("grad.{name}"), g));
    }
    worst = worst.max(check(&records, "grad.x", grads.get(&x).expect("no gradient for x")));
    println!("fused = {fused}: largest difference from PyTorch {worst:e}");
}

#[test]
fn fused_lstm_matches_pytorch() {
    check_against_pytorch(true);
}

#[test]
fn reference_lstm_matches_pytorch() {
    check_against_pytorch(false);
}

#[test]
fn pytorch_file_has_the_expected_layout() {
    assert_eq!(io::load_metadata(fixture("model.safetensors")).unwrap(), [("format".to_string(), "pt".to_string())]);
    let tensors = io::load_tensors::<f32>(fixture("model.safetensors")).unwrap();
    let shapes: HashMap<String, Vec<usize>> = tensors.iter().map(|(n, t)| (n.clone(), t.shape().to_vec())).collect();
    let expected: HashMap<String, Vec<usize>> = [
        ("lstm.weight_ih_l0", vec![28, 5]),
        ("lstm.weight_hh_l0", vec![28, 7]),
        ("lstm.bias_ih_l0", vec![28]),
        ("lstm.bias_hh_l0", vec![28]),
        ("fc.weight", vec![1, 7]),
        ("fc.bias", vec![1]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(shapes, expected);
}

#[test]
fn our_file_of_the_pytorch_weights_is_the_same_tensors() {
    let model = model(true);
    io::load_model(&model, fixture("model.safetensors")).unwrap();
    let path = std::env::temp_dir().join(format!("tensorgrad-pytorch-lstm-{}.safetensors", std::process::id()));
    io::save_model(&model, &path).unwrap();
    let ours = io::load_tensors::<f32>(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let theirs = io::load_tensors::<f32>(fixture("model.safetensors")).unwrap();
    let as_map = |v: Vec<(String, Tensor<f32>)>| -> HashMap<String, (Vec<usize>, Vec<u32>)> {
        v.into_iter()
            .map(|(n, t)| (n, (t.shape().to_vec(), t.to_vec().iter().map(|x| x.to_bits()).collect())))
            .collect()
    };
    assert_eq!(as_map(ours), as_map(theirs));
}

#[test]
fn pytorch_float32_weights_do_not_load_into_an_f64_model() {
    let mut rng = StdRng::seed_from_u64(0);
    let model: Sequential<f64> = Sequential::new()
        .add_named("lstm", Lstm::new(LstmConfig::new(5, 7), &mut rng))
        .add_named("fc", Linear::new(7, 1, &mut rng));
    match io::load_model(&model, fixture("model.safetensors")) {
        Err(Error::StateMismatch { wrong_dtype, missing, unexpected, mismatched, .. }) => {
            assert!(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty());
            let names: Vec<&str> = wrong_dtype.iter().map(|(n, _, _)| n.as_str()).collect();
            assert_eq!(names, PARAM_NAMES);
        }
        other => panic!("expected StateMismatch, got {other:?}"),
    }
}
