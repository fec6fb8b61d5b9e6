//! Scaled dot-product attention with PyTorch's semantics
//! (`torch.nn.functional.scaled_dot_product_attention`).
//!
//! The op is fused: `kernels::attention` walks the keys in blocks with an online softmax, so
//! neither the forward nor the backward pass ever holds the `[…, Lq, Lk]` score matrix (memory
//! grows with the sequence length, not its square). The forward pass saves each query row's
//! log-sum-exp; the backward pass recomputes the probabilities from it, block by block. The
//! attention-dropout mask is a counter-based hash of `(seed, batch·head, query, key)`, so the
//! backward pass draws the same mask without storing it, whatever the tiling or the threads.
//!
//! When the backward pass is itself recorded (second order), the gradients are written with
//! tensor ops from the composite form ([`attention_probs`]), which holds the scores.

use crate::kernels::Par;
use crate::kernels::attention::{self as kernel, Operand, Problem};
use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;
use crate::tensor::shape::{numel, try_broadcast_shapes};

/// An attention mask, as PyTorch's `attn_mask` argument.
#[derive(Clone, Copy, Debug)]
pub enum AttnMask<'a, E: Element> {
    /// PyTorch's boolean mask as a 0/1 tensor: a query may attend to a key where it is 1 and
    /// may not where it is 0 (other values are an error).
    Bool(&'a Tensor<E>),
    /// A float mask added to the scaled scores before the softmax: `−∞` blocks a key, finite
    /// values bias it (ALiBi, T5's relative positions). Gradients flow into it when it needs
    /// them.
    Additive(&'a Tensor<E>),
}

impl<'a, E: Element> AttnMask<'a, E> {
    /// The mask tensor.
    pub fn tensor(&self) -> &'a Tensor<E> {
        match *self {
            AttnMask::Bool(t) | AttnMask::Additive(t) => t,
        }
    }
}

/// The optional arguments of [`Tensor::scaled_dot_product_attention`], with PyTorch's names and
/// defaults (no mask, no dropout, not causal, scale `1/√d`).
///
/// ```
/// use tensorgrad::{SdpaOptions, Tensor};
/// let causal = SdpaOptions::<f32> { is_causal: true, ..Default::default() };
/// let scaled = SdpaOptions::<f32> { scale: Some(0.5), ..Default::default() };
/// assert!(causal.attn_mask.is_none() && scaled.dropout_p == 0.0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SdpaOptions<'a, E: Element> {
    /// A mask broadcastable to the scores `[…, Lq, Lk]`; `None` lets every query see every key.
    pub attn_mask: Option<AttnMask<'a, E>>,
    /// The probability of dropping an attention weight (PyTorch applies it whenever it is
    /// non-zero; pass 0 in evaluation, as `nn` modules do).
    pub dropout_p: f64,
    /// The seed of the dropout mask: the same seed drops the same weights (PyTorch draws from
    /// its global generator instead). Modules derive it per step, as [`Dropout`](crate::nn::Dropout)
    /// does.
    pub dropout_seed: u64,
    /// Query `i` sees keys `0..=i` only (the lower triangle aligned at the top left, as
    /// PyTorch's `is_causal`); cannot be combined with `attn_mask`.
    pub is_causal: bool,
    /// The factor on `q·kᵀ`; `None` is `1/√d`, `d` the size of a query.
    pub scale: Option<f64>,
}

impl<E: Element> Default for SdpaOptions<'_, E> {
    fn default() -> Self {
        SdpaOptions { attn_mask: None, dropout_p: 0.0, dropout_seed: 0, is_causal: false, scale: None }
    }
}

/// The checked problem: shapes, the broadcast batch shape and the scale.
struct Shapes {
    /// The broadcast leading (batch, head) dims.
    batch: Vec<usize>,
    lq: usize,
    lk: usize,
    d: usize,
    dv: usize,
    scale: f64,
}

