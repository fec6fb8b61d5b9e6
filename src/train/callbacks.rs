//! Callbacks: hooks into the training loop (early stopping, checkpoints, learning-rate
//! schedules, and your own).

use std::path::PathBuf;

use super::history::History;
use super::progress::EpochProgress;
use crate::error::Result;
use crate::nn::{Module, StepKey};
use crate::optim::{LrScheduler, Optimizer};
use crate::{Element, Gradients, Tensor};

/// Whether training goes on after a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop after this epoch.
    Stop,
}

/// What a callback can see and change: the model (read-only), the optimizer (e.g. its learning
/// rate), the history so far, the current epoch (0-based), and after each batch the epoch's
/// progress.
pub struct TrainContext<'a, E: Element> {
    /// The model being trained.
    pub model: &'a dyn Module<E>,
    /// Its optimizer.
    pub optimizer: &'a mut dyn Optimizer<E>,
    /// The epochs finished so far.
    pub history: &'a History,
    /// The current epoch, counting from 0.
    pub epoch: usize,
    /// In [`Callback::on_batch_end`], the batches of this epoch done so far (this one
    /// included) and the running totals of its loss and metrics: what a mid-epoch checkpoint
    /// saves. `None` in the other hooks.
    pub progress: Option<&'a EpochProgress>,
}

/// What a gradient hook sees of one training step, between the backward pass and the
/// optimizer step (see [`Callback::on_after_backward`] and
/// [`Trainer::grad_hook`](super::Trainer::grad_hook)).
///
/// `params` lists the parameters the step will update by their dotted names, in the model's
/// order, which is the same in every process: an all-reduce should walk the gradients in this
/// order (`grads.get(tensor)` for each), not in [`Gradients::iter`]'s order, which follows
/// tensor ids private to one process.
#[non_exhaustive]
pub struct StepContext<'a, E: Element> {
    /// The model being trained (in training mode).
    pub model: &'a dyn Module<E>,
    /// The trainable parameters with their dotted names, in the model's order.
    pub params: &'a [(String, Tensor<E>)],
    /// This batch's input (the first one, for data with several inputs per sample).
    pub inputs: &'a Tensor<E>,
    /// All of this batch's inputs, in the order the model takes them (one for most models).
    pub all_inputs: &'a [Tensor<E>],
    /// This batch's targets.
    pub targets: &'a Tensor<E>,
    /// This batch's loss.
    pub loss: f64,
    /// The batch's index in its epoch, counting from 0.
    pub batch: usize,
    /// The step: its epoch, its index over the whole run (`key.step`), the run's seed and this
    /// process's rank. The batch's forward pass drew its dropout masks in `key.scope`.
    pub key: StepKey,
}

/// A hook into [`Trainer::fit`](super::Trainer::fit). Every method has a default that does
/// nothing; `logs` holds this epoch's `loss`, metrics, `val_*` values and `lr`.
pub trait Callback<E: Element = f32> {
    /// Before the first epoch.
    fn on_train_begin(&mut self, _ctx: &mut TrainContext<'_, E>) -> Result<()> {
        Ok(())
    }
    /// After each batch's backward pass, before gradient clipping
    /// ([`Trainer::clip_grad_norm`](super::Trainer::clip_grad_norm)) and the optimizer step:
    /// the place to all-reduce gradients across data-parallel ranks, or to replace them with
    /// per-sample clipped ones. Whatever `grads` holds on return is what the optimizer uses; a
    /// parameter whose gradient is removed is not updated this step. Callbacks run in the
    /// order they were added; an error ends `fit` before this step's update.
    fn on_after_backward(&mut self, _grads: &mut Gradients<E>, _step: &StepContext<'_, E>) -> Result<()> {
        Ok(())
    }
    /// After each optimizer step, with the batch index and its loss.
    fn on_batch_end(&mut self, _batch: usize, _loss: f64, _ctx: &mut TrainContext<'_, E>) -> Result<()> {
        Ok(())
    }
    /// After each epoch (and its validation); return [`Control::Stop`] to end training.
    fn on_epoch_end(&mut self, _logs: &[(String, f64)], _ctx: &mut TrainContext<'_, E>) -> Result<Control> {
        Ok(Control::Continue)
    }
    /// After the last epoch.
    fn on_train_end(&mut self, _ctx: &mut TrainContext<'_, E>) -> Result<()> {
        Ok(())
    }
}

/// Looks up a logged value, with a message listing what is there.
#[track_caller]
fn monitored(who: &str, name: &str, logs: &[(String, f64)]) -> f64 {
    match logs.iter().find(|(k, _)| k == name) {
        Some(&(_, v)) => v,
        None => {
            let names: Vec<&str> = logs.iter().map(|(k, _)| k.as_str()).collect();
            panic!(
                "{who}: monitored value {name:?} is not among this epoch's logs {names:?}; give validation data or monitor another value"
            )
        }
    }
}

/// Keras's `mode="auto"`: losses and errors are minimised, everything else maximised.
fn minimizes(name: &str) -> bool {
    name.ends_with("loss") || name.contains("error")
}

fn snapshot<E: Element>(model: &dyn Module<E>) -> Vec<Vec<E>> {
    model.named_parameters().iter().map(|(_, t)| t.to_vec()).collect()
}

fn restore<E: Element>(model: &dyn Module<E>, values: &[Vec<E>]) {
    for ((_, t), v) in model.named_parameters().iter().zip(values) {
        t.update_(|d| d.copy_from_slice(v));
    }
}

