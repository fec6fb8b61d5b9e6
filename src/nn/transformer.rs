//! PyTorch's Transformer layers (`nn.TransformerEncoderLayer`, `nn.TransformerEncoder`,
//! `nn.TransformerDecoderLayer`, `nn.TransformerDecoder`) and the sinusoidal positional
//! encoding of "Attention is all you need".

use rand::Rng;

use super::dropout::{Dropout, check_probability};
use super::linear::Linear;
use super::mha::{MhaArgs, MhaMask, MultiheadAttention, MultiheadAttentionConfig};
use super::module::{Mask, Module, Param, derive_seed, join};
use super::norm::LayerNorm;
use crate::{Element, RngSource, Tensor};

/// The activation of a Transformer layer's feed-forward block (PyTorch's `activation`
/// argument: `"relu"`, `"gelu"`, or a callable such as GPT-2's tanh GELU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransformerActivation {
    /// `max(x, 0)`, PyTorch's default.
    #[default]
    Relu,
    /// The exact (erf) GELU, PyTorch's `"gelu"`.
    Gelu,
    /// The tanh approximation of GELU ([`Tensor::gelu_tanh`], PyTorch's
    /// `F.gelu(x, approximate="tanh")`).
    GeluTanh,
}

impl TransformerActivation {
    /// Applies the activation.
    pub fn apply<E: Element>(self, x: &Tensor<E>) -> Tensor<E> {
        match self {
            TransformerActivation::Relu => x.relu(),
            TransformerActivation::Gelu => x.gelu(),
            TransformerActivation::GeluTanh => x.gelu_tanh(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            TransformerActivation::Relu => "relu",
            TransformerActivation::Gelu => "gelu",
            TransformerActivation::GeluTanh => "gelu_tanh",
        }
    }
}

/// The settings of a [`TransformerEncoderLayer`] or [`TransformerDecoderLayer`]: PyTorch's
/// constructor arguments with its defaults, plus the seed of the dropout masks.
///
/// ```
/// use tensorgrad::nn::{TransformerActivation, TransformerEncoderLayer, TransformerLayerConfig};
/// // nn.TransformerEncoderLayer(512, 8, activation="gelu", batch_first=True, norm_first=True)
/// let config = TransformerLayerConfig {
///     activation: TransformerActivation::Gelu,
///     batch_first: true,
///     norm_first: true,
///     ..TransformerLayerConfig::new(512, 8)
/// };
/// assert_eq!((config.dim_feedforward, config.dropout, config.layer_norm_eps), (2048, 0.1, 1e-5));
/// let layer: TransformerEncoderLayer = TransformerEncoderLayer::new(config, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerLayerConfig {
    /// The model's size (`d_model`).
    pub d_model: usize,
    /// The number of attention heads; must divide `d_model`.
    pub nhead: usize,
    /// The feed-forward block's hidden size (default 2048).
    pub dim_feedforward: usize,
    /// The dropout probability everywhere: attention weights, the feed-forward block, and each
    /// residual branch (default 0.1).
    pub dropout: f64,
    /// The feed-forward activation (default ReLU).
    pub activation: TransformerActivation,
    /// The `eps` of the layer norms (default 1e-5).
    pub layer_norm_eps: f64,
    /// Inputs and outputs are `[batch, seq, feature]` (true) or `[seq, batch, feature]`
    /// (false, PyTorch's default).
    pub batch_first: bool,
    /// Pre-norm (`x + f(norm(x))`, true) or post-norm (`norm(x + f(x))`, false, the default and
    /// the original paper's).
    pub norm_first: bool,
    /// Biases in the linear layers, the attention and the layer norms (default true).
    pub bias: bool,
    /// The seed of the dropout masks; each dropout gets a seed derived from it (default 0).
    pub seed: u64,
}

impl TransformerLayerConfig {
    /// PyTorch's defaults for `d_model` and `nhead`.
    pub fn new(d_model: usize, nhead: usize) -> Self {
        TransformerLayerConfig {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: TransformerActivation::Relu,
            layer_norm_eps: 1e-5,
            batch_first: false,
            norm_first: false,
            bias: true,
            seed: 0,
        }
    }

    #[track_caller]
    fn check(&self, op: &str) {
        if self.d_model == 0 || self.nhead == 0 || !self.d_model.is_multiple_of(self.nhead) {
            panic!("{op}: d_model {} must be a positive multiple of nhead {}", self.d_model, self.nhead);
        }
        if self.dim_feedforward == 0 {
            panic!("{op}: dim_feedforward must be positive");
        }
        check_probability(op, self.dropout);
    }

    /// The attention sub-layer's settings.
    fn attention(&self, seed: u64) -> MultiheadAttentionConfig {
        MultiheadAttentionConfig {
            dropout: self.dropout,
            bias: self.bias,
            batch_first: self.batch_first,
            seed,
            ..MultiheadAttentionConfig::new(self.d_model, self.nhead)
        }
    }

    fn norm<E: Element>(&self) -> LayerNorm<E> {
        LayerNorm::with_options(&[self.d_model], self.layer_norm_eps, true, self.bias)
    }

