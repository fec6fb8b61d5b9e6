//! Optimizers, schedules and optimizer state against PyTorch.
//!
//! The numbers in `tests/fixtures/optim/optim.txt` were made by
//! `tests/fixtures/optim/make_fixture.py` (PyTorch, float64, `foreach=False`): each optimizer
//! configuration runs 5 steps on two parameters with fixed gradients (written into the file),
//! and the parameters after every step are recorded; at step 3 the second parameter has no
//! gradient. The schedules record their learning rate per epoch. Re-run the script to
//! regenerate the file; these tests only read it and never need Python.
//!
//! Fixture format: one record per line, `name d0 d1 ... : v0 v1 ...` (shape before the colon,
//! row-major values after it, written with Python's `repr`, so they parse back to the exact
//! `f64`). Lines starting with `#` are comments.

use std::collections::HashMap;

use approx::relative_eq;
use tensorgrad::nn::{Linear, Module};
use tensorgrad::optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, AdamWConfig, CosineAnnealingLr, ExponentialLr, LinearWarmup,
    LrScheduler, Optimizer, ParamList, PlateauConfig, ReduceLrOnPlateau, RmsProp, RmsPropConfig, Sgd, SgdConfig,
    StepLr, clip_grad_norm,
};
use tensorgrad::{Element, Error, Gradients, Tensor};

const FIXTURE: &str = include_str!("fixtures/optim/optim.txt");
const STEPS: usize = 5;
/// Relative tolerance against PyTorch in f64 (with an absolute floor of the same size times the
/// largest magnitude of the expected tensor).
const REL_F64: f64 = 1e-12;

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

struct Record {
    shape: Vec<usize>,
    values: Vec<f64>,
}

fn fixture() -> HashMap<String, Record> {
    let mut records = HashMap::new();
    for (lineno, line) in FIXTURE.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, tail) = line.split_once(':').unwrap_or_else(|| panic!("fixture line {}: no ':'", lineno + 1));
        let mut head = head.split_whitespace();
        let name = head.next().unwrap_or_else(|| panic!("fixture line {}: no name", lineno + 1)).to_string();
        let shape: Vec<usize> = head.map(|d| d.parse().expect("fixture: bad dim")).collect();
        let values: Vec<f64> = tail.split_whitespace().map(|v| v.parse().expect("fixture: bad value")).collect();
        assert_eq!(values.len(), shape.iter().product::<usize>(), "fixture line {}: {name}", lineno + 1);
        assert!(records.insert(name.clone(), Record { shape, values }).is_none(), "fixture: duplicate {name}");
    }
    records
}

fn record<'a>(fx: &'a HashMap<String, Record>, name: &str) -> &'a Record {
    fx.get(name).unwrap_or_else(|| panic!("fixture has no record {name:?}"))
}

fn tensor<E: Element>(r: &Record) -> Tensor<E> {
    Tensor::from_vec(r.values.iter().map(|&v| E::of(v)).collect(), &r.shape)
}

/// Fresh copies of the two initial parameters, as leaves.
fn params<E: Element>(fx: &HashMap<String, Record>) -> Vec<Tensor<E>> {
    (0..2).map(|k| tensor(record(fx, &format!("param.{k}"))).requires_grad()).collect()
}

/// The gradients of step `s` (1-based) for `params` (parameter 1 has none at step 3).
fn grads_at<E: Element>(fx: &HashMap<String, Record>, s: usize, params: &[Tensor<E>]) -> Gradients<E> {
    let mut g = Gradients::new();
    for (k, p) in params.iter().enumerate() {
        if let Some(r) = fx.get(&format!("grad.{s}.{k}")) {
            g.insert(p, tensor(r));
        }
    }
    g
}

/// Every configuration of the fixture, built as in `make_fixture.py`.
const CONFIGS: [&str; 12] = [
    "sgd_plain",
    "sgd_momentum",
    "sgd_nesterov",
    "sgd_weight_decay",
    "adam",
    "adam_amsgrad_wd",
    "adamw",
    "adamw_amsgrad",
    "rmsprop",
    "rmsprop_centered_momentum",
    "adagrad",
    "adagrad_decay",
];

