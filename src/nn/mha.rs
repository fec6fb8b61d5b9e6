//! `MultiheadAttention`: PyTorch's `nn.MultiheadAttention`, running on the fused
//! [`Tensor::scaled_dot_product_attention`].

use std::sync::atomic::{AtomicU64, Ordering};

use super::dropout::check_probability;
use super::init::Init;
use super::linear::Linear;
use super::module::{Module, Param, derive_seed, join};
use super::step_key::scoped_stream;
use crate::{AttnMask, Element, RngSource, SdpaOptions, Tensor};

/// A mask given to [`MultiheadAttention`] (and the Transformer layers), in the conventions of
/// PyTorch's `nn.MultiheadAttention`: the tensor is the element type, so the kind of mask is
/// said by the variant instead of by a dtype.
///
/// **The boolean convention is the opposite of
/// [`AttnMask::Bool`](crate::AttnMask::Bool)'s**: here, as in `nn.MultiheadAttention`'s
/// `key_padding_mask` and `attn_mask`, 1 (PyTorch's `True`) means *blocked* (ignore this key),
/// whereas `scaled_dot_product_attention`'s boolean mask is 1 where a query *may* attend.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::MhaMask;
/// // Sequence 1 of the batch has 2 real steps and 1 padding step: block the padding.
/// let pad = Tensor::<f32>::from_vec(vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0], &[2, 3]);
/// let key_padding_mask = MhaMask::Blocked(&pad);
/// assert!(matches!(key_padding_mask, MhaMask::Blocked(_)));
/// ```
#[derive(Clone, Copy, Debug)]
pub enum MhaMask<'a, E: Element> {
    /// PyTorch's boolean mask as a 0/1 tensor: 1 (`True`) = **not allowed** to attend,
    /// 0 = allowed. Other values are an error.
    Blocked(&'a Tensor<E>),
    /// PyTorch's float mask: added to the scaled scores before the softmax (`−∞` blocks a key).
    /// Gradients flow into it when it needs them.
    Additive(&'a Tensor<E>),
}

impl<'a, E: Element> MhaMask<'a, E> {
    /// The mask tensor.
    pub fn tensor(&self) -> &'a Tensor<E> {
        match *self {
            MhaMask::Blocked(t) | MhaMask::Additive(t) => t,
        }
    }
}

/// The settings of a [`MultiheadAttention`]: PyTorch's constructor arguments (without
/// `add_bias_kv` and `add_zero_attn`), plus the seed of the attention-dropout masks.
///
/// ```
/// use tensorgrad::nn::{Module, MultiheadAttention, MultiheadAttentionConfig};
/// // nn.MultiheadAttention(16, 4, dropout=0.1, kdim=8, vdim=8, batch_first=True)
/// let config = MultiheadAttentionConfig {
///     dropout: 0.1,
///     kdim: Some(8),
///     vdim: Some(8),
///     batch_first: true,
///     ..MultiheadAttentionConfig::new(16, 4)
/// };
/// let mha: MultiheadAttention = MultiheadAttention::new(config, 0);
/// let names: Vec<String> = mha.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(
///     names,
///     ["q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiheadAttentionConfig {
    /// The model's size `E` (query size and output size).
    pub embed_dim: usize,
    /// The number of heads; must divide `embed_dim`.
    pub num_heads: usize,
    /// The probability of dropping an attention weight in training (default 0).
    pub dropout: f64,
    /// Biases on the input and output projections (default true).
    pub bias: bool,
    /// The size of a key; `None` is `embed_dim` (default).
    pub kdim: Option<usize>,
    /// The size of a value; `None` is `embed_dim` (default).
    pub vdim: Option<usize>,
    /// Inputs and outputs are `[batch, seq, feature]` (true) or `[seq, batch, feature]`
    /// (false, PyTorch's default).
    pub batch_first: bool,
    /// The seed of the attention-dropout masks (see [`Dropout`](super::Dropout)); default 0.
    pub seed: u64,
}

