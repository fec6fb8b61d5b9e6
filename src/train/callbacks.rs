//! Callbacks: hooks into the training loop (early stopping, checkpoints, learning-rate
//! schedules, and your own).

use std::path::PathBuf;

use super::history::History;
use super::progress::EpochProgress;
use crate::error::Result;
use crate::nn::{Module, StepKey, write_state};
use crate::optim::{LrScheduler, Optimizer};
use crate::{Element, Gradients, Tensor};

/// Whether training goes on after a callback.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{Control, FitOptions, FnCallback, Trainer};
/// use tensorgrad::{Tensor, loss};
///
/// let model: Linear = Linear::new(2, 1, 0);
/// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// // Stop after the third epoch (epochs count from 0), whatever `epochs` says.
/// let stop_after_third = FnCallback(|epoch: usize, _logs: &[(String, f64)]| {
///     if epoch == 2 { Control::Stop } else { Control::Continue }
/// });
/// let mut trainer = Trainer::new(model, opt, mse).callback(stop_after_third);
/// let options = FitOptions { epochs: 10, verbose: false, ..Default::default() };
/// let history = trainer.fit(&Tensor::ones(&[8, 2]), &Tensor::zeros(&[8, 1]), &options)?;
/// assert_eq!(history.epochs(), 3);
/// # Ok::<(), tensorgrad::Error>(())
/// ```
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
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{Callback, Control, FitOptions, TrainContext, Trainer};
/// use tensorgrad::{Result, Tensor, loss};
///
/// /// Stops once the epoch's training loss is below a target.
/// struct StopBelow(f64);
///
/// impl Callback for StopBelow {
///     fn on_epoch_end(&mut self, _logs: &[(String, f64)], ctx: &mut TrainContext<'_, f32>) -> Result<Control> {
///         // The history already holds this epoch's values.
///         assert_eq!(ctx.history.epochs(), ctx.epoch + 1);
///         let loss = ctx.history.last("loss").unwrap_or(f64::INFINITY);
///         Ok(if loss < self.0 { Control::Stop } else { Control::Continue })
///     }
/// }
///
/// let x = Tensor::<f32>::arange(16).reshape(&[8, 2]).mul_scalar(0.1);
/// let y = x.sum_dim(1, true); // y = x0 + x1
/// let model: Linear = Linear::new(2, 1, 0);
/// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let mut trainer = Trainer::new(model, opt, mse).callback(StopBelow(1e-3));
/// let history = trainer.fit(&x, &y, &FitOptions { epochs: 500, batch_size: 4, verbose: false, ..Default::default() })?;
/// assert!(history.epochs() < 500);
/// assert!(history.last("loss").unwrap() < 1e-3);
/// # Ok::<(), tensorgrad::Error>(())
/// ```
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
    /// This process's rank in [distributed](super::Trainer::distributed) training (0 in a
    /// single process): a callback that writes files or prints should do so on rank 0 only.
    pub rank: usize,
    /// The number of processes training together (1 in a single process).
    pub world_size: usize,
}