    fn describe(&self, name: &str) -> String {
        let c = self;
        format!(
            "{name}(d_model={}, nhead={}, dim_feedforward={}, dropout={}, activation={}, layer_norm_eps={}, \
             batch_first={}, norm_first={}, bias={})",
            c.d_model,
            c.nhead,
            c.dim_feedforward,
            c.dropout,
            c.activation.name(),
            c.layer_norm_eps,
            c.batch_first,
            c.norm_first,
            c.bias
        )
    }
}

/// The feed-forward block shared by both layers: `linear2(dropout(activation(linear1(x))))`.
#[derive(Clone, Debug)]
struct FeedForward<E: Element> {
    linear1: Linear<E>,
    dropout: Dropout,
    linear2: Linear<E>,
    activation: TransformerActivation,
}

impl<E: Element> FeedForward<E> {
    fn new(c: &TransformerLayerConfig, seed: u64, rng: &mut impl Rng) -> Self {
        let linear = |i: usize, o: usize, rng: &mut dyn rand::RngCore| {
            let a = 1.0 / (i as f64).sqrt();
            let init = super::Init::Uniform(-a, a);
            Linear::with_init(i, o, init, c.bias.then_some(init), rng)
        };
        FeedForward {
            linear1: linear(c.d_model, c.dim_feedforward, rng),
            dropout: Dropout::new(c.dropout, seed),
            linear2: linear(c.dim_feedforward, c.d_model, rng),
            activation: c.activation,
        }
    }

    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.linear2.forward(&self.dropout.forward(&self.activation.apply(&self.linear1.forward(x))))
    }
}

/// The optional arguments of [`TransformerEncoderLayer::forward_with`] and
/// [`TransformerEncoder::forward_with`]: PyTorch's `mask` (`src_mask`),
/// `src_key_padding_mask` and `is_causal`, in [`MultiheadAttention`]'s conventions
/// ([`MhaMask::Blocked`]: 1 = not allowed).
#[derive(Clone, Copy, Debug)]
pub struct EncoderArgs<'a, E: Element> {
    /// `[L, L]` or `[B·nhead, L, L]`: which steps each step may not attend to.
    pub src_mask: Option<MhaMask<'a, E>>,
    /// `[B, L]`: the padding steps of each sequence (`[L]` for unbatched input).
    pub src_key_padding_mask: Option<MhaMask<'a, E>>,
    /// Causal self-attention (a hint that `src_mask` is the causal mask, or the causal mask
    /// itself when there is none; see [`MhaArgs::is_causal`]).
    pub is_causal: bool,
}

impl<E: Element> Default for EncoderArgs<'_, E> {
    fn default() -> Self {
        EncoderArgs { src_mask: None, src_key_padding_mask: None, is_causal: false }
    }
}

/// The optional arguments of [`TransformerDecoderLayer::forward_with`] and
/// [`TransformerDecoder::forward_with`], PyTorch's names, in [`MultiheadAttention`]'s
/// conventions ([`MhaMask::Blocked`]: 1 = not allowed).
#[derive(Clone, Copy, Debug)]
pub struct DecoderArgs<'a, E: Element> {
    /// `[T, T]` or `[B·nhead, T, T]`: the self-attention mask over the target.
    pub tgt_mask: Option<MhaMask<'a, E>>,
    /// `[T, S]` or `[B·nhead, T, S]`: the cross-attention mask over the memory.
    pub memory_mask: Option<MhaMask<'a, E>>,
    /// `[B, T]`: padding steps of the target.
    pub tgt_key_padding_mask: Option<MhaMask<'a, E>>,
    /// `[B, S]`: padding steps of the memory.
    pub memory_key_padding_mask: Option<MhaMask<'a, E>>,
    /// Causal self-attention (see [`MhaArgs::is_causal`]).
    pub tgt_is_causal: bool,
    /// Causal cross-attention (see [`MhaArgs::is_causal`]).
    pub memory_is_causal: bool,
}

impl<E: Element> Default for DecoderArgs<'_, E> {
    fn default() -> Self {
        DecoderArgs {
            tgt_mask: None,
            memory_mask: None,
            tgt_key_padding_mask: None,
            memory_key_padding_mask: None,
            tgt_is_causal: false,
            memory_is_causal: false,
        }
    }
}

/// The attention output only, as the layers call it (`need_weights=False`).
#[track_caller]
fn attend<E: Element>(
    mha: &MultiheadAttention<E>,
    q: &Tensor<E>,
    kv: &Tensor<E>,
    attn_mask: Option<MhaMask<'_, E>>,
    key_padding_mask: Option<MhaMask<'_, E>>,
    is_causal: bool,
) -> Tensor<E> {
    let args = MhaArgs { key_padding_mask, need_weights: false, attn_mask, average_attn_weights: true, is_causal };
    mha.forward_with(q, kv, kv, args).0
}

/// A Keras padding [`Mask`] (1 = real step) as a key padding mask (1 = padding).
fn padding_of<E: Element>(mask: &Mask<E>) -> Tensor<E> {
    mask.0.detach().neg().add_scalar(E::one())
}