impl MultiheadAttentionConfig {
    /// PyTorch's defaults: no dropout, biases, `kdim = vdim = embed_dim`, sequence first.
    pub fn new(embed_dim: usize, num_heads: usize) -> Self {
        MultiheadAttentionConfig {
            embed_dim,
            num_heads,
            dropout: 0.0,
            bias: true,
            kdim: None,
            vdim: None,
            batch_first: false,
            seed: 0,
        }
    }
}

/// The optional arguments of [`MultiheadAttention::forward_with`], with PyTorch's names and
/// defaults (no masks, `need_weights = true`, `average_attn_weights = true`, not causal).
///
/// ```
/// use tensorgrad::nn::MhaArgs;
/// let args = MhaArgs::<f32>::default();
/// assert!(args.need_weights && args.average_attn_weights && !args.is_causal);
/// // The Transformer layers ask for no weights:
/// let fast = MhaArgs::<f32> { need_weights: false, ..Default::default() };
/// assert!(fast.attn_mask.is_none());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MhaArgs<'a, E: Element> {
    /// `[B, S]` (`[S]` for unbatched input): which keys each sequence ignores
    /// ([`MhaMask::Blocked`]: 1 = padding), or a float mask added per key.
    pub key_padding_mask: Option<MhaMask<'a, E>>,
    /// Also return the attention weights (PyTorch's default, true). They are computed
    /// separately with [`Tensor::attention_probs`], which holds the `[B, H, L, S]` matrix;
    /// pass false when they are not needed.
    pub need_weights: bool,
    /// `[L, S]` (shared by every sequence and head) or `[B·H, L, S]` (batch-major, then
    /// head): [`MhaMask::Blocked`] with 1 = not allowed, or an additive float mask.
    pub attn_mask: Option<MhaMask<'a, E>>,
    /// Average the returned weights over the heads (`[B, L, S]`, the default) or return them
    /// per head (`[B, H, L, S]`).
    pub average_attn_weights: bool,
    /// Causal attention: query `i` sees keys `0..=i`. As in PyTorch this is a hint that
    /// `attn_mask` is the causal mask: with no key padding mask and no weights asked for,
    /// the mask is skipped and the fused kernel runs causally; otherwise `attn_mask` is used.
    /// Unlike PyTorch (which raises an error), `is_causal` without an `attn_mask` applies the
    /// causal mask.
    pub is_causal: bool,
}

impl<E: Element> Default for MhaArgs<'_, E> {
    fn default() -> Self {
        MhaArgs {
            key_padding_mask: None,
            need_weights: true,
            attn_mask: None,
            average_attn_weights: true,
            is_causal: false,
        }
    }
}

