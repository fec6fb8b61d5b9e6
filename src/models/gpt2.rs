//! GPT-2 (`GPT2Model`, `GPT2LMHeadModel` of Hugging Face `transformers`) with a key/value
//! cache for generation.
//!
//! The modules carry Hugging Face's names and layouts: `Conv1D` keeps its weight as
//! `[in, out]` (the transpose of a [`Linear`](crate::nn::Linear)'s), and the language-model head
//! is tied to the token embedding `transformer.wte.weight` — one parameter, so fine-tuning moves
//! both, and the state dict has no `lm_head.weight`, as `save_pretrained` writes it.
//!
//! ```
//! use tensorgrad::Tensor;
//! use tensorgrad::models::gpt2::{GenerateOptions, Gpt2LMHeadModel};
//! use tensorgrad::nn::Module;
//!
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf/gpt2-tiny");
//! let model: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(dir)?;
//! assert_eq!(model.named_parameters()[0].0, "transformer.wte.weight");
//!
//! // Two sequences, the second padded at the end.
//! let ids = Tensor::from_vec(vec![5.0, 17.0, 3.0, 12.0, 7.0, 0.0], &[2, 3]);
//! let mask = Tensor::from_vec(vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0], &[2, 3]);
//! assert_eq!(model.logits(&ids, Some(&mask)).shape(), &[2, 3, 64]);
//!
//! // Sampling is seeded: the same seed gives the same tokens.
//! let options = GenerateOptions { max_new_tokens: 5, do_sample: true, top_k: Some(10), seed: 7, ..Default::default() };
//! assert_eq!(model.generate(&[5, 17], &options)?, model.generate(&[5, 17], &options)?);
//! # Ok::<(), tensorgrad::Error>(())
//! ```

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{Act, check_ids, check_mask, config_error, load_weights, parse_config, read_config, reseed_dropouts};
use crate::nn::{Dropout, Embedding, Init, LayerNorm, Module, Param, param_name};
use crate::ops::matmul::WeightPack;
use crate::{AttnMask, Element, Error, PackedMatrix, Result, SdpaOptions, Tensor, no_grad};

/// The configuration of a GPT-2 model: the fields of Hugging Face's `GPT2Config` that shape
/// the model, with its defaults (those of the 124M-parameter `gpt2`). Other keys of a
/// `config.json` are ignored.
///
/// ```
/// use tensorgrad::models::gpt2::Gpt2Config;
/// let config = Gpt2Config::from_json_str(r#"{"n_embd": 64, "n_head": 4, "n_layer": 2}"#)?;
/// assert_eq!((config.n_embd, config.vocab_size, config.activation_function.as_str()), (64, 50257, "gelu_new"));
/// assert!(Gpt2Config::from_json_str(r#"{"activation_function": "mish"}"#).is_err());
/// # Ok::<(), tensorgrad::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gpt2Config {
    /// `model_type`; must be `"gpt2"` when given.
    pub model_type: Option<String>,
    /// The number of tokens.
    pub vocab_size: usize,
    /// The longest sequence (the rows of the position embedding).
    pub n_positions: usize,
    /// The width of the hidden states.
    pub n_embd: usize,
    /// The number of transformer blocks.
    pub n_layer: usize,
    /// The number of attention heads (dividing `n_embd`).
    pub n_head: usize,
    /// The width of the MLP's inner layer; `None` is `4 · n_embd`.
    pub n_inner: Option<usize>,
    /// The MLP's activation: `gelu_new` (GPT-2's tanh GELU), `gelu_pytorch_tanh`, `gelu`,
    /// `relu`, `silu`/`swish` or `tanh`.
    pub activation_function: String,
    /// Dropout after each residual branch.
    pub resid_pdrop: f64,
    /// Dropout on the summed embeddings.
    pub embd_pdrop: f64,
    /// Dropout on the attention weights.
    pub attn_pdrop: f64,
    /// The epsilon of the layer norms.
    pub layer_norm_epsilon: f64,
    /// The standard deviation of the initial weights of [`Gpt2Model::new`].
    pub initializer_range: f64,
    /// Scale the attention scores by `1/√head_size`.
    pub scale_attn_weights: bool,
    /// Also scale them by `1/(layer index + 1)`.
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Compute the scores in higher precision (accepted; the scores here are always computed in
    /// the model's element type).
    pub reorder_and_upcast_attn: bool,
    /// Whether the LM head shares the token embedding; only `true` is supported.
    pub tie_word_embeddings: bool,
    /// Cross-attention to an encoder; only `false` is supported.
    pub add_cross_attention: bool,
    /// The beginning-of-text token.
    pub bos_token_id: Option<usize>,
    /// The end-of-text token.
    pub eos_token_id: Option<usize>,
}