/// What a gradient hook sees of one training step, between the backward pass and the
/// optimizer step (see [`Callback::on_after_backward`] and
/// [`Trainer::grad_hook`](super::Trainer::grad_hook)).
///
/// `params` lists the parameters the step will update by their dotted names, in the model's
/// order, which is the same in every process: an all-reduce should walk the gradients in this
/// order (`grads.get(tensor)` for each), not in [`Gradients::iter`]'s order, which follows
/// tensor ids private to one process.
///
/// ```
/// use tensorgrad::nn::{Linear, Module, Sequential};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{FitOptions, Trainer};
/// use tensorgrad::{Tensor, loss};
///
/// let model: Sequential = Sequential::new().add_named("fc", Linear::new(2, 1, 0));
/// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let (x, y) = (Tensor::ones(&[10, 2]), Tensor::zeros(&[10, 1]));
/// let mut steps = Vec::new();
/// Trainer::new(model, opt, mse)
///     .grad_hook(|grads, step| {
///         let names: Vec<&str> = step.params.iter().map(|(name, _)| name.as_str()).collect();
///         assert_eq!(names, ["fc.weight", "fc.bias"]);
///         assert!(step.params.iter().all(|(_, p)| grads.get(p).is_some()));
///         steps.push((step.key.epoch, step.batch, step.inputs.shape()[0], step.loss > 0.0));
///         Ok(())
///     })
///     .fit(&x, &y, &FitOptions { epochs: 1, batch_size: 4, shuffle: false, verbose: false, ..Default::default() })?;
/// assert_eq!(steps, [(0, 0, 4, true), (0, 1, 4, true), (0, 2, 2, true)]);
/// # Ok::<(), tensorgrad::Error>(())
/// ```
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
///
/// The trainer keeps the callbacks it is given until it is dropped, so a callback that should
/// report something afterwards holds a reference to where it writes, as `LrLog` does here:
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{Callback, Control, FitOptions, TrainContext, Trainer};
/// use tensorgrad::{Result, Tensor, loss};
///
/// /// Halves the learning rate after every epoch, and notes the rate each epoch used.
/// struct LrLog<'a>(&'a mut Vec<f64>);
///
/// impl Callback for LrLog<'_> {
///     fn on_epoch_end(&mut self, logs: &[(String, f64)], ctx: &mut TrainContext<'_, f32>) -> Result<Control> {
///         let lr = ctx.optimizer.learning_rate();
///         assert_eq!(logs.iter().find(|(name, _)| name == "lr").map(|&(_, v)| v), Some(lr));
///         self.0.push(lr);
///         ctx.optimizer.set_learning_rate(lr / 2.0);
///         Ok(Control::Continue)
///     }
/// }
///
/// let model: Linear = Linear::new(2, 1, 0);
/// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let mut rates = Vec::new();
/// let options = FitOptions { epochs: 3, verbose: false, ..Default::default() };
/// let history = Trainer::new(model, opt, mse).callback(LrLog(&mut rates)).fit(
///     &Tensor::ones(&[8, 2]),
///     &Tensor::zeros(&[8, 1]),
///     &options,
/// )?;
/// assert_eq!(rates, [0.1, 0.05, 0.025]);
/// assert_eq!(history.get("lr"), Some(&rates[..]));
/// # Ok::<(), tensorgrad::Error>(())
/// ```
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

/// The values of the model's parameters and buffers.
fn snapshot<E: Element>(model: &dyn Module<E>) -> Vec<Vec<E>> {
    model.state_dict().iter().map(|(_, t)| t.to_vec()).collect()
}

fn restore<E: Element>(model: &dyn Module<E>, values: &[Vec<E>]) {
    write_state(model, values.to_vec());
}

/// Stops training when a monitored value stops improving (Keras's `EarlyStopping`).
///
/// With `restore_best_weights`, the model ends with the weights of its best epoch.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{EarlyStopping, FitOptions, Trainer, Validation};
/// use tensorgrad::{Tensor, loss};
///
/// // A learning rate far too large: the validation loss grows after the first epoch.
/// let x = Tensor::<f32>::arange(32).reshape(&[16, 2]).mul_scalar(0.1);
/// let y = x.sum_dim(1, true);
/// let model: Linear = Linear::new(2, 1, 0);
/// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 1.0, ..Default::default() });
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let stopper = EarlyStopping::new("val_loss", 2).restore_best_weights(true);
/// let mut trainer = Trainer::new(model, opt, mse).callback(stopper);
/// let options = FitOptions {
///     epochs: 50,
///     batch_size: 16,
///     validation: Validation::Data(&x, &y),
///     verbose: false,
///     ..Default::default()
/// };
/// let history = trainer.fit(&x, &y, &options)?;
///
/// // It stopped 2 epochs after the best one, and the model has the best epoch's weights back.
/// let (best_epoch, best_loss) = history.best("val_loss", true).unwrap();
/// assert_eq!(history.epochs(), best_epoch + 3);
/// assert_eq!(trainer.evaluate(&x, &y, 16).loss, best_loss);
/// # Ok::<(), tensorgrad::Error>(())
/// ```
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
    /// Starts over, as Keras does at the start of each `fit`: a second `fit` on the same
    /// trainer is judged on its own epochs, not against the best value of the first.
    fn on_train_begin(&mut self, _ctx: &mut TrainContext<'_, E>) -> Result<()> {
        self.best = if self.minimize { f64::INFINITY } else { f64::NEG_INFINITY };
        self.best_epoch = None;
        self.wait = 0;
        self.best_weights = None;
        self.stopped_epoch = None;
        Ok(())
    }

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
///
/// Only the weights are saved; to resume a run (optimizer state, epoch, history) use
/// [`Checkpoint`](super::Checkpoint).
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Adam, AdamConfig};
/// use tensorgrad::train::{FitOptions, ModelCheckpoint, Trainer, Validation, predict};
/// use tensorgrad::{Tensor, io, loss};
///
/// let path = std::env::temp_dir().join(format!("tensorgrad-best-doc-{}.safetensors", std::process::id()));
/// let x = Tensor::<f32>::arange(32).reshape(&[16, 2]).mul_scalar(0.1);
/// let y = x.sum_dim(1, true);
/// let model: Linear = Linear::new(2, 1, 0);
/// let opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.1, ..Default::default() });
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let mut trainer = Trainer::new(model, opt, mse).callback(ModelCheckpoint::new(&path).save_best_only("val_loss"));
/// let options = FitOptions { epochs: 20, validation: Validation::Data(&x, &y), verbose: false, ..Default::default() };
/// let history = trainer.fit(&x, &y, &options)?;
///
/// // The file holds the weights of the epoch with the lowest validation loss.
/// let best: Linear = Linear::new(2, 1, 1);
/// io::load_model(&best, &path)?;
/// let best_loss = loss::mse(&predict(&best, &x, 32), &y, loss::Reduction::Mean).item() as f64;
/// let (_, logged) = history.best("val_loss", true).unwrap();
/// assert!((best_loss - logged).abs() <= 1e-6 * logged.max(1e-6));
/// std::fs::remove_file(&path).ok();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
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
        // Every rank holds the same model in distributed training: rank 0 writes it.
        if ctx.rank == 0 {
            crate::io::save_model(ctx.model, &self.path)?;
        }
        Ok(Control::Continue)
    }
}