/// Multi-head attention, PyTorch's `nn.MultiheadAttention`: the query, key and value are
/// projected, split into `num_heads` heads of size `E / num_heads`, attended with
/// [`Tensor::scaled_dot_product_attention`] (fused: memory grows with the sequence length,
/// not its square), joined and projected by `out_proj`.
///
/// # Parameters
/// PyTorch's names, shapes and order, so state dicts map 1:1:
/// - `in_proj_weight` `[3E, E]` (query, key and value projections stacked), or, when `kdim`
///   or `vdim` differs from `embed_dim`, `q_proj_weight` `[E, E]`, `k_proj_weight`
///   `[E, kdim]` and `v_proj_weight` `[E, vdim]`;
/// - `in_proj_bias` `[3E]` (if `bias`);
/// - `out_proj.weight` `[E, E]`, `out_proj.bias` `[E]` (if `bias`).
///
/// Initialised as PyTorch does: Glorot (Xavier) uniform input projections, zero biases, and
/// `out_proj.weight` as a [`Linear`]'s.
///
/// # Shapes
/// With `batch_first`: query `[B, L, E]`, key `[B, S, kdim]`, value `[B, S, vdim]`, output
/// `[B, L, E]`; otherwise `[L, B, E]`, `[S, B, kdim]`, `[S, B, vdim]` → `[L, B, E]`.
/// Unbatched inputs `[L, E]`, `[S, kdim]`, `[S, vdim]` give `[L, E]`. The weights are
/// `[B, L, S]` (averaged over heads) or `[B, H, L, S]` (`[L, S]`, `[H, L, S]` unbatched).
///
/// [`Module::forward`] is self-attention without masks and weights (`forward_with(x, x, x,
/// …)`); [`Module::forward_many`] takes `[query, key, value]`.
///
/// # Dropout
/// The attention weights are dropped with probability `dropout` in training mode only. Each
/// call draws the seed of its mask as [`Dropout`](super::Dropout) does (from the
/// [`StepKey`](super::StepKey) in force, else from the module's own counter), so
/// [`Module::reseed`] and step keys make runs reproducible. When weights are asked for, they
/// show the same dropped entries the output used.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{MhaArgs, MhaMask, MultiheadAttention, MultiheadAttentionConfig};
/// let mha: MultiheadAttention = MultiheadAttention::new(
///     MultiheadAttentionConfig { batch_first: true, ..MultiheadAttentionConfig::new(8, 2) },
///     0,
/// );
/// let x = Tensor::randn(&[2, 3, 8], 0.0, 1.0, 1); // batch 2, 3 steps
/// // The second sequence's last step is padding.
/// let pad = Tensor::from_vec(vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0], &[2, 3]);
/// let args = MhaArgs { key_padding_mask: Some(MhaMask::Blocked(&pad)), ..Default::default() };
/// let (out, weights) = mha.forward_with(&x, &x, &x, args);
/// assert_eq!(out.shape(), &[2, 3, 8]);
/// let weights = weights.unwrap(); // [B, L, S], averaged over the heads
/// assert_eq!(weights.shape(), &[2, 3, 3]);
/// assert!(weights.narrow(0, 1, 1).narrow(2, 2, 1).to_vec().iter().all(|&w| w == 0.0));
/// ```
#[derive(Debug)]
pub struct MultiheadAttention<E: Element = f32> {
    config: MultiheadAttentionConfig,
    in_proj_weight: Option<Param<E>>,
    q_proj_weight: Option<Param<E>>,
    k_proj_weight: Option<Param<E>>,
    v_proj_weight: Option<Param<E>>,
    in_proj_bias: Option<Param<E>>,
    out_proj: Linear<E>,
    training: bool,
    draws: AtomicU64,
}

impl<E: Element> Clone for MultiheadAttention<E> {
    /// A deep copy (own parameters) with the same seed and draw count, so it draws the masks
    /// the original would.
    fn clone(&self) -> Self {
        MultiheadAttention {
            config: self.config,
            in_proj_weight: self.in_proj_weight.clone(),
            q_proj_weight: self.q_proj_weight.clone(),
            k_proj_weight: self.k_proj_weight.clone(),
            v_proj_weight: self.v_proj_weight.clone(),
            in_proj_bias: self.in_proj_bias.clone(),
            out_proj: self.out_proj.clone(),
            training: self.training,
            draws: AtomicU64::new(self.draws.load(Ordering::Relaxed)),
        }
    }
}

const OP: &str = "MultiheadAttention";