/// The optimizer of configuration `name` over `params` (tensors, or named tensors).
fn make<E: Element>(name: &str, params: impl Into<ParamList<E>>) -> Box<dyn Optimizer<E>> {
    match name {
        "sgd_plain" => Box::new(Sgd::new(params, SgdConfig { lr: 0.1, ..Default::default() })),
        "sgd_momentum" => {
            Box::new(Sgd::new(params, SgdConfig { lr: 0.1, momentum: 0.9, dampening: 0.1, ..Default::default() }))
        }
        "sgd_nesterov" => {
            Box::new(Sgd::new(params, SgdConfig { lr: 0.05, momentum: 0.8, nesterov: true, ..Default::default() }))
        }
        "sgd_weight_decay" => {
            Box::new(Sgd::new(params, SgdConfig { lr: 0.1, momentum: 0.9, weight_decay: 0.01, ..Default::default() }))
        }
        "adam" => Box::new(Adam::new(params, AdamConfig { lr: 0.01, ..Default::default() })),
        "adam_amsgrad_wd" => Box::new(Adam::new(
            params,
            AdamConfig { lr: 0.02, betas: (0.8, 0.9), eps: 1e-6, weight_decay: 0.1, amsgrad: true },
        )),
        "adamw" => Box::new(AdamW::new(params, AdamWConfig { lr: 0.01, weight_decay: 0.05, ..Default::default() })),
        "adamw_amsgrad" => Box::new(AdamW::new(
            params,
            AdamWConfig { lr: 0.03, betas: (0.7, 0.9), amsgrad: true, ..Default::default() },
        )),
        "rmsprop" => Box::new(RmsProp::new(params, RmsPropConfig { lr: 0.01, ..Default::default() })),
        "rmsprop_centered_momentum" => Box::new(RmsProp::new(
            params,
            RmsPropConfig { lr: 0.005, alpha: 0.9, eps: 1e-6, weight_decay: 0.02, momentum: 0.7, centered: true },
        )),
        "adagrad" => Box::new(Adagrad::new(params, AdagradConfig { lr: 0.1, ..Default::default() })),
        "adagrad_decay" => Box::new(Adagrad::new(
            params,
            AdagradConfig { lr: 0.1, lr_decay: 0.05, weight_decay: 0.01, initial_accumulator_value: 0.1, eps: 1e-8 },
        )),
        _ => panic!("unknown configuration {name}"),
    }
}

#[track_caller]
fn assert_close(what: &str, actual: &[f64], expected: &[f64], rel: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            relative_eq!(*a, *e, epsilon = rel * scale, max_relative = rel),
            "{what}[{i}]: got {a:e}, PyTorch {e:e} (relative difference {:e})\n  got      {actual:?}\n  expected {expected:?}",
            ((a - e) / e).abs()
        );
    }
}

/// Runs configuration `name` for all steps and compares every parameter after every step.
fn check_golden<E: Element>(name: &str, rel: f64) {
    let fx = fixture();
    let ps: Vec<Tensor<E>> = params(&fx);
    let mut opt = make(name, ps.clone());
    for s in 1..=STEPS {
        opt.step(&grads_at(&fx, s, &ps));
        for (k, p) in ps.iter().enumerate() {
            let expected = record(&fx, &format!("{name}.{s}.{k}"));
            assert_eq!(p.shape(), &expected.shape[..]);
            let actual: Vec<f64> = p.to_vec().iter().map(|v| v.to_f64().unwrap()).collect();
            assert_close(&format!("{name} step {s} parameter {k}"), &actual, &expected.values, rel);
        }
    }
}

macro_rules! golden_tests {
    ($($test:ident => $name:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            check_golden::<f64>($name, REL_F64);
        }
    )*};
}