/// Checks that `x` is `[…, d_model]` with 2 or 3 dims.
#[track_caller]
fn check_input<E: Element>(op: &str, what: &str, x: &Tensor<E>, d_model: usize) {
    if !(x.ndim() == 2 || x.ndim() == 3) || x.shape()[x.ndim() - 1] != d_model {
        panic!(
            "{op}: {what} must be [batch, seq, {d_model}], [seq, batch, {d_model}] or [seq, {d_model}], got {:?}",
            x.shape()
        );
    }
}

/// PyTorch's `nn.TransformerEncoderLayer`: self-attention and a feed-forward block, each with
/// a residual connection, dropout and a layer norm (after the residual by default, before the
/// block with `norm_first`).
///
/// # Parameters
/// PyTorch's names and order: `self_attn.in_proj_weight`, `self_attn.in_proj_bias`,
/// `self_attn.out_proj.{weight,bias}`, `linear1.{weight,bias}`, `linear2.{weight,bias}`,
/// `norm1.{weight,bias}`, `norm2.{weight,bias}` (no biases with `bias: false`).
///
/// # Shapes
/// `[B, L, d_model]` with `batch_first`, else `[L, B, d_model]`; `[L, d_model]` unbatched.
/// The output has the input's shape.
///
/// [`Module::forward`] runs without masks; [`forward_with`](Self::forward_with) takes them.
/// Dropout is active in training mode (the default, as in PyTorch); call
/// [`Module::eval`] for inference.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{EncoderArgs, MhaMask, Module, TransformerEncoderLayer, TransformerLayerConfig};
/// let config = TransformerLayerConfig { dim_feedforward: 32, batch_first: true, ..TransformerLayerConfig::new(8, 2) };
/// let mut layer: TransformerEncoderLayer = TransformerEncoderLayer::new(config, 0);
/// layer.eval();
/// let x = Tensor::randn(&[2, 5, 8], 0.0, 1.0, 1);
/// assert_eq!(layer.forward(&x).shape(), &[2, 5, 8]);
/// // The last two steps of sequence 1 are padding.
/// let pad = Tensor::from_vec(vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0], &[2, 5]);
/// let args = EncoderArgs { src_key_padding_mask: Some(MhaMask::Blocked(&pad)), is_causal: true, ..Default::default() };
/// assert_eq!(layer.forward_with(&x, args).shape(), &[2, 5, 8]);
/// assert_eq!(layer.named_parameters()[0].0, "self_attn.in_proj_weight");
/// ```
#[derive(Clone, Debug)]
pub struct TransformerEncoderLayer<E: Element = f32> {
    config: TransformerLayerConfig,
    self_attn: MultiheadAttention<E>,
    ff: FeedForward<E>,
    norm1: LayerNorm<E>,
    norm2: LayerNorm<E>,
    dropout1: Dropout,
    dropout2: Dropout,
}

const ENCODER_LAYER: &str = "TransformerEncoderLayer";
const DECODER_LAYER: &str = "TransformerDecoderLayer";

impl<E: Element> TransformerEncoderLayer<E> {
    /// A layer with PyTorch's initialisation, in training mode.
    ///
    /// `rng` is `&mut` a generator or a `u64` seed ([`RngSource`]).
    ///
    /// # Panics
    /// If `nhead` does not divide `d_model`, a size is 0, or `dropout` is not in `[0, 1)`.
    #[track_caller]
    pub fn new(config: TransformerLayerConfig, rng: impl RngSource) -> Self {
        config.check(ENCODER_LAYER);
        let mut rng = rng.into_rng();
        let seed = |i| derive_seed(config.seed, i);
        TransformerEncoderLayer {
            self_attn: MultiheadAttention::new(config.attention(seed(0)), &mut rng),
            ff: FeedForward::new(&config, seed(1), &mut rng),
            norm1: config.norm(),
            norm2: config.norm(),
            dropout1: Dropout::new(config.dropout, seed(2)),
            dropout2: Dropout::new(config.dropout, seed(3)),
            config,
        }
    }

    /// The settings it was built with (`seed` as last set by [`Module::reseed`]).
    pub fn config(&self) -> &TransformerLayerConfig {
        &self.config
    }

    /// The self-attention sub-layer (`self_attn`).
    pub fn self_attn(&self) -> &MultiheadAttention<E> {
        &self.self_attn
    }

    /// The layer applied to `src` with masks: PyTorch's `layer(src, src_mask,
    /// src_key_padding_mask, is_causal)`.
    ///
    /// # Panics
    /// If `src` is not `[…, d_model]` with 2 or 3 dims, or a mask has the wrong shape or values
    /// (see [`MultiheadAttention::forward_with`]).
    #[track_caller]
    pub fn forward_with(&self, src: &Tensor<E>, args: EncoderArgs<'_, E>) -> Tensor<E> {
        check_input(ENCODER_LAYER, "src", src, self.config.d_model);
        // Methods, not closures, so that a mask's panic reports the caller's line.
        let x = src;
        if self.config.norm_first {
            let x = x + &self.sa_block(&self.norm1.forward(x), &args);
            &x + &self.ff_block(&self.norm2.forward(&x))
        } else {
            let x = self.norm1.forward(&(x + &self.sa_block(x, &args)));
            self.norm2.forward(&(&x + &self.ff_block(&x)))
        }
    }

