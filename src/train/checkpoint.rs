//! Training checkpoints: everything needed to resume a run exactly — the model's weights, the
//! optimizer's state, the epoch and the history, and for a checkpoint written inside an epoch
//! the batches done and the epoch's running totals ([`EpochProgress`]) — in one safetensors
//! file, written atomically.
//!
//! Random streams need no saving: the shuffling of epoch `e` comes from the run's seed and `e`,
//! and each step's dropout masks from its [`StepKey`](crate::nn::StepKey) `(seed, epoch, step,
//! rank)` (see [`Module::reseed`]), so a run resumed at epoch `e`, or at a batch of it, draws
//! the same shuffles and dropout masks as one that never stopped.
//!
//! The optimizer's state is saved under its own keys: the parameters' dotted names for an
//! optimizer built from [`Module::named_parameters`] (`optimizer/lstm.weight_ih_l0.exp_avg`), so
//! a checkpoint does not depend on the order of the parameters; positions for one built from
//! [`Module::parameters`] (`optimizer/0.exp_avg`).
//!
//! What is not saved: the callbacks' own state (an [`EarlyStopping`](super::EarlyStopping)'s
//! best value and patience count, a [`LrSchedule`](super::LrSchedule)'s position) and the
//! learning rate, which is configuration. A run whose learning rate a schedule changes resumes
//! exactly only if the resumed run sets the rate the schedule had reached.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::callbacks::{Callback, Control, TrainContext};
use super::fit::FitOptions;
use super::history::History;
use super::progress::EpochProgress;
use crate::error::{Error, Result, quoted};
use crate::io::{load_metadata, load_tensors, save_tensors};
use crate::nn::{Module, write_state};
use crate::optim::Optimizer;
use crate::{Element, Tensor};

const FORMAT: &str = "tensorgrad-checkpoint-1";

/// Writes a checkpoint after `epoch` (0-based) has finished.
///
/// The file holds the model's parameters under `model/<name>`, the optimizer's state under
/// `optimizer/<name>`, and the epoch and the history (JSON) as metadata. It is written to a
/// temporary file and renamed, so an interrupted save leaves the previous checkpoint intact.
/// The [`Checkpoint`] callback calls it after every epoch of a [`Trainer`](super::Trainer);
/// a loop of your own calls it directly:
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
/// use tensorgrad::train::{History, load_checkpoint, save_checkpoint};
/// use tensorgrad::Tensor;
///
/// let path = std::env::temp_dir().join(format!("tensorgrad-save-ckpt-doc-{}.safetensors", std::process::id()));
/// let model: Linear = Linear::new(2, 1, 0);
/// let mut opt = Adam::new(model.named_parameters(), AdamConfig::default());
/// let mut history = History::new();
/// for epoch in 0..2 {
///     let loss = model.forward(&Tensor::ones(&[4, 2])).powf(2.0).mean();
///     history.push_epoch(&[("loss".to_string(), loss.item() as f64)], 0.0);
///     opt.step(&loss.backward());
///     save_checkpoint(&path, &model, &opt, epoch, &history)?;
/// }
///
/// // Another process: the same architecture, restored.
/// let restored: Linear = Linear::new(2, 1, 7);
/// let mut restored_opt = Adam::new(restored.named_parameters(), AdamConfig::default());
/// let resume = load_checkpoint(&path, &restored, &mut restored_opt)?;
/// assert_eq!((resume.epoch, resume.history.epochs()), (1, 2));
/// assert_eq!(restored.weight().value().to_vec(), model.weight().value().to_vec());
/// assert_eq!(restored_opt.state_dict().len(), opt.state_dict().len());
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
pub fn save_checkpoint<E: Element>(
    path: impl AsRef<Path>,
    model: &(impl Module<E> + ?Sized),
    optimizer: &(impl Optimizer<E> + ?Sized),
    epoch: usize,
    history: &History,
) -> Result<()> {
    save(path.as_ref(), model, optimizer, epoch, history, None)
}