/// Applies a learning-rate schedule after each epoch (Keras's `LearningRateScheduler`, and
/// `ReduceLROnPlateau` when given a monitored value).
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{PlateauConfig, ReduceLrOnPlateau, Sgd, SgdConfig, StepLr};
/// use tensorgrad::train::{FitOptions, LrSchedule, Trainer};
/// use tensorgrad::{Tensor, loss};
///
/// let (x, y) = (Tensor::ones(&[8, 2]), Tensor::zeros(&[8, 1]));
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let options = FitOptions { epochs: 4, verbose: false, ..Default::default() };
///
/// // A fixed schedule: StepLR(step_size=1, gamma=0.5). The history logs each epoch's rate.
/// let model: Linear = Linear::new(2, 1, 0);
/// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let history =
///     Trainer::new(model, opt, mse).callback(LrSchedule::new(StepLr::new(0.1, 1, 0.5))).fit(&x, &y, &options)?;
/// assert_eq!(history.get("lr"), Some(&[0.1, 0.05, 0.025, 0.0125][..]));
///
/// // ReduceLROnPlateau on a monitored value.
/// let model: Linear = Linear::new(2, 1, 0);
/// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let plateau = ReduceLrOnPlateau::new(0.1, PlateauConfig { patience: 2, ..Default::default() });
/// let mut trainer = Trainer::new(model, opt, mse).callback(LrSchedule::new(plateau).monitor("loss"));
/// trainer.fit(&x, &y, &options)?;
/// # Ok::<(), tensorgrad::Error>(())
/// ```
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

/// A callback from a closure called after each epoch with the epoch (0-based) and its logs
/// (Keras's `LambdaCallback(on_epoch_end=…)`). Annotate the closure's arguments, as below.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{Control, FitOptions, FnCallback, Trainer};
/// use tensorgrad::{Tensor, loss};
///
/// let model: Linear = Linear::new(2, 1, 0);
/// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let mut losses = Vec::new();
/// let record = FnCallback(|_epoch: usize, logs: &[(String, f64)]| {
///     losses.push(logs[0].1); // "loss" comes first
///     Control::Continue
/// });
/// let options = FitOptions { epochs: 5, verbose: false, ..Default::default() };
/// let history = Trainer::new(model, opt, mse).callback(record).fit(&Tensor::ones(&[8, 2]), &Tensor::zeros(&[8, 1]), &options)?;
/// assert_eq!(history.get("loss"), Some(&losses[..]));
/// # Ok::<(), tensorgrad::Error>(())
/// ```
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