#[track_caller]
fn check<E: Element>(q: &Tensor<E>, k: &Tensor<E>, v: &Tensor<E>, o: &SdpaOptions<'_, E>) -> Shapes {
    const OP: &str = "scaled_dot_product_attention";
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    if qs.len() < 2 || ks.len() < 2 || vs.len() < 2 {
        panic!("{OP}: query, key and value need at least 2 dims […, L, size], got {qs:?}, {ks:?} and {vs:?}");
    }
    let (lq, d) = (qs[qs.len() - 2], qs[qs.len() - 1]);
    let (lk, dk) = (ks[ks.len() - 2], ks[ks.len() - 1]);
    let (lv, dv) = (vs[vs.len() - 2], vs[vs.len() - 1]);
    if d != dk {
        panic!("{OP}: query size {d} ≠ key size {dk} (query {qs:?}, key {ks:?})");
    }
    if lk != lv {
        panic!("{OP}: key has {lk} steps but value has {lv} (key {ks:?}, value {vs:?})");
    }
    let lead = |s: &[usize]| s[..s.len() - 2].to_vec();
    let batch =
        try_broadcast_shapes(&lead(qs), &lead(ks)).and_then(|b| try_broadcast_shapes(&b, &lead(vs))).unwrap_or_else(
            || panic!("{OP}: the batch dims of query {qs:?}, key {ks:?} and value {vs:?} do not broadcast"),
        );
    if let Some(m) = o.attn_mask {
        if o.is_causal {
            panic!("{OP}: give either attn_mask or is_causal, not both (as PyTorch)");
        }
        let mut scores = batch.clone();
        scores.extend([lq, lk]);
        let ms = m.tensor().shape();
        if try_broadcast_shapes(ms, &scores).as_deref() != Some(&scores[..]) {
            panic!("{OP}: attn_mask of shape {ms:?} does not broadcast to the scores {scores:?}");
        }
        if let AttnMask::Bool(t) = m
            && let Some(bad) = crate::kernels::index::first_non_boolean(&t.data(), t.layout())
        {
            panic!(
                "{OP}: a boolean attn_mask holds 0 and 1 only, found {bad:?}; pass AttnMask::Additive for a float mask"
            );
        }
    }
    if !(0.0..1.0).contains(&o.dropout_p) {
        panic!("{OP}: dropout_p must be in [0, 1), got {}", o.dropout_p);
    }
    let scale = o.scale.unwrap_or(1.0 / (d as f64).sqrt());
    if !scale.is_finite() {
        panic!("{OP}: scale must be finite, got {scale}");
    }
    Shapes { batch, lq, lk, d, dv, scale }
}