golden_tests! {
    golden_sgd_plain => "sgd_plain",
    golden_sgd_momentum_dampening => "sgd_momentum",
    golden_sgd_nesterov => "sgd_nesterov",
    golden_sgd_weight_decay => "sgd_weight_decay",
    golden_adam => "adam",
    golden_adam_amsgrad_weight_decay => "adam_amsgrad_wd",
    golden_adamw => "adamw",
    golden_adamw_amsgrad => "adamw_amsgrad",
    golden_rmsprop => "rmsprop",
    golden_rmsprop_centered_momentum => "rmsprop_centered_momentum",
    golden_adagrad => "adagrad",
    golden_adagrad_lr_decay_weight_decay => "adagrad_decay",
}

#[test]
fn every_configuration_of_the_fixture_is_replayed() {
    let fx = fixture();
    let suffix = format!(".{STEPS}.0");
    let mut in_fixture: Vec<&str> =
        fx.keys().filter_map(|k| k.strip_suffix(&suffix)).filter(|&n| n != "grad").collect();
    in_fixture.sort_unstable();
    let mut ours = CONFIGS.to_vec();
    ours.sort_unstable();
    assert_eq!(in_fixture, ours);
}

#[test]
fn f32_optimizers_track_the_f64_golden_values() {
    for name in CONFIGS {
        check_golden::<f32>(name, 2e-5);
    }
}

// ---------------------------------------------------------------------------------------------
// Schedules
// ---------------------------------------------------------------------------------------------

fn rates(s: &mut dyn LrScheduler, epochs: usize) -> Vec<f64> {
    let mut v = vec![s.learning_rate()];
    v.extend((0..epochs).map(|_| s.step(None)));
    v
}

#[test]
fn golden_schedules() {
    let fx = fixture();
    let cases: Vec<(&str, Box<dyn LrScheduler>)> = vec![
        ("step_lr", Box::new(StepLr::new(0.1, 3, 0.5))),
        ("exponential_lr", Box::new(ExponentialLr::new(0.1, 0.9))),
        ("cosine_lr", Box::new(CosineAnnealingLr::new(0.1, 4, 0.001))),
        ("linear_warmup", Box::new(LinearWarmup::new(0.1, 4, 0.25))),
    ];
    for (name, mut s) in cases {
        let expected = &record(&fx, &format!("sched.{name}")).values;
        let actual = rates(&mut *s, expected.len() - 1);
        assert_close(name, &actual, expected, REL_F64);
    }
    let metrics = &record(&fx, "sched.plateau.metrics").values;
    let expected = &record(&fx, "sched.plateau").values;
    let cfg =
        PlateauConfig { factor: 0.5, patience: 2, threshold: 0.01, cooldown: 1, min_lr: 0.02, ..Default::default() };
    let mut s = ReduceLrOnPlateau::new(0.1, cfg);
    let actual: Vec<f64> = metrics.iter().map(|&m| s.step(Some(m))).collect();
    assert_close("plateau", &actual, expected, REL_F64);
}

#[test]
fn a_schedule_sets_the_optimizer_learning_rate_down_to_zero() {
    let w = Tensor::<f64>::zeros(&[2]).requires_grad();
    let mut opt = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, ..Default::default() });
    let mut s = CosineAnnealingLr::new(opt.learning_rate(), 2, 0.0);
    s.step_optimizer(&mut opt, None);
    assert!((opt.learning_rate() - 0.05).abs() < 1e-15);
    assert_eq!(s.step_optimizer(&mut opt, None), 0.0);
    assert_eq!(opt.learning_rate(), 0.0);
    // A step with lr 0 leaves the parameters where they are.
    let mut g = Gradients::new();
    g.insert(&w, Tensor::from_vec(vec![1.0, -1.0], &[2]));
    opt.step(&g);
    assert_eq!(w.to_vec(), vec![0.0, 0.0]);
    // Boxed schedules step optimizers too.
    let mut boxed: Box<dyn LrScheduler> = Box::new(StepLr::new(0.1, 1, 0.5));
    boxed.step_optimizer(&mut opt, None);
    assert_eq!(opt.learning_rate(), 0.05);
}

// ---------------------------------------------------------------------------------------------
// State dict and resumption
// ---------------------------------------------------------------------------------------------

fn bits<E: Element>(ps: &[Tensor<E>]) -> Vec<Vec<u64>> {
    ps.iter().map(|p| p.to_vec().iter().map(|v| v.to_f64().unwrap().to_bits()).collect()).collect()
}