    #[track_caller]
    fn sa_block(&self, x: &Tensor<E>, args: &EncoderArgs<'_, E>) -> Tensor<E> {
        let y = attend(&self.self_attn, x, x, args.src_mask, args.src_key_padding_mask, args.is_causal);
        self.dropout1.forward(&y)
    }

    fn ff_block(&self, x: &Tensor<E>) -> Tensor<E> {
        self.dropout2.forward(&self.ff.forward(x))
    }
}

impl<E: Element> Module<E> for TransformerEncoderLayer<E> {
    /// The layer without masks.
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.forward_with(x, EncoderArgs::default())
    }

    /// With a Keras padding mask (`[B, L]`, 1 = real step, as an
    /// [`Embedding`](super::Embedding) with `mask_zero` makes): the padding steps are the
    /// `src_key_padding_mask`. The mask is passed on unchanged.
    #[track_caller]
    fn forward_masked(&self, x: &Tensor<E>, mask: Option<&Mask<E>>) -> (Tensor<E>, Option<Mask<E>>) {
        let Some(m) = mask else { return (self.forward(x), None) };
        let pad = padding_of(m);
        let args = EncoderArgs { src_key_padding_mask: Some(MhaMask::Blocked(&pad)), ..Default::default() };
        (self.forward_with(x, args), mask.cloned())
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        self.self_attn.visit_params(&join(prefix, "self_attn"), f);
        self.ff.linear1.visit_params(&join(prefix, "linear1"), f);
        self.ff.linear2.visit_params(&join(prefix, "linear2"), f);
        self.norm1.visit_params(&join(prefix, "norm1"), f);
        self.norm2.visit_params(&join(prefix, "norm2"), f);
    }

    fn describe(&self) -> String {
        self.config.describe(ENCODER_LAYER)
    }

    fn set_training(&mut self, training: bool) {
        self.self_attn.set_training(training);
        for d in [&mut self.ff.dropout, &mut self.dropout1, &mut self.dropout2] {
            d.set_training(training);
        }
    }

    fn reseed(&mut self, seed: u64) {
        self.config.seed = seed;
        <MultiheadAttention<E> as Module<E>>::reseed(&mut self.self_attn, derive_seed(seed, 0));
        for (i, d) in [&mut self.ff.dropout, &mut self.dropout1, &mut self.dropout2].into_iter().enumerate() {
            <Dropout as Module<E>>::reseed(d, derive_seed(seed, i as u64 + 1));
        }
    }
}

/// PyTorch's `nn.TransformerDecoderLayer`: self-attention over the target, cross-attention
/// over the encoder's output (`memory`) and a feed-forward block, each with a residual
/// connection, dropout and a layer norm (after the residual, or before the block with
/// `norm_first`).
///
/// # Parameters
/// PyTorch's names and order: `self_attn.*`, `multihead_attn.*` (the cross-attention; see
/// [`MultiheadAttention`]), `linear1.*`, `linear2.*`, `norm1.*`, `norm2.*`, `norm3.*`.
///
/// # Shapes
/// target `[B, T, d_model]` and memory `[B, S, d_model]` with `batch_first`, else
/// `[T, B, d_model]` and `[S, B, d_model]` (2-D unbatched); the output has the target's shape.
///
/// [`Module::forward_many`] takes `[tgt, memory]` (no masks); `forward` alone panics, since
/// the layer needs a memory.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{DecoderArgs, Module, TransformerDecoderLayer, TransformerLayerConfig};
/// let config = TransformerLayerConfig { dim_feedforward: 16, dropout: 0.0, ..TransformerLayerConfig::new(8, 2) };
/// let layer: TransformerDecoderLayer = TransformerDecoderLayer::new(config, 0);
/// let tgt = Tensor::randn(&[4, 2, 8], 0.0, 1.0, 1); // [T, B, E]
/// let memory = Tensor::randn(&[6, 2, 8], 0.0, 1.0, 2); // [S, B, E]
/// let out = layer.forward_with(&tgt, &memory, DecoderArgs { tgt_is_causal: true, ..Default::default() });
/// assert_eq!(out.shape(), &[4, 2, 8]);
/// assert_eq!(layer.forward_many(&[&tgt, &memory]).shape(), &[4, 2, 8]);
/// ```
#[derive(Clone, Debug)]
pub struct TransformerDecoderLayer<E: Element = f32> {
    config: TransformerLayerConfig,
    self_attn: MultiheadAttention<E>,
    multihead_attn: MultiheadAttention<E>,
    ff: FeedForward<E>,
    norm1: LayerNorm<E>,
    norm2: LayerNorm<E>,
    norm3: LayerNorm<E>,
    dropout1: Dropout,
    dropout2: Dropout,
    dropout3: Dropout,
}