impl Default for Gpt2Config {
    fn default() -> Self {
        Gpt2Config {
            model_type: None,
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: None,
            activation_function: "gelu_new".to_string(),
            resid_pdrop: 0.1,
            embd_pdrop: 0.1,
            attn_pdrop: 0.1,
            layer_norm_epsilon: 1e-5,
            initializer_range: 0.02,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            reorder_and_upcast_attn: false,
            tie_word_embeddings: true,
            add_cross_attention: false,
            bos_token_id: Some(50256),
            eos_token_id: Some(50256),
        }
    }
}

impl Gpt2Config {
    /// Reads `config.json` from a model directory (or the file itself), and checks it as
    /// [`validate`](Self::validate) does.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Config`] if it is not valid JSON, a
    /// field has the wrong type, or the configuration is not supported.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let (config, path): (Self, _) = read_config(path.as_ref())?;
        config.check(Some(&path))?;
        Ok(config)
    }

    /// Parses configuration JSON and checks it.
    ///
    /// # Errors
    /// [`Error::Config`] as [`from_file`](Self::from_file).
    pub fn from_json_str(json: &str) -> Result<Self> {
        let config: Self = parse_config(json, None)?;
        config.check(None)?;
        Ok(config)
    }

    /// Checks that the model can be built: sizes at least 1, `n_head` dividing `n_embd`,
    /// dropout probabilities in `[0, 1)`, a supported activation, a tied head and no
    /// cross-attention.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first problem.
    pub fn validate(&self) -> Result<()> {
        self.check(None)
    }

    fn check(&self, path: Option<&Path>) -> Result<()> {
        let fail = |reason: String| Err(config_error(path, reason));
        if let Some(t) = &self.model_type
            && t != "gpt2"
        {
            return fail(format!("model_type is {t:?}, expected \"gpt2\""));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
        ] {
            if v == 0 {
                return fail(format!("{name} must be at least 1"));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return fail(format!("n_embd {} is not divisible by n_head {}", self.n_embd, self.n_head));
        }
        if self.n_inner == Some(0) {
            return fail("n_inner must be at least 1".to_string());
        }
        for (name, p) in
            [("resid_pdrop", self.resid_pdrop), ("embd_pdrop", self.embd_pdrop), ("attn_pdrop", self.attn_pdrop)]
        {
            if !(0.0..1.0).contains(&p) {
                return fail(format!("{name} {p} must be in [0, 1)"));
            }
        }
        if !(self.layer_norm_epsilon >= 0.0 && self.layer_norm_epsilon.is_finite()) {
            return fail(format!("layer_norm_epsilon {} must be finite and non-negative", self.layer_norm_epsilon));
        }
        if !(self.initializer_range >= 0.0 && self.initializer_range.is_finite()) {
            return fail(format!("initializer_range {} must be finite and non-negative", self.initializer_range));
        }
        if Act::parse(&self.activation_function).is_none() {
            return fail(format!(
                "activation_function {:?} is not supported (supported: {})",
                self.activation_function,
                Act::NAMES
            ));
        }
        if !self.tie_word_embeddings {
            return fail("tie_word_embeddings = false (an untied LM head) is not supported".to_string());
        }
        if self.add_cross_attention {
            return fail("add_cross_attention = true (GPT-2 as a decoder of an encoder) is not supported".to_string());
        }
        Ok(())
    }

    fn act(&self) -> Act {
        Act::parse(&self.activation_function).unwrap_or(Act::GeluTanh)
    }
}

/// Hugging Face's `Conv1D`: a linear layer whose weight is stored `[in, out]`, `y = x·W + b`.
/// GPT-2's projections are these; the layout is kept so the state dict matches the checkpoint.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::models::gpt2::Conv1D;
/// use tensorgrad::nn::Module;
/// let layer: Conv1D = Conv1D::new(3, 2, 0.02, 0); // in 3, out 2
/// assert_eq!(layer.weight().value().shape(), &[3, 2]);
/// assert_eq!(layer.forward(&Tensor::ones(&[4, 5, 3])).shape(), &[4, 5, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct Conv1D<E: Element = f32> {
    weight: Param<E>,
    bias: Param<E>,
    packed: WeightPack<PackedMatrix<E>>,
}

impl<E: Element> Conv1D<E> {
    /// A layer from `nx` inputs to `nf` outputs, weights drawn from `N(0, std²)` and a zero bias
    /// (Hugging Face's initialisation).
    pub fn new(nx: usize, nf: usize, std: f64, rng: impl crate::RngSource) -> Self {
        let weight = Init::Normal(0.0, std).tensor(&[nx, nf], rng);
        Conv1D { weight: Param::new(weight), bias: Param::new(Tensor::zeros(&[nf])), packed: WeightPack::new() }
    }

    /// The weight, `[in, out]`.
    pub fn weight(&self) -> &Param<E> {
        &self.weight
    }

    /// The bias, `[out]`.
    pub fn bias(&self) -> &Param<E> {
        &self.bias
    }
}

