//!
//! Three model families: [`gpt2`](crate::models::gpt2) (GPT-2, with cached generation),
//! [`bert`](crate::models::bert) (BERT, with a sequence-classification head), and
//! [`resnet`](crate::models::resnet) (ResNet-18/34/50 from torchvision weights).
//!
//! A model directory as `save_pretrained` writes it holds a `config.json` and the weights in
//! `model.safetensors` (or shards listed in `model.safetensors.index.json`). The models here are
//! built from the crate's layers with Hugging Face's module names, so
//! [`Module::named_parameters`](crate::nn::Module::named_parameters) gives exactly the keys of the
//! checkpoint (`transformer.h.0.attn.c_attn.weight`,
//! `bert.encoder.layer.0.attention.self.query.weight`, …),
//! [`io::save_model`](crate::io::save_model) writes a file that `from_pretrained` in Python reads,
//! and the models train like any other module (with a [`Trainer`](crate::train::Trainer) or an
//! optimizer).
//!
//! Loading checks the whole checkpoint before writing anything: a missing file is an
//! [`Error::Io`](crate::Error::Io), an unusable `config.json` an
//! [`Error::Config`](crate::Error::Config), and weights that do not fit the configuration an
//! [`Error::StateMismatch`](crate::Error::StateMismatch) naming every missing, unexpected and
//! mis-shaped tensor. Weights stored as `F16`, `BF16`, `F32` or `F64` load into `f32` or `f64`
//! models.
//!
//! ```
//! use tensorgrad::Tensor;
//! use tensorgrad::models::gpt2::{GenerateOptions, Gpt2LMHeadModel};
//!
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf/gpt2-tiny");
//! let model: Gpt2LMHeadModel = Gpt2LMHeadModel::from_pretrained(dir)?;
//! let ids = Tensor::from_vec(vec![5.0, 17.0, 3.0], &[1, 3]);
//! assert_eq!(model.logits(&ids, None).shape(), &[1, 3, 64]); // [batch, steps, vocabulary]
//! let out = model.generate(&[5, 17, 3], &GenerateOptions { max_new_tokens: 4, ..Default::default() })?;
//! assert_eq!(out.len(), 3 + 4); // the prompt, then the new tokens
//! # Ok::<(), tensorgrad::Error>(())
//! ```
//!
//! With the `tokenizers` cargo feature, `load_tokenizer` reads the directory's
//! `tokenizer.json` with Hugging Face's `tokenizers` crate.

pub mod bert;
pub mod gpt2;
pub mod resnet;

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::nn::{Dropout, Module, write_state};
use crate::{Element, Error, Result, Tensor};

/// The file name of a single-file checkpoint in a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The file name of a sharded checkpoint's index in a model directory.
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";
/// The file name of the configuration in a model directory.
pub const CONFIG_FILE: &str = "config.json";

/// Reads a Hugging Face `tokenizer.json` from a model directory (or the file itself), with the
/// `tokenizers` crate's pure-Rust regex backend.
///
/// ```
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf/bert-tiny");
/// let tokenizer = tensorgrad::models::load_tokenizer(dir)?;
/// let ids = tokenizer.encode("the film was funny", true).unwrap().get_ids().to_vec();
/// assert_eq!(ids.first(), Some(&2)); // [CLS] … [SEP]
/// assert_eq!(ids.last(), Some(&3));
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file does not exist; [`Error::Tokenizer`] if the `tokenizers` crate
/// cannot read it.
#[cfg(feature = "tokenizers")]
pub fn load_tokenizer(dir: impl AsRef<Path>) -> Result<tokenizers::Tokenizer> {
    let dir = dir.as_ref();
    let path = if dir.is_file() { dir.to_path_buf() } else { dir.join("tokenizer.json") };
    let bytes = std::fs::read(&path).map_err(|source| Error::Io { op: "read", path: path.clone(), source })?;
    tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| Error::Tokenizer { path, reason: e.to_string() })
}