impl<E: Element> Tensor<E> {
    /// Scaled dot-product attention, `softmax(q·kᵀ·scale + mask) · v`, as PyTorch's
    /// `F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal,
    /// scale)`; `self` is the query.
    ///
    /// Shapes: query `[…, Lq, d]`, key `[…, Lk, d]`, value `[…, Lk, dv]`, output `[…, Lq, dv]`;
    /// the leading (batch, head) dims broadcast, and the mask broadcasts to `[…, Lq, Lk]`. A
    /// query whose keys are all blocked gets zeros (and zero gradients), as PyTorch 2.15 gives.
    ///
    /// The op is fused and tiled (see the module documentation): training memory grows with the
    /// sequence length, not its square. [`attention_probs`](Self::attention_probs) gives the
    /// attention weights themselves, for inspection.
    ///
    /// ```
    /// use tensorgrad::{AttnMask, SdpaOptions, Tensor};
    /// let q = Tensor::<f32>::zeros(&[1, 3, 2]); // equal scores: each query averages what it sees
    /// let v = Tensor::from_vec(vec![3.0f32, 6.0, 9.0], &[1, 3, 1]);
    /// let causal = q.scaled_dot_product_attention(&q, &v, SdpaOptions { is_causal: true, ..Default::default() });
    /// assert_eq!(causal.to_vec(), [3.0, 4.5, 6.0]);
    /// // The same with an explicit boolean mask (1 = may attend).
    /// let tril = Tensor::ones(&[3, 3]).tril(0);
    /// let masked = q.scaled_dot_product_attention(&q, &v, SdpaOptions {
    ///     attn_mask: Some(AttnMask::Bool(&tril)),
    ///     ..Default::default()
    /// });
    /// assert_eq!(masked.to_vec(), causal.to_vec());
    /// ```
    ///
    /// # Panics
    /// If a tensor has fewer than 2 dims, the query and key sizes or the key and value lengths
    /// differ, the batch dims or the mask do not broadcast, a boolean mask holds other values than
    /// 0 and 1, both a mask and `is_causal` are given, `dropout_p` is outside `[0, 1)` or the
    /// scale is not finite.
    #[track_caller]
    pub fn scaled_dot_product_attention(
        &self,
        key: &Tensor<E>,
        value: &Tensor<E>,
        options: SdpaOptions<'_, E>,
    ) -> Tensor<E> {
        let s = check(self, key, value, &options);
        let mut full = s.batch.clone();
        let (q, k, v) = (
            self.broadcast_to(&[&s.batch[..], &[s.lq, s.d]].concat()),
            key.broadcast_to(&[&s.batch[..], &[s.lk, s.d]].concat()),
            value.broadcast_to(&[&s.batch[..], &[s.lk, s.dv]].concat()),
        );
        full.extend([s.lq, s.lk]);
        let (mask, additive) = match options.attn_mask {
            None => (None, false),
            Some(AttnMask::Bool(m)) => (Some(m.detach().broadcast_to(&full)), false),
            Some(AttnMask::Additive(m)) => (Some(m.broadcast_to(&full)), true),
        };
        let spec = Spec {
            bh: numel(&s.batch),
            lq: s.lq,
            lk: s.lk,
            d: s.d,
            dv: s.dv,
            scale: s.scale,
            causal: options.is_causal,
            additive,
            dropout_p: options.dropout_p,
            seed: options.dropout_seed,
        };
        let (out, lse) = spec.forward(&q, &k, &v, mask.as_ref());
        let mut out_shape = s.batch.clone();
        out_shape.extend([s.lq, s.dv]);
        let out = Tensor::from_data(out, &out_shape);
        let mut inputs = vec![q, k, v];
        inputs.extend(mask);
        out.record("scaled_dot_product_attention", inputs, move |c| spec.backward(c, &lse))
    }

    /// The attention weights `softmax(q·kᵀ·scale + mask)` of
    /// [`scaled_dot_product_attention`](Self::scaled_dot_product_attention) with the same
    /// options, shape `[…, Lq, Lk]`, dropout applied (as the weights PyTorch's
    /// `nn.MultiheadAttention` returns); rows with every key blocked are zeros. Differentiable;
    /// it holds the whole score matrix, so it is meant for inspection (attention maps), not for
    /// training.
    ///
    /// ```
    /// use tensorgrad::{SdpaOptions, Tensor};
    /// let q = Tensor::<f64>::zeros(&[2, 2]);
    /// let w = q.attention_probs(&q, SdpaOptions { is_causal: true, ..Default::default() });
    /// assert_eq!(w.to_vec(), [1.0, 0.0, 0.5, 0.5]);
    /// ```
    ///
    /// # Panics
    /// As [`scaled_dot_product_attention`](Self::scaled_dot_product_attention).
    #[track_caller]
    pub fn attention_probs(&self, key: &Tensor<E>, options: SdpaOptions<'_, E>) -> Tensor<E> {
        // Only the value's shape is checked: the key stands in for it.
        let s = check(self, key, key, &options);
        let mut full = s.batch.clone();
        full.extend([s.lq, s.lk]);
        let bias = blocked_bias(&full, s.lq, s.lk, options.is_causal, options.attn_mask);
        let scores = self.matmul(&key.transpose(key.ndim() - 2, key.ndim() - 1)).mul_scalar(E::of(s.scale));
        let probs = safe_softmax(&scores, bias.as_ref(), options.attn_mask);
        if options.dropout_p > 0.0 {
            let keep = dropout_keep::<E>(&full, options.dropout_p, options.dropout_seed);
            &probs * &keep
        } else {
            probs
        }
    }
}