impl<E: Element> TransformerDecoderLayer<E> {
    /// A layer with PyTorch's initialisation, in training mode.
    ///
    /// `rng` is `&mut` a generator or a `u64` seed ([`RngSource`]).
    ///
    /// # Panics
    /// If `nhead` does not divide `d_model`, a size is 0, or `dropout` is not in `[0, 1)`.
    #[track_caller]
    pub fn new(config: TransformerLayerConfig, rng: impl RngSource) -> Self {
        config.check(DECODER_LAYER);
        let mut rng = rng.into_rng();
        let seed = |i| derive_seed(config.seed, i);
        TransformerDecoderLayer {
            self_attn: MultiheadAttention::new(config.attention(seed(0)), &mut rng),
            multihead_attn: MultiheadAttention::new(config.attention(seed(1)), &mut rng),
            ff: FeedForward::new(&config, seed(2), &mut rng),
            norm1: config.norm(),
            norm2: config.norm(),
            norm3: config.norm(),
            dropout1: Dropout::new(config.dropout, seed(3)),
            dropout2: Dropout::new(config.dropout, seed(4)),
            dropout3: Dropout::new(config.dropout, seed(5)),
            config,
        }
    }

    /// The settings it was built with (`seed` as last set by [`Module::reseed`]).
    pub fn config(&self) -> &TransformerLayerConfig {
        &self.config
    }

    /// The self-attention sub-layer (`self_attn`).
    pub fn self_attn(&self) -> &MultiheadAttention<E> {
        &self.self_attn
    }

    /// The cross-attention sub-layer (`multihead_attn`).
    pub fn multihead_attn(&self) -> &MultiheadAttention<E> {
        &self.multihead_attn
    }

    /// The layer applied to `tgt` attending over `memory`: PyTorch's `layer(tgt, memory,
    /// tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask, tgt_is_causal,
    /// memory_is_causal)`.
    ///
    /// # Panics
    /// If `tgt` or `memory` is not `[…, d_model]` with 2 or 3 dims, their batch sizes differ,
    /// or a mask has the wrong shape or values (see [`MultiheadAttention::forward_with`]).
    #[track_caller]
    pub fn forward_with(&self, tgt: &Tensor<E>, memory: &Tensor<E>, args: DecoderArgs<'_, E>) -> Tensor<E> {
        let d = self.config.d_model;
        check_input(DECODER_LAYER, "tgt", tgt, d);
        check_input(DECODER_LAYER, "memory", memory, d);
        if tgt.ndim() != memory.ndim() {
            panic!(
                "{DECODER_LAYER}: tgt {:?} and memory {:?} must both be batched or both unbatched",
                tgt.shape(),
                memory.shape()
            );
        }
        let x = tgt;
        if self.config.norm_first {
            let x = x + &self.sa_block(&self.norm1.forward(x), &args);
            let x = &x + &self.mha_block(&self.norm2.forward(&x), memory, &args);
            &x + &self.ff_block(&self.norm3.forward(&x))
        } else {
            let x = self.norm1.forward(&(x + &self.sa_block(x, &args)));
            let x = self.norm2.forward(&(&x + &self.mha_block(&x, memory, &args)));
            self.norm3.forward(&(&x + &self.ff_block(&x)))
        }
    }

    #[track_caller]
    fn sa_block(&self, x: &Tensor<E>, args: &DecoderArgs<'_, E>) -> Tensor<E> {
        let y = attend(&self.self_attn, x, x, args.tgt_mask, args.tgt_key_padding_mask, args.tgt_is_causal);
        self.dropout1.forward(&y)
    }

    #[track_caller]
    fn mha_block(&self, x: &Tensor<E>, memory: &Tensor<E>, args: &DecoderArgs<'_, E>) -> Tensor<E> {
        let (mask, kpm) = (args.memory_mask, args.memory_key_padding_mask);
        let y = attend(&self.multihead_attn, x, memory, mask, kpm, args.memory_is_causal);
        self.dropout2.forward(&y)
    }

    fn ff_block(&self, x: &Tensor<E>) -> Tensor<E> {
        self.dropout3.forward(&self.ff.forward(x))
    }
}

impl<E: Element> Module<E> for TransformerDecoderLayer<E> {
    /// Panics: the layer needs a memory; use [`forward_many`](Module::forward_many) or
    /// [`forward_with`](TransformerDecoderLayer::forward_with).
    #[track_caller]
    fn forward(&self, _x: &Tensor<E>) -> Tensor<E> {
        panic!("{DECODER_LAYER}: takes 2 inputs (tgt, memory); call forward_many or forward_with");
    }