/// Reads and parses a `config.json` (a model directory, or the file itself).
pub(crate) fn read_config<C: DeserializeOwned>(dir: &Path) -> Result<(C, PathBuf)> {
    let path = if dir.is_file() { dir.to_path_buf() } else { dir.join(CONFIG_FILE) };
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { op: "read", path: path.clone(), source })?;
    let config = parse_config(&text, Some(&path))?;
    Ok((config, path))
}

/// Parses configuration JSON, as [`Error::Config`] on failure.
pub(crate) fn parse_config<C: DeserializeOwned>(json: &str, path: Option<&Path>) -> Result<C> {
    serde_json::from_str(json).map_err(|e| Error::Config {
        path: path.map(Path::to_path_buf),
        reason: format!("invalid JSON: {}", crate::error::bare(&e.to_string())),
    })
}

/// A configuration error for `path` (or JSON in memory).
pub(crate) fn config_error(path: Option<&Path>, reason: impl Into<String>) -> Error {
    Error::Config { path: path.map(Path::to_path_buf), reason: reason.into() }
}

/// The weight files of a model directory: `model.safetensors`, or the shards its index lists.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join(WEIGHTS_FILE);
    let index = dir.join(WEIGHTS_INDEX_FILE);
    if single.exists() || !index.exists() {
        return Ok(vec![single]);
    }
    let text =
        std::fs::read_to_string(&index).map_err(|source| Error::Io { op: "read", path: index.clone(), source })?;
    let bad = |reason: String| Error::Format { path: Some(index.clone()), reason };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("the index has no `weight_map` object".to_string()))?;
    let mut files = BTreeSet::new();
    for (name, file) in map {
        let file = file.as_str().ok_or_else(|| bad(format!("the shard of `{name}` is not a string")))?;
        if file.contains('/') || file.contains('\\') || file == ".." {
            return Err(bad(format!("the shard name `{file}` is not a file in the directory")));
        }
        files.insert(file.to_string());
    }
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

/// Loads a Hugging Face (or torchvision) checkpoint from `dir` into `model`'s parameters and
/// buffers ([`Module::state_dict`]).
///
/// Each tensor's name in the file goes through `rename`: `None` skips it (buffers such as
/// GPT-2's old `attn.bias` causal mask, a tied head), `Some(name)` is the parameter it fills.
/// Every name and shape is checked before anything is written; on a difference the model is
/// unchanged and the error lists them all.
pub(crate) fn load_weights<E: Element, M: Module<E> + ?Sized>(
    dir: &Path,
    model: &M,
    rename: impl Fn(&str) -> Option<String>,
) -> Result<()> {
    let files = weight_files(dir)?;
    let mut tensors = Vec::new();
    for file in &files {
        tensors.extend(crate::io::load_tensors_converted::<E>(file)?);
    }
    let path = if files.len() == 1 { files[0].clone() } else { dir.to_path_buf() };
    load_tensors_into(&path, tensors, model, rename)
}

/// [`load_weights`] from tensors already read (from `path`, named in errors).
pub(crate) fn load_tensors_into<E: Element, M: Module<E> + ?Sized>(
    path: &Path,
    tensors: Vec<(String, Tensor<E>)>,
    model: &M,
    rename: impl Fn(&str) -> Option<String>,
) -> Result<()> {
    let mut found: HashMap<String, Tensor<E>> = HashMap::new();
    let mut unexpected = Vec::new();
    for (name, t) in tensors {
        let Some(target) = rename(&name) else { continue };
        match found.entry(target) {
            Entry::Occupied(_) => unexpected.push(name), // two tensors for one parameter
            Entry::Vacant(slot) => {
                slot.insert(t);
            }
        }
    }
    let params = model.state_dict();
    let (mut missing, mut mismatched) = (Vec::new(), Vec::new());
    for (name, p) in &params {
        match found.get(name) {
            None => missing.push(name.clone()),
            Some(t) if t.shape() != p.shape() => {
                mismatched.push((name.clone(), p.shape().to_vec(), t.shape().to_vec()))
            }
            Some(_) => {}
        }
    }
    let names: BTreeSet<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    unexpected.extend(found.keys().filter(|n| !names.contains(n.as_str())).cloned());
    unexpected.sort();
    if !(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty()) {
        let path = Some(path.to_path_buf());
        return Err(Error::StateMismatch { path, missing, unexpected, mismatched, wrong_dtype: Vec::new() });
    }
    if let Some((name, t)) = params.iter().find(|(_, t)| !t.is_contiguous()) {
        return Err(Error::NotContiguous { name: name.clone(), shape: t.shape().to_vec() });
    }
    write_state(model, params.iter().map(|(name, _)| found[name].to_vec()).collect());
    Ok(())
}