impl<E: Element> Module<E> for Conv1D<E> {
    /// `[…, in]` → `[…, out]`.
    #[track_caller]
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let w = self.weight.tensor();
        let (nx, nf) = (w.shape()[0], w.shape()[1]);
        if x.ndim() == 0 || x.shape()[x.ndim() - 1] != nx {
            panic!("Conv1D: expected input [..., {nx}], got {:?}", x.shape());
        }
        let b = self.bias.tensor();
        if !crate::is_grad_enabled() {
            let packed = self.packed.get(&[&w], || w.pack());
            return x.matmul_packed_bias(&packed, Some(&b));
        }
        let lead = &x.shape()[..x.ndim() - 1];
        let flat = x.reshape(&[lead.iter().product(), nx]);
        (flat.matmul(&w) + b).reshape(&[lead, &[nf]].concat())
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        f(param_name(prefix, "weight"), &self.weight);
        f(param_name(prefix, "bias"), &self.bias);
    }

    fn describe(&self) -> String {
        let s = self.weight.value();
        format!("Conv1D(nf={}, nx={})", s.shape()[1], s.shape()[0])
    }
}

/// The keys and values of earlier positions, per layer, so that each new token of a generation
/// costs the work of one position ([`Gpt2Model::forward_with_cache`]).
#[derive(Clone, Debug, Default)]
pub struct KvCache<E: Element = f32> {
    /// Per layer: keys and values `[batch, heads, positions, head_size]`.
    layers: Vec<(Tensor<E>, Tensor<E>)>,
}

impl<E: Element> KvCache<E> {
    /// An empty cache.
    pub fn new() -> Self {
        KvCache { layers: Vec::new() }
    }

