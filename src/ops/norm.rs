//! Normalisation over the trailing dims: `layer_norm` and `rms_norm`, with PyTorch's semantics.
//!
//! The forward pass is one kernel per row (`kernels::norm`) that returns the normalised values
//! and each row's `1/σ`, saved for the backward pass. The backward pass is the closed form
//! `∂x = (1/σ)·(g − mean(g) − x̂·mean(g·x̂))` (layer norm; RMS norm drops `mean(g)`): one kernel
//! pass per row for a first-order backward, and the same formula written with ops when the
//! backward is itself recorded (second order), with `1/σ` recomputed from the input so that its
//! own dependence on the input is part of the graph.

use crate::kernels::Par;
use crate::kernels::norm::{NormKind, normalize, normalize_backward};
use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;
use crate::tensor::shape::numel;

impl<E: Element> Tensor<E> {
    /// Layer normalisation over the trailing dims `normalized_shape` (PyTorch's
    /// `F.layer_norm`): each slice is shifted to mean 0 and scaled to variance 1 (the biased
    /// variance, plus `eps` under the root), then multiplied by `weight` and shifted by `bias`
    /// where given (both of shape `normalized_shape`).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 4.0, 4.0], &[2, 3]);
    /// let y = x.layer_norm(&[3], None, None, 1e-5);
    /// let row = y.to_vec();
    /// assert!((row[0] + row[2]).abs() < 1e-12 && row[1].abs() < 1e-12); // mean 0
    /// assert!(row[3..].iter().all(|v| v.abs() < 1e-12)); // a constant row normalises to 0
    /// ```
    ///
    /// # Panics
    /// If `normalized_shape` is empty or not the input's trailing dims, or `weight`/`bias` do not
    /// have that shape.
    #[track_caller]
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor<E>>,
        bias: Option<&Tensor<E>>,
        eps: f64,
    ) -> Tensor<E> {
        let y = self.normalized("layer_norm", NormKind::Layer, normalized_shape, eps);
        affine("layer_norm", y, normalized_shape, weight, bias)
    }

    /// RMS normalisation over the trailing dims `normalized_shape` (PyTorch's `F.rms_norm`):
    /// `x / √(mean(x²) + eps) · weight`. `eps: None` takes PyTorch's default, the machine epsilon
    /// of the element type.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let x = Tensor::from_vec(vec![3.0f64, 4.0], &[1, 2]);
    /// let y = x.rms_norm(&[2], None, Some(0.0));
    /// let rms = (12.5f64).sqrt();
    /// assert!((y.to_vec()[0] - 3.0 / rms).abs() < 1e-12);
    /// ```
    ///
    /// # Panics
    /// As [`layer_norm`](Self::layer_norm).
    #[track_caller]
    pub fn rms_norm(&self, normalized_shape: &[usize], weight: Option<&Tensor<E>>, eps: Option<f64>) -> Tensor<E> {
        let eps = eps.unwrap_or_else(|| E::epsilon().to_f64().unwrap_or(f64::EPSILON));
        let y = self.normalized("rms_norm", NormKind::Rms, normalized_shape, eps);
        affine("rms_norm", y, normalized_shape, weight, None)
    }

    /// The normalised input `x̂`, recorded with its backward.
    #[track_caller]
    fn normalized(&self, op: &'static str, kind: NormKind, normalized_shape: &[usize], eps: f64) -> Tensor<E> {
        let (shape, nd) = (self.shape(), normalized_shape.len());
        if nd == 0 || shape.len() < nd || shape[shape.len() - nd..] != *normalized_shape {
            panic!(
                "{op}: normalized_shape {normalized_shape:?} is not the trailing dims of the input's shape {shape:?}"
            );
        }
        if !(eps >= 0.0 && eps.is_finite()) {
            panic!("{op}: eps {eps} must be finite and non-negative");
        }
        let n = numel(normalized_shape);
        let x = self.contiguous();
        let data = x.data();
        let off = x.layout().offset();
        let (y, rstd) = normalize(Par::current(), &data[off..off + x.numel()], n, E::of(eps), kind);
        // 1/σ per slice, shaped to broadcast against the input.
        let mut stat_shape = shape.to_vec();
        let lead = shape.len() - nd;
        stat_shape[lead..].fill(1);
        let rstd = Tensor::from_data(rstd, &stat_shape);
        let dims: Vec<usize> = (lead..shape.len()).collect();
        let inv_n = E::one() / E::from_usize(n).unwrap_or_else(E::nan);
        Tensor::from_data(y, shape).record(op, [self.clone()], move |c| {
            let (g, xhat) = (c.grad(), c.out());
            if !crate::is_grad_enabled() {
                // First order: one pass per row over g and x̂.
                let (g, xh) = (g.contiguous(), xhat.contiguous());
                let (gd, xd, sd) = (g.data(), xh.data(), rstd.data());
                let (go, xo) = (g.layout().offset(), xh.layout().offset());
                let m = g.numel();
                let dx = normalize_backward(Par::current(), &gd[go..go + m], &xd[xo..xo + m], &sd[..], n, kind);
                return vec![Some(Tensor::from_data(dx, g.shape()))];
            }
            // Recorded (second order): the closed form with ops, and 1/σ as a function of the
            // input, so that its own dependence on the input is part of the graph.
            let mean = |t: &Tensor<E>| t.sum_dims_keepdim(&dims).mul_scalar(inv_n);
            let x = &c.inputs[0];
            let centred = if kind == NormKind::Layer { x - &mean(x) } else { x.clone() };
            let s = mean(&(&centred * &centred)).add_scalar(E::of(eps)).powf(E::of(-0.5));
            let gx = mean(&(g * xhat));
            let inner = match kind {
                NormKind::Layer => &(g - &mean(g)) - &(xhat * &gx),
                NormKind::Rms => g - &(xhat * &gx),
            };
            vec![Some(&inner * &s)]
        })
    }
}

/// `y · weight + bias`, each checked to have the normalised shape.
#[track_caller]
fn affine<E: Element>(
    op: &str,
    y: Tensor<E>,
    normalized_shape: &[usize],
    weight: Option<&Tensor<E>>,
    bias: Option<&Tensor<E>>,
) -> Tensor<E> {
    for (what, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t
            && t.shape() != normalized_shape
        {
            panic!("{op}: {what} has shape {:?}, normalized_shape is {normalized_shape:?}", t.shape());
        }
    }
    let y = match weight {
        Some(w) => &y * w,
        None => y,
    };
    match bias {
        Some(b) => &y + b,
        None => y,
    }
}