/// The activation functions of Hugging Face's `ACT2FN` that the models here support.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    /// `gelu`: the exact GELU, `x·Φ(x)`.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`: GELU's tanh approximation (GPT-2's).
    GeluTanh,
    /// `relu`.
    Relu,
    /// `silu`, `swish`: `x·σ(x)`.
    Silu,
    /// `tanh`.
    Tanh,
}

impl Act {
    /// The names accepted, for error messages.
    pub(crate) const NAMES: &str = "gelu, gelu_new, gelu_pytorch_tanh, relu, silu, swish, tanh";

    /// The activation called `name` in a Hugging Face configuration.
    pub(crate) fn parse(name: &str) -> Option<Act> {
        Some(match name {
            "gelu" => Act::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Act::GeluTanh,
            "relu" => Act::Relu,
            "silu" | "swish" => Act::Silu,
            "tanh" => Act::Tanh,
            _ => return None,
        })
    }

    /// Applies the activation.
    pub(crate) fn apply<E: Element>(self, x: &Tensor<E>) -> Tensor<E> {
        match self {
            Act::Gelu => x.gelu(),
            Act::GeluTanh => x.gelu_tanh(),
            Act::Relu => x.relu(),
            Act::Silu => x * &x.sigmoid(),
            Act::Tanh => x.tanh(),
        }
    }
}

/// Calls `f` on each dropout with its index: how the models switch them all to training or
/// evaluation mode and reseed them.
pub(crate) fn reseed_dropouts<'a>(dropouts: impl IntoIterator<Item = &'a mut Dropout>, seed: u64) {
    for (i, d) in dropouts.into_iter().enumerate() {
        Module::<f32>::reseed(d, crate::nn::derive_seed(seed, i as u64));
    }
}

/// Checks that `ids` holds whole numbers below `vocab` in shape `[batch, steps]`, for the
/// models' forward passes, and returns them.
#[track_caller]
pub(crate) fn check_ids<E: Element>(model: &str, what: &str, ids: &Tensor<E>, vocab: usize) -> Vec<usize> {
    if ids.ndim() != 2 {
        panic!("{model}: {what} must be [batch, steps], got shape {:?}", ids.shape());
    }
    let values = match crate::kernels::index::whole_numbers(&ids.to_vec()) {
        Ok(v) => v,
        Err((pos, v)) => panic!("{model}: {what} value {v} at position {pos} is not a non-negative whole number"),
    };
    if let Some((pos, &id)) = values.iter().enumerate().find(|&(_, &id)| id >= vocab) {
        panic!("{model}: {what} value {id} at position {pos} is out of range for a table of {vocab}");
    }
    values
}

/// Checks an attention mask `[batch, keys]` of 0s and 1s.
#[track_caller]
pub(crate) fn check_mask<E: Element>(model: &str, mask: &Tensor<E>, batch: usize, keys: usize) {
    if mask.shape() != [batch, keys] {
        panic!("{model}: attention_mask must be [batch, keys] = [{batch}, {keys}], got {:?}", mask.shape());
    }
    if let Some(v) = mask.to_vec().into_iter().find(|&v| v != E::zero() && v != E::one()) {
        panic!("{model}: attention_mask holds 0 (padding) and 1 (token) only, found {v:?}");
    }
}
