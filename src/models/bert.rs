//! BERT (`BertModel`, `BertForSequenceClassification` of Hugging Face `transformers`).
//!
//! The modules carry Hugging Face's names (`embeddings.LayerNorm`, `encoder.layer.0.attention.self.query`,
//! `pooler.dense`, `classifier`, …), so the state dict matches what `save_pretrained` writes.
//!
//! ```
//! use tensorgrad::Tensor;
//! use tensorgrad::models::bert::BertForSequenceClassification;
//!
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf/bert-tiny");
//! let model: BertForSequenceClassification = BertForSequenceClassification::from_pretrained(dir)?;
//! let ids = Tensor::from_vec(vec![2.0, 11.0, 25.0, 3.0, 2.0, 40.0, 3.0, 0.0], &[2, 4]);
//! let mask = Tensor::from_vec(vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0], &[2, 4]);
//! let logits = model.logits(&ids, None, Some(&mask));
//! assert_eq!(logits.shape(), &[2, 3]); // [batch, num_labels]
//! assert_eq!(model.config().id2label[&2], "positive");
//! # Ok::<(), tensorgrad::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Act, check_ids, check_mask, config_error, load_weights, parse_config, read_config, reseed_dropouts};
use crate::nn::{Dropout, Embedding, Init, LayerNorm, Linear, Module, Param, param_name};
use crate::{AttnMask, Element, Result, SdpaOptions, Tensor};

/// The configuration of a BERT model: the fields of Hugging Face's `BertConfig` that shape the
/// model, with its defaults (those of `bert-base-uncased`). Other keys are ignored.
///
/// The number of labels of a classification head is the size of `id2label` when the file has
/// one (as `save_pretrained` writes it), else `num_labels`, else 2.
///
/// ```
/// use tensorgrad::models::bert::BertConfig;
/// let config = BertConfig::from_json_str(r#"{"hidden_size": 64, "num_attention_heads": 4, "id2label": {"0": "no", "1": "yes", "2": "maybe"}}"#)?;
/// assert_eq!((config.hidden_size, config.num_labels, config.hidden_act.as_str()), (64, 3, "gelu"));
/// assert!(BertConfig::from_json_str(r#"{"position_embedding_type": "relative_key"}"#).is_err());
/// # Ok::<(), tensorgrad::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    /// `model_type`; must be `"bert"` when given.
    pub model_type: Option<String>,
    /// The number of tokens.
    pub vocab_size: usize,
    /// The width of the hidden states.
    pub hidden_size: usize,
    /// The number of encoder layers.
    pub num_hidden_layers: usize,
    /// The number of attention heads (dividing `hidden_size`).
    pub num_attention_heads: usize,
    /// The width of each layer's feed-forward part.
    pub intermediate_size: usize,
    /// The feed-forward activation: `gelu`, `gelu_new`, `gelu_pytorch_tanh`, `relu`,
    /// `silu`/`swish` or `tanh`.
    pub hidden_act: String,
    /// Dropout on the embeddings and after each sub-layer.
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention weights.
    pub attention_probs_dropout_prob: f64,
    /// The longest sequence (the rows of the position embedding).
    pub max_position_embeddings: usize,
    /// The number of token types (segments).
    pub type_vocab_size: usize,
    /// The standard deviation of the initial weights of [`BertModel::new`].
    pub initializer_range: f64,
    /// The epsilon of the layer norms.
    pub layer_norm_eps: f64,
    /// The padding token (its embedding row starts at zero in [`BertModel::new`]).
    pub pad_token_id: Option<usize>,
    /// Only `"absolute"` is supported.
    pub position_embedding_type: String,
    /// Dropout before the classifier; `None` is `hidden_dropout_prob`.
    pub classifier_dropout: Option<f64>,
    /// Only `false` is supported (BERT as a decoder).
    pub is_decoder: bool,
    /// Only `false` is supported.
    pub add_cross_attention: bool,
    /// The number of classes of [`BertForSequenceClassification`].
    pub num_labels: usize,
    /// The class names by id.
    pub id2label: BTreeMap<usize, String>,
}

impl Default for BertConfig {
    fn default() -> Self {
        BertConfig {
            model_type: None,
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".to_string(),
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: Some(0),
            position_embedding_type: "absolute".to_string(),
            classifier_dropout: None,
            is_decoder: false,
            add_cross_attention: false,
            num_labels: 2,
            id2label: BTreeMap::new(),
        }
    }
}

