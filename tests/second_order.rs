//! Second (and third) derivatives through `backward_with_graph`, checked against closed forms,
//! against finite differences of gradients, and with `gradcheck` on closures that themselves
//! differentiate.

use approx::relative_eq;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tensorgrad::{GradcheckOptions, Tensor, gradcheck, gradcheck_with};

/// Elementwise comparison with a relative tolerance and an absolute floor of `rel · max|want|`.
#[track_caller]
fn assert_all_close(what: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            relative_eq!(g, w, epsilon = rel * scale, max_relative = rel),
            "{what}[{i}]: got {g:e}, expected {w:e} (|diff| {:e}, tolerance {rel:e})",
            (g - w).abs()
        );
    }
}

fn leaf(data: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(data.to_vec(), shape).requires_grad()
}

fn sigma(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The gradient of the scalar `s` with respect to each of `wrt`, recorded so it can be
/// differentiated again, flattened and joined into one vector (zeros where `s` does not depend
/// on an input).
fn flat_grad(s: &Tensor<f64>, wrt: &[Tensor<f64>]) -> Tensor<f64> {
    let grads = s.backward_with_graph();
    let parts: Vec<Tensor<f64>> = wrt
        .iter()
        .map(|t| match grads.get(t) {
            Some(g) => g.reshape(&[t.numel()]),
            None => Tensor::zeros(&[t.numel()]),
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// Fixed, distinct weights of both signs with the shape of `y`, so that `Σ y ⊙ w` depends on
/// every element of `y`.
fn weights_like(y: &Tensor<f64>) -> Tensor<f64> {
    let w = (0..y.numel()).map(|i| (0.4 + 0.37 * (i % 7) as f64) * if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    Tensor::from_vec(w, y.shape())
}

// ---------------------------------------------------------------------------------------------
// Elementwise functions: f'' against closed forms
// ---------------------------------------------------------------------------------------------

/// Values where every function below is defined (ln and sqrt need x > 0).
const POSITIVE: [f64; 6] = [0.15, 0.4, 0.9, 1.3, 2.2, 3.7];
/// Values of both signs for functions defined everywhere.
const ANY: [f64; 7] = [-2.3, -1.1, -0.35, 0.05, 0.6, 1.4, 2.8];

/// Checks f' and f'' of an elementwise `f` over a vector: since the Hessian of `Σ f(xᵢ)` is
/// diagonal, differentiating `Σ f'(xᵢ)` gives f''(xᵢ) element by element.
#[track_caller]
fn check_elementwise(
    name: &str,
    xs: &[f64],
    f: impl Fn(&Tensor<f64>) -> Tensor<f64>,
    d1: impl Fn(f64) -> f64,
    d2: impl Fn(f64) -> f64,
) {
    let x = leaf(xs, &[xs.len()]);
    let y = f(&x).sum();
    let g = y.backward_with_graph().get(&x).unwrap_or_else(|| panic!("{name}: no gradient")).clone();
    assert!(g.needs_grad(), "{name}: f' must carry a graph");
    let want1: Vec<f64> = xs.iter().map(|&v| d1(v)).collect();
    assert_all_close(&format!("{name}: f'"), &g.to_vec(), &want1, 1e-12);
    let h = g.sum().backward();
    let got2 = h.get(&x).unwrap_or_else(|| panic!("{name}: no second derivative")).to_vec();
    let want2: Vec<f64> = xs.iter().map(|&v| d2(v)).collect();
    assert_all_close(&format!("{name}: f''"), &got2, &want2, 1e-12);
}

#[test]
fn cube_second_derivative() {
    // f = x³, f' = 3x², f'' = 6x
    check_elementwise("powf(3)", &ANY, |x| x.powf(3.0), |x| 3.0 * x * x, |x| 6.0 * x);
    // The same through the product rule: f = x·x·x
    check_elementwise("x*x*x", &ANY, |x| &(x * x) * x, |x| 3.0 * x * x, |x| 6.0 * x);
}

#[test]
fn exp_2x_second_derivative() {
    // f = e^{2x}, f' = 2e^{2x}, f'' = 4e^{2x}
    check_elementwise("exp(2x)", &ANY, |x| (x * 2.0).exp(), |x| 2.0 * (2.0 * x).exp(), |x| 4.0 * (2.0 * x).exp());
}

#[test]
fn ln_second_derivative() {
    // f = ln x, f' = 1/x, f'' = −1/x²
    check_elementwise("ln", &POSITIVE, |x| x.ln(), |x| 1.0 / x, |x| -1.0 / (x * x));
}

#[test]
fn x_sigmoid_second_derivative() {
    // f = x·σ(x) (SiLU), f' = σ + x·σ(1−σ), f'' = σ(1−σ)·(2 + x·(1−2σ))
    check_elementwise(
        "x*sigmoid(x)",
        &ANY,
        |x| x * &x.sigmoid(),
        |x| sigma(x) + x * sigma(x) * (1.0 - sigma(x)),
        |x| sigma(x) * (1.0 - sigma(x)) * (2.0 + x * (1.0 - 2.0 * sigma(x))),
    );
}

#[test]
fn sigmoid_second_derivative() {
    // f = σ, f' = σ(1−σ), f'' = σ(1−σ)(1−2σ)
    check_elementwise(
        "sigmoid",
        &ANY,
        |x| x.sigmoid(),
        |x| sigma(x) * (1.0 - sigma(x)),
        |x| sigma(x) * (1.0 - sigma(x)) * (1.0 - 2.0 * sigma(x)),
    );
}

#[test]
fn tanh_second_derivative() {
    // f = tanh x, f' = 1 − tanh², f'' = −2·tanh·(1 − tanh²)
    check_elementwise(
        "tanh",
        &ANY,
        |x| x.tanh(),
        |x| 1.0 - x.tanh().powi(2),
        |x| -2.0 * x.tanh() * (1.0 - x.tanh().powi(2)),
    );
}

#[test]
fn sqrt_second_derivative() {
    // f = √x, f' = 1/(2√x), f'' = −1/(4·x^{3/2})
    check_elementwise("sqrt", &POSITIVE, |x| x.sqrt(), |x| 0.5 / x.sqrt(), |x| -0.25 / x.powf(1.5));
}

#[test]
fn reciprocal_second_derivative() {
    // f = 1/x, f' = −1/x², f'' = 2/x³, through `scalar / tensor` (powf(−1)) and through `div`
    check_elementwise("1.0 / x", &POSITIVE, |x| 1.0 / x, |x| -1.0 / (x * x), |x| 2.0 / (x * x * x));
    check_elementwise(
        "ones.div(x)",
        &POSITIVE,
        |x| Tensor::ones(x.shape()).div(x),
        |x| -1.0 / (x * x),
        |x| 2.0 / (x * x * x),
    );
}

#[test]
fn softplus_second_derivative() {
    // f = ln(1 + eˣ), f' = σ(x), f'' = σ(1−σ)
    check_elementwise("softplus", &ANY, |x| (x.exp() + 1.0).ln(), sigma, |x| sigma(x) * (1.0 - sigma(x)));
}

#[test]
fn quotient_second_derivative() {
    // f = x / (1 + x²), f' = (1 − x²)/(1 + x²)², f'' = 2x(x² − 3)/(1 + x²)³
    check_elementwise(
        "x/(1+x^2)",
        &ANY,
        |x| x / &(x * x + 1.0),
        |x| (1.0 - x * x) / (1.0 + x * x).powi(2),
        |x| 2.0 * x * (x * x - 3.0) / (1.0 + x * x).powi(3),
    );
}

#[test]
fn third_derivatives() {
    // f = x⁴: f''' = 24x;  f = e^{−x}: f''' = −e^{−x};  f = tanh: f''' = −2(1−t²)(1−3t²)
    let x = leaf(&ANY, &[ANY.len()]);
    type Case = (&'static str, fn(&Tensor<f64>) -> Tensor<f64>, fn(f64) -> f64);
    let cases: [Case; 3] = [
        ("x^4", |x| x.powf(4.0), |x| 24.0 * x),
        ("exp(-x)", |x| x.neg().exp(), |x| -(-x).exp()),
        (
            "tanh",
            |x| x.tanh(),
            |x| {
                let t = x.tanh();
                -2.0 * (1.0 - t * t) * (1.0 - 3.0 * t * t)
            },
        ),
    ];
    for (name, f, d3) in cases {
        let g1 = f(&x).sum().backward_with_graph().get(&x).unwrap().clone();
        let g2 = g1.sum().backward_with_graph().get(&x).unwrap().clone();
        assert!(g2.needs_grad(), "{name}: f'' must carry a graph");
        let g3 = g2.sum().backward().get(&x).unwrap().to_vec();
        let want: Vec<f64> = ANY.iter().map(|&v| d3(v)).collect();
        assert_all_close(&format!("{name}: f'''"), &g3, &want, 1e-12);
    }
}

#[test]
fn second_derivative_of_linear_function_is_absent() {
    // f = 3x + 1: f' = 3 is a constant, so it has no graph and nothing to differentiate.
    let x = leaf(&ANY, &[ANY.len()]);
    let g = (&x * 3.0 + 1.0).sum().backward_with_graph().get(&x).unwrap().clone();
    assert_eq!(g.to_vec(), vec![3.0; ANY.len()]);
    assert!(!g.needs_grad());
    assert!(g.sum().backward().get(&x).is_none());
}

// ---------------------------------------------------------------------------------------------
// Physics-informed MLP: u(x) = W2·tanh(W1·x + b1) + b2
// ---------------------------------------------------------------------------------------------

struct Mlp {
    w1: Tensor<f64>, // [d, h]
    b1: Tensor<f64>, // [h]
    w2: Tensor<f64>, // [h, 1]
    b2: Tensor<f64>, // [1]
}

impl Mlp {
    fn new(d: usize, h: usize, seed: u64) -> Mlp {
        let mut rng = StdRng::seed_from_u64(seed);
        Mlp {
            w1: Tensor::randn(&[d, h], 0.0, 1.0, &mut rng).requires_grad(),
            b1: Tensor::randn(&[h], 0.0, 0.5, &mut rng).requires_grad(),
            w2: Tensor::randn(&[h, 1], 0.0, 1.0, &mut rng).requires_grad(),
            b2: Tensor::randn(&[1], 0.0, 0.5, &mut rng).requires_grad(),
        }
    }

    fn params(&self) -> [Tensor<f64>; 4] {
        [self.w1.clone(), self.b1.clone(), self.w2.clone(), self.b2.clone()]
    }
}

/// Batched rows: x [n, d] → u [n, 1].
fn mlp_forward(x: &Tensor<f64>, w1: &Tensor<f64>, b1: &Tensor<f64>, w2: &Tensor<f64>, b2: &Tensor<f64>) -> Tensor<f64> {
    (x.matmul(w1) + b1).tanh().matmul(w2) + b2
}

/// `(∂u/∂x [n, d], ∂²u/∂x_k² [n, d])` from the closed form, per sample:
/// z = W1ᵀx + b1, ∂u/∂x_k = Σ_j W2_j·tanh'(z_j)·W1_kj, ∂²u/∂x_k² = Σ_j W2_j·tanh''(z_j)·W1_kj²,
/// with tanh' = 1 − t² and tanh'' = −2t(1 − t²).
fn mlp_closed_form(x: &[f64], n: usize, d: usize, mlp: &Mlp) -> (Vec<f64>, Vec<f64>) {
    let (w1, b1, w2) = (mlp.w1.to_vec(), mlp.b1.to_vec(), mlp.w2.to_vec());
    let h = b1.len();
    let mut du = vec![0.0; n * d];
    let mut d2u = vec![0.0; n * d];
    for s in 0..n {
        for j in 0..h {
            let z: f64 = b1[j] + (0..d).map(|k| x[s * d + k] * w1[k * h + j]).sum::<f64>();
            let t = z.tanh();
            let t1 = 1.0 - t * t;
            let t2 = -2.0 * t * t1;
            for k in 0..d {
                du[s * d + k] += w2[j] * t1 * w1[k * h + j];
                d2u[s * d + k] += w2[j] * t2 * w1[k * h + j] * w1[k * h + j];
            }
        }
    }
    (du, d2u)
}

#[test]
fn mlp_second_derivative_wrt_scalar_input() {
    // One input dim: u_xx = W2·(tanh''(W1 x + b1) ⊙ W1²) for every sample of the batch.
    let mlp = Mlp::new(1, 7, 11);
    let xs = [-1.7, -0.9, -0.2, 0.0, 0.45, 1.1, 2.0];
    let x = leaf(&xs, &[xs.len(), 1]);
    let u = mlp_forward(&x, &mlp.w1, &mlp.b1, &mlp.w2, &mlp.b2);
    // Samples are independent, so ∂(Σu)/∂x holds each sample's du/dx.
    let ux = u.sum().backward_with_graph().get(&x).unwrap().clone();
    let uxx = ux.sum().backward().get(&x).unwrap().to_vec();
    let (du, d2u) = mlp_closed_form(&xs, xs.len(), 1, &mlp);
    assert_all_close("u_x", &ux.to_vec(), &du, 1e-12);
    assert_all_close("u_xx", &uxx, &d2u, 1e-12);
}

#[test]
fn mlp_laplacian_wrt_vector_input() {
    // Two input dims: each diagonal entry ∂²u/∂x_k² from one more backward on column k of ∇u.
    let mlp = Mlp::new(2, 6, 5);
    let (n, d) = (5, 2);
    let xs = [-1.2, 0.3, 0.8, -0.5, 0.1, 1.6, -0.7, -1.4, 1.9, 0.25];
    let x = leaf(&xs, &[n, d]);
    let u = mlp_forward(&x, &mlp.w1, &mlp.b1, &mlp.w2, &mlp.b2);
    let ux = u.sum().backward_with_graph().get(&x).unwrap().clone();
    let (du, d2u) = mlp_closed_form(&xs, n, d, &mlp);
    assert_all_close("∇u", &ux.to_vec(), &du, 1e-12);
    let mut diag = vec![0.0; n * d];
    for k in 0..d {
        let col = ux.narrow(1, k, 1).sum().backward().get(&x).unwrap().to_vec();
        for s in 0..n {
            diag[s * d + k] = col[s * d + k];
        }
    }
    assert_all_close("∂²u/∂x_k²", &diag, &d2u, 1e-12);
    let lap: Vec<f64> = (0..n).map(|s| diag[s * d] + diag[s * d + 1]).collect();
    let want: Vec<f64> = (0..n).map(|s| d2u[s * d] + d2u[s * d + 1]).collect();
    assert_all_close("Δu", &lap, &want, 1e-12);
}

#[test]
fn pinn_residual_loss_gradient_passes_gradcheck() {
    // Physics-informed loss for u'' + u = 0: L = mean((u_xx + u)²). Its gradient with respect
    // to the weights (and the collocation points) needs third derivatives of the network.
    let mlp = Mlp::new(1, 5, 3);
    let xs = [-1.3, -0.4, 0.2, 0.9, 1.7];
    let x = Tensor::from_vec(xs.to_vec(), &[xs.len(), 1]);
    let [w1, b1, w2, b2] = mlp.params();
    gradcheck(
        |v| {
            let u = mlp_forward(&v[0], &v[1], &v[2], &v[3], &v[4]);
            let ux = u.sum().backward_with_graph().get(&v[0]).unwrap().clone();
            let uxx = ux.sum().backward_with_graph().get(&v[0]).unwrap().clone();
            (uxx + &u).powf(2.0).mean()
        },
        &[x, w1, b1, w2, b2],
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Hessian-vector products of functions of a matrix
// ---------------------------------------------------------------------------------------------

/// `f(W) = Σ softmax(X·W, dim 1) ⊙ C` (C makes it non-constant) `+ 0.1·Σ ln(1 + (X·W)²)`.
fn softmax_objective(x: &Tensor<f64>, c: &Tensor<f64>, w: &Tensor<f64>) -> Tensor<f64> {
    let z = x.matmul(w);
    (z.softmax(1) * c).sum() + (&z * &z + 1.0).ln().sum() * 0.1
}

/// Mean logistic loss with L2: `mean(ln(1 + exp(−y ⊙ X·w))) + λ/2·‖w‖²` (w is a vector).
const LAMBDA: f64 = 0.05;
fn logistic_objective(x: &Tensor<f64>, y: &Tensor<f64>, w: &Tensor<f64>) -> Tensor<f64> {
    let margin = x.matmul(w) * y;
    (margin.neg().exp() + 1.0).ln().mean() + (w * w).sum() * (LAMBDA / 2.0)
}

/// ∇f at `w` (a fresh leaf each time).
fn gradient_at(f: &impl Fn(&Tensor<f64>) -> Tensor<f64>, w: &[f64], shape: &[usize]) -> Vec<f64> {
    let w = leaf(w, shape);
    f(&w).backward().get(&w).unwrap().to_vec()
}

/// H·v through double backward: ∂/∂w ⟨∇f(w), v⟩.
fn hvp(f: &impl Fn(&Tensor<f64>) -> Tensor<f64>, w: &[f64], shape: &[usize], v: &[f64]) -> Vec<f64> {
    let w = leaf(w, shape);
    let g = f(&w).backward_with_graph().get(&w).unwrap().clone();
    g.backward_with_grad(&Tensor::from_vec(v.to_vec(), shape)).get(&w).unwrap().to_vec()
}

/// (∇f(w + εv) − ∇f(w − εv)) / 2ε
fn hvp_central_difference(
    f: &impl Fn(&Tensor<f64>) -> Tensor<f64>,
    w: &[f64],
    shape: &[usize],
    v: &[f64],
    eps: f64,
) -> Vec<f64> {
    let shifted = |s: f64| -> Vec<f64> { w.iter().zip(v).map(|(a, b)| a + s * b).collect() };
    let gp = gradient_at(f, &shifted(eps), shape);
    let gm = gradient_at(f, &shifted(-eps), shape);
    gp.iter().zip(&gm).map(|(p, m)| (p - m) / (2.0 * eps)).collect()
}

fn random_vec(n: usize, std: f64, rng: &mut StdRng) -> Vec<f64> {
    Tensor::<f64>::randn(&[n], 0.0, std, rng).to_vec()
}

#[test]
fn softmax_objective_hvp_matches_finite_differences() {
    let mut rng = StdRng::seed_from_u64(2024);
    let (n, k, m) = (6, 4, 3);
    let x = Tensor::from_vec(random_vec(n * k, 1.0, &mut rng), &[n, k]);
    let c = Tensor::from_vec(random_vec(n * m, 1.0, &mut rng), &[n, m]);
    let w = random_vec(k * m, 0.7, &mut rng);
    let f = |w: &Tensor<f64>| softmax_objective(&x, &c, w);
    for trial in 0..3 {
        let v = random_vec(k * m, 1.0, &mut rng);
        let got = hvp(&f, &w, &[k, m], &v);
        let want = hvp_central_difference(&f, &w, &[k, m], &v, 1e-5);
        assert_all_close(&format!("H·v (trial {trial})"), &got, &want, 1e-7);
        assert!(got.iter().any(|h| h.abs() > 1e-3), "H·v should not vanish");
    }
}

#[test]
fn softmax_objective_hessian_is_symmetric() {
    // Build the full 12×12 Hessian from H·eᵢ and check H = Hᵀ.
    let mut rng = StdRng::seed_from_u64(7);
    let (n, k, m) = (5, 4, 3);
    let x = Tensor::from_vec(random_vec(n * k, 1.0, &mut rng), &[n, k]);
    let c = Tensor::from_vec(random_vec(n * m, 1.0, &mut rng), &[n, m]);
    let w = random_vec(k * m, 0.7, &mut rng);
    let f = |w: &Tensor<f64>| softmax_objective(&x, &c, w);
    let p = k * m;
    let rows: Vec<Vec<f64>> = (0..p)
        .map(|i| {
            let mut e = vec![0.0; p];
            e[i] = 1.0;
            hvp(&f, &w, &[k, m], &e)
        })
        .collect();
    let scale = rows.iter().flatten().fold(0.0f64, |a, b| a.max(b.abs()));
    for (i, row) in rows.iter().enumerate() {
        for (j, &hij) in row.iter().enumerate().take(i) {
            let hji = rows[j][i];
            assert!((hij - hji).abs() <= 1e-13 * scale.max(1.0), "H[{i}][{j}] = {hij:e} but H[{j}][{i}] = {hji:e}");
        }
    }
}

#[test]
fn logistic_loss_hvp_matches_closed_form_and_finite_differences() {
    // H = Xᵀ·diag(σ(mᵢ)(1 − σ(mᵢ)))·X / n + λI with margins m = y ⊙ X·w (y ∈ {−1, 1}).
    let mut rng = StdRng::seed_from_u64(99);
    let (n, k) = (8, 4);
    let xv = random_vec(n * k, 1.0, &mut rng);
    let yv: Vec<f64> = (0..n).map(|i| if i % 3 == 0 { -1.0 } else { 1.0 }).collect();
    let x = Tensor::from_vec(xv.clone(), &[n, k]);
    let y = Tensor::from_vec(yv.clone(), &[n]);
    let w = random_vec(k, 0.8, &mut rng);
    let v = random_vec(k, 1.0, &mut rng);
    let f = |w: &Tensor<f64>| logistic_objective(&x, &y, w);

    let mut want = vec![0.0; k];
    for i in 0..n {
        let row = &xv[i * k..(i + 1) * k];
        let m = yv[i] * row.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
        let s = sigma(m) * (1.0 - sigma(m));
        let xv_dot: f64 = row.iter().zip(&v).map(|(a, b)| a * b).sum();
        for (wj, &xj) in want.iter_mut().zip(row) {
            *wj += s * xv_dot * xj / n as f64;
        }
    }
    for (wj, vj) in want.iter_mut().zip(&v) {
        *wj += LAMBDA * vj;
    }

    let got = hvp(&f, &w, &[k], &v);
    assert_all_close("logistic H·v vs closed form", &got, &want, 1e-12);
    let fd = hvp_central_difference(&f, &w, &[k], &v, 1e-5);
    assert_all_close("logistic H·v vs finite differences", &got, &fd, 1e-7);
}

// ---------------------------------------------------------------------------------------------
// Gradient penalties
// ---------------------------------------------------------------------------------------------

/// Critic D(x) = tanh(x·W1 + b1)·W2, one score per row of x.
fn critic(x: &Tensor<f64>, w1: &Tensor<f64>, b1: &Tensor<f64>, w2: &Tensor<f64>) -> Tensor<f64> {
    (x.matmul(w1) + b1).tanh().matmul(w2)
}

fn critic_params(seed: u64) -> [Tensor<f64>; 3] {
    let mut rng = StdRng::seed_from_u64(seed);
    [
        Tensor::randn(&[3, 5], 0.0, 0.8, &mut rng),
        Tensor::randn(&[5], 0.0, 0.3, &mut rng),
        Tensor::randn(&[5, 1], 0.0, 0.8, &mut rng),
    ]
}

/// ∇ₓD for each row, recorded so it can be differentiated again.
fn critic_input_grad(x: &Tensor<f64>, w1: &Tensor<f64>, b1: &Tensor<f64>, w2: &Tensor<f64>) -> Tensor<f64> {
    critic(x, w1, b1, w2).sum().backward_with_graph().get(x).unwrap().clone()
}

#[test]
fn critic_input_gradient_matches_closed_form() {
    // ∇ₓD = W1·(W2 ⊙ (1 − tanh²(z))) per row, z = x·W1 + b1.
    let [w1, b1, w2] = critic_params(1);
    let xs = [0.3, -1.2, 0.7, 1.5, 0.1, -0.4, -0.8, 0.9, 1.1, 0.05, -0.6, 0.2];
    let x = leaf(&xs, &[4, 3]);
    let got = critic_input_grad(&x, &w1, &b1, &w2).to_vec();
    let (w1v, b1v, w2v) = (w1.to_vec(), b1.to_vec(), w2.to_vec());
    let mut want = vec![0.0; 12];
    for s in 0..4 {
        for j in 0..5 {
            let z = b1v[j] + (0..3).map(|k| xs[s * 3 + k] * w1v[k * 5 + j]).sum::<f64>();
            let dz = w2v[j] * (1.0 - z.tanh().powi(2));
            for k in 0..3 {
                want[s * 3 + k] += w1v[k * 5 + j] * dz;
            }
        }
    }
    assert_all_close("∇ₓD", &got, &want, 1e-12);
}

#[test]
fn squared_gradient_norm_penalty_passes_gradcheck() {
    // P = Σ ‖∇ₓD(x)‖², differentiated with respect to D's weights and to x itself.
    let [w1, b1, w2] = critic_params(2);
    let x = Tensor::from_vec(vec![0.3, -1.2, 0.7, 1.5, 0.1, -0.4, -0.8, 0.9, 1.1, 0.05, -0.6, 0.2], &[4, 3]);
    gradcheck(
        |v| {
            let gx = critic_input_grad(&v[0], &v[1], &v[2], &v[3]);
            (&gx * &gx).sum()
        },
        &[x, w1, b1, w2],
    )
    .unwrap();
}

#[test]
fn wgan_gp_critic_loss_passes_gradcheck() {
    // WGAN-GP: L = mean D(fake) − mean D(real) + 10·mean((‖∇ₓD(x̂)‖ − 1)²) at interpolates
    // x̂ = α·real + (1 − α)·fake, differentiated with respect to the critic's weights only.
    let [w1, b1, w2] = critic_params(3);
    let mut rng = StdRng::seed_from_u64(33);
    let real = Tensor::<f64>::randn(&[4, 3], 1.0, 0.5, &mut rng);
    let fake = Tensor::<f64>::randn(&[4, 3], -0.5, 0.7, &mut rng);
    let alpha = Tensor::<f64>::rand_uniform(&[4, 1], 0.1, 0.9, &mut rng);
    let x_hat = (&alpha * &real + &(1.0 - &alpha) * &fake).to_vec();
    let loss = |v: &[Tensor<f64>]| {
        let (w1, b1, w2) = (&v[0], &v[1], &v[2]);
        let xh = leaf(&x_hat, &[4, 3]);
        let gx = critic_input_grad(&xh, w1, b1, w2);
        let norm = (&gx * &gx).sum_dim(1, false).sqrt();
        let gp = (norm - 1.0).powf(2.0).mean();
        critic(&fake, w1, b1, w2).mean() - critic(&real, w1, b1, w2).mean() + gp * 10.0
    };
    gradcheck(loss, &[w1.clone(), b1.clone(), w2.clone()]).unwrap();
    // The penalty's gradient must reach every weight.
    let params = [w1.requires_grad(), b1.requires_grad(), w2.requires_grad()];
    let grads = loss(&params).backward();
    for (name, p) in ["W1", "b1", "W2"].iter().zip(&params) {
        let g = grads.get(p).unwrap_or_else(|| panic!("no gradient for {name}"));
        assert!(g.to_vec().iter().any(|v| v.abs() > 1e-6), "{name}: zero gradient");
    }
}

// ---------------------------------------------------------------------------------------------
// Every op's backward is itself differentiable: gradcheck on the gradient (i.e. the Hessian)
// ---------------------------------------------------------------------------------------------

#[test]
fn gradients_of_unary_and_shape_ops_pass_gradcheck() {
    // Values away from 0, ±0.5 and ties, so relu / abs / clamp / max stay off their kinks.
    let x =
        Tensor::from_vec(vec![0.31, -1.17, 0.72, 1.53, -0.26, -0.41, -0.83, 0.94, 1.12, 0.07, -0.64, 0.22], &[3, 4]);
    type Op = (&'static str, fn(&Tensor<f64>) -> Tensor<f64>);
    let ops: [Op; 20] = [
        ("tanh", |x| x.tanh()),
        ("sigmoid", |x| x.sigmoid()),
        ("exp", |x| (x * 0.7).exp()),
        ("ln", |x| (x * x + 0.5).ln()),
        ("sqrt", |x| (x * x + 0.5).sqrt()),
        ("powf(-1.5)", |x| (x * x + 0.5).powf(-1.5)),
        ("abs*x", |x| &x.abs() * x),
        ("relu^2", |x| x.relu().powf(2.0)),
        ("clamp*x", |x| &x.clamp(-0.5, 0.5) * x),
        ("softmax(1)", |x| x.softmax(1)),
        ("log_softmax(0)", |x| x.log_softmax(0)),
        ("x·xᵀ", |x| x.matmul(&x.t())),
        ("xᵀ·x narrowed", |x| x.t().matmul(x).narrow(0, 0, 3)),
        ("permute·x", |x| &x.reshape(&[3, 2, 2]).permute(&[2, 0, 1]).contiguous().reshape(&[3, 4]) * x),
        ("max_dim²", |x| x.max_dim(1, true).0.powf(2.0) * x),
        ("gather²", |x| x.gather(0, &[2, 0, 1, 2]).powf(2.0)),
        ("index_select²", |x| x.index_select(1, &[3, 0, 0]).powf(2.0)),
        ("cat", |x| Tensor::cat(&[x.tanh(), x * x], 1)),
        ("row sums / x", |x| &x.sum_dim(1, true) * &x.mean_dim(0, true) / &(x * x + 1.0)),
        ("broadcast", |x| (x.sum_dim(0, false) * x).exp()),
    ];
    for (name, op) in ops {
        let result = gradcheck(
            |v| {
                let y = op(&v[0]);
                flat_grad(&(&y * &weights_like(&y)).sum(), &v[..1])
            },
            std::slice::from_ref(&x),
        );
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn gradients_of_binary_ops_pass_gradcheck() {
    let a = Tensor::from_vec(vec![0.31, -1.17, 0.72, 1.53, -0.26, -0.41], &[2, 3]);
    let b = Tensor::from_vec(vec![1.2, 0.8, -0.6, 1.4, -1.1, 0.9], &[2, 3]);
    let row = Tensor::from_vec(vec![0.7, -1.3, 1.6], &[3]);
    type Op = (&'static str, fn(&Tensor<f64>, &Tensor<f64>) -> Tensor<f64>);
    let ops: [Op; 6] = [
        ("a*b", |a, b| a * b),
        ("a/b", |a, b| a / b),
        ("tanh(a)*exp(b)", |a, b| &a.tanh() * &b.exp()),
        ("a - b²", |a, b| a - &(b * b)),
        ("a·bᵀ", |a, b| a.matmul(&b.t())),
        ("aᵀ·tanh(b)", |a, b| a.t().matmul(&b.tanh())),
    ];
    for (name, op) in ops {
        let result = gradcheck(
            |v| {
                let y = op(&v[0], &v[1]);
                flat_grad(&(&y * &weights_like(&y)).sum(), &v[..2])
            },
            &[a.clone(), b.clone()],
        );
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
    }
    // Broadcast operands: a [2, 3] with a row [3].
    gradcheck(
        |v| flat_grad(&((&v[0] * &v[1]).tanh() / &(&v[1] * &v[1] + 1.0)).sum(), &v[..2]),
        &[a.clone(), row.clone()],
    )
    .unwrap();
    // With tighter tolerances than PyTorch's defaults.
    let opts = GradcheckOptions { eps: 1e-5, atol: 1e-8, rtol: 1e-6 };
    gradcheck_with(|v| flat_grad(&(&v[0] * &v[1].exp()).powf(2.0).sum(), &v[..2]), &[a, b], opts).unwrap();
}

#[test]
fn gradients_of_batched_and_vector_matmul_pass_gradcheck() {
    let mut rng = StdRng::seed_from_u64(41);
    let a = Tensor::<f64>::randn(&[2, 3, 4], 0.0, 1.0, &mut rng);
    let w = Tensor::<f64>::randn(&[4, 2], 0.0, 1.0, &mut rng);
    let v = Tensor::<f64>::randn(&[4], 0.0, 1.0, &mut rng);
    // [2, 3, 4] × [4, 2]: the weight is broadcast over the batch.
    gradcheck(
        |t| {
            let y = t[0].matmul(&t[1]).tanh();
            flat_grad(&(&y * &weights_like(&y)).sum(), &t[..2])
        },
        &[a.clone(), w.clone()],
    )
    .unwrap();
    // [4] × [4, 2] and [2, 3, 4] × [4]: the 1-D cases.
    gradcheck(
        |t| {
            let y = t[1].matmul(&t[2]).sigmoid().sum() + t[0].matmul(&t[1]).powf(2.0).sum();
            flat_grad(&y, &t[..3])
        },
        &[a, v, w],
    )
    .unwrap();
}

#[test]
fn jacobian_vector_product_via_double_backward() {
    // For y = f(x), g(v) = Jᵀv is linear in v, so ∂⟨g(v), u⟩/∂v = J·u: a forward-mode product
    // from two reverse passes (the output gradient v itself must be differentiable).
    // Here f(x) = tanh(x·A) for a row vector x, so J·u = (1 − tanh²(x·A)) ⊙ (u·A).
    let mut rng = StdRng::seed_from_u64(5);
    let (k, m) = (4, 3);
    let a = Tensor::<f64>::randn(&[k, m], 0.0, 1.0, &mut rng);
    let xv = random_vec(k, 1.0, &mut rng);
    let uv = random_vec(k, 1.0, &mut rng);
    let x = leaf(&xv, &[k]);
    let v = Tensor::<f64>::zeros(&[m]).requires_grad();
    let y = x.matmul(&a).tanh();
    let g = y.backward_with_grad_and_graph(&v).get(&x).unwrap().clone();
    assert_eq!(g.to_vec(), vec![0.0; k], "Jᵀ·0 = 0");
    let jvp = g.backward_with_grad(&Tensor::from_vec(uv.clone(), &[k])).get(&v).expect("no gradient for v").to_vec();
    let av = a.to_vec();
    let want: Vec<f64> = (0..m)
        .map(|j| {
            let z: f64 = (0..k).map(|i| xv[i] * av[i * m + j]).sum();
            let ua: f64 = (0..k).map(|i| uv[i] * av[i * m + j]).sum();
            (1.0 - z.tanh().powi(2)) * ua
        })
        .collect();
    assert_all_close("J·u", &jvp, &want, 1e-12);
}

#[test]
fn graph_can_be_differentiated_twice() {
    // Two second-order passes over one recorded gradient give the same answer, and the
    // recorded gradient stays usable as a value in between.
    let x = leaf(&ANY, &[ANY.len()]);
    let g = (x.tanh() * &x).sum().backward_with_graph().get(&x).unwrap().clone();
    let before = g.to_vec();
    let h1 = g.sum().backward().get(&x).unwrap().to_vec();
    let h2 = (&g * 1.0).sum().backward().get(&x).unwrap().to_vec();
    assert_eq!(h1, h2);
    assert_eq!(g.to_vec(), before);
    // f = x·tanh x, f'' = 2(1 − t²) − 2x·t(1 − t²)
    let want: Vec<f64> = ANY
        .iter()
        .map(|&x| {
            let t = x.tanh();
            2.0 * (1.0 - t * t) - 2.0 * x * t * (1.0 - t * t)
        })
        .collect();
    assert_all_close("(x tanh x)''", &h1, &want, 1e-12);
}
