//! Normalisation over the trailing dims: `layer_norm` and `rms_norm`, with PyTorch's semantics.
//!
//! The forward pass is one kernel per row (`kernels::norm`) that returns the normalised values
//! and each row's `1/σ`, saved for the backward pass. The backward pass is the closed form
//! `∂x = (1/σ)·(g − mean(g) − x̂·mean(g·x̂))` (layer norm; RMS norm drops `mean(g)`): one kernel
//! pass per row for a first-order backward, and the same formula written with ops when the
//! backward is itself recorded (second order), with `1/σ` recomputed from the input so that its
//! own dependence on the input is part of the graph.
//!
//! `batch_norm` normalises each channel over the batch and the spatial positions instead
//! (`kernels::norm::batch_norm_forward`/`batch_norm_backward`): one op whose forward pass is the per-channel moments and one
//! affine pass, and whose first-order backward is the per-channel sums `Σg`, `Σg·(x − μ)` and one
//! pass `A·g + B·(x − μ) + K`; recorded (second order), it is the same formula written with ops.

use crate::kernels::Par;
use crate::kernels::norm::{
    BatchStats, NormKind, Planes, batch_norm_backward, batch_norm_forward, normalize, normalize_backward,
    update_running,
};
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

/// The arguments of [`Tensor::batch_norm`] besides the input, with PyTorch's defaults
/// (`F.batch_norm`): evaluation mode, `momentum` 0.1, `eps` 1e-5, no statistics, no affine part.
///
/// ```
/// use tensorgrad::{BatchNormOptions, Tensor};
/// let opts = BatchNormOptions::<f32> { training: true, ..Default::default() };
/// assert_eq!((opts.momentum, opts.eps), (0.1, 1e-5));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct BatchNormOptions<'a, E: Element> {
    /// The running mean `[C]`, updated in place in training mode; used instead of the batch's
    /// mean in evaluation mode.
    pub running_mean: Option<&'a Tensor<E>>,
    /// The running (unbiased) variance `[C]`, as `running_mean`.
    pub running_var: Option<&'a Tensor<E>>,
    /// The per-channel scale `γ` `[C]`.
    pub weight: Option<&'a Tensor<E>>,
    /// The per-channel shift `β` `[C]`.
    pub bias: Option<&'a Tensor<E>>,
    /// Normalise with the batch's statistics (and update the running ones), rather than with the
    /// running statistics.
    pub training: bool,
    /// The weight of the batch's statistics in the running ones:
    /// `running = (1 − momentum)·running + momentum·batch`.
    pub momentum: f64,
    /// Added to the variance under the square root.
    pub eps: f64,
}