/// Writes a checkpoint inside an epoch, after `progress.batches_done()` of its batches: as
/// [`save_checkpoint`], plus the epoch's progress, so that
/// [`FitOptions::initial_progress`] resumes at the next batch. `history` holds the epochs
/// finished before.
///
/// The [`Checkpoint`] callback with [`every_n_batches`](Checkpoint::every_n_batches) calls it
/// every `n` batches; a callback of your own can choose other moments, here once, after the
/// second batch:
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{Callback, FitOptions, TrainContext, Trainer, load_checkpoint, save_checkpoint_in_epoch};
/// use tensorgrad::{Result, Tensor, loss};
///
/// struct SaveOnce(std::path::PathBuf);
///
/// impl Callback for SaveOnce {
///     fn on_batch_end(&mut self, batch: usize, _loss: f64, ctx: &mut TrainContext<'_, f32>) -> Result<()> {
///         match ctx.progress {
///             Some(progress) if batch == 1 => {
///                 save_checkpoint_in_epoch(&self.0, ctx.model, &*ctx.optimizer, progress, ctx.history)
///             }
///             _ => Ok(()),
///         }
///     }
/// }
///
/// let path = std::env::temp_dir().join(format!("tensorgrad-in-epoch-doc-{}.safetensors", std::process::id()));
/// let make = || {
///     let model: Linear = Linear::new(2, 1, 0);
///     let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
///     (model, opt)
/// };
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let (x, y) = (Tensor::ones(&[12, 2]), Tensor::zeros(&[12, 1]));
/// let options = FitOptions { epochs: 1, batch_size: 4, verbose: false, ..Default::default() };
/// let (model, opt) = make();
/// Trainer::new(model, opt, mse).callback(SaveOnce(path.clone())).fit(&x, &y, &options)?;
///
/// let (model, mut opt) = make();
/// let resume = load_checkpoint(&path, &model, &mut opt)?;
/// let progress = resume.progress.as_ref().unwrap();
/// assert_eq!((progress.epoch(), progress.batches_done(), progress.samples_seen()), (0, 2, 8));
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
pub fn save_checkpoint_in_epoch<E: Element>(
    path: impl AsRef<Path>,
    model: &(impl Module<E> + ?Sized),
    optimizer: &(impl Optimizer<E> + ?Sized),
    progress: &EpochProgress,
    history: &History,
) -> Result<()> {
    save(path.as_ref(), model, optimizer, progress.epoch, history, Some(progress))
}

fn save<E: Element>(
    path: &Path,
    model: &(impl Module<E> + ?Sized),
    optimizer: &(impl Optimizer<E> + ?Sized),
    epoch: usize,
    history: &History,
    progress: Option<&EpochProgress>,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor<E>)> =
        model.state_dict().into_iter().map(|(n, t)| (format!("model/{n}"), t)).collect();
    tensors.extend(optimizer.state_dict().into_iter().map(|(n, t)| (format!("optimizer/{n}"), t)));
    let mut metadata = vec![
        ("format".to_string(), FORMAT.to_string()),
        ("epoch".to_string(), epoch.to_string()),
        ("history".to_string(), history.to_json()),
    ];
    if let Some(p) = progress {
        metadata.push(("progress".to_string(), p.to_json()));
    }
    save_tensors(path, &tensors, &metadata)
}

