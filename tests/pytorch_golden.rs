//! Golden values from PyTorch for composite functions, their gradients and second derivatives.
//!
//! The numbers in `tests/fixtures/composite/composite.txt` were made by
//! `tests/fixtures/composite/make_fixture.py` (PyTorch, float64, `torch.autograd.grad`, with
//! `create_graph=True` for the second-order records). Re-run that script to regenerate them;
//! these tests only read the text file and never need Python.
//!
//! Fixture format: one record per line, `name d0 d1 ... : v0 v1 ...` (shape before the colon,
//! none for a scalar; row-major values after it, written with Python's `repr`, so they parse
//! back to the exact `f64`). Lines starting with `#` are comments.

use std::collections::HashMap;

use approx::relative_eq;
use tensorgrad::{Element, Tensor};

const FIXTURE: &str = include_str!("fixtures/composite/composite.txt");

/// Relative tolerance for the f64 path (with an absolute floor of the same size times the
/// largest magnitude of the expected tensor, for elements that are nearly zero).
const REL_F64: f64 = 1e-12;
/// Relative tolerance for the f32 path, against the same f64 golden values.
const REL_F32: f64 = 1e-5;

struct Record {
    shape: Vec<usize>,
    values: Vec<f64>,
}

struct Fixture {
    records: HashMap<String, Record>,
}

impl Fixture {
    fn load() -> Fixture {
        let mut records = HashMap::new();
        for (lineno, line) in FIXTURE.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (head, tail) =
                line.split_once(':').unwrap_or_else(|| panic!("fixture line {}: no ':' in {line:?}", lineno + 1));
            let mut head = head.split_whitespace();
            let name = head.next().unwrap_or_else(|| panic!("fixture line {}: no name", lineno + 1));
            let shape: Vec<usize> = head
                .map(|d| d.parse().unwrap_or_else(|e| panic!("fixture line {}: bad dim {d:?}: {e}", lineno + 1)))
                .collect();
            let values: Vec<f64> = tail
                .split_whitespace()
                .map(|v| v.parse().unwrap_or_else(|e| panic!("fixture line {}: bad value {v:?}: {e}", lineno + 1)))
                .collect();
            let numel: usize = shape.iter().product();
            assert_eq!(values.len(), numel, "fixture line {}: {name} has shape {shape:?}", lineno + 1);
            let old = records.insert(name.to_string(), Record { shape, values });
            assert!(old.is_none(), "fixture: duplicate record {name}");
        }
        Fixture { records }
    }

    fn get(&self, name: &str) -> &Record {
        self.records.get(name).unwrap_or_else(|| panic!("fixture has no record {name:?}"))
    }

    fn tensor<E: Element>(&self, name: &str) -> Tensor<E> {
        let r = self.get(name);
        Tensor::from_vec(r.values.iter().map(|&v| E::of(v)).collect(), &r.shape)
    }

    fn labels(&self) -> Vec<usize> {
        self.get("labels")
            .values
            .iter()
            .map(|&v| {
                assert!(v >= 0.0 && v.fract() == 0.0, "labels must be non-negative integers, got {v}");
                v as usize
            })
            .collect()
    }
}

/// Checks shape and every element of `got` against the record `name`.
#[track_caller]
fn assert_matches<E: Element>(fx: &Fixture, name: &str, got: &Tensor<E>, rel: f64) {
    let want = fx.get(name);
    assert_eq!(got.shape(), want.shape.as_slice(), "{name}: shape");
    let scale = want.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let abs_floor = rel * scale.max(1e-300);
    let got: Vec<f64> = got.to_vec().iter().map(|v| v.to_f64().unwrap()).collect();
    for (i, (&g, &w)) in got.iter().zip(&want.values).enumerate() {
        assert!(
            relative_eq!(g, w, epsilon = abs_floor, max_relative = rel),
            "{name}[{i}] ({}): got {g:e}, PyTorch {w:e}, |diff| = {:e}, rel = {:e} (allowed {rel:e})",
            E::NAME,
            (g - w).abs(),
            (g - w).abs() / w.abs()
        );
    }
}