/// Stops training when a monitored value stops improving (Keras's `EarlyStopping`).
///
/// With `restore_best_weights`, the model ends with the weights of its best epoch.
#[derive(Clone, Debug)]
pub struct EarlyStopping<E: Element = f32> {
    monitor: String,
    patience: usize,
    min_delta: f64,
    minimize: bool,
    restore_best_weights: bool,
    best: f64,
    best_epoch: Option<usize>,
    wait: usize,
    best_weights: Option<Vec<Vec<E>>>,
    stopped_epoch: Option<usize>,
}

impl<E: Element> EarlyStopping<E> {
    /// Monitors `monitor` (e.g. `"val_loss"`), stopping after `patience` epochs without an
    /// improvement. Losses are minimised, other values maximised.
    pub fn new(monitor: &str, patience: usize) -> Self {
        let minimize = minimizes(monitor);
        EarlyStopping {
            monitor: monitor.to_string(),
            patience,
            min_delta: 0.0,
            minimize,
            restore_best_weights: false,
            best: if minimize { f64::INFINITY } else { f64::NEG_INFINITY },
            best_epoch: None,
            wait: 0,
            best_weights: None,
            stopped_epoch: None,
        }
    }

    /// The smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta.abs();
        self
    }

    /// Whether to end with the weights of the best epoch.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// The best epoch (0-based) and its value, once there is one.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.best_epoch.map(|e| (e, self.best))
    }

    /// The epoch (0-based) after which training stopped, if it stopped early.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }
}

impl<E: Element> Callback<E> for EarlyStopping<E> {
    fn on_epoch_end(&mut self, logs: &[(String, f64)], ctx: &mut TrainContext<'_, E>) -> Result<Control> {
        let v = monitored("EarlyStopping", &self.monitor, logs);
        let improved = if self.minimize { v < self.best - self.min_delta } else { v > self.best + self.min_delta };
        if improved {
            self.best = v;
            self.best_epoch = Some(ctx.epoch);
            self.wait = 0;
            if self.restore_best_weights {
                self.best_weights = Some(snapshot(ctx.model));
            }
            return Ok(Control::Continue);
        }
        self.wait += 1;
        if self.wait >= self.patience {
            self.stopped_epoch = Some(ctx.epoch);
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, ctx: &mut TrainContext<'_, E>) -> Result<()> {
        if let Some(w) = &self.best_weights {
            restore(ctx.model, w);
        }
        Ok(())
    }
}

/// Saves the model's weights (safetensors, see [`crate::io::save_model`]) after each epoch, or
/// only when a monitored value improves (Keras's `ModelCheckpoint`).
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    path: PathBuf,
    monitor: Option<String>,
    best: f64,
}

impl ModelCheckpoint {
    /// Saves after every epoch to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ModelCheckpoint { path: path.into(), monitor: None, best: f64::NAN }
    }

    /// Saves only when `monitor` improves (Keras's `save_best_only=True`).
    pub fn save_best_only(mut self, monitor: &str) -> Self {
        self.monitor = Some(monitor.to_string());
        self
    }

    /// The file written.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl<E: Element> Callback<E> for ModelCheckpoint {
    fn on_epoch_end(&mut self, logs: &[(String, f64)], ctx: &mut TrainContext<'_, E>) -> Result<Control> {
        if let Some(name) = &self.monitor {
            let v = monitored("ModelCheckpoint", name, logs);
            let better = self.best.is_nan() || if minimizes(name) { v < self.best } else { v > self.best };
            if !better {
                return Ok(Control::Continue);
            }
            self.best = v;
        }
        crate::io::save_model(ctx.model, &self.path)?;
        Ok(Control::Continue)
    }
}

/// Applies a learning-rate schedule after each epoch (Keras's `LearningRateScheduler`, and
/// `ReduceLROnPlateau` when given a monitored value).
pub struct LrSchedule<S: LrScheduler> {
    scheduler: S,
    monitor: Option<String>,
}

impl<S: LrScheduler> LrSchedule<S> {
    /// Steps `scheduler` once per epoch and sets the optimizer's learning rate.
    pub fn new(scheduler: S) -> Self {
        LrSchedule { scheduler, monitor: None }
    }

    /// Passes a monitored value (e.g. `"val_loss"`) to the scheduler (for `ReduceLrOnPlateau`).
    pub fn monitor(mut self, name: &str) -> Self {
        self.monitor = Some(name.to_string());
        self
    }
}

impl<E: Element, S: LrScheduler> Callback<E> for LrSchedule<S> {
    fn on_epoch_end(&mut self, logs: &[(String, f64)], ctx: &mut TrainContext<'_, E>) -> Result<Control> {
        let metric = self.monitor.as_deref().map(|m| monitored("LrSchedule", m, logs));
        let lr = self.scheduler.step(metric);
        ctx.optimizer.set_learning_rate(lr);
        Ok(Control::Continue)
    }
}

/// A callback from a closure called after each epoch with the epoch (0-based) and its logs.
pub struct FnCallback<F>(pub F);

impl<E: Element, F: FnMut(usize, &[(String, f64)]) -> Control> Callback<E> for FnCallback<F> {
    fn on_epoch_end(&mut self, logs: &[(String, f64)], ctx: &mut TrainContext<'_, E>) -> Result<Control> {
        Ok((self.0)(ctx.epoch, logs))
    }
}

/// A closure run as [`Callback::on_after_backward`] (what [`Trainer::grad_hook`](super::Trainer::grad_hook) adds).
pub(crate) struct GradHook<F>(pub(crate) F);

impl<E: Element, F: FnMut(&mut Gradients<E>, &StepContext<'_, E>) -> Result<()>> Callback<E> for GradHook<F> {
    fn on_after_backward(&mut self, grads: &mut Gradients<E>, step: &StepContext<'_, E>) -> Result<()> {
        (self.0)(grads, step)
    }
}