/// The additive `−∞`/0 tensor of a causal or boolean mask (an additive mask is added as it is).
fn blocked_bias<E: Element>(
    full: &[usize],
    lq: usize,
    lk: usize,
    causal: bool,
    mask: Option<AttnMask<'_, E>>,
) -> Option<Tensor<E>> {
    if causal {
        let data = (0..lq * lk).map(|x| if x % lk <= x / lk { E::zero() } else { E::neg_infinity() }).collect();
        return Some(Tensor::from_data(data, &[lq, lk]));
    }
    match mask {
        Some(AttnMask::Bool(m)) => {
            Some(m.detach().broadcast_to(full).map(|x| if x != E::zero() { E::zero() } else { E::neg_infinity() }))
        }
        _ => None,
    }
}

/// Softmax over the last dim of `scores + bias (+ additive mask)`, recorded, with rows whose
/// keys are all blocked (every score `−∞`) set to zero rather than NaN.
fn safe_softmax<E: Element>(scores: &Tensor<E>, bias: Option<&Tensor<E>>, mask: Option<AttnMask<'_, E>>) -> Tensor<E> {
    let mut s = scores.clone();
    if let Some(b) = bias {
        s = &s + b;
    }
    if let Some(AttnMask::Additive(m)) = mask {
        s = &s + m;
    }
    let last = s.ndim() - 1;
    // Rows with no finite score: computed on zeros (a constant), then zeroed.
    let alive = crate::no_grad(|| {
        s.detach().max_dim(last, true).0.map(|x| if x == E::neg_infinity() { E::zero() } else { E::one() })
    });
    let safe = Tensor::where_cond(&alive, &s, &Tensor::zeros(&[1]));
    &safe.softmax(last) * &alive
}

/// The dropout factor of every weight (`0` or `1/(1−p)`) for the scores' shape `full`, the
/// same numbers the fused kernel draws.
fn dropout_keep<E: Element>(full: &[usize], p: f64, seed: u64) -> Tensor<E> {
    Tensor::from_data(crate::kernels::random::dropout_mask(Par::current(), numel(full), seed, p), full)
}

/// What the recorded op keeps for its backward pass.
#[derive(Clone, Copy, Debug)]
struct Spec {
    bh: usize,
    lq: usize,
    lk: usize,
    d: usize,
    dv: usize,
    scale: f64,
    causal: bool,
    additive: bool,
    dropout_p: f64,
    seed: u64,
}

impl Spec {
    fn problem(&self) -> Problem {
        Problem {
            bh: self.bh,
            lq: self.lq,
            lk: self.lk,
            d: self.d,
            dv: self.dv,
            scale: self.scale,
            causal: self.causal,
            dropout_p: self.dropout_p,
            seed: self.seed,
        }
    }

    /// The output and each query row's log-sum-exp.
    fn forward<E: Element>(
        &self,
        q: &Tensor<E>,
        k: &Tensor<E>,
        v: &Tensor<E>,
        mask: Option<&Tensor<E>>,
    ) -> (Vec<E>, Vec<E>) {
        let (qd, kd, vd) = (q.data(), k.data(), v.data());
        let md = mask.map(|m| m.data());
        let mask_op = mask.zip(md.as_deref()).map(|(m, d)| (operand(m), &d[..], self.additive));
        kernel::forward(
            Par::current(),
            &self.problem(),
            (operand(q), &qd[..]),
            (operand(k), &kd[..]),
            (operand(v), &vd[..]),
            mask_op,
        )
    }