    /// The number of positions cached.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |(k, _)| k.shape()[2])
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How the queries of one forward pass may see the keys.
enum Masking<E: Element> {
    /// Every key (one new token after a cache, no padding).
    All,
    /// Query `i` sees keys `0..=i` (no cache, no padding).
    Causal,
    /// A 0/1 mask `[batch, 1, queries, keys]`.
    Bool(Tensor<E>),
}

/// The attention block `attn` of a GPT-2 layer.
#[derive(Clone, Debug)]
struct Gpt2Attention<E: Element> {
    c_attn: Conv1D<E>,
    c_proj: Conv1D<E>,
    attn_dropout: Dropout,
    resid_dropout: Dropout,
    n_head: usize,
    scale: f64,
}

impl<E: Element> Gpt2Attention<E> {
    fn forward(&self, x: &Tensor<E>, masking: &Masking<E>, cache: Option<&mut (Tensor<E>, Tensor<E>)>) -> Tensor<E> {
        let (b, t, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let (h, hd) = (self.n_head, d / self.n_head);
        let qkv = self.c_attn.forward(x);
        let heads = |i: usize| qkv.narrow(2, i * d, d).reshape(&[b, t, h, hd]).permute(&[0, 2, 1, 3]);
        let (q, mut k, mut v) = (heads(0), heads(1), heads(2));
        if let Some(cache) = cache {
            if cache.0.shape()[2] > 0 {
                k = Tensor::cat(&[&cache.0, &k], 2);
                v = Tensor::cat(&[&cache.1, &v], 2);
            }
            *cache = (k.clone(), v.clone());
        }
        let training = self.attn_dropout.is_training() && self.attn_dropout.p() > 0.0;
        let mut options = SdpaOptions {
            dropout_p: if training { self.attn_dropout.p() } else { 0.0 },
            dropout_seed: if training { self.attn_dropout.next_stream() } else { 0 },
            scale: Some(self.scale),
            ..Default::default()
        };
        match masking {
            Masking::All => {}
            Masking::Causal => options.is_causal = true,
            Masking::Bool(m) => options.attn_mask = Some(AttnMask::Bool(m)),
        }
        let out = q.scaled_dot_product_attention(&k, &v, options);
        let merged = out.permute(&[0, 2, 1, 3]).reshape(&[b, t, d]);
        Module::<E>::forward(&self.resid_dropout, &self.c_proj.forward(&merged))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        self.c_attn.visit_params(&param_name(prefix, "c_attn"), f);
        self.c_proj.visit_params(&param_name(prefix, "c_proj"), f);
    }
}

/// The MLP block `mlp` of a GPT-2 layer.
#[derive(Clone, Debug)]
struct Gpt2Mlp<E: Element> {
    c_fc: Conv1D<E>,
    c_proj: Conv1D<E>,
    act: Act,
    dropout: Dropout,
}

/// One transformer block `h.{i}`.
#[derive(Clone, Debug)]
struct Gpt2Block<E: Element> {
    ln_1: LayerNorm<E>,
    attn: Gpt2Attention<E>,
    ln_2: LayerNorm<E>,
    mlp: Gpt2Mlp<E>,
}

impl<E: Element> Gpt2Block<E> {
    fn forward(&self, x: &Tensor<E>, masking: &Masking<E>, cache: Option<&mut (Tensor<E>, Tensor<E>)>) -> Tensor<E> {
        let x = x + &self.attn.forward(&self.ln_1.forward(x), masking, cache);
        let m = &self.mlp;
        let inner = m.act.apply(&m.c_fc.forward(&self.ln_2.forward(&x)));
        &x + &Module::<E>::forward(&m.dropout, &m.c_proj.forward(&inner))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        self.ln_1.visit_params(&param_name(prefix, "ln_1"), f);
        self.attn.visit_params(&param_name(prefix, "attn"), f);
        self.ln_2.visit_params(&param_name(prefix, "ln_2"), f);
        self.mlp.c_fc.visit_params(&param_name(prefix, "mlp.c_fc"), f);
        self.mlp.c_proj.visit_params(&param_name(prefix, "mlp.c_proj"), f);
    }
}

/// GPT-2's transformer (`GPT2Model`): token and position embeddings, `n_layer` blocks and a
/// final layer norm; the output is the hidden states `[batch, steps, n_embd]`.
///
/// Parameter names are those of a `GPT2Model` state dict (`wte.weight`,
/// `h.0.attn.c_attn.weight`, …, `ln_f.bias`).
///
/// As a [`Module`], `forward(ids)` takes token ids `[batch, steps]` (whole numbers as `E`) and
/// `forward_many(&[ids, attention_mask])` adds a padding mask `[batch, steps]` (1 for a token, 0
/// for padding).
#[derive(Clone, Debug)]
pub struct Gpt2Model<E: Element = f32> {
    config: Gpt2Config,
    wte: Embedding<E>,
    wpe: Embedding<E>,
    drop: Dropout,
    h: Vec<Gpt2Block<E>>,
    ln_f: LayerNorm<E>,
}

impl<E: Element> Gpt2Model<E> {
    /// A randomly initialised model (weights from `N(0, initializer_range²)`, zero biases, unit
    /// layer norms, as Hugging Face initialises one), in training mode.
    ///
    /// # Errors
    /// [`Error::Config`] if the configuration does not [`validate`](Gpt2Config::validate).
    pub fn new(config: &Gpt2Config, rng: impl crate::RngSource) -> Result<Self> {
        config.validate()?;
        let mut rng = rng.into_rng();
        let c = config;
        let std = c.initializer_range;
        let inner = c.n_inner.unwrap_or(4 * c.n_embd);
        let hd = (c.n_embd / c.n_head) as f64;
        let h = (0..c.n_layer)
            .map(|i| {
                let mut scale = if c.scale_attn_weights { 1.0 / hd.sqrt() } else { 1.0 };
                if c.scale_attn_by_inverse_layer_idx {
                    scale /= (i + 1) as f64;
                }
                Gpt2Block {
                    ln_1: LayerNorm::with_options(&[c.n_embd], c.layer_norm_epsilon, true, true),
                    attn: Gpt2Attention {
                        c_attn: Conv1D::new(c.n_embd, 3 * c.n_embd, std, &mut rng),
                        c_proj: Conv1D::new(c.n_embd, c.n_embd, std, &mut rng),
                        attn_dropout: Dropout::new(c.attn_pdrop, 0),
                        resid_dropout: Dropout::new(c.resid_pdrop, 0),
                        n_head: c.n_head,
                        scale,
                    },
                    ln_2: LayerNorm::with_options(&[c.n_embd], c.layer_norm_epsilon, true, true),
                    mlp: Gpt2Mlp {
                        c_fc: Conv1D::new(c.n_embd, inner, std, &mut rng),
                        c_proj: Conv1D::new(inner, c.n_embd, std, &mut rng),
                        act: c.act(),
                        dropout: Dropout::new(c.resid_pdrop, 0),
                    },
                }
            })
            .collect();
        let mut model = Gpt2Model {
            config: config.clone(),
            wte: Embedding::with_init(c.vocab_size, c.n_embd, Init::Normal(0.0, std), &mut rng),
            wpe: Embedding::with_init(c.n_positions, c.n_embd, Init::Normal(0.0, std), &mut rng),
            drop: Dropout::new(c.embd_pdrop, 0),
            h,
            ln_f: LayerNorm::with_options(&[c.n_embd], c.layer_norm_epsilon, true, true),
        };
        Module::<E>::reseed(&mut model, 0);
        Ok(model)
    }

    /// Loads `config.json` and `model.safetensors` from a directory written by
    /// `save_pretrained` (of a `GPT2Model` or a `GPT2LMHeadModel`: a `transformer.` prefix is
    /// dropped, `lm_head.weight` and old checkpoints' `attn.bias` buffers are skipped). The
    /// model is in evaluation mode, as `from_pretrained` returns it.
    ///
    /// # Errors
    /// [`Error::Io`] if a file is missing; [`Error::Config`] for an unusable `config.json`;
    /// [`Error::Format`] or [`Error::DType`] for a corrupt weight file;
    /// [`Error::StateMismatch`] naming every missing, unexpected or mis-shaped tensor.
    pub fn from_pretrained(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config = Gpt2Config::from_file(dir)?;
        let mut model = Self::new(&config, 0)?;
        load_weights(dir, &model, |name| {
            let name = name.strip_prefix("transformer.").unwrap_or(name);
            (!is_skipped(name)).then(|| name.to_string())
        })?;
        Module::<E>::eval(&mut model);
        Ok(model)
    }

