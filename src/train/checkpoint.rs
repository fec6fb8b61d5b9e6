//! Training checkpoints: everything needed to resume a run exactly — the model's weights, the
//! optimizer's state, the epoch and the history — in one safetensors file, written atomically.
//!
//! Random streams need no saving: the shuffling of epoch `e` comes from the run's seed and `e`,
//! and each step's dropout masks from its [`StepKey`](crate::nn::StepKey) `(seed, epoch, step,
//! rank)` (see [`Module::reseed`]), so a run resumed at epoch `e` draws the same shuffles and
//! dropout masks as one that never stopped.
//!
//! The optimizer's state is saved under its own keys: the parameters' dotted names for an
//! optimizer built from [`Module::named_parameters`] (`optimizer/lstm.weight_ih_l0.exp_avg`), so
//! a checkpoint does not depend on the order of the parameters; positions for one built from
//! [`Module::parameters`] (`optimizer/0.exp_avg`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::callbacks::{Callback, Control, TrainContext};
use super::history::History;
use crate::error::{Error, Result, quoted};
use crate::io::{load_metadata, load_tensors, save_tensors};
use crate::nn::Module;
use crate::optim::Optimizer;
use crate::{Element, Tensor};

const FORMAT: &str = "tensorgrad-checkpoint-1";

/// Writes a checkpoint after `epoch` (0-based) has finished.
///
/// The file holds the model's parameters under `model/<name>`, the optimizer's state under
/// `optimizer/<name>`, and the epoch and the history (JSON) as metadata. It is written to a
/// temporary file and renamed, so an interrupted save leaves the previous checkpoint intact.
pub fn save_checkpoint<E: Element>(
    path: impl AsRef<Path>,
    model: &(impl Module<E> + ?Sized),
    optimizer: &(impl Optimizer<E> + ?Sized),
    epoch: usize,
    history: &History,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor<E>)> =
        model.named_parameters().into_iter().map(|(n, t)| (format!("model/{n}"), t)).collect();
    tensors.extend(optimizer.state_dict().into_iter().map(|(n, t)| (format!("optimizer/{n}"), t)));
    let metadata = [
        ("format".to_string(), FORMAT.to_string()),
        ("epoch".to_string(), epoch.to_string()),
        ("history".to_string(), history.to_json()),
    ];
    save_tensors(path, &tensors, &metadata)
}

/// What a checkpoint says about the run it came from.
#[derive(Clone, Debug)]
pub struct Resume {
    /// The last finished epoch (0-based): resume with `initial_epoch: epoch + 1`.
    pub epoch: usize,
    /// The history up to and including that epoch.
    pub history: History,
}

/// Restores a checkpoint into `model` and `optimizer`.
///
/// Everything is checked before anything changes: parameter names and shapes, the optimizer's
/// state, the metadata. On any error the model and the optimizer are as they were.
pub fn load_checkpoint<E: Element>(
    path: impl AsRef<Path>,
    model: &(impl Module<E> + ?Sized),
    optimizer: &mut (impl Optimizer<E> + ?Sized),
) -> Result<Resume> {
    let path = path.as_ref();
    let bad = |reason: String| Error::Format { path: Some(path.to_path_buf()), reason };
    let meta: HashMap<String, String> = load_metadata(path)?.into_iter().collect();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        let found = meta.get("format").map_or_else(|| "none".to_string(), |f| quoted(f).to_string());
        return Err(bad(format!("not a tensorgrad checkpoint (format {found})")));
    }
    let epoch: usize = meta
        .get("epoch")
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| bad("the checkpoint's epoch is missing or not a number".into()))?;
    let history = History::from_json(meta.get("history").map(String::as_str).unwrap_or(""))?;
    let (mut weights, mut state) = (HashMap::new(), Vec::new());
    for (name, t) in load_tensors::<E>(path)? {
        if let Some(n) = name.strip_prefix("model/") {
            weights.insert(n.to_string(), t);
        } else if let Some(n) = name.strip_prefix("optimizer/") {
            state.push((n.to_string(), t));
        } else {
            return Err(bad(format!("unexpected tensor {}", quoted(&name))));
        }
    }
    // Check the weights first, then let the optimizer check (and take) its state, then write.
    let params = model.named_parameters();
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for (name, p) in &params {
        match weights.get(name) {
            None => missing.push(name.clone()),
            Some(t) if t.shape() != p.shape() => {
                mismatched.push((name.clone(), p.shape().to_vec(), t.shape().to_vec()))
            }
            Some(_) => {}
        }
    }
    let mut unexpected: Vec<String> =
        weights.keys().filter(|n| !params.iter().any(|(p, _)| p == *n)).cloned().collect();
    unexpected.sort();
    if !(missing.is_empty() && mismatched.is_empty() && unexpected.is_empty()) {
        return Err(Error::StateMismatch {
            path: Some(path.to_path_buf()),
            missing,
            unexpected,
            mismatched,
            wrong_dtype: Vec::new(),
        });
    }
    if let Some((name, p)) = params.iter().find(|(_, p)| !p.is_contiguous()) {
        return Err(Error::NotContiguous { name: name.clone(), shape: p.shape().to_vec() });
    }
    optimizer.load_state_dict(&state)?;
    for (name, p) in &params {
        let v = weights[name].to_vec();
        p.update_(|d| d.copy_from_slice(&v));
    }
    Ok(Resume { epoch, history })
}

/// A callback that writes a full checkpoint ([`save_checkpoint`]) after every epoch.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    path: PathBuf,
}

impl Checkpoint {
    /// Checkpoints to `path` after every epoch.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Checkpoint { path: path.into() }
    }
}

impl<E: Element> Callback<E> for Checkpoint {
    fn on_epoch_end(&mut self, _logs: &[(String, f64)], ctx: &mut TrainContext<'_, E>) -> Result<Control> {
        save_checkpoint(&self.path, ctx.model, &*ctx.optimizer, ctx.epoch, ctx.history)?;
        Ok(Control::Continue)
    }
}