    fn backward<E: Element>(&self, c: &crate::tensor::handle::Ctx<'_, E>, lse: &[E]) -> Vec<Option<Tensor<E>>> {
        let (q, k, v) = (&c.inputs[0], &c.inputs[1], &c.inputs[2]);
        let mask = c.inputs.get(3);
        let g = c.grad();
        let mask_grad = self.additive && mask.is_some_and(|m| m.needs_grad());
        if crate::is_grad_enabled() {
            return self.backward_recorded(c);
        }
        let g = g.contiguous();
        let out = c.out();
        let (qd, kd, vd, gd, od) = (q.data(), k.data(), v.data(), g.data(), out.data());
        let md = mask.map(|m| m.data());
        let mask_op = mask.zip(md.as_deref()).map(|(m, d)| (operand(m), &d[..], self.additive));
        let grads = kernel::backward(
            Par::current(),
            &self.problem(),
            (operand(q), &qd[..]),
            (operand(k), &kd[..]),
            (operand(v), &vd[..]),
            mask_op,
            (operand(&g), &gd[..]),
            (operand(out), &od[..]),
            lse,
            mask_grad,
        );
        let (shq, shk, shv) = (q.shape(), k.shape(), v.shape());
        let mut res = vec![
            Some(Tensor::from_data(grads.dq, shq)),
            Some(Tensor::from_data(grads.dk, shk)),
            Some(Tensor::from_data(grads.dv, shv)),
        ];
        if let Some(m) = mask {
            res.push(grads.dmask.map(|dm| {
                let mut full = shq[..shq.len() - 2].to_vec();
                full.extend([self.lq, self.lk]);
                Tensor::from_data(dm, &full).sum_to_shape(m.shape())
            }));
        }
        res
    }

    /// The gradients written with ops (for a recorded backward pass): the composite form's
    /// rules, with the probabilities recomputed from the inputs.
    fn backward_recorded<E: Element>(&self, c: &crate::tensor::handle::Ctx<'_, E>) -> Vec<Option<Tensor<E>>> {
        let (q, k, v) = (&c.inputs[0], &c.inputs[1], &c.inputs[2]);
        let g = c.grad();
        let mask = c.inputs.get(3);
        let attn_mask = mask.map(|m| if self.additive { AttnMask::Additive(m) } else { AttnMask::Bool(m) });
        let opts = SdpaOptions {
            attn_mask,
            dropout_p: 0.0,
            dropout_seed: self.seed,
            is_causal: self.causal,
            scale: Some(self.scale),
        };
        let p = q.attention_probs(k, opts);
        let full = p.shape().to_vec();
        let (nd, last) = (q.ndim(), q.ndim() - 1);
        let keep = (self.dropout_p > 0.0).then(|| dropout_keep::<E>(&full, self.dropout_p, self.seed));
        let pd = match &keep {
            Some(z) => &p * z,
            None => p.clone(),
        };
        let dv = pd.transpose(nd - 2, nd - 1).matmul(g);
        let mut dp = g.matmul(&v.transpose(nd - 2, nd - 1));
        if let Some(z) = &keep {
            dp = &dp * z;
        }
        let ds = &p * &(&dp - &(&dp * &p).sum_dims_keepdim(&[last]));
        let dss = ds.mul_scalar(E::of(self.scale));
        let dq = dss.matmul(k);
        let dk = dss.transpose(nd - 2, nd - 1).matmul(q);
        let mut res = vec![Some(dq), Some(dk), Some(dv)];
        if let Some(m) = mask {
            res.push((self.additive && m.needs_grad()).then(|| ds.sum_to_shape(m.shape())));
        }
        res
    }
}

/// A tensor's last two dims as a kernel operand: per-(batch, head) offsets and the row and
/// column strides.
fn operand<E: Element>(t: &Tensor<E>) -> Operand {
    let l = t.layout();
    let nd = l.ndim();
    let lead =
        crate::tensor::layout::Layout::new(l.shape()[..nd - 2].to_vec(), l.strides()[..nd - 2].to_vec(), l.offset());
    Operand { offsets: lead.offsets(), rs: l.strides()[nd - 2], cs: l.strides()[nd - 1] }
}