impl<E: Element> MultiheadAttention<E> {
    /// A layer with PyTorch's initialisation, in training mode.
    ///
    /// `rng` is `&mut` a generator or a `u64` seed ([`RngSource`]).
    ///
    /// # Panics
    /// If `embed_dim` or `num_heads` is 0, `num_heads` does not divide `embed_dim`, `kdim` or
    /// `vdim` is 0, or `dropout` is not in `[0, 1)`.
    #[track_caller]
    pub fn new(config: MultiheadAttentionConfig, rng: impl RngSource) -> Self {
        let MultiheadAttentionConfig { embed_dim: e, num_heads: h, .. } = config;
        if e == 0 || h == 0 || !e.is_multiple_of(h) {
            panic!("{OP}: embed_dim {e} must be a positive multiple of num_heads {h}");
        }
        let (kdim, vdim) = (config.kdim.unwrap_or(e), config.vdim.unwrap_or(e));
        if kdim == 0 || vdim == 0 {
            panic!("{OP}: kdim {kdim} and vdim {vdim} must be positive");
        }
        check_probability(OP, config.dropout);
        let mut rng = rng.into_rng();
        let mut glorot = |shape: &[usize]| Param::new(Init::GlorotUniform.tensor(shape, &mut rng));
        let separate = kdim != e || vdim != e;
        let (in_proj_weight, q, k, v) = if separate {
            (None, Some(glorot(&[e, e])), Some(glorot(&[e, kdim])), Some(glorot(&[e, vdim])))
        } else {
            (Some(glorot(&[3 * e, e])), None, None, None)
        };
        let a = 1.0 / (e as f64).sqrt();
        let out_proj = Linear::with_init(e, e, Init::Uniform(-a, a), config.bias.then_some(Init::Zeros), &mut rng);
        MultiheadAttention {
            config,
            in_proj_weight,
            q_proj_weight: q,
            k_proj_weight: k,
            v_proj_weight: v,
            in_proj_bias: config.bias.then(|| Param::new(Tensor::zeros(&[3 * e]))),
            out_proj,
            training: true,
            draws: AtomicU64::new(0),
        }
    }

    /// The settings it was built with (`seed` as last set by [`Module::reseed`]).
    pub fn config(&self) -> &MultiheadAttentionConfig {
        &self.config
    }

    /// The output projection (`out_proj`).
    pub fn out_proj(&self) -> &Linear<E> {
        &self.out_proj
    }

    /// Whether the module is in training mode (attention dropout active).
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// The weight and bias projecting `count` consecutive inputs from `first` on (0 query,
    /// 1 key, 2 value): rows `first·E..(first + count)·E` of the stacked `in_proj_weight`.
    /// Separate `q/k/v_proj_weight`s project one input at a time (`count` 1).
    fn projection(&self, first: usize, count: usize) -> (Tensor<E>, Option<Tensor<E>>) {
        let e = self.config.embed_dim;
        let rows = |t: Tensor<E>| if count == 3 { t } else { t.narrow(0, first * e, count * e) };
        let w = match &self.in_proj_weight {
            Some(w) => rows(w.tensor()),
            None => [&self.q_proj_weight, &self.k_proj_weight, &self.v_proj_weight][first]
                .as_ref()
                .expect("separate projection weights")
                .tensor(),
        };
        (w, self.in_proj_bias.as_ref().map(|b| rows(b.tensor())))
    }

    /// The seed of this call's dropout mask, drawn as `Dropout::mask` does.
    fn dropout_seed(&self) -> u64 {
        let seed = self.config.seed;
        scoped_stream(seed).unwrap_or_else(|| derive_seed(seed, self.draws.fetch_add(1, Ordering::Relaxed)))
    }