    /// `[tgt, memory]`, without masks.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        let [tgt, memory] = inputs else {
            panic!("{DECODER_LAYER}: takes 2 inputs (tgt, memory), got {}", inputs.len());
        };
        self.forward_with(tgt, memory, DecoderArgs::default())
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        self.self_attn.visit_params(&join(prefix, "self_attn"), f);
        self.multihead_attn.visit_params(&join(prefix, "multihead_attn"), f);
        self.ff.linear1.visit_params(&join(prefix, "linear1"), f);
        self.ff.linear2.visit_params(&join(prefix, "linear2"), f);
        self.norm1.visit_params(&join(prefix, "norm1"), f);
        self.norm2.visit_params(&join(prefix, "norm2"), f);
        self.norm3.visit_params(&join(prefix, "norm3"), f);
    }

    fn describe(&self) -> String {
        self.config.describe(DECODER_LAYER)
    }

    fn set_training(&mut self, training: bool) {
        self.self_attn.set_training(training);
        self.multihead_attn.set_training(training);
        for d in [&mut self.ff.dropout, &mut self.dropout1, &mut self.dropout2, &mut self.dropout3] {
            d.set_training(training);
        }
    }

    fn reseed(&mut self, seed: u64) {
        self.config.seed = seed;
        <MultiheadAttention<E> as Module<E>>::reseed(&mut self.self_attn, derive_seed(seed, 0));
        <MultiheadAttention<E> as Module<E>>::reseed(&mut self.multihead_attn, derive_seed(seed, 1));
        let dropouts = [&mut self.ff.dropout, &mut self.dropout1, &mut self.dropout2, &mut self.dropout3];
        for (i, d) in dropouts.into_iter().enumerate() {
            <Dropout as Module<E>>::reseed(d, derive_seed(seed, i as u64 + 2));
        }
    }
}

/// `num_layers` copies of `layer`, each reseeded by its position (PyTorch deep-copies the
/// layer, so the copies start with equal weights; their dropout masks differ here).
fn clones<L: Clone>(layer: &L, num_layers: usize, seed: u64, reseed: impl Fn(&mut L, u64)) -> Vec<L> {
    (0..num_layers)
        .map(|i| {
            let mut l = layer.clone();
            reseed(&mut l, derive_seed(seed, i as u64));
            l
        })
        .collect()
}

fn describe_stack<E: Element>(name: &str, layers: &[String], norm: Option<&LayerNorm<E>>) -> String {
    let mut s = format!("{name}(\n  (layers): ModuleList(");
    for (i, l) in layers.iter().enumerate() {
        s += &format!("\n    ({i}): {l}");
    }
    s += "\n  )";
    if let Some(n) = norm {
        s += &format!("\n  (norm): {}", n.describe());
    }
    s + "\n)"
}

/// PyTorch's `nn.TransformerEncoder`: `num_layers` copies of a [`TransformerEncoderLayer`]
/// applied in turn, then an optional final [`LayerNorm`] (`norm`; give one with pre-norm
/// layers, as `nn.Transformer` does).
///
/// Parameter names are PyTorch's: `layers.0.self_attn.in_proj_weight`, …, `norm.weight`.
/// As in PyTorch the copies start with the same weights; [`Module::reseed`] gives each its own
/// dropout seed (so does `new`).
///
/// Padded positions (`src_key_padding_mask`) are computed like any other, as in PyTorch's
/// regular path; PyTorch's nested-tensor fast path (inference only) returns zeros there. In a
/// [`Sequential`](super::Sequential) after an [`Embedding`](super::Embedding) with
/// `mask_zero`, the embedding's padding mask becomes the key padding mask
/// ([`Module::forward_masked`]).
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{LayerNorm, Module, TransformerEncoder, TransformerEncoderLayer, TransformerLayerConfig};
/// let config = TransformerLayerConfig { dim_feedforward: 16, ..TransformerLayerConfig::new(8, 2) };
/// let layer = TransformerEncoderLayer::new(config, 0);
/// let encoder: TransformerEncoder = TransformerEncoder::new(layer, 3, Some(LayerNorm::new(&[8])));
/// assert_eq!(encoder.forward(&Tensor::randn(&[5, 2, 8], 0.0, 1.0, 1)).shape(), &[5, 2, 8]);
/// let names: Vec<String> = encoder.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names[0], "layers.0.self_attn.in_proj_weight");
/// assert_eq!(names.last().unwrap(), "norm.bias");
/// ```
#[derive(Clone, Debug)]
pub struct TransformerEncoder<E: Element = f32> {
    layers: Vec<TransformerEncoderLayer<E>>,
    norm: Option<LayerNorm<E>>,
}

impl<E: Element> TransformerEncoder<E> {
    /// `num_layers` copies of `layer` and an optional final norm.
    ///
    /// # Panics
    /// If `norm` does not normalise over `[d_model]`.
    #[track_caller]
    pub fn new(layer: TransformerEncoderLayer<E>, num_layers: usize, norm: Option<LayerNorm<E>>) -> Self {
        check_norm("TransformerEncoder", norm.as_ref(), layer.config.d_model);
        let layers = clones(&layer, num_layers, layer.config.seed, |l, s| Module::<E>::reseed(l, s));
        TransformerEncoder { layers, norm }
    }

    /// The layers.
    pub fn layers(&self) -> &[TransformerEncoderLayer<E>] {
        &self.layers
    }

    /// The encoder applied to `src` with masks (PyTorch's `encoder(src, mask,
    /// src_key_padding_mask, is_causal)`): every layer gets the same arguments.
    ///
    /// # Panics
    /// As [`TransformerEncoderLayer::forward_with`].
    #[track_caller]
    pub fn forward_with(&self, src: &Tensor<E>, args: EncoderArgs<'_, E>) -> Tensor<E> {
        let mut x = src.clone();
        for layer in &self.layers {
            x = layer.forward_with(&x, args);
        }
        match &self.norm {
            Some(n) => n.forward(&x),
            None => x,
        }
    }
}