impl<E: Element> Default for BatchNormOptions<'_, E> {
    fn default() -> Self {
        BatchNormOptions {
            running_mean: None,
            running_var: None,
            weight: None,
            bias: None,
            training: false,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

impl<E: Element> Tensor<E> {
    /// Batch normalisation of an input `[N, C, …]` (PyTorch's `F.batch_norm`): each channel is
    /// normalised over the batch and every position,
    /// `y = (x − μ_c) / √(σ²_c + eps) · γ_c + β_c`.
    ///
    /// In training mode (or when no running statistics are given) `μ` and `σ²` are the batch's
    /// mean and biased variance, and the running statistics, if given, are updated in place as
    /// PyTorch does: `running_mean ← (1 − m)·running_mean + m·μ`, `running_var ← (1 − m)·
    /// running_var + m·σ²·M/(M − 1)` (the unbiased variance; `M = N·positions`). In evaluation
    /// mode the running statistics are used and not changed.
    ///
    /// The gradient, for batch statistics:
    /// `∂x = γ/σ · (g − mean(g) − x̂·mean(g·x̂))`, `∂γ = Σ g·x̂`, `∂β = Σ g` (sums per channel).
    ///
    /// ```
    /// use tensorgrad::{BatchNormOptions, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f64, 10.0, 3.0, 30.0], &[2, 2]); // N = 2, C = 2
    /// let rm = Tensor::zeros(&[2]);
    /// let rv = Tensor::ones(&[2]);
    /// let opts = BatchNormOptions { running_mean: Some(&rm), running_var: Some(&rv), training: true, eps: 0.0, ..Default::default() };
    /// let y = x.batch_norm(opts);
    /// assert_eq!(y.to_vec(), [-1.0, -1.0, 1.0, 1.0]);
    /// assert_eq!(rm.to_vec(), [0.2, 2.0]); // 0.9·0 + 0.1·mean
    /// ```
    ///
    /// # Panics
    /// If the input has fewer than two dims, a statistic or affine tensor is not `[C]`, only one
    /// of the running statistics is given, `eps` or `momentum` is negative or not finite, or in
    /// training mode a channel has a single value.
    #[track_caller]
    pub fn batch_norm(&self, opts: BatchNormOptions<'_, E>) -> Tensor<E> {
        let shape = self.shape();
        if shape.len() < 2 {
            panic!("batch_norm: the input must be [N, C, ...], got shape {shape:?}");
        }
        let c = shape[1];
        let p = Planes { n: shape[0], c, s: shape[2..].iter().product() };
        for (what, t) in [
            ("running_mean", opts.running_mean),
            ("running_var", opts.running_var),
            ("weight", opts.weight),
            ("bias", opts.bias),
        ] {
            if let Some(t) = t
                && t.shape() != [c]
            {
                panic!("batch_norm: {what} has shape {:?}, the input {shape:?} has {c} channels", t.shape());
            }
        }
        if opts.running_mean.is_some() != opts.running_var.is_some() {
            panic!("batch_norm: running_mean and running_var must be given together");
        }
        if !(opts.eps >= 0.0 && opts.eps.is_finite()) {
            panic!("batch_norm: eps {} must be finite and non-negative", opts.eps);
        }
        if !(opts.momentum >= 0.0 && opts.momentum.is_finite()) {
            panic!("batch_norm: momentum {} must be finite and non-negative", opts.momentum);
        }
        let running = opts.running_mean.zip(opts.running_var);
        match running {
            Some((rm, rv)) if !opts.training => {
                // Evaluation: a fixed affine map per channel, composed from ops.
                let mut bshape = vec![1; shape.len()];
                bshape[1] = c;
                let mut scale = rv.add_scalar(E::of(opts.eps)).powf(E::of(-0.5));
                if let Some(w) = opts.weight {
                    scale = &scale * w;
                }
                let shift = match opts.bias {
                    Some(b) => b - &(rm * &scale),
                    None => -&(rm * &scale),
                };
                &(self * &scale.reshape(&bshape)) + &shift.reshape(&bshape)
            }
            _ => {
                if p.n * p.s <= 1 {
                    panic!("batch_norm: training needs more than one value per channel, got input of shape {shape:?}");
                }
                self.batch_norm_batch_stats(p, opts, running)
            }
        }
    }

    /// Batch norm with the batch's own statistics, recorded as one op; updates `running`.
    #[track_caller]
    fn batch_norm_batch_stats(
        &self,
        p: Planes,
        opts: BatchNormOptions<'_, E>,
        running: Option<(&Tensor<E>, &Tensor<E>)>,
    ) -> Tensor<E> {
        let x = self.contiguous();
        let data = x.data();
        let xs = &data[x.layout().offset()..][..x.numel()];
        let (w, b) = (opts.weight.map(Tensor::to_vec), opts.bias.map(Tensor::to_vec));
        let BatchStats { y, mean, var, rstd } =
            batch_norm_forward(Par::current(), xs, p, w.as_deref(), b.as_deref(), E::of(opts.eps));
        if let Some((rm, rv)) = running {
            let (m, count) = (E::of(opts.momentum), E::from_usize(p.n * p.s).unwrap_or_else(E::nan));
            rm.update_(|d| update_running(d, &mean, m, E::one()));
            rv.update_(|d| update_running(d, &var, m, count / (count - E::one())));
        }
        let mut inputs = vec![self.clone()];
        let (has_w, has_b) = (opts.weight.is_some(), opts.bias.is_some());
        inputs.extend(opts.weight.cloned());
        inputs.extend(opts.bias.cloned());
        let eps = opts.eps;
        Tensor::from_data(y, self.shape()).record("batch_norm", inputs, move |c| {
            let g = c.grad();
            let shape = g.shape().to_vec();
            let count = E::from_usize(p.n * p.s).unwrap_or_else(E::nan);
            if !crate::is_grad_enabled() {
                // First order: the per-channel sums, then one pass for the input gradient.
                let (g, x) = (g.contiguous(), c.inputs[0].contiguous());
                let (gd, xd) = (g.data(), x.data());
                let gs = &gd[g.layout().offset()..][..g.numel()];
                let xs = &xd[x.layout().offset()..][..x.numel()];
                let w = has_w.then(|| c.inputs[1].to_vec());
                let (dx, dw, db) = batch_norm_backward(Par::current(), gs, xs, p, &mean, &rstd, w.as_deref());
                let mut out = vec![Some(Tensor::from_data(dx, &shape))];
                if has_w {
                    out.push(Some(Tensor::from_data(dw, &[p.c])));
                }
                if has_b {
                    out.push(Some(Tensor::from_data(db, &[p.c])));
                }
                return out;
            }
            // Recorded (second order): the same formula with ops, the statistics recomputed from
            // the input so that their own dependence on it is part of the graph.
            let dims = [0, 2];
            let inv = E::one() / count;
            let mean_of = |t: &Tensor<E>| t.sum_dims_keepdim(&dims).mul_scalar(inv);
            let x = c.inputs[0].reshape(&[p.n, p.c, p.s]);
            let g = g.reshape(&[p.n, p.c, p.s]);
            let xc = &x - &mean_of(&x);
            let s = mean_of(&(&xc * &xc)).add_scalar(E::of(eps)).powf(E::of(-0.5));
            let xhat = &xc * &s;
            let mut scale = s;
            if has_w {
                scale = &scale * &c.inputs[1].reshape(&[1, p.c, 1]);
            }
            let inner = &(&g - &mean_of(&g)) - &(&xhat * &mean_of(&(&g * &xhat)));
            let mut out = vec![Some((&inner * &scale).reshape(&shape))];
            if has_w {
                out.push(Some((&g * &xhat).sum_dims_keepdim(&dims).reshape(&[p.c])));
            }
            if has_b {
                out.push(Some(g.sum_dims_keepdim(&dims).reshape(&[p.c])));
            }
            out
        })
    }
}