    /// The configuration.
    pub fn config(&self) -> &Gpt2Config {
        &self.config
    }

    /// The token embedding `wte`, `[vocab_size, n_embd]`.
    pub fn wte(&self) -> &Embedding<E> {
        &self.wte
    }

    /// The hidden states `[batch, steps, n_embd]` of token ids `[batch, steps]`, with an
    /// optional padding mask `[batch, steps]` (1 for a token, 0 for padding: no query attends
    /// to a padding key). Positions count from 0, as Hugging Face's forward pass does when given
    /// no `position_ids` (pad at the end, not the start).
    ///
    /// # Panics
    /// If the ids are not `[batch, steps]` whole numbers below `vocab_size`, there are more
    /// steps than `n_positions`, or the mask has another shape or values other than 0 and 1.
    #[track_caller]
    pub fn hidden_states(&self, input_ids: &Tensor<E>, attention_mask: Option<&Tensor<E>>) -> Tensor<E> {
        self.run(input_ids, attention_mask, None)
    }

    /// [`hidden_states`](Self::hidden_states) continuing from the positions in `cache`, which
    /// it extends with this call's keys and values: call it with the prompt and an empty cache,
    /// then with each new token alone. `attention_mask`, if given, covers the cached positions
    /// and the new ones, `[batch, cache.len() + steps]`, as Hugging Face's does.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// use tensorgrad::models::gpt2::{Gpt2LMHeadModel, KvCache};
    ///
    /// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf/gpt2-tiny");
    /// let model: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(dir)?;
    /// let gpt2 = model.transformer();
    /// let full = gpt2.hidden_states(&Tensor::from_vec(vec![5.0, 17.0, 3.0], &[1, 3]), None);
    ///
    /// let mut cache = KvCache::new();
    /// gpt2.forward_with_cache(&Tensor::from_vec(vec![5.0, 17.0], &[1, 2]), None, &mut cache);
    /// let last = gpt2.forward_with_cache(&Tensor::from_vec(vec![3.0], &[1, 1]), None, &mut cache);
    /// assert_eq!(cache.len(), 3);
    /// let expected = full.narrow(1, 2, 1).to_vec();
    /// assert!(last.to_vec().iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-5));
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Panics
    /// As [`hidden_states`](Self::hidden_states), counting the cached positions, and if the
    /// cache holds another batch size or was made by another model.
    #[track_caller]
    pub fn forward_with_cache(
        &self,
        input_ids: &Tensor<E>,
        attention_mask: Option<&Tensor<E>>,
        cache: &mut KvCache<E>,
    ) -> Tensor<E> {
        self.run(input_ids, attention_mask, Some(cache))
    }

    #[track_caller]
    fn run(
        &self,
        input_ids: &Tensor<E>,
        attention_mask: Option<&Tensor<E>>,
        cache: Option<&mut KvCache<E>>,
    ) -> Tensor<E> {
        const OP: &str = "Gpt2Model";
        let c = &self.config;
        let ids = check_ids(OP, "input_ids", input_ids, c.vocab_size);
        let (b, t) = (input_ids.shape()[0], input_ids.shape()[1]);
        let past = cache.as_ref().map_or(0, |c| c.len());
        if let Some(cache) = &cache
            && let Some((k, _)) = cache.layers.first()
            && (k.shape()[0] != b || cache.layers.len() != self.h.len() || k.shape()[1] != c.n_head)
        {
            panic!(
                "{OP}: the cache holds batch {} of {} layers, this call has batch {b} for {} layers",
                k.shape()[0],
                cache.layers.len(),
                self.h.len()
            );
        }
        if t == 0 {
            panic!("{OP}: input_ids has no steps");
        }
        if past + t > c.n_positions {
            panic!("{OP}: {} positions ({past} cached + {t} new) exceed n_positions = {}", past + t, c.n_positions);
        }
        let keys = past + t;
        let masking = match attention_mask {
            Some(m) => {
                check_mask(OP, m, b, keys);
                let m = m.to_vec();
                let mut data = Vec::with_capacity(b * t * keys);
                for bi in 0..b {
                    for qi in 0..t {
                        for kj in 0..keys {
                            let ok = kj <= past + qi && m[bi * keys + kj] != E::zero();
                            data.push(if ok { E::one() } else { E::zero() });
                        }
                    }
                }
                Masking::Bool(Tensor::from_vec(data, &[b, 1, t, keys]))
            }
            None if t == 1 => Masking::All,
            None if past == 0 => Masking::Causal,
            None => {
                let data =
                    (0..t * keys).map(|x| if x % keys <= past + x / keys { E::one() } else { E::zero() }).collect();
                Masking::Bool(Tensor::from_vec(data, &[t, keys]))
            }
        };
        let positions: Vec<usize> = (past..past + t).collect();
        let x = self.wte.forward_ids(&ids, &[b, t]) + self.wpe.forward_ids(&positions, &[t]);
        let mut x = Module::<E>::forward(&self.drop, &x);
        match cache {
            Some(cache) => {
                if cache.layers.is_empty() {
                    let hd = c.n_embd / c.n_head;
                    cache.layers = vec![
                        (Tensor::zeros(&[b, c.n_head, 0, hd]), Tensor::zeros(&[b, c.n_head, 0, hd]));
                        self.h.len()
                    ];
                }
                for (block, kv) in self.h.iter().zip(cache.layers.iter_mut()) {
                    x = block.forward(&x, &masking, Some(kv));
                }
            }
            None => {
                for block in &self.h {
                    x = block.forward(&x, &masking, None);
                }
            }
        }
        self.ln_f.forward(&x)
    }