#[track_caller]
fn check_norm<E: Element>(op: &str, norm: Option<&LayerNorm<E>>, d_model: usize) {
    if let Some(n) = norm
        && n.normalized_shape() != [d_model]
    {
        panic!("{op}: the final norm normalises over {:?}, the layers' d_model is {d_model}", n.normalized_shape());
    }
}

impl<E: Element> Module<E> for TransformerEncoder<E> {
    /// The encoder without masks.
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        self.forward_with(x, EncoderArgs::default())
    }

    /// With a Keras padding mask (`[B, L]`, 1 = real step): the padding steps are the
    /// `src_key_padding_mask` of every layer. The mask is passed on unchanged.
    #[track_caller]
    fn forward_masked(&self, x: &Tensor<E>, mask: Option<&Mask<E>>) -> (Tensor<E>, Option<Mask<E>>) {
        let Some(m) = mask else { return (self.forward(x), None) };
        let pad = padding_of(m);
        let args = EncoderArgs { src_key_padding_mask: Some(MhaMask::Blocked(&pad)), ..Default::default() };
        (self.forward_with(x, args), mask.cloned())
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        for (i, l) in self.layers.iter().enumerate() {
            l.visit_params(&join(prefix, &format!("layers.{i}")), f);
        }
        if let Some(n) = &self.norm {
            n.visit_params(&join(prefix, "norm"), f);
        }
    }

    fn describe(&self) -> String {
        let layers: Vec<String> = self.layers.iter().map(Module::describe).collect();
        describe_stack("TransformerEncoder", &layers, self.norm.as_ref())
    }

    fn set_training(&mut self, training: bool) {
        for l in &mut self.layers {
            l.set_training(training);
        }
    }

    fn reseed(&mut self, seed: u64) {
        for (i, l) in self.layers.iter_mut().enumerate() {
            l.reseed(derive_seed(seed, i as u64));
        }
    }
}

/// PyTorch's `nn.TransformerDecoder`: `num_layers` copies of a [`TransformerDecoderLayer`]
/// applied in turn over the same memory, then an optional final [`LayerNorm`] (`norm`).
///
/// Parameter names are PyTorch's: `layers.0.self_attn.in_proj_weight`, …,
/// `layers.0.multihead_attn.…`, `norm.weight`. [`Module::forward_many`] takes
/// `[tgt, memory]`.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{DecoderArgs, Module, TransformerDecoder, TransformerDecoderLayer, TransformerLayerConfig};
/// let config = TransformerLayerConfig { dim_feedforward: 16, batch_first: true, ..TransformerLayerConfig::new(8, 2) };
/// let decoder: TransformerDecoder = TransformerDecoder::new(TransformerDecoderLayer::new(config, 0), 2, None);
/// let (tgt, memory) = (Tensor::randn(&[2, 3, 8], 0.0, 1.0, 1), Tensor::randn(&[2, 7, 8], 0.0, 1.0, 2));
/// let out = decoder.forward_with(&tgt, &memory, DecoderArgs { tgt_is_causal: true, ..Default::default() });
/// assert_eq!(out.shape(), &[2, 3, 8]);
/// ```
#[derive(Clone, Debug)]
pub struct TransformerDecoder<E: Element = f32> {
    layers: Vec<TransformerDecoderLayer<E>>,
    norm: Option<LayerNorm<E>>,
}

impl<E: Element> TransformerDecoder<E> {
    /// `num_layers` copies of `layer` and an optional final norm.
    ///
    /// # Panics
    /// If `norm` does not normalise over `[d_model]`.
    #[track_caller]
    pub fn new(layer: TransformerDecoderLayer<E>, num_layers: usize, norm: Option<LayerNorm<E>>) -> Self {
        check_norm("TransformerDecoder", norm.as_ref(), layer.config.d_model);
        let layers = clones(&layer, num_layers, layer.config.seed, |l, s| Module::<E>::reseed(l, s));
        TransformerDecoder { layers, norm }
    }

    /// The layers.
    pub fn layers(&self) -> &[TransformerDecoderLayer<E>] {
        &self.layers
    }

    /// The decoder applied to `tgt` over `memory` with masks (PyTorch's `decoder(tgt, memory,
    /// tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask, tgt_is_causal,
    /// memory_is_causal)`): every layer gets the same arguments.
    ///
    /// # Panics
    /// As [`TransformerDecoderLayer::forward_with`].
    #[track_caller]
    pub fn forward_with(&self, tgt: &Tensor<E>, memory: &Tensor<E>, args: DecoderArgs<'_, E>) -> Tensor<E> {
        let mut x = tgt.clone();
        for layer in &self.layers {
            x = layer.forward_with(&x, memory, args);
        }
        match &self.norm {
            Some(n) => n.forward(&x),
            None => x,
        }
    }
}