impl BertConfig {
    /// Reads `config.json` from a model directory (or the file itself) and checks it.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the file cannot be read;
    /// [`Error::Config`](crate::Error::Config) if it is not valid JSON, a field has the wrong
    /// type, or the configuration is not supported.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let (config, path): (Self, _) = read_config(path.as_ref())?;
        config.resolved(Some(&path))
    }

    /// Parses configuration JSON and checks it.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) as [`from_file`](Self::from_file).
    pub fn from_json_str(json: &str) -> Result<Self> {
        let config: Self = parse_config(json, None)?;
        config.resolved(None)
    }

    /// `num_labels` from `id2label`, then the checks.
    fn resolved(mut self, path: Option<&Path>) -> Result<Self> {
        if !self.id2label.is_empty() {
            if let Some((i, &id)) = self.id2label.keys().enumerate().find(|&(i, &id)| i != id) {
                return Err(config_error(path, format!("id2label has no entry for id {i} (next is {id})")));
            }
            self.num_labels = self.id2label.len();
        }
        self.check(path)?;
        Ok(self)
    }

    /// Checks that the model can be built: sizes at least 1, the heads dividing the hidden
    /// size, dropout probabilities in `[0, 1)`, a supported activation, absolute positions, an
    /// encoder.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the first problem.
    pub fn validate(&self) -> Result<()> {
        self.check(None)
    }

    fn check(&self, path: Option<&Path>) -> Result<()> {
        let fail = |reason: String| Err(config_error(path, reason));
        if let Some(t) = &self.model_type
            && t != "bert"
        {
            return fail(format!("model_type is {t:?}, expected \"bert\""));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
            ("num_labels", self.num_labels),
        ] {
            if v == 0 {
                return fail(format!("{name} must be at least 1"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return fail(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        let probs = [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("attention_probs_dropout_prob", self.attention_probs_dropout_prob),
            ("classifier_dropout", self.classifier_dropout.unwrap_or(0.0)),
        ];
        for (name, p) in probs {
            if !(0.0..1.0).contains(&p) {
                return fail(format!("{name} {p} must be in [0, 1)"));
            }
        }
        if !(self.layer_norm_eps >= 0.0 && self.layer_norm_eps.is_finite()) {
            return fail(format!("layer_norm_eps {} must be finite and non-negative", self.layer_norm_eps));
        }
        if !(self.initializer_range >= 0.0 && self.initializer_range.is_finite()) {
            return fail(format!("initializer_range {} must be finite and non-negative", self.initializer_range));
        }
        if Act::parse(&self.hidden_act).is_none() {
            return fail(format!("hidden_act {:?} is not supported (supported: {})", self.hidden_act, Act::NAMES));
        }
        if self.position_embedding_type != "absolute" {
            return fail(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        if self.is_decoder || self.add_cross_attention {
            return fail("is_decoder / add_cross_attention (BERT as a decoder) is not supported".to_string());
        }
        if let Some(pad) = self.pad_token_id
            && pad >= self.vocab_size
        {
            return fail(format!("pad_token_id {pad} is beyond vocab_size {}", self.vocab_size));
        }
        Ok(())
    }

    fn act(&self) -> Act {
        Act::parse(&self.hidden_act).unwrap_or(Act::Gelu)
    }
}

/// A `Linear` with Hugging Face's initialisation: `N(0, std²)` weights, zero bias.
fn linear<E: Element, R: rand::Rng + ?Sized>(i: usize, o: usize, std: f64, rng: &mut R) -> Linear<E> {
    Linear::with_init(i, o, Init::Normal(0.0, std), Some(Init::Zeros), rng)
}

/// An `Embedding` with Hugging Face's initialisation, `N(0, std²)`.
fn embedding<E: Element, R: rand::Rng + ?Sized>(n: usize, d: usize, std: f64, rng: &mut R) -> Embedding<E> {
    Embedding::with_init(n, d, Init::Normal(0.0, std), rng)
}

/// `LayerNorm` over the last dim with weight and bias.
fn layer_norm<E: Element>(d: usize, eps: f64) -> LayerNorm<E> {
    LayerNorm::with_options(&[d], eps, true, true)
}

/// One encoder layer `encoder.layer.{i}`.
#[derive(Clone, Debug)]
struct BertLayer<E: Element> {
    // attention.self
    query: Linear<E>,
    key: Linear<E>,
    value: Linear<E>,
    attn_dropout: Dropout,
    // attention.output
    attn_dense: Linear<E>,
    attn_norm: LayerNorm<E>,
    attn_out_dropout: Dropout,
    // intermediate
    intermediate: Linear<E>,
    act: Act,
    // output
    out_dense: Linear<E>,
    out_norm: LayerNorm<E>,
    out_dropout: Dropout,
    heads: usize,
}

impl<E: Element> BertLayer<E> {
    fn forward(&self, x: &Tensor<E>, mask: Option<&Tensor<E>>) -> Tensor<E> {
        let (b, t, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let (h, hd) = (self.heads, d / self.heads);
        let split = |y: Tensor<E>| y.reshape(&[b, t, h, hd]).permute(&[0, 2, 1, 3]);
        let (q, k, v) = (split(self.query.forward(x)), split(self.key.forward(x)), split(self.value.forward(x)));
        let training = self.attn_dropout.is_training() && self.attn_dropout.p() > 0.0;
        let options = SdpaOptions {
            attn_mask: mask.map(AttnMask::Bool),
            dropout_p: if training { self.attn_dropout.p() } else { 0.0 },
            dropout_seed: if training { self.attn_dropout.next_stream() } else { 0 },
            ..Default::default()
        };
        let context = q.scaled_dot_product_attention(&k, &v, options).permute(&[0, 2, 1, 3]).reshape(&[b, t, d]);
        let attn = Module::<E>::forward(&self.attn_out_dropout, &self.attn_dense.forward(&context));
        let attn = self.attn_norm.forward(&(attn + x));
        let inner = self.act.apply(&self.intermediate.forward(&attn));
        let out = Module::<E>::forward(&self.out_dropout, &self.out_dense.forward(&inner));
        self.out_norm.forward(&(out + &attn))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        let at = |name: &str| param_name(prefix, name);
        self.query.visit_params(&at("attention.self.query"), f);
        self.key.visit_params(&at("attention.self.key"), f);
        self.value.visit_params(&at("attention.self.value"), f);
        self.attn_dense.visit_params(&at("attention.output.dense"), f);
        self.attn_norm.visit_params(&at("attention.output.LayerNorm"), f);
        self.intermediate.visit_params(&at("intermediate.dense"), f);
        self.out_dense.visit_params(&at("output.dense"), f);
        self.out_norm.visit_params(&at("output.LayerNorm"), f);
    }
}

/// BERT's encoder (`BertModel`): word, position and token-type embeddings, the encoder layers
/// and the pooler (a dense layer with tanh on the first token, `[CLS]`).
///
/// [`forward_full`](Self::forward_full) gives `(last_hidden_state, pooled_output)`. As a
/// [`Module`], `forward(ids)` gives the last hidden state `[batch, steps, hidden_size]`, and
/// `forward_many` takes `[input_ids, attention_mask]` or `[input_ids, attention_mask,
/// token_type_ids]`. Parameter names are those of a `BertModel` state dict
/// (`embeddings.word_embeddings.weight`, …, `pooler.dense.bias`).
#[derive(Clone, Debug)]
pub struct BertModel<E: Element = f32> {
    config: BertConfig,
    word_embeddings: Embedding<E>,
    position_embeddings: Embedding<E>,
    token_type_embeddings: Embedding<E>,
    emb_norm: LayerNorm<E>,
    emb_dropout: Dropout,
    layers: Vec<BertLayer<E>>,
    pooler: Linear<E>,
}

impl<E: Element> BertModel<E> {
    /// A randomly initialised model (weights from `N(0, initializer_range²)`, zero biases, unit
    /// layer norms, a zero padding row), in training mode.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) if the configuration does not validate.
    pub fn new(config: &BertConfig, rng: impl crate::RngSource) -> Result<Self> {
        config.validate()?;
        let c = config;
        let mut rng = rng.into_rng();
        let (d, std, eps) = (c.hidden_size, c.initializer_range, c.layer_norm_eps);
        let word_embeddings = embedding(c.vocab_size, d, std, &mut rng);
        if let Some(pad) = c.pad_token_id {
            word_embeddings.weight().value().update_(|w| w[pad * d..(pad + 1) * d].fill(E::zero()));
        }
        let position_embeddings = embedding(c.max_position_embeddings, d, std, &mut rng);
        let token_type_embeddings = embedding(c.type_vocab_size, d, std, &mut rng);
        let layers = (0..c.num_hidden_layers)
            .map(|_| BertLayer {
                query: linear(d, d, std, &mut rng),
                key: linear(d, d, std, &mut rng),
                value: linear(d, d, std, &mut rng),
                attn_dropout: Dropout::new(c.attention_probs_dropout_prob, 0),
                attn_dense: linear(d, d, std, &mut rng),
                attn_norm: layer_norm(d, eps),
                attn_out_dropout: Dropout::new(c.hidden_dropout_prob, 0),
                intermediate: linear(d, c.intermediate_size, std, &mut rng),
                act: c.act(),
                out_dense: linear(c.intermediate_size, d, std, &mut rng),
                out_norm: layer_norm(d, eps),
                out_dropout: Dropout::new(c.hidden_dropout_prob, 0),
                heads: c.num_attention_heads,
            })
            .collect();
        let mut model = BertModel {
            config: config.clone(),
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            emb_norm: layer_norm(d, eps),
            emb_dropout: Dropout::new(c.hidden_dropout_prob, 0),
            layers,
            pooler: linear(d, d, std, &mut rng),
        };
        Module::<E>::reseed(&mut model, 0);
        Ok(model)
    }

    /// Loads `config.json` and `model.safetensors` from a directory written by
    /// `save_pretrained` (of a `BertModel`, or of a model with a head: the `bert.` prefix is
    /// dropped and the heads' tensors, `classifier.*` and `cls.*`, are skipped). Old
    /// checkpoints' `LayerNorm.gamma`/`beta` names are read as `weight`/`bias`. The model is in
    /// evaluation mode.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if a file is missing; [`Error::Config`](crate::Error::Config)
    /// for an unusable `config.json`; [`Error::Format`](crate::Error::Format) or
    /// [`Error::DType`](crate::Error::DType) for a corrupt weight file;
    /// [`Error::StateMismatch`](crate::Error::StateMismatch) naming every missing, unexpected or
    /// mis-shaped tensor.
    pub fn from_pretrained(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config = BertConfig::from_file(dir)?;
        let mut model = Self::new(&config, 0)?;
        load_weights(dir, &model, |name| {
            let name = checkpoint_name(name)?;
            if name.starts_with("classifier.") || name.starts_with("cls.") {
                return None;
            }
            Some(name.strip_prefix("bert.").unwrap_or(&name).to_string())
        })?;
        Module::<E>::eval(&mut model);
        Ok(model)
    }

    /// The configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// `(last_hidden_state [batch, steps, hidden_size], pooled_output [batch, hidden_size])` of
    /// token ids `[batch, steps]`, with optional token types `[batch, steps]` (segment ids; all
    /// 0 if `None`) and padding mask `[batch, steps]` (1 for a token, 0 for padding, which no
    /// token attends to).
    ///
    /// # Panics
    /// If the ids or token types are not `[batch, steps]` whole numbers within their tables,
    /// there are more steps than `max_position_embeddings`, or the mask has another shape or
    /// values other than 0 and 1.
    #[track_caller]
    pub fn forward_full(
        &self,
        input_ids: &Tensor<E>,
        token_type_ids: Option<&Tensor<E>>,
        attention_mask: Option<&Tensor<E>>,
    ) -> (Tensor<E>, Tensor<E>) {
        const OP: &str = "BertModel";
        let c = &self.config;
        let ids = check_ids(OP, "input_ids", input_ids, c.vocab_size);
        let (b, t) = (input_ids.shape()[0], input_ids.shape()[1]);
        if t == 0 || t > c.max_position_embeddings {
            panic!("{OP}: {t} steps; expected 1 to max_position_embeddings = {}", c.max_position_embeddings);
        }
        let types = match token_type_ids {
            Some(tt) => {
                if tt.shape() != input_ids.shape() {
                    panic!(
                        "{OP}: token_type_ids {:?} must have the shape of input_ids {:?}",
                        tt.shape(),
                        input_ids.shape()
                    );
                }
                check_ids(OP, "token_type_ids", tt, c.type_vocab_size)
            }
            None => vec![0; b * t],
        };
        let positions: Vec<usize> = (0..t).collect();
        let x = self.word_embeddings.forward_ids(&ids, &[b, t])
            + self.position_embeddings.forward_ids(&positions, &[t])
            + self.token_type_embeddings.forward_ids(&types, &[b, t]);
        let mut x = Module::<E>::forward(&self.emb_dropout, &self.emb_norm.forward(&x));
        let mask = attention_mask.map(|m| {
            check_mask(OP, m, b, t);
            m.reshape(&[b, 1, 1, t])
        });
        for layer in &self.layers {
            x = layer.forward(&x, mask.as_ref());
        }
        let first = x.narrow(1, 0, 1).reshape(&[b, c.hidden_size]);
        let pooled = self.pooler.forward(&first).tanh();
        (x, pooled)
    }

    fn dropouts_mut(&mut self) -> Vec<&mut Dropout> {
        let mut out = vec![&mut self.emb_dropout];
        for l in &mut self.layers {
            out.push(&mut l.attn_dropout);
            out.push(&mut l.attn_out_dropout);
            out.push(&mut l.out_dropout);
        }
        out
    }
}

/// A checkpoint tensor's name as a parameter name: `None` for buffers (`position_ids`), old
/// `gamma`/`beta` names of layer norms as `weight`/`bias`.
fn checkpoint_name(name: &str) -> Option<String> {
    if name.ends_with("embeddings.position_ids") {
        return None;
    }
    if let Some(stem) = name.strip_suffix("LayerNorm.gamma") {
        return Some(format!("{stem}LayerNorm.weight"));
    }
    if let Some(stem) = name.strip_suffix("LayerNorm.beta") {
        return Some(format!("{stem}LayerNorm.bias"));
    }
    Some(name.to_string())
}

/// The inputs of `forward_many`: `[ids]`, `[ids, mask]` or `[ids, mask, token types]`.
#[track_caller]
fn split_inputs<'a, E: Element>(
    model: &str,
    inputs: &[&'a Tensor<E>],
) -> (&'a Tensor<E>, Option<&'a Tensor<E>>, Option<&'a Tensor<E>>) {
    match *inputs {
        [ids] => (ids, None, None),
        [ids, mask] => (ids, Some(mask), None),
        [ids, mask, types] => (ids, Some(mask), Some(types)),
        _ => {
            panic!("{model}: takes 1 to 3 inputs (input_ids[, attention_mask[, token_type_ids]]), got {}", inputs.len())
        }
    }
}

impl<E: Element> Module<E> for BertModel<E> {
    /// Token ids `[batch, steps]` → last hidden state `[batch, steps, hidden_size]`.
    #[track_caller]
    fn forward(&self, input_ids: &Tensor<E>) -> Tensor<E> {
        self.forward_full(input_ids, None, None).0
    }

    /// `[input_ids]`, `[input_ids, attention_mask]` or `[input_ids, attention_mask,
    /// token_type_ids]` → last hidden state.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        let (ids, mask, types) = split_inputs("BertModel", inputs);
        self.forward_full(ids, types, mask).0
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        let at = |name: &str| param_name(prefix, name);
        self.word_embeddings.visit_params(&at("embeddings.word_embeddings"), f);
        self.position_embeddings.visit_params(&at("embeddings.position_embeddings"), f);
        self.token_type_embeddings.visit_params(&at("embeddings.token_type_embeddings"), f);
        self.emb_norm.visit_params(&at("embeddings.LayerNorm"), f);
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit_params(&at(&format!("encoder.layer.{i}")), f);
        }
        self.pooler.visit_params(&at("pooler.dense"), f);
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "BertModel(vocab_size={}, hidden_size={}, num_hidden_layers={}, num_attention_heads={})",
            c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads
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

/// BERT with a classification head (`BertForSequenceClassification`): dropout and a linear
/// layer on the pooled output, giving logits `[batch, num_labels]`.
///
/// As a [`Module`] it trains with a [`Trainer`](crate::train::Trainer) on token ids:
/// `forward(ids)` gives the logits, `forward_many` takes `[input_ids, attention_mask]` or
/// `[input_ids, attention_mask, token_type_ids]`. Parameter names are those `save_pretrained`
/// writes (`bert.embeddings.word_embeddings.weight`, …, `classifier.weight`).
#[derive(Clone, Debug)]
pub struct BertForSequenceClassification<E: Element = f32> {
    bert: BertModel<E>,
    dropout: Dropout,
    classifier: Linear<E>,
}

impl<E: Element> BertForSequenceClassification<E> {
    /// A randomly initialised model, as [`BertModel::new`], with `config.num_labels` classes.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) if the configuration does not validate.
    pub fn new(config: &BertConfig, rng: impl crate::RngSource) -> Result<Self> {
        let mut rng = rng.into_rng();
        let bert = BertModel::new(config, &mut rng)?;
        Ok(Self::from_bert(bert, config.num_labels, &mut rng))
    }

    /// A classifier of `num_labels` classes on a (pretrained) encoder: the head is new, drawn
    /// from `N(0, initializer_range²)` with a zero bias, as Hugging Face initialises the head of
    /// a checkpoint that has none. The model is in training mode.
    ///
    /// ```
    /// use tensorgrad::models::bert::{BertForSequenceClassification, BertModel};
    /// use tensorgrad::nn::Module;
    /// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf/bert-tiny");
    /// let encoder: BertModel = BertModel::from_pretrained(dir)?;
    /// let model = BertForSequenceClassification::from_bert(encoder, 5, 0);
    /// assert_eq!(model.named_parameters().last().unwrap().1.shape(), &[5]); // classifier.bias
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `num_labels` is 0.
    #[track_caller]
    pub fn from_bert(bert: BertModel<E>, num_labels: usize, rng: impl crate::RngSource) -> Self {
        if num_labels == 0 {
            panic!("BertForSequenceClassification: num_labels must be at least 1");
        }
        let mut rng = rng.into_rng();
        let mut bert = bert;
        bert.config.num_labels = num_labels;
        if bert.config.id2label.len() != num_labels {
            bert.config.id2label.clear();
        }
        let c = &bert.config;
        let p = c.classifier_dropout.unwrap_or(c.hidden_dropout_prob);
        let classifier = linear(c.hidden_size, num_labels, c.initializer_range, &mut rng);
        let mut model = BertForSequenceClassification { bert, dropout: Dropout::new(p, 0), classifier };
        Module::<E>::reseed(&mut model, 0);
        Module::<E>::train(&mut model);
        model
    }

    /// Loads a directory written by `save_pretrained` of a `BertForSequenceClassification`
    /// (the classifier must be in the checkpoint; for an encoder alone, use
    /// [`BertModel::from_pretrained`] and [`from_bert`](Self::from_bert)). The model is in
    /// evaluation mode.
    ///
    /// # Errors
    /// As [`BertModel::from_pretrained`]; a checkpoint without `classifier.weight` is an
    /// [`Error::StateMismatch`](crate::Error::StateMismatch) listing it as missing.
    pub fn from_pretrained(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config = BertConfig::from_file(dir)?;
        let mut model = Self::new(&config, 0)?;
        load_weights(dir, &model, |name| {
            let name = checkpoint_name(name)?;
            if name.starts_with("cls.") {
                return None;
            }
            Some(if name.starts_with("bert.") || name.starts_with("classifier.") {
                name
            } else {
                format!("bert.{name}")
            })
        })?;
        Module::<E>::eval(&mut model);
        Ok(model)
    }

    /// The encoder under the head.
    pub fn bert(&self) -> &BertModel<E> {
        &self.bert
    }

    /// The configuration (`num_labels`, `id2label`, …).
    pub fn config(&self) -> &BertConfig {
        &self.bert.config
    }

    /// The class logits `[batch, num_labels]` (see [`BertModel::forward_full`] for the inputs).
    ///
    /// # Panics
    /// As [`BertModel::forward_full`].
    #[track_caller]
    pub fn logits(
        &self,
        input_ids: &Tensor<E>,
        token_type_ids: Option<&Tensor<E>>,
        attention_mask: Option<&Tensor<E>>,
    ) -> Tensor<E> {
        let (_, pooled) = self.bert.forward_full(input_ids, token_type_ids, attention_mask);
        self.classifier.forward(&Module::<E>::forward(&self.dropout, &pooled))
    }

    fn dropouts_mut(&mut self) -> Vec<&mut Dropout> {
        let mut out = self.bert.dropouts_mut();
        out.push(&mut self.dropout);
        out
    }
}

impl<E: Element> Module<E> for BertForSequenceClassification<E> {
    /// Token ids `[batch, steps]` → logits `[batch, num_labels]`.
    #[track_caller]
    fn forward(&self, input_ids: &Tensor<E>) -> Tensor<E> {
        self.logits(input_ids, None, None)
    }

    /// `[input_ids]`, `[input_ids, attention_mask]` or `[input_ids, attention_mask,
    /// token_type_ids]` → logits.
    #[track_caller]
    fn forward_many(&self, inputs: &[&Tensor<E>]) -> Tensor<E> {
        let (ids, mask, types) = split_inputs("BertForSequenceClassification", inputs);
        self.logits(ids, types, mask)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(String, &Param<E>)) {
        self.bert.visit_params(&param_name(prefix, "bert"), f);
        self.classifier.visit_params(&param_name(prefix, "classifier"), f);
    }

    fn describe(&self) -> String {
        format!("BertForSequenceClassification({}, num_labels={})", self.bert.describe(), self.bert.config.num_labels)
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