    /// The attention of `query` over `key`/`value`: PyTorch's
    /// `mha(query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights,
    /// is_causal)`. Returns the output and, if `args.need_weights`, the attention weights
    /// (see the type's documentation for the shapes).
    ///
    /// Masks follow `nn.MultiheadAttention` (see [`MhaMask`]): a blocked or `−∞` entry gives a
    /// key no weight; boolean and float masks may be mixed (both become additive, as in
    /// PyTorch). A query that may see no key at all gets a zero output and zero weights (PyTorch
    /// gives zeros through its fused path and NaN when it computes weights).
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::nn::{MhaArgs, MhaMask, MultiheadAttention, MultiheadAttentionConfig};
    /// let mha: MultiheadAttention<f64> = MultiheadAttention::new(MultiheadAttentionConfig::new(4, 2), 0);
    /// let x = Tensor::randn(&[3, 1, 4], 0.0, 1.0, 1); // [L, B, E]: 3 steps, batch 1
    /// // A boolean causal mask: 1 = may NOT attend (above the diagonal).
    /// let blocked = Tensor::ones(&[3, 3]).triu(1);
    /// let args = MhaArgs { attn_mask: Some(MhaMask::Blocked(&blocked)), ..Default::default() };
    /// let (out, weights) = mha.forward_with(&x, &x, &x, args);
    /// let w = weights.unwrap().to_vec(); // [1, 3, 3]
    /// assert_eq!((w[0], w[1], w[2]), (1.0, 0.0, 0.0)); // step 0 sees itself only
    /// // The same with is_causal and no mask:
    /// let (causal, _) = mha.forward_with(&x, &x, &x, MhaArgs { is_causal: true, need_weights: false, ..Default::default() });
    /// assert!(causal.to_vec().iter().zip(out.to_vec()).all(|(a, b)| (a - b).abs() < 1e-12));
    /// ```
    ///
    /// # Panics
    /// If the inputs are not all 2-D or all 3-D, their feature sizes are not `embed_dim`,
    /// `kdim` and `vdim`, their batch sizes differ, key and value have different lengths, a
    /// mask has the wrong shape (`key_padding_mask` `[B, S]`, `attn_mask` `[L, S]` or
    /// `[B·H, L, S]`), or a [`MhaMask::Blocked`] mask holds values other than 0 and 1.
    #[track_caller]
    pub fn forward_with(
        &self,
        query: &Tensor<E>,
        key: &Tensor<E>,
        value: &Tensor<E>,
        args: MhaArgs<'_, E>,
    ) -> (Tensor<E>, Option<Tensor<E>>) {
        let MultiheadAttentionConfig { embed_dim: e, num_heads: h, batch_first, .. } = self.config;
        let (kdim, vdim) = (self.config.kdim.unwrap_or(e), self.config.vdim.unwrap_or(e));
        let (qs, ks, vs) = (query.shape(), key.shape(), value.shape());
        let batched = match (qs.len(), ks.len(), vs.len()) {
            (3, 3, 3) => true,
            (2, 2, 2) => false,
            _ => panic!(
                "{OP}: query, key and value must all be 3-D (batched) or all 2-D (unbatched), got {qs:?}, {ks:?} and {vs:?}"
            ),
        };
        let n = qs.len();
        if qs[n - 1] != e || ks[n - 1] != kdim || vs[n - 1] != vdim {
            panic!(
                "{OP}: expected feature sizes embed_dim {e}, kdim {kdim} and vdim {vdim}, got query {qs:?}, key {ks:?} and value {vs:?}"
            );
        }
        // Everything below works batch first: [B, L, E].
        let to_batch_first = |t: &Tensor<E>| match (batched, batch_first) {
            (false, _) => t.unsqueeze(0),
            (true, true) => t.clone(),
            (true, false) => t.transpose(0, 1),
        };
        let (q, k, v) = (to_batch_first(query), to_batch_first(key), to_batch_first(value));
        let (b, l, s) = (q.shape()[0], q.shape()[1], k.shape()[1]);
        if k.shape()[0] != b || v.shape()[0] != b {
            panic!(
                "{OP}: query, key and value have different batch sizes ({qs:?}, {ks:?}, {vs:?}; batch_first={batch_first})"
            );
        }
        if v.shape()[1] != s {
            panic!("{OP}: key has {s} steps but value has {} (key {ks:?}, value {vs:?})", v.shape()[1]);
        }
        // `match`, not `Option::map`: a panic inside a closure would report this file's line,
        // not the caller's (closures do not carry #[track_caller]).
        let kpm_shape: &[usize] = if batched { &[b, s] } else { &[s] };
        #[allow(clippy::manual_map)]
        let kpm = match args.key_padding_mask {
            Some(m) => Some(check_mask("key_padding_mask", m, &[kpm_shape])),
            None => None,
        };
        #[allow(clippy::manual_map)]
        let attn = match args.attn_mask {
            Some(m) => Some(check_mask("attn_mask", m, &[&[l, s], &[b * h, l, s]])),
            None => None,
        };

        // PyTorch: the is_causal hint replaces the mask when nothing needs a materialised one.
        let fused_causal = args.is_causal && kpm.is_none() && !args.need_weights;
        let attn = match attn {
            _ if fused_causal => None,
            None if args.is_causal => Some(Prepared::Blocked(Tensor::ones(&[l, s]).triu(1))),
            attn => attn,
        };
        // Masks as [B or 1, H or 1, L or 1, S], broadcasting to the scores [B, H, L, S].
        let attn = attn.map(|m| m.map(|t| if t.ndim() == 2 { t } else { t.reshape(&[b, h, l, s]) }));
        let kpm = kpm.map(|m| m.map(|t| t.reshape(&[b, 1, 1, s])));
        let mask = match (attn, kpm) {
            (None, None) => None,
            (Some(m), None) | (None, Some(m)) => Some(m),
            (Some(Prepared::Blocked(a)), Some(Prepared::Blocked(k))) => {
                // Blocked where either blocks: 1 − (1 − a)(1 − k), kept boolean.
                let one = E::one();
                Some(Prepared::Blocked((a.neg().add_scalar(one) * k.neg().add_scalar(one)).neg().add_scalar(one)))
            }
            (Some(a), Some(k)) => Some(Prepared::Additive(a.additive() + k.additive())),
        };
        // SDPA's boolean mask is 1 = may attend: the complement of a blocked mask.
        let allowed = match &mask {
            Some(Prepared::Blocked(m)) => Some(m.neg().add_scalar(E::one())),
            _ => None,
        };
        let attn_mask = match (&mask, &allowed) {
            (Some(Prepared::Additive(m)), _) => Some(AttnMask::Additive(m)),
            (_, Some(m)) => Some(AttnMask::Bool(m)),
            _ => None,
        };

        let dropout_p = if self.training { self.config.dropout } else { 0.0 };
        let dropout_seed = if dropout_p > 0.0 { self.dropout_seed() } else { 0 };
        let options = SdpaOptions { attn_mask, dropout_p, dropout_seed, is_causal: fused_causal, scale: None };
        // Project and split the heads: [B, L, E] → [B, H, L, E/H]. As PyTorch does, inputs
        // that are one tensor share one product with the stacked weight (self-attention: one
        // [B·L, E] × [E, 3E] product; key = value: one for both).
        let heads = |x: &Tensor<E>, first: usize, count: usize| -> Vec<Tensor<E>> {
            let (w, bias) = self.projection(first, count);
            let (len, y) = (x.shape()[1], project(x, &w, bias.as_ref()));
            let split = |y: Tensor<E>| y.reshape(&[b, len, h, e / h]).transpose(1, 2);
            if count == 1 { vec![split(y)] } else { (0..count).map(|i| split(y.narrow(2, i * e, e))).collect() }
        };
        let packed = self.in_proj_weight.is_some();
        let (qh, kh, vh) = if packed && query.id() == key.id() && key.id() == value.id() {
            let [qh, kh, vh]: [Tensor<E>; 3] = heads(&q, 0, 3).try_into().expect("three projections");
            (qh, kh, vh)
        } else if packed && key.id() == value.id() {
            let [kh, vh]: [Tensor<E>; 2] = heads(&k, 1, 2).try_into().expect("two projections");
            (heads(&q, 0, 1).remove(0), kh, vh)
        } else {
            (heads(&q, 0, 1).remove(0), heads(&k, 1, 1).remove(0), heads(&v, 2, 1).remove(0))
        };
        let out = qh.scaled_dot_product_attention(&kh, &vh, options);
        let out = self.out_proj.forward(&out.transpose(1, 2).reshape(&[b, l, e]));
        let out = match (batched, batch_first) {
            (false, _) => out.squeeze(0),
            (true, true) => out,
            (true, false) => out.transpose(0, 1),
        };
        let weights = args.need_weights.then(|| {
            let w = qh.attention_probs(&kh, options);
            let w = if args.average_attn_weights { w.mean_dim(1, false) } else { w };
            if batched { w } else { w.squeeze(0) }
        });
        (out, weights)
    }
}