impl<E: Element> Module<E> for TransformerDecoder<E> {
    /// Panics: the decoder needs a memory; use [`forward_many`](Module::forward_many) or
    /// [`forward_with`](TransformerDecoder::forward_with).
    #[track_caller]
    fn forward(&self, _x: &Tensor<E>) -> Tensor<E> {
        panic!("TransformerDecoder: takes 2 inputs (tgt, memory); call forward_many or forward_with");
    }

    /// `[tgt, memory]`, without masks.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        let [tgt, memory] = inputs else {
            panic!("TransformerDecoder: takes 2 inputs (tgt, memory), got {}", inputs.len());
        };
        self.forward_with(tgt, memory, DecoderArgs::default())
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        for (i, l) in self.layers.iter().enumerate() {
            l.visit_params(&join(prefix, &format!("layers.{i}")), f);
        }
        if let Some(n) = &self.norm {
            n.visit_params(&join(prefix, "norm"), f);
        }
    }

    fn describe(&self) -> String {
        let layers: Vec<String> = self.layers.iter().map(Module::describe).collect();
        describe_stack("TransformerDecoder", &layers, self.norm.as_ref())
    }

    fn set_training(&mut self, training: bool) {
        for l in &mut self.layers {
            l.set_training(training);
        }
    }

    fn reseed(&mut self, seed: u64) {
        for (i, l) in self.layers.iter_mut().enumerate() {
            l.reseed(derive_seed(seed, i as u64));
        }
    }
}

/// The sinusoidal positional encoding of "Attention is all you need":
/// `pe[pos, 2i] = sin(pos / 10000^(2i/d_model))`, `pe[pos, 2i+1] = cos(pos / 10000^(2i/d_model))`,
/// added to the input (the table of PyTorch's Transformer tutorial, without its dropout). It
/// has no parameters.
///
/// # Shapes
/// `[L, B, d_model]` (sequence first, the default, as the tutorial and PyTorch's layers),
/// `[B, L, d_model]` after [`batch_first(true)`](Self::batch_first), or `[L, d_model]`; `L`
/// at most `max_len`. The output has the input's shape.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Module, SinusoidalPositionalEncoding};
/// let pe: SinusoidalPositionalEncoding<f64> = SinusoidalPositionalEncoding::new(100, 4);
/// let table = pe.forward(&Tensor::zeros(&[3, 4])); // zeros in: the table itself
/// let t = table.to_vec();
/// assert_eq!(&t[..4], &[0.0, 1.0, 0.0, 1.0]); // position 0: sin 0, cos 0
/// assert!((t[4] - 1f64.sin()).abs() < 1e-15 && (t[6] - 0.01f64.sin()).abs() < 1e-15);
/// let batched = SinusoidalPositionalEncoding::<f64>::new(100, 4).batch_first(true);
/// assert_eq!(batched.forward(&Tensor::zeros(&[2, 3, 4])).narrow(0, 1, 1).to_vec(), t);
/// ```
#[derive(Clone, Debug)]
pub struct SinusoidalPositionalEncoding<E: Element = f32> {
    table: Tensor<E>,
    batch_first: bool,
}

impl<E: Element> SinusoidalPositionalEncoding<E> {
    /// The table for positions `0..max_len` and `d_model` features, for sequence-first input.
    pub fn new(max_len: usize, d_model: usize) -> Self {
        let mut data = Vec::with_capacity(max_len * d_model);
        for pos in 0..max_len {
            for j in 0..d_model {
                let i = (j / 2 * 2) as f64;
                let angle = pos as f64 * (i * -(10000f64.ln()) / d_model as f64).exp();
                data.push(E::of(if j % 2 == 0 { angle.sin() } else { angle.cos() }));
            }
        }
        SinusoidalPositionalEncoding { table: Tensor::from_vec(data, &[max_len, d_model]), batch_first: false }
    }

    /// Takes `[B, L, d_model]` input (true) or `[L, B, d_model]` (false, the default).
    pub fn batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }

    /// The table, `[max_len, d_model]`.
    pub fn table(&self) -> &Tensor<E> {
        &self.table
    }
}

impl<E: Element> Module<E> for SinusoidalPositionalEncoding<E> {
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let (max_len, d) = (self.table.shape()[0], self.table.shape()[1]);
        let s = x.shape();
        let seq_dim = if s.len() == 3 && self.batch_first { 1 } else { 0 };
        if !(s.len() == 2 || s.len() == 3) || s[s.len() - 1] != d || s[seq_dim] > max_len {
            panic!(
                "SinusoidalPositionalEncoding: expected input [seq, batch, {d}] / [batch, seq, {d}] (batch_first={}) or [seq, {d}] with seq ≤ max_len {max_len}, got {s:?}",
                self.batch_first
            );
        }
        let pe = self.table.narrow(0, 0, s[seq_dim]);
        if s.len() == 3 && !self.batch_first { x + &pe.unsqueeze(1) } else { x + &pe }
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        let (max_len, d) = (self.table.shape()[0], self.table.shape()[1]);
        format!("SinusoidalPositionalEncoding(max_len={max_len}, d_model={d}, batch_first={})", self.batch_first)
    }
}
