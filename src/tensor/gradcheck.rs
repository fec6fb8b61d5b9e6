//! A public finite-difference gradient checker.

use std::fmt;

use crate::tensor::handle::Tensor;

/// Tolerances for [`gradcheck_with`]. An element passes when
/// `|analytic − numeric| ≤ atol + rtol·|numeric|`.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Step of the central difference.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    /// PyTorch's defaults: `eps = 1e-6`, `atol = 1e-5`, `rtol = 1e-3`.
    fn default() -> Self {
        GradcheckOptions { eps: 1e-6, atol: 1e-5, rtol: 1e-3 }
    }
}

/// The first element whose analytic gradient disagrees with the central difference.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckError {
    /// Which input (position in the slice given to `gradcheck`).
    pub input: usize,
    /// The element's multi-dimensional index in that input.
    pub index: Vec<usize>,
    /// The gradient computed by backward.
    pub analytic: f64,
    /// The central-difference estimate.
    pub numeric: f64,
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradcheck: input {} element {:?}: backward gives {:.9e}, central difference gives {:.9e} (difference {:.3e})",
            self.input,
            self.index,
            self.analytic,
            self.numeric,
            (self.analytic - self.numeric).abs()
        )
    }
}

impl std::error::Error for GradcheckError {}

/// Checks the gradients of `f` at `inputs` against central differences, with PyTorch's default
/// tolerances. See [`gradcheck_with`].
///
/// ```
/// use tensorgrad::{Tensor, gradcheck};
/// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0, 0.7], &[2, 2]);
/// gradcheck(|v| v[0].tanh().matmul(&v[0].t()), &[x]).unwrap();
/// ```
pub fn gradcheck(f: impl Fn(&[Tensor<f64>]) -> Tensor<f64>, inputs: &[Tensor<f64>]) -> Result<(), GradcheckError> {
    gradcheck_with(f, inputs, GradcheckOptions::default())
}

/// Checks the gradients of `f` at `inputs` against central differences.
///
/// `f` may return a tensor of any shape: the checked scalar is `Σ f(x) ⊙ w` for fixed weights
/// `w` that differ per element, so every output element is checked. Each input is copied into
/// a fresh contiguous leaf; apply views (transpose, narrow, broadcast) inside `f` to check ops
/// on non-contiguous operands. Because the numeric side evaluates `f` with leaves that need
/// gradients, `f` may itself call `backward_with_graph` (that is how second derivatives are
/// checked).
pub fn gradcheck_with(
    f: impl Fn(&[Tensor<f64>]) -> Tensor<f64>,
    inputs: &[Tensor<f64>],
    opts: GradcheckOptions,
) -> Result<(), GradcheckError> {
    let leaves: Vec<Tensor<f64>> =
        inputs.iter().map(|t| Tensor::from_vec(t.to_vec(), t.shape()).requires_grad()).collect();
    let out = f(&leaves);
    let weights = Tensor::from_vec(output_weights(out.numel()), out.shape());
    let scalar = |xs: &[Tensor<f64>]| -> f64 {
        let y = f(xs);
        y.to_vec().iter().zip(weights.to_vec()).map(|(a, b)| a * b).sum()
    };
    let grads = out.backward_with_grad(&weights);
    for (i, leaf) in leaves.iter().enumerate() {
        let analytic = grads.get(leaf).map(|g| g.to_vec()).unwrap_or_else(|| vec![0.0; leaf.numel()]);
        let base = leaf.to_vec();
        for j in 0..base.len() {
            let eval_at = |delta: f64| {
                let mut v = base.clone();
                v[j] += delta;
                let mut xs = leaves.clone();
                xs[i] = Tensor::from_vec(v, leaf.shape()).requires_grad();
                scalar(&xs)
            };
            let numeric = (eval_at(opts.eps) - eval_at(-opts.eps)) / (2.0 * opts.eps);
            let a = analytic[j];
            let within = (a - numeric).abs() <= opts.atol + opts.rtol * numeric.abs();
            if !within {
                return Err(GradcheckError { input: i, index: unravel(j, leaf.shape()), analytic: a, numeric });
            }
        }
    }
    Ok(())
}

/// Distinct, deterministic weights in `[0.5, 1.5)` with alternating signs.
fn output_weights(n: usize) -> Vec<f64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|i| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            let w = 0.5 + u;
            if i % 2 == 0 { w } else { -w }
        })
        .collect()
}

fn unravel(mut j: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = j % shape[d];
        j /= shape[d];
    }
    idx
}