/// A checked mask, owned and detached if boolean.
enum Prepared<E: Element> {
    Blocked(Tensor<E>),
    Additive(Tensor<E>),
}

impl<E: Element> Prepared<E> {
    fn map(self, f: impl FnOnce(Tensor<E>) -> Tensor<E>) -> Self {
        match self {
            Prepared::Blocked(t) => Prepared::Blocked(f(t)),
            Prepared::Additive(t) => Prepared::Additive(f(t)),
        }
    }

    /// The mask as an additive one: `−∞` where blocked, 0 elsewhere.
    fn additive(self) -> Tensor<E> {
        match self {
            Prepared::Blocked(t) => Tensor::zeros(t.shape()).masked_fill(&t, E::of(f64::NEG_INFINITY)),
            Prepared::Additive(t) => t,
        }
    }
}

/// Checks a mask's shape against the allowed ones (and a blocked mask's values).
#[track_caller]
fn check_mask<E: Element>(name: &str, mask: MhaMask<'_, E>, shapes: &[&[usize]]) -> Prepared<E> {
    let shape = mask.tensor().shape();
    if !shapes.contains(&shape) {
        let expected: Vec<String> = shapes.iter().map(|s| format!("{s:?}")).collect();
        panic!("{OP}: {name} has shape {shape:?}, expected {}", expected.join(" or "));
    }
    match mask {
        MhaMask::Blocked(t) => {
            let t = t.detach();
            if let Some(bad) = crate::kernels::index::first_non_boolean(&t.data(), t.layout()) {
                panic!(
                    "{OP}: a boolean (Blocked) {name} holds 0 and 1 only, found {bad:?}; use MhaMask::Additive for a float mask"
                );
            }
            Prepared::Blocked(t)
        }
        MhaMask::Additive(t) => Prepared::Additive(t.clone()),
    }
}