struct Inputs<E: Element> {
    x: Tensor<E>,
    w: Tensor<E>,
    b: Tensor<E>,
    y: Tensor<E>,
    labels: Vec<usize>,
}

impl<E: Element> Inputs<E> {
    fn new(fx: &Fixture) -> Self {
        Inputs {
            x: fx.tensor("x").requires_grad(),
            w: fx.tensor("W").requires_grad(),
            b: fx.tensor("b").requires_grad(),
            y: fx.tensor("y"),
            labels: fx.labels(),
        }
    }
}

/// `sum(sigmoid(x @ W + b) * y)`
fn composite1<E: Element>(i: &Inputs<E>) -> Tensor<E> {
    ((i.x.matmul(&i.w) + &i.b).sigmoid() * &i.y).sum()
}

/// `mean(log_softmax(tanh(x @ W) * 2 + b, dim=1) * y) + sum(relu(x)^2) / sum(exp(x * 0.1))`
fn composite2<E: Element>(i: &Inputs<E>) -> Tensor<E> {
    let a = ((i.x.matmul(&i.w).tanh() * E::of(2.0) + &i.b).log_softmax(1) * &i.y).mean();
    let c = i.x.relu().powf(E::of(2.0)).sum() / (&i.x * E::of(0.1)).exp().sum();
    a + c
}

/// Cross-entropy through `gather`, plus terms with sqrt, narrow, abs, softmax over dim 0, clamp,
/// a transposed matmul operand, max_dim, cat, powf, mean_dim, sum_dim and division.
/// Mirrors `composite3` in make_fixture.py term by term.
fn composite3<E: Element>(i: &Inputs<E>) -> Tensor<E> {
    let (x, w, b) = (&i.x, &i.w, &i.b);
    let logits = x.matmul(w) + b;
    let ce = logits.log_softmax(1).gather(1, &i.labels).mean().neg();
    let reg = (x * x + E::of(1.0)).sqrt().sum() * E::of(0.1);
    let mix = (x.narrow(1, 1, 2).abs() * x.matmul(w).softmax(0)).sum();
    let cl = x.clamp(E::of(-0.5), E::of(0.5)).t().matmul(x).mean();
    let mx = x.matmul(w).max_dim(1, false).0.sum();
    let cat = Tensor::cat(&[x.matmul(w), b.unsqueeze(0)], 0);
    let cu = (cat.powf(E::of(3.0)).mean_dim(0, false) / (cat.powf(E::of(2.0)).sum_dim(0, false) + E::of(1.0))).sum();
    ce + reg + mix + cl + mx + cu
}

type Composite<E> = fn(&Inputs<E>) -> Tensor<E>;

fn check_first_order<E: Element>(rel: f64) {
    let fx = Fixture::load();
    let inputs = Inputs::<E>::new(&fx);
    let fns: [(&str, Composite<E>); 3] = [("loss1", composite1), ("loss2", composite2), ("loss3", composite3)];
    for (name, f) in fns {
        let loss = f(&inputs);
        assert_eq!(loss.shape(), &[] as &[usize], "{name}: a scalar");
        assert_matches(&fx, name, &loss, rel);
        let grads = loss.backward();
        assert_eq!(grads.len(), 3, "{name}: gradients for x, W and b");
        assert_matches(&fx, &format!("{name}_dx"), grads.get(&inputs.x).unwrap(), rel);
        assert_matches(&fx, &format!("{name}_dW"), grads.get(&inputs.w).unwrap(), rel);
        assert_matches(&fx, &format!("{name}_db"), grads.get(&inputs.b).unwrap(), rel);
    }
}