/// Runs `name` for `STEPS` steps, or for `split` steps, saves the state, and continues in a
/// new optimizer over new parameter tensors holding the same values.
fn run_with_split<E: Element>(name: &str, split: Option<usize>) -> Vec<Vec<u64>> {
    let fx = fixture();
    let mut ps: Vec<Tensor<E>> = params(&fx);
    let mut opt = make(name, ps.clone());
    for s in 1..=STEPS {
        if Some(s - 1) == split {
            let state = opt.state_dict();
            ps = ps.iter().map(|p| Tensor::from_vec(p.to_vec(), p.shape()).requires_grad()).collect();
            opt = make(name, ps.clone());
            opt.load_state_dict(&state).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(names(&opt.state_dict()), names(&state), "{name}: state after loading");
        }
        opt.step(&grads_at(&fx, s, &ps));
    }
    bits(&ps)
}

fn names<E: Element>(state: &[(String, Tensor<E>)]) -> Vec<&str> {
    state.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn resuming_from_a_state_dict_is_bit_identical() {
    for name in CONFIGS {
        let straight = run_with_split::<f64>(name, None);
        // Split 3 saves a state in which parameter 1 is one step behind parameter 0.
        for split in 1..STEPS {
            assert_eq!(run_with_split::<f64>(name, Some(split)), straight, "{name}, resumed after step {split}");
        }
        assert_eq!(run_with_split::<f32>(name, Some(3)), run_with_split::<f32>(name, None), "{name} in f32");
    }
}

#[test]
fn named_parameters_take_the_same_steps_bit_for_bit_and_key_the_state_by_name() {
    let fx = fixture();
    for name in CONFIGS {
        let ps: Vec<Tensor<f64>> = params(&fx);
        let named: Vec<(String, Tensor<f64>)> =
            ps.iter().enumerate().map(|(k, p)| (format!("layer{k}.weight"), p.clone())).collect();
        let mut opt = make(name, named);
        for s in 1..=STEPS {
            opt.step(&grads_at(&fx, s, &ps));
        }
        assert_eq!(bits(&ps), run_prefix(name, STEPS), "{name}: names changed the trajectory");
        let state = opt.state_dict();
        assert!(
            state.iter().all(|(k, _)| k.starts_with("layer0.weight.") || k.starts_with("layer1.weight.")),
            "{name}"
        );
        assert_eq!(state[0].0, "layer0.weight.step", "{name}");
    }
}

#[test]
fn resuming_without_the_state_is_not_identical() {
    // The check above has teeth: dropping the state changes the trajectory.
    let fx = fixture();
    let ps: Vec<Tensor<f64>> = params(&fx);
    let mut opt = make("adam", ps.clone());
    opt.step(&grads_at(&fx, 1, &ps));
    let mut fresh = make("adam", ps.clone());
    fresh.step(&grads_at(&fx, 2, &ps));
    assert_ne!(bits(&ps), run_prefix("adam", 2));
}

fn run_prefix(name: &str, steps: usize) -> Vec<Vec<u64>> {
    let fx = fixture();
    let ps: Vec<Tensor<f64>> = params(&fx);
    let mut opt = make(name, ps.clone());
    for s in 1..=steps {
        opt.step(&grads_at(&fx, s, &ps));
    }
    bits(&ps)
}

#[test]
fn state_dict_names_follow_pytorch() {
    let fx = fixture();
    let expect: [(&str, &[&str]); 7] = [
        ("sgd_plain", &["step"]),
        ("sgd_momentum", &["step", "momentum_buffer"]),
        ("adam", &["step", "exp_avg", "exp_avg_sq"]),
        ("adam_amsgrad_wd", &["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
        ("rmsprop", &["step", "square_avg"]),
        ("rmsprop_centered_momentum", &["step", "square_avg", "grad_avg", "momentum_buffer"]),
        ("adagrad", &["step", "sum"]),
    ];
    for (name, fields) in expect {
        let ps: Vec<Tensor<f64>> = params(&fx);
        let mut opt = make(name, ps.clone());
        assert!(opt.state_dict().is_empty(), "{name}: no state before the first step");
        // Only parameter 0 gets a gradient: parameter 1 has no state.
        let mut g = Gradients::new();
        g.insert(&ps[0], tensor(record(&fx, "grad.1.0")));
        opt.step(&g);
        let state = opt.state_dict();
        let expected: Vec<String> = fields.iter().map(|f| format!("0.{f}")).collect();
        assert_eq!(names(&state), expected, "{name}");
        assert_eq!(state[0].1.shape(), &[] as &[usize]);
        assert_eq!(state[0].1.item(), 1.0);
        for (_, t) in &state[1..] {
            assert_eq!(t.shape(), ps[0].shape());
        }
        assert_eq!(ps[1].to_vec(), record(&fx, "param.1").values, "{name}: parameter without gradient moved");
    }
}

#[test]
fn adam_state_holds_the_moments() {
    // After one step: m = (1 − β₁)·g, v = (1 − β₂)·g².
    let w = Tensor::<f64>::zeros(&[2]).requires_grad();
    let mut opt = Adam::new(vec![w.clone()], AdamConfig::default());
    let mut g = Gradients::new();
    g.insert(&w, Tensor::from_vec(vec![2.0, -4.0], &[2]));
    opt.step(&g);
    let state: HashMap<String, Vec<f64>> = opt.state_dict().into_iter().map(|(n, t)| (n, t.to_vec())).collect();
    assert_eq!(state["0.step"], vec![1.0]);
    assert_close("exp_avg", &state["0.exp_avg"], &[0.2, -0.4], 1e-14);
    assert_close("exp_avg_sq", &state["0.exp_avg_sq"], &[0.004, 0.016], 1e-12);
}

/// An optimizer state, as `state_dict` returns it.
type State = Vec<(String, Tensor<f64>)>;

/// An Adam (amsgrad) with one step taken and its state.
fn stepped_adam() -> (Vec<Tensor<f64>>, Box<dyn Optimizer<f64>>, State) {
    let fx = fixture();
    let ps: Vec<Tensor<f64>> = params(&fx);
    let mut opt = make("adam_amsgrad_wd", ps.clone());
    opt.step(&grads_at(&fx, 1, &ps));
    let state = opt.state_dict();
    (ps, opt, state)
}

#[track_caller]
fn load_error(state: State) -> (Vec<String>, Vec<String>, Vec<String>, String) {
    let (_, mut opt, before) = stepped_adam();
    let err = opt.load_state_dict(&state).expect_err("load should fail");
    let msg = err.to_string();
    // Nothing changed.
    let after = opt.state_dict();
    assert_eq!(names(&after), names(&before));
    for ((_, a), (_, b)) in after.iter().zip(&before) {
        assert_eq!(a.to_vec(), b.to_vec());
    }
    match err {
        Error::OptimizerState { optimizer, missing, unexpected, invalid } => {
            assert_eq!(optimizer, "Adam");
            (missing, unexpected, invalid, msg)
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn load_state_dict_reports_missing_entries() {
    let (_, _, mut state) = stepped_adam();
    state.retain(|(n, _)| n != "1.exp_avg_sq" && n != "0.step");
    let (missing, unexpected, invalid, msg) = load_error(state);
    assert_eq!(missing, vec!["0.step", "1.exp_avg_sq"]);
    assert!(unexpected.is_empty() && invalid.is_empty());
    assert_eq!(msg, "Adam: cannot load the optimizer state: missing 0.step, 1.exp_avg_sq");
}

#[test]
fn load_state_dict_reports_unexpected_entries() {
    let (_, _, mut state) = stepped_adam();
    for name in ["2.step", "0.momentum_buffer", "01.exp_avg", "step", "x.step"] {
        state.push((name.to_string(), Tensor::scalar(1.0)));
    }
    let (missing, unexpected, invalid, _) = load_error(state);
    assert!(missing.is_empty() && invalid.is_empty());
    assert_eq!(unexpected, vec!["2.step", "0.momentum_buffer", "01.exp_avg", "step", "x.step"]);
}

#[test]
fn load_state_dict_reports_shapes_and_bad_steps() {
    let (_, _, state) = stepped_adam();
    let mut bad: State = state
        .into_iter()
        .map(|(n, t)| match n.as_str() {
            "0.exp_avg" => (n, Tensor::zeros(&[6])),
            "0.step" => (n, Tensor::scalar(1.5)),
            "1.step" => (n, Tensor::from_vec(vec![1.0], &[1])),
            _ => (n, t),
        })
        .collect();
    bad.push(("1.exp_avg".to_string(), Tensor::zeros(&[3])));
    let (missing, unexpected, invalid, msg) = load_error(bad);
    assert!(missing.is_empty() && unexpected.is_empty());
    assert_eq!(
        invalid,
        vec![
            "1.exp_avg (given more than once)",
            "0.step (value 1.5 is not a step count)",
            "0.exp_avg (shape [6], but parameter 0 has shape [2, 3])",
            "1.step (shape [1], expected a scalar of shape [])",
        ]
    );
    assert!(msg.starts_with("Adam: cannot load the optimizer state: invalid 1.exp_avg (given more than once), "));
    for step in [-1.0, f64::NAN, f64::INFINITY] {
        let (_, _, state) = stepped_adam();
        let bad = state.into_iter().map(|(n, t)| if n == "0.step" { (n, Tensor::scalar(step)) } else { (n, t) });
        let (_, _, invalid, _) = load_error(bad.collect());
        assert_eq!(invalid, vec![format!("0.step (value {step} is not a step count)")]);
    }
}

#[test]
fn a_failed_load_leaves_the_optimizer_running_as_before() {
    let fx = fixture();
    let (ps, mut opt, mut state) = stepped_adam();
    state.pop();
    assert!(opt.load_state_dict(&state).is_err());
    opt.step(&grads_at(&fx, 2, &ps));
    assert_eq!(bits(&ps), run_prefix("adam_amsgrad_wd", 2));
}

#[test]
fn loading_an_empty_state_starts_afresh() {
    let fx = fixture();
    let (ps, mut opt, _) = stepped_adam();
    opt.load_state_dict(&[]).unwrap();
    assert!(opt.state_dict().is_empty());
    // The next step is a first step again: same as a fresh optimizer from here.
    let copy: Vec<Tensor<f64>> = ps.iter().map(|p| Tensor::from_vec(p.to_vec(), p.shape()).requires_grad()).collect();
    let mut fresh = make("adam_amsgrad_wd", copy.clone());
    opt.step(&grads_at(&fx, 2, &ps));
    fresh.step(&grads_at(&fx, 2, &copy));
    assert_eq!(bits(&ps), bits(&copy));
}

// ---------------------------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------------------------

#[test]
fn defaults_are_pytorch_defaults() {
    let s = SgdConfig::default();
    assert_eq!((s.lr, s.momentum, s.dampening, s.nesterov, s.weight_decay), (1e-3, 0.0, 0.0, false, 0.0));
    let a = AdamConfig::default();
    assert_eq!((a.lr, a.betas, a.eps, a.weight_decay, a.amsgrad), (1e-3, (0.9, 0.999), 1e-8, 0.0, false));
    let w = AdamWConfig::default();
    assert_eq!((w.lr, w.betas, w.eps, w.weight_decay, w.amsgrad), (1e-3, (0.9, 0.999), 1e-8, 1e-2, false));
    let r = RmsPropConfig::default();
    assert_eq!((r.lr, r.alpha, r.eps, r.weight_decay, r.momentum, r.centered), (1e-2, 0.99, 1e-8, 0.0, 0.0, false));
    let g = AdagradConfig::default();
    assert_eq!((g.lr, g.lr_decay, g.weight_decay, g.initial_accumulator_value, g.eps), (1e-2, 0.0, 0.0, 0.0, 1e-10));
    let p = PlateauConfig::default();
    assert_eq!((p.factor, p.patience, p.threshold, p.cooldown, p.min_lr, p.eps), (0.1, 10, 1e-4, 0, 0.0, 1e-8));
}

#[test]
fn learning_rate_can_be_read_and_set() {
    let mut opt =
        Sgd::new(vec![Tensor::<f32>::zeros(&[1]).requires_grad()], SgdConfig { lr: 0.5, ..Default::default() });
    assert_eq!(opt.learning_rate(), 0.5);
    opt.set_learning_rate(0.25);
    assert_eq!(opt.learning_rate(), 0.25);
    assert_eq!(opt.parameters().len(), 1);
}

#[test]
fn trains_a_linear_model_through_module_parameters() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let model = Linear::<f64>::new(3, 1, &mut rng);
    // y = x·(1, −2, 0.5) + 0.3 on a fixed batch.
    let x = Tensor::<f64>::rand_uniform(&[32, 3], -1.0, 1.0, &mut rng);
    let w_true = Tensor::from_vec(vec![1.0, -2.0, 0.5], &[3, 1]);
    let y = &x.matmul(&w_true) + 0.3;
    let loss_of = |m: &Linear<f64>| (&m.forward(&x) - &y).powf(2.0).mean();
    let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() });
    let mut sched = ExponentialLr::new(0.1, 0.99);
    let first = loss_of(&model).item();
    for _ in 0..200 {
        let mut grads = loss_of(&model).backward();
        clip_grad_norm(&mut grads, 5.0);
        opt.step(&grads);
        sched.step_optimizer(&mut opt, None);
    }
    let last = loss_of(&model).item();
    assert!(last < 1e-6 * first, "loss went from {first} to {last}");
}

#[test]
fn optimizers_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Sgd>();
    check::<Adam<f64>>();
    check::<AdamW>();
    check::<RmsProp>();
    check::<Adagrad>();
    check::<LinearWarmup>();
    check::<ReduceLrOnPlateau>();
}

// ---------------------------------------------------------------------------------------------
// Misuse
// ---------------------------------------------------------------------------------------------

fn one_param() -> Vec<Tensor<f32>> {
    vec![Tensor::zeros(&[2]).requires_grad()]
}

macro_rules! panics {
    ($($test:ident: $expected:literal => $body:expr;)*) => {$(
        #[test]
        #[should_panic(expected = $expected)]
        fn $test() {
            let _ = $body;
        }
    )*};
}

panics! {
    sgd_zero_lr: "Sgd: learning rate must be positive and finite, got 0.0" =>
        Sgd::new(one_param(), SgdConfig { lr: 0.0, ..Default::default() });
    sgd_negative_lr: "Sgd: learning rate must be positive and finite, got -0.1" =>
        Sgd::new(one_param(), SgdConfig { lr: -0.1, ..Default::default() });
    adam_nan_lr: "Adam: learning rate must be positive and finite, got NaN" =>
        Adam::new(one_param(), AdamConfig { lr: f64::NAN, ..Default::default() });
    adamw_infinite_lr: "AdamW: learning rate must be positive and finite, got inf" =>
        AdamW::new(one_param(), AdamWConfig { lr: f64::INFINITY, ..Default::default() });
    sgd_negative_momentum: "Sgd: momentum must be non-negative and finite, got -0.5" =>
        Sgd::new(one_param(), SgdConfig { momentum: -0.5, ..Default::default() });
    sgd_negative_dampening: "Sgd: dampening must be non-negative and finite, got -1.0" =>
        Sgd::new(one_param(), SgdConfig { dampening: -1.0, ..Default::default() });
    sgd_negative_weight_decay: "Sgd: weight_decay must be non-negative and finite, got -0.01" =>
        Sgd::new(one_param(), SgdConfig { weight_decay: -0.01, ..Default::default() });
    sgd_nesterov_without_momentum: "Sgd: nesterov requires a momentum > 0 and zero dampening, got momentum 0.0 and dampening 0.0" =>
        Sgd::new(one_param(), SgdConfig { nesterov: true, ..Default::default() });
    sgd_nesterov_with_dampening: "Sgd: nesterov requires a momentum > 0 and zero dampening, got momentum 0.9 and dampening 0.1" =>
        Sgd::new(one_param(), SgdConfig { nesterov: true, momentum: 0.9, dampening: 0.1, ..Default::default() });
    adam_beta1_one: "Adam: beta1 must be in [0, 1), got 1.0" =>
        Adam::new(one_param(), AdamConfig { betas: (1.0, 0.999), ..Default::default() });
    adam_beta2_negative: "Adam: beta2 must be in [0, 1), got -0.1" =>
        Adam::new(one_param(), AdamConfig { betas: (0.9, -0.1), ..Default::default() });
    adamw_beta2_nan: "AdamW: beta2 must be in [0, 1), got NaN" =>
        AdamW::new(one_param(), AdamWConfig { betas: (0.9, f64::NAN), ..Default::default() });
    adam_negative_eps: "Adam: eps must be non-negative and finite, got -1e-8" =>
        Adam::new(one_param(), AdamConfig { eps: -1e-8, ..Default::default() });
    adam_negative_weight_decay: "Adam: weight_decay must be non-negative and finite, got -0.1" =>
        Adam::new(one_param(), AdamConfig { weight_decay: -0.1, ..Default::default() });
    adamw_negative_weight_decay: "AdamW: weight_decay must be non-negative and finite, got -0.01" =>
        AdamW::new(one_param(), AdamWConfig { weight_decay: -0.01, ..Default::default() });
    rmsprop_alpha_one: "RmsProp: alpha must be in [0, 1), got 1.0" =>
        RmsProp::new(one_param(), RmsPropConfig { alpha: 1.0, ..Default::default() });
    rmsprop_negative_eps: "RmsProp: eps must be non-negative and finite, got -1.0" =>
        RmsProp::new(one_param(), RmsPropConfig { eps: -1.0, ..Default::default() });
    rmsprop_negative_momentum: "RmsProp: momentum must be non-negative and finite, got -0.9" =>
        RmsProp::new(one_param(), RmsPropConfig { momentum: -0.9, ..Default::default() });
    rmsprop_negative_weight_decay: "RmsProp: weight_decay must be non-negative and finite, got -1.0" =>
        RmsProp::new(one_param(), RmsPropConfig { weight_decay: -1.0, ..Default::default() });
    adagrad_zero_lr: "Adagrad: learning rate must be positive and finite, got 0.0" =>
        Adagrad::new(one_param(), AdagradConfig { lr: 0.0, ..Default::default() });
    adagrad_negative_lr_decay: "Adagrad: lr_decay must be non-negative and finite, got -0.1" =>
        Adagrad::new(one_param(), AdagradConfig { lr_decay: -0.1, ..Default::default() });
    adagrad_negative_initial_accumulator: "Adagrad: initial_accumulator_value must be non-negative and finite, got -1.0" =>
        Adagrad::new(one_param(), AdagradConfig { initial_accumulator_value: -1.0, ..Default::default() });
    adagrad_negative_eps: "Adagrad: eps must be non-negative and finite, got -1e-10" =>
        Adagrad::new(one_param(), AdagradConfig { eps: -1e-10, ..Default::default() });
    adagrad_negative_weight_decay: "Adagrad: weight_decay must be non-negative and finite, got -1.0" =>
        Adagrad::new(one_param(), AdagradConfig { weight_decay: -1.0, ..Default::default() });
    duplicate_parameter: "Adam: parameter 1 appears more than once in the parameter list" => {
        let p = one_param().remove(0);
        Adam::new(vec![p.clone(), p], AdamConfig::default())
    };
    non_contiguous_parameter: "Sgd: parameter 0 (shape [3, 2]) is not contiguous" =>
        Sgd::new(vec![Tensor::<f32>::zeros(&[2, 3]).t()], SgdConfig::default());
    negative_learning_rate_set: "Adam: learning rate must be non-negative and finite, got -1.0" =>
        Adam::new(one_param(), AdamConfig::default()).set_learning_rate(-1.0);
    gradient_of_the_wrong_shape: "RmsProp::step: the gradient of parameter 0 has shape [3], but the parameter has shape [2]" => {
        let ps = one_param();
        let mut g = Gradients::new();
        g.insert(&ps[0], Tensor::zeros(&[3]));
        RmsProp::new(ps, RmsPropConfig::default()).step(&g)
    };
}