    fn dropouts_mut(&mut self) -> Vec<&mut Dropout> {
        let mut out = vec![&mut self.drop];
        for block in &mut self.h {
            out.push(&mut block.attn.attn_dropout);
            out.push(&mut block.attn.resid_dropout);
            out.push(&mut block.mlp.dropout);
        }
        out
    }
}

/// Checkpoint tensors that are not parameters: old checkpoints' causal-mask buffers and the
/// tied head.
fn is_skipped(name: &str) -> bool {
    name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") || name == "lm_head.weight"
}

impl<E: Element> Module<E> for Gpt2Model<E> {
    /// Token ids `[batch, steps]` → hidden states `[batch, steps, n_embd]`.
    #[track_caller]
    fn forward(&self, input_ids: &Tensor<E>) -> Tensor<E> {
        self.hidden_states(input_ids, None)
    }

    /// `[input_ids]` or `[input_ids, attention_mask]`.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        match inputs {
            [ids] => self.hidden_states(ids, None),
            [ids, mask] => self.hidden_states(ids, Some(mask)),
            _ => panic!("Gpt2Model: takes 1 or 2 inputs (input_ids[, attention_mask]), got {}", inputs.len()),
        }
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        self.wte.visit_params(&param_name(prefix, "wte"), f);
        self.wpe.visit_params(&param_name(prefix, "wpe"), f);
        for (i, block) in self.h.iter().enumerate() {
            block.visit_params(&param_name(prefix, &format!("h.{i}")), f);
        }
        self.ln_f.visit_params(&param_name(prefix, "ln_f"), f);
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "GPT2Model(vocab_size={}, n_positions={}, n_embd={}, n_layer={}, n_head={})",
            c.vocab_size, c.n_positions, c.n_embd, c.n_layer, c.n_head
        )
    }

    fn set_training(&mut self, training: bool) {
        for d in self.dropouts_mut() {
            d.set_training(training);
        }
    }

    fn reseed(&mut self, seed: u64) {
        reseed_dropouts(self.dropouts_mut(), seed);
    }
}

/// The options of [`Gpt2LMHeadModel::generate`], with the defaults of Hugging Face's
/// `GenerationConfig` (greedy, `top_k` 50 and `top_p` 1 when sampling).
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// How many tokens to add (fewer if `eos_token_id` comes first).
    pub max_new_tokens: usize,
    /// Sample from the distribution (`true`) or take the most likely token (`false`, greedy).
    pub do_sample: bool,
    /// Divides the logits before sampling (must be positive).
    pub temperature: f64,
    /// Sample among the `k` most likely tokens only (ties with the `k`-th kept).
    pub top_k: Option<usize>,
    /// Sample among the most likely tokens whose probabilities add up to at least `top_p`
    /// (nucleus sampling; in `(0, 1]`, 1 keeps every token).
    pub top_p: f64,
    /// The seed of the sampling: the same seed, prompt and model give the same tokens.
    pub seed: u64,
    /// Stop after this token is generated.
    pub eos_token_id: Option<usize>,
    /// Keep each layer's keys and values, so each new token costs one position (`true`), or
    /// run the whole sequence again for every token (`false`; slower, for checking).
    pub use_cache: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 20,
            do_sample: false,
            temperature: 1.0,
            top_k: Some(50),
            top_p: 1.0,
            seed: 0,
            eos_token_id: None,
            use_cache: true,
        }
    }
}

/// GPT-2 with its language-model head (`GPT2LMHeadModel`): the logits of the next token
/// `[batch, steps, vocab_size]`, from the hidden states times the token embedding (tied).
///
/// As a [`Module`], `forward(ids)` gives the logits and `forward_many(&[ids, attention_mask])`
/// adds a padding mask; parameter names are those `save_pretrained` writes
/// (`transformer.wte.weight`, …, no `lm_head.weight`).
#[derive(Clone, Debug)]
pub struct Gpt2LMHeadModel<E: Element = f32> {
    transformer: Gpt2Model<E>,
    head: WeightPack<PackedMatrix<E>>,
}