/// Hessian-vector products: d/d(x, W, b) of `<∂loss1/∂W, vW>` and of `<∂loss2/∂x, vx>`.
fn check_second_order<E: Element>(rel: f64) {
    let fx = Fixture::load();
    let inputs = Inputs::<E>::new(&fx);

    // Composite 1 along vW, through an explicit `(g · v).sum()` and a plain backward.
    let loss = composite1(&inputs);
    let grads = loss.backward_with_graph();
    // The recorded gradients are the ordinary ones.
    assert_matches(&fx, "loss1_dW", grads.get(&inputs.w).unwrap(), rel);
    assert_matches(&fx, "loss1_dx", grads.get(&inputs.x).unwrap(), rel);
    let gw = grads.get(&inputs.w).unwrap();
    assert!(gw.needs_grad(), "backward_with_graph must return gradients that carry a graph");
    let vw = fx.tensor::<E>("vW");
    let h = (gw * &vw).sum().backward();
    assert_matches(&fx, "hvp1_W_dW", h.get(&inputs.w).unwrap(), rel);
    assert_matches(&fx, "hvp1_W_dx", h.get(&inputs.x).unwrap(), rel);
    assert_matches(&fx, "hvp1_W_db", h.get(&inputs.b).unwrap(), rel);

    // Composite 2 along vx, with the direction given as the output gradient of dL/dx.
    let loss = composite2(&inputs);
    let grads = loss.backward_with_graph();
    assert_matches(&fx, "loss2_dx", grads.get(&inputs.x).unwrap(), rel);
    let gx = grads.get(&inputs.x).unwrap();
    let vx = fx.tensor::<E>("vx");
    let h = gx.backward_with_grad(&vx);
    assert_matches(&fx, "hvp2_x_dx", h.get(&inputs.x).unwrap(), rel);
    assert_matches(&fx, "hvp2_x_dW", h.get(&inputs.w).unwrap(), rel);
    assert_matches(&fx, "hvp2_x_db", h.get(&inputs.b).unwrap(), rel);
}

#[test]
fn fixture_is_well_formed() {
    let fx = Fixture::load();
    for (name, shape) in [
        ("x", &[4usize, 3][..]),
        ("W", &[3, 2]),
        ("b", &[2]),
        ("y", &[4, 2]),
        ("vW", &[3, 2]),
        ("vx", &[4, 3]),
        ("labels", &[4]),
        ("loss1", &[]),
        ("loss2", &[]),
        ("loss3", &[]),
        ("hvp1_W_dW", &[3, 2]),
        ("hvp2_x_dx", &[4, 3]),
    ] {
        assert_eq!(fx.get(name).shape, shape, "{name}");
    }
    assert!(fx.labels().iter().all(|&l| l < 2));
}

#[test]
fn composites_match_pytorch_f64() {
    check_first_order::<f64>(REL_F64);
}

#[test]
fn composites_match_pytorch_f32() {
    check_first_order::<f32>(REL_F32);
}

#[test]
fn hessian_vector_products_match_pytorch_f64() {
    check_second_order::<f64>(REL_F64);
}

#[test]
fn hessian_vector_products_match_pytorch_f32() {
    check_second_order::<f32>(REL_F32);
}

/// `backward_with_grad_and_graph` seeded with ones equals `backward_with_graph`, and its
/// result can be differentiated again to the same Hessian-vector product.
#[test]
fn backward_with_grad_and_graph_matches_pytorch_hvp() {
    let fx = Fixture::load();
    let inputs = Inputs::<f64>::new(&fx);
    let loss = composite1(&inputs);
    let grads = loss.backward_with_grad_and_graph(&Tensor::ones(&[]));
    let gw = grads.get(&inputs.w).unwrap();
    assert_matches(&fx, "loss1_dW", gw, REL_F64);
    let h = gw.backward_with_grad(&fx.tensor("vW"));
    assert_matches(&fx, "hvp1_W_dW", h.get(&inputs.w).unwrap(), REL_F64);
    assert_matches(&fx, "hvp1_W_dx", h.get(&inputs.x).unwrap(), REL_F64);
    assert_matches(&fx, "hvp1_W_db", h.get(&inputs.b).unwrap(), REL_F64);
}