/// `x · wᵀ + b` over the last dim of `x`.
fn project<E: Element>(x: &Tensor<E>, w: &Tensor<E>, b: Option<&Tensor<E>>) -> Tensor<E> {
    let shape = x.shape();
    let (lead, inf) = (&shape[..shape.len() - 1], shape[shape.len() - 1]);
    let y = x.reshape(&[lead.iter().product(), inf]).matmul(&w.t());
    let y = match b {
        Some(b) => y + b,
        None => y,
    };
    y.reshape(&[lead, &[w.shape()[0]]].concat())
}

impl<E: Element> Module<E> for MultiheadAttention<E> {
    /// Self-attention without masks: `forward_with(x, x, x, …)`'s output.
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.forward_with(x, x, x, MhaArgs { need_weights: false, ..Default::default() }).0
    }

    /// `[query, key, value]`, without masks.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        let [q, k, v] = inputs else {
            panic!("{OP}: forward_many takes 3 inputs (query, key, value), got {}", inputs.len());
        };
        self.forward_with(q, k, v, MhaArgs { need_weights: false, ..Default::default() }).0
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        let named = [
            ("in_proj_weight", &self.in_proj_weight),
            ("q_proj_weight", &self.q_proj_weight),
            ("k_proj_weight", &self.k_proj_weight),
            ("v_proj_weight", &self.v_proj_weight),
            ("in_proj_bias", &self.in_proj_bias),
        ];
        for (name, p) in named {
            if let Some(p) = p {
                f(join(prefix, name), p);
            }
        }
        self.out_proj.visit_params(&join(prefix, "out_proj"), f);
    }

    fn describe(&self) -> String {
        let c = &self.config;
        let mut s = format!("MultiheadAttention(embed_dim={}, num_heads={}", c.embed_dim, c.num_heads);
        if c.dropout != 0.0 {
            s += &format!(", dropout={}", c.dropout);
        }
        if let Some(k) = c.kdim.filter(|&k| k != c.embed_dim) {
            s += &format!(", kdim={k}");
        }
        if let Some(v) = c.vdim.filter(|&v| v != c.embed_dim) {
            s += &format!(", vdim={v}");
        }
        format!("{s}, bias={}, batch_first={})", c.bias, c.batch_first)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn reseed(&mut self, seed: u64) {
        self.config.seed = seed;
        *self.draws.get_mut() = 0;
    }
}