impl<E: Element> Gpt2LMHeadModel<E> {
    /// A randomly initialised model, as [`Gpt2Model::new`].
    ///
    /// # Errors
    /// [`Error::Config`] if the configuration does not validate.
    pub fn new(config: &Gpt2Config, rng: impl crate::RngSource) -> Result<Self> {
        Ok(Gpt2LMHeadModel { transformer: Gpt2Model::new(config, rng)?, head: WeightPack::new() })
    }

    /// Loads a model directory written by `save_pretrained` (see
    /// [`Gpt2Model::from_pretrained`]; a checkpoint without the `transformer.` prefix, such as
    /// the hub's `gpt2`, loads too). The model is in evaluation mode.
    ///
    /// # Errors
    /// As [`Gpt2Model::from_pretrained`].
    pub fn from_pretrained(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config = Gpt2Config::from_file(dir)?;
        let mut model = Self::new(&config, 0)?;
        load_weights(dir, &model, |name| {
            if is_skipped(name) {
                return None;
            }
            Some(if name.starts_with("transformer.") { name.to_string() } else { format!("transformer.{name}") })
        })?;
        Module::<E>::eval(&mut model);
        Ok(model)
    }

    /// The transformer under the head.
    pub fn transformer(&self) -> &Gpt2Model<E> {
        &self.transformer
    }

    /// The configuration.
    pub fn config(&self) -> &Gpt2Config {
        &self.transformer.config
    }

    /// The next-token logits `[batch, steps, vocab_size]` of token ids `[batch, steps]`, with an
    /// optional padding mask (see [`Gpt2Model::hidden_states`]).
    ///
    /// # Panics
    /// As [`Gpt2Model::hidden_states`].
    #[track_caller]
    pub fn logits(&self, input_ids: &Tensor<E>, attention_mask: Option<&Tensor<E>>) -> Tensor<E> {
        self.head_logits(&self.transformer.hidden_states(input_ids, attention_mask))
    }

    /// [`logits`](Self::logits) continuing from a cache (see
    /// [`Gpt2Model::forward_with_cache`]).
    ///
    /// # Panics
    /// As [`Gpt2Model::forward_with_cache`].
    #[track_caller]
    pub fn logits_with_cache(
        &self,
        input_ids: &Tensor<E>,
        attention_mask: Option<&Tensor<E>>,
        cache: &mut KvCache<E>,
    ) -> Tensor<E> {
        self.head_logits(&self.transformer.forward_with_cache(input_ids, attention_mask, cache))
    }

    /// `hidden · wteᵀ`: `[b, t, d]` → `[b, t, vocab]`.
    fn head_logits(&self, hidden: &Tensor<E>) -> Tensor<E> {
        let w = self.transformer.wte.weight().tensor();
        let (b, t, d) = (hidden.shape()[0], hidden.shape()[1], hidden.shape()[2]);
        let v = w.shape()[0];
        if !crate::is_grad_enabled() {
            let packed = self.head.get(&[&w], || w.t().pack());
            return hidden.matmul_packed(&packed);
        }
        hidden.reshape(&[b * t, d]).matmul(&w.t()).reshape(&[b, t, v])
    }