/// What a checkpoint says about the run it came from.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{Checkpoint, FitOptions, Trainer, load_checkpoint};
/// use tensorgrad::{Tensor, loss};
///
/// let path = std::env::temp_dir().join(format!("tensorgrad-resume-doc-{}.safetensors", std::process::id()));
/// let make = || {
///     let model: Linear = Linear::new(2, 1, 0);
///     let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
///     (model, opt)
/// };
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let (x, y) = (Tensor::ones(&[8, 2]), Tensor::zeros(&[8, 1]));
///
/// // A run of 5 epochs stopped after 2 of them.
/// let (model, opt) = make();
/// let two = FitOptions { epochs: 2, verbose: false, ..Default::default() };
/// Trainer::new(model, opt, mse).callback(Checkpoint::new(&path)).fit(&x, &y, &two)?;
///
/// // Resumed: epochs 2, 3 and 4 run, and the history covers all five.
/// let (model, mut opt) = make();
/// let resume = load_checkpoint(&path, &model, &mut opt)?;
/// assert_eq!((resume.epoch, resume.history.epochs()), (1, 2));
/// let five = resume.fit_options(FitOptions { epochs: 5, verbose: false, ..Default::default() });
/// assert_eq!(five.initial_epoch, 2);
/// let mut history = resume.history.clone();
/// history.extend(&Trainer::new(model, opt, mse).fit(&x, &y, &five)?);
/// assert_eq!(history.epochs(), 5);
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Resume {
    /// The epoch (0-based) the checkpoint was written in: at its end, unless `progress` says
    /// how far into it. After an epoch-end checkpoint, resume with `initial_epoch: epoch + 1`
    /// (or [`fit_options`](Self::fit_options)).
    pub epoch: usize,
    /// The history of the finished epochs.
    pub history: History,
    /// For a checkpoint written inside an epoch ([`save_checkpoint_in_epoch`]), the batches
    /// done and the epoch's running totals.
    pub progress: Option<EpochProgress>,
}

impl Resume {
    /// `options` set to carry on where the checkpoint left off: `initial_epoch` the next epoch
    /// after an epoch-end checkpoint, or the interrupted epoch with its `initial_progress`.
    pub fn fit_options<'a, E: Element>(&self, options: FitOptions<'a, E>) -> FitOptions<'a, E> {
        match &self.progress {
            Some(p) => FitOptions { initial_epoch: p.epoch, initial_progress: Some(p.clone()), ..options },
            None => FitOptions { initial_epoch: self.epoch + 1, initial_progress: None, ..options },
        }
    }
}

/// Restores a checkpoint into `model` and `optimizer`.
///
/// Everything is checked before anything changes: parameter names and shapes, the optimizer's
/// state, the metadata. On any error the model and the optimizer are as they were.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Adam, AdamConfig};
/// use tensorgrad::train::{History, load_checkpoint, save_checkpoint};
/// use tensorgrad::Error;
///
/// let path = std::env::temp_dir().join(format!("tensorgrad-load-ckpt-doc-{}.safetensors", std::process::id()));
/// let model: Linear = Linear::new(3, 2, 0);
/// let opt = Adam::new(model.named_parameters(), AdamConfig::default());
/// save_checkpoint(&path, &model, &opt, 0, &History::new())?;
///
/// // A model of another shape is refused, and neither it nor its optimizer changes.
/// let other: Linear = Linear::new(3, 4, 1);
/// let before = other.weight().value().to_vec();
/// let mut other_opt = Adam::new(other.named_parameters(), AdamConfig::default());
/// let err = load_checkpoint(&path, &other, &mut other_opt).unwrap_err();
/// assert!(matches!(err, Error::StateMismatch { .. }));
/// assert_eq!(other.weight().value().to_vec(), before);
///
/// let same: Linear = Linear::new(3, 2, 1);
/// let mut same_opt = Adam::new(same.named_parameters(), AdamConfig::default());
/// assert_eq!(load_checkpoint(&path, &same, &mut same_opt)?.epoch, 0);
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
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
    let progress = match meta.get("progress") {
        None => None,
        Some(text) => {
            let p = EpochProgress::from_json(text).map_err(bad)?;
            if p.epoch != epoch {
                return Err(bad(format!("the progress is in epoch {} but the checkpoint's epoch is {epoch}", p.epoch)));
            }
            Some(p)
        }
    };
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
    let params = model.state_dict();
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
    write_state(model, params.iter().map(|(name, _)| weights[name].to_vec()).collect());
    Ok(Resume { epoch, history, progress })
}