    /// Continues `prompt_ids` by `max_new_tokens` tokens, greedily or by sampling, and returns
    /// the whole sequence (prompt first), as Hugging Face's `generate` does for one sequence.
    /// Runs without recording gradients; dropout acts if the model is in training mode, so
    /// call [`eval`](Module::eval) first on a model you have trained
    /// ([`from_pretrained`](Self::from_pretrained) returns one in evaluation mode).
    ///
    /// With `use_cache` (the default) the prompt is run once and each new token then costs one
    /// position: its keys and values are appended to a [`KvCache`].
    ///
    /// ```
    /// use tensorgrad::models::gpt2::{GenerateOptions, Gpt2LMHeadModel};
    /// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf/gpt2-tiny");
    /// let model: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(dir)?;
    /// let greedy = GenerateOptions { max_new_tokens: 8, ..Default::default() };
    /// let cached = model.generate(&[5, 17, 3, 40], &greedy)?;
    /// let recomputed = model.generate(&[5, 17, 3, 40], &GenerateOptions { use_cache: false, ..greedy })?;
    /// assert_eq!(cached, recomputed);
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the prompt is empty or holds an id beyond the vocabulary,
    /// the prompt and the new tokens exceed `n_positions`, the temperature is not positive and
    /// finite, `top_k` is 0 or `top_p` is outside `(0, 1]`.
    pub fn generate(&self, prompt_ids: &[usize], options: &GenerateOptions) -> Result<Vec<usize>> {
        const OP: &str = "Gpt2LMHeadModel::generate";
        let c = self.config();
        let fail = |reason: String| Err(Error::InvalidArgument { op: OP, reason });
        if prompt_ids.is_empty() {
            return fail("the prompt is empty".to_string());
        }
        if let Some((pos, &id)) = prompt_ids.iter().enumerate().find(|&(_, &id)| id >= c.vocab_size) {
            return fail(format!("prompt id {id} at position {pos} is beyond the vocabulary of {}", c.vocab_size));
        }
        if prompt_ids.len() + options.max_new_tokens > c.n_positions {
            return fail(format!(
                "{} prompt tokens + {} new tokens exceed the model's {} positions",
                prompt_ids.len(),
                options.max_new_tokens,
                c.n_positions
            ));
        }
        if options.do_sample {
            if !(options.temperature > 0.0 && options.temperature.is_finite()) {
                return fail(format!("temperature {} must be positive and finite", options.temperature));
            }
            if options.top_k == Some(0) {
                return fail("top_k must be at least 1".to_string());
            }
            if !(options.top_p > 0.0 && options.top_p <= 1.0) {
                return fail(format!("top_p {} must be in (0, 1]", options.top_p));
            }
        }
        let mut rng = StdRng::seed_from_u64(options.seed);
        let mut tokens = prompt_ids.to_vec();
        let as_tensor =
            |ids: &[usize]| Tensor::from_vec(ids.iter().map(|&i| E::of(i as f64)).collect(), &[1, ids.len()]);
        no_grad(|| {
            let mut cache = KvCache::new();
            let mut next_input = tokens.clone();
            for _ in 0..options.max_new_tokens {
                let logits = if options.use_cache {
                    self.logits_with_cache(&as_tensor(&next_input), None, &mut cache)
                } else {
                    self.logits(&as_tensor(&tokens), None)
                };
                let steps = logits.shape()[1];
                let last: Vec<f64> =
                    logits.narrow(1, steps - 1, 1).to_vec().iter().map(|x| x.to_f64().unwrap_or(f64::NAN)).collect();
                let next = if options.do_sample { sample(&last, options, &mut rng) } else { argmax(&last) };
                tokens.push(next);
                next_input = vec![next];
                if options.eos_token_id == Some(next) {
                    break;
                }
            }
        });
        Ok(tokens)
    }

    fn dropouts_mut(&mut self) -> Vec<&mut Dropout> {
        self.transformer.dropouts_mut()
    }
}

/// The index of the largest value (the first of equals, as `torch.argmax`); NaN never wins.
fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best
}

/// Draws a token from `softmax(logits / temperature)` restricted by `top_k`, then `top_p`, as
/// Hugging Face's logits processors do in that order.
fn sample(logits: &[f64], options: &GenerateOptions, rng: &mut StdRng) -> usize {
    let scaled: Vec<f64> = logits.iter().map(|&l| l / options.temperature).collect();
    let mut order: Vec<usize> = (0..scaled.len()).collect();
    order.sort_by(|&a, &b| scaled[b].total_cmp(&scaled[a]).then(a.cmp(&b)));
    let mut keep = order.len();
    if let Some(k) = options.top_k
        && k < keep
    {
        let kth = scaled[order[k - 1]];
        keep = order.iter().take_while(|&&i| scaled[i] >= kth).count();
    }
    let max = scaled[order[0]];
    let weights: Vec<f64> = order[..keep].iter().map(|&i| (scaled[i] - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    if options.top_p < 1.0 {
        let mut cumulative = 0.0;
        let mut n = 0;
        for w in &weights {
            cumulative += w / total;
            n += 1;
            if cumulative >= options.top_p {
                break;
            }
        }
        keep = n.max(1);
    }
    let total: f64 = weights[..keep].iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (j, w) in weights[..keep].iter().enumerate() {
        if u < *w {
            return order[j];
        }
        u -= w;
    }
    order[keep - 1]
}

impl<E: Element> Module<E> for Gpt2LMHeadModel<E> {
    /// Token ids `[batch, steps]` → logits `[batch, steps, vocab_size]`.
    #[track_caller]
    fn forward(&self, input_ids: &Tensor<E>) -> Tensor<E> {
        self.logits(input_ids, None)
    }

    /// `[input_ids]` or `[input_ids, attention_mask]`.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        match inputs {
            [ids] => self.logits(ids, None),
            [ids, mask] => self.logits(ids, Some(mask)),
            _ => panic!("Gpt2LMHeadModel: takes 1 or 2 inputs (input_ids[, attention_mask]), got {}", inputs.len()),
        }
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        self.transformer.visit_params(&param_name(prefix, "transformer"), f);
    }

    fn describe(&self) -> String {
        format!("GPT2LMHeadModel({}, lm_head tied to wte)", self.transformer.describe())
    }

    fn set_training(&mut self, training: bool) {
        for d in self.dropouts_mut() {
            d.set_training(training);
        }
    }

    fn reseed(&mut self, seed: u64) {
        reseed_dropouts(self.dropouts_mut(), seed);
    }
}