/// A callback that writes a full checkpoint ([`save_checkpoint`]) after every epoch, and with
/// [`every_n_batches`](Self::every_n_batches) inside epochs too.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{Checkpoint, FitOptions, Trainer, load_checkpoint};
/// use tensorgrad::{Error, Tensor, loss};
///
/// let path = std::env::temp_dir().join(format!("tensorgrad-ckpt-doc-{}.safetensors", std::process::id()));
/// let (x, y) = (Tensor::<f32>::arange(40).reshape(&[20, 2]).mul_scalar(0.025), Tensor::zeros(&[20, 1]));
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let make = || {
///     let model = Linear::new(2, 1, &mut StdRng::seed_from_u64(0));
///     let opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() });
///     (model, opt)
/// };
/// let opts = FitOptions { epochs: 2, batch_size: 4, verbose: false, ..Default::default() };
///
/// // A run checkpointing every 3 batches dies in the 4th of epoch 0's 5 batches.
/// let (model, opt) = make();
/// let crashed = Trainer::new(model, opt, mse)
///     .callback(Checkpoint::new(&path).every_n_batches(3))
///     .grad_hook(|_, step| match step.key.step {
///         3 => Err(Error::Format { path: None, reason: "power cut".into() }),
///         _ => Ok(()),
///     })
///     .fit(&x, &y, &opts);
/// assert!(crashed.is_err());
///
/// // A fresh process resumes at batch 3 of epoch 0, and finishes the run.
/// let (model, mut opt) = make();
/// let resume = load_checkpoint(&path, &model, &mut opt)?;
/// assert_eq!((resume.epoch, resume.progress.as_ref().map(|p| p.batches_done())), (0, Some(3)));
/// let history = Trainer::new(model, opt, mse).fit(&x, &y, &resume.fit_options(opts))?;
/// assert_eq!(history.epochs(), 2);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Checkpoint {
    path: PathBuf,
    every_n_batches: Option<usize>,
    batches: usize,
}

impl Checkpoint {
    /// Checkpoints to `path` after every epoch.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Checkpoint { path: path.into(), every_n_batches: None, batches: 0 }
    }

    /// Also checkpoints inside epochs, after every `n`-th batch this callback sees
    /// ([`save_checkpoint_in_epoch`]), for long epochs; resume with
    /// [`Resume::fit_options`].
    ///
    /// # Panics
    /// If `n` is 0.
    #[track_caller]
    pub fn every_n_batches(mut self, n: usize) -> Self {
        if n == 0 {
            panic!("Checkpoint::every_n_batches: n must be at least 1");
        }
        self.every_n_batches = Some(n);
        self
    }
}

impl<E: Element> Callback<E> for Checkpoint {
    fn on_train_begin(&mut self, ctx: &mut TrainContext<'_, E>) -> Result<()> {
        if ctx.world_size > 1
            && let Some(n) = self.every_n_batches
        {
            return Err(Error::Distributed {
                op: "Checkpoint",
                reason: format!(
                    "every_n_batches({n}) is not supported in distributed training (a mid-epoch checkpoint would \
                     hold rank 0's running totals only); checkpoint at the end of each epoch"
                ),
            });
        }
        Ok(())
    }

    fn on_batch_end(&mut self, _batch: usize, _loss: f64, ctx: &mut TrainContext<'_, E>) -> Result<()> {
        self.batches += 1;
        if let (Some(n), Some(progress)) = (self.every_n_batches, ctx.progress)
            && self.batches.is_multiple_of(n)
            && ctx.rank == 0
        {
            save_checkpoint_in_epoch(&self.path, ctx.model, &*ctx.optimizer, progress, ctx.history)?;
        }
        Ok(())
    }

    /// Writes the checkpoint (on rank 0 only in distributed training: every rank holds the
    /// same state).
    fn on_epoch_end(&mut self, _logs: &[(String, f64)], ctx: &mut TrainContext<'_, E>) -> Result<Control> {
        if ctx.rank == 0 {
            save_checkpoint(&self.path, ctx.model, &*ctx.optimizer, ctx.epoch, ctx.history)?;
        }
        Ok(Control::Continue)
    }
}
