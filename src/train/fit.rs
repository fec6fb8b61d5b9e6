//! The training loop: `Trainer::fit`, `evaluate` and `predict`.

#[cfg(feature = "progress")]
use std::io::IsTerminal;
use std::time::Instant;

use super::callbacks::{Callback, Control, GradHook, StepContext, TrainContext};
use super::history::History;
use super::metrics::{Metric, MetricState};
use crate::data::permutation;
use crate::error::Result;
use crate::nn::{Module, StepKey};
use crate::optim::{Optimizer, clip_grad_norm};
use crate::{Element, Gradients, Tensor, no_grad};

/// Where validation data comes from.
#[derive(Clone, Copy, Debug, Default)]
pub enum Validation<'a, E: Element = f32> {
    /// No validation.
    #[default]
    None,
    /// The last fraction of the training data, taken before shuffling (Keras's
    /// `validation_split`).
    Split(f64),
    /// Separate inputs and targets (Keras's `validation_data`).
    Data(&'a Tensor<E>, &'a Tensor<E>),
}

/// Settings of [`Trainer::fit`]; start from `FitOptions::default()`.
#[derive(Clone, Debug)]
pub struct FitOptions<'a, E: Element = f32> {
    /// Passes over the training data (default 1).
    pub epochs: usize,
    /// Samples per gradient step (default 32, as Keras).
    pub batch_size: usize,
    /// Shuffle the training samples every epoch (default true).
    pub shuffle: bool,
    /// Seed of the shuffling and of the dropout masks: the same seed gives the same batches and
    /// the same masks (default 0). See [`StepKey`].
    pub seed: u64,
    /// Validation data (default none).
    pub validation: Validation<'a, E>,
    /// Print progress: a bar per epoch on a terminal, else one line per epoch (default true).
    pub verbose: bool,
    /// The epoch to start at, to resume a run (default 0). The shuffling of epoch `e` depends
    /// only on `seed` and `e`, and its dropout masks only on `seed`, `e`, the step and `rank`,
    /// so a resumed run sees the same batches and masks.
    pub initial_epoch: usize,
    /// This process's rank in data-parallel training (default 0). It is mixed into the
    /// dropout masks (see [`StepKey`]), so ranks sharing a seed draw different masks. Giving
    /// each rank its shard of the data and averaging the gradients
    /// ([`Trainer::grad_hook`]) is up to the caller.
    pub rank: usize,
}

impl<E: Element> Default for FitOptions<'_, E> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            validation: Validation::None,
            verbose: true,
            initial_epoch: 0,
            rank: 0,
        }
    }
}

/// The loss and metrics of a model on some data.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss over the samples.
    pub loss: f64,
    /// Each metric's name and value.
    pub metrics: Vec<(String, f64)>,
}

impl Evaluation {
    /// The value of a metric by name (`"loss"` too).
    pub fn get(&self, name: &str) -> Option<f64> {
        if name == "loss" {
            return Some(self.loss);
        }
        self.metrics.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }
}

/// Trains a model with an optimizer and a loss, Keras-style.
///
/// The loss is any function `(prediction, target) → scalar tensor`, e.g.
/// `|p, y| loss::bce(p, y, Reduction::Mean)`. Samples are rows (dim 0) of the input and target
/// tensors. The model is switched to training mode for `fit` and to evaluation mode for
/// `evaluate`/`predict` (which build no graph), and is left in evaluation mode.
///
/// Each training step runs: the forward pass (in the scope of the step's [`StepKey`], which
/// its dropout masks come from), the loss, the backward pass, the gradient hooks
/// ([`grad_hook`](Self::grad_hook), [`Callback::on_after_backward`]), gradient clipping
/// ([`clip_grad_norm`](Self::clip_grad_norm)), the optimizer step, then
/// [`Callback::on_batch_end`].
pub struct Trainer<'a, E, M, O, L>
where
    E: Element,
    M: Module<E>,
    O: Optimizer<E>,
    L: Fn(&Tensor<E>, &Tensor<E>) -> Tensor<E>,
{
    model: &'a mut M,
    optimizer: &'a mut O,
    loss: L,
    metrics: Vec<Metric>,
    callbacks: Vec<Box<dyn Callback<E> + 'a>>,
    clip_norm: Option<f64>,
}

impl<'a, E, M, O, L> Trainer<'a, E, M, O, L>
where
    E: Element,
    M: Module<E>,
    O: Optimizer<E>,
    L: Fn(&Tensor<E>, &Tensor<E>) -> Tensor<E>,
{
    /// A trainer for `model`, updated by `optimizer` to reduce `loss`.
    pub fn new(model: &'a mut M, optimizer: &'a mut O, loss: L) -> Self {
        Trainer { model, optimizer, loss, metrics: Vec::new(), callbacks: Vec::new(), clip_norm: None }
    }

    /// Metrics to report for training and validation data (Keras's `metrics=[…]`).
    pub fn metrics(mut self, metrics: &[Metric]) -> Self {
        self.metrics = metrics.to_vec();
        self
    }

    /// Adds a callback.
    pub fn callback(mut self, callback: impl Callback<E> + 'a) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Adds a gradient hook: `hook` runs after each batch's backward pass, before gradient
    /// clipping and the optimizer step, with the batch's gradients (to change in place) and a
    /// [`StepContext`] (the named parameters, the batch, the loss, the step's key). It is the
    /// seam for data-parallel training (an all-reduce of the gradients across ranks) and for
    /// per-sample gradient clipping. Hooks and callbacks run in the order they were added; an
    /// error from a hook ends `fit` before that step's update.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use tensorgrad::nn::{Linear, Module, Sequential};
    /// use tensorgrad::optim::{Sgd, SgdConfig};
    /// use tensorgrad::train::{FitOptions, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let mut model: Sequential = Sequential::new().add_named("fc", Linear::new(2, 1, &mut rng));
    /// let mut opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
    /// let (x, y) = (Tensor::ones(&[8, 2]), Tensor::zeros(&[8, 1]));
    /// let mut seen = Vec::new();
    /// Trainer::new(&mut model, &mut opt, |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean))
    ///     .grad_hook(|grads, step| {
    ///         // An all-reduce would average each gradient across ranks here, walking
    ///         // `step.params` in order. This one halves them and notes the step.
    ///         for (_, p) in step.params {
    ///             if let Some(g) = grads.remove(p) {
    ///                 grads.insert(p, g * 0.5);
    ///             }
    ///         }
    ///         seen.push((step.key.epoch, step.batch, step.key.step));
    ///         Ok(())
    ///     })
    ///     .fit(&x, &y, &FitOptions { epochs: 2, batch_size: 4, verbose: false, ..Default::default() })?;
    /// assert_eq!(seen, [(0, 0, 0), (0, 1, 1), (1, 0, 2), (1, 1, 3)]);
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    pub fn grad_hook(mut self, hook: impl FnMut(&mut Gradients<E>, &StepContext<'_, E>) -> Result<()> + 'a) -> Self {
        self.callbacks.push(Box::new(GradHook(hook)));
        self
    }

    /// Clips the global gradient norm to `max_norm` before each step (after the gradient
    /// hooks).
    #[track_caller]
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        if max_norm.is_nan() || max_norm <= 0.0 {
            panic!("Trainer: max_norm {max_norm} must be a positive number");
        }
        self.clip_norm = Some(max_norm);
        self
    }

    /// The model being trained.
    pub fn model(&self) -> &M {
        self.model
    }

    /// Trains for `options.epochs` epochs and returns the per-epoch history.
    ///
    /// # Errors
    /// Whatever a callback returns (a checkpoint that cannot be written).
    ///
    /// # Panics
    /// If `x` and `y` have different numbers of samples, the data is empty, or the batch size
    /// is 0.
    #[track_caller]
    pub fn fit(&mut self, x: &Tensor<E>, y: &Tensor<E>, options: &FitOptions<'_, E>) -> Result<History> {
        check_samples("fit", x, y);
        if options.batch_size == 0 {
            panic!("fit: batch size must be at least 1");
        }
        let n = x.shape()[0];
        type Pair<E> = (Tensor<E>, Tensor<E>);
        let (train_idx, val): (Vec<usize>, Option<Pair<E>>) = match options.validation {
            Validation::None => ((0..n).collect(), None),
            Validation::Data(xv, yv) => {
                check_samples("fit (validation data)", xv, yv);
                ((0..n).collect(), Some((xv.clone(), yv.clone())))
            }
            Validation::Split(f) => {
                if !(f > 0.0 && f < 1.0) {
                    panic!("fit: validation split {f} must be in (0, 1)");
                }
                let split_at = ((n as f64) * (1.0 - f)) as usize;
                if split_at == 0 || split_at == n {
                    panic!("fit: validation split {f} of {n} samples leaves one side empty");
                }
                let vi: Vec<usize> = (split_at..n).collect();
                ((0..split_at).collect(), Some((x.index_select(0, &vi).detach(), y.index_select(0, &vi).detach())))
            }
        };
        let mut history = History::new();
        self.model.train();
        // Each module's seed says where it sits; each step's masks then come from its key.
        self.model.reseed(options.seed);
        for cb in &mut self.callbacks {
            let mut ctx =
                TrainContext { model: &*self.model, optimizer: &mut *self.optimizer, history: &history, epoch: 0 };
            cb.on_train_begin(&mut ctx)?;
        }
        for epoch in options.initial_epoch..options.epochs {
            let started = Instant::now();
            let order: Vec<usize> = if options.shuffle {
                permutation(train_idx.len(), options.seed.wrapping_add(epoch as u64))
                    .into_iter()
                    .map(|i| train_idx[i])
                    .collect()
            } else {
                train_idx.clone()
            };
            let mut states: Vec<MetricState> = self.metrics.iter().map(|&m| MetricState::new(m)).collect();
            let (mut loss_sum, mut seen) = (0.0, 0usize);
            let batches: Vec<&[usize]> = order.chunks(options.batch_size).collect();
            let bar = Progress::new(options.verbose, epoch, options.epochs, batches.len());
            for (bi, idx) in batches.iter().enumerate() {
                let (xb, yb) = (x.index_select(0, idx).detach(), y.index_select(0, idx).detach());
                let key = StepKey::new(options.seed, epoch, epoch * batches.len() + bi, options.rank);
                let pred = key.scope(|| self.model.forward(&xb));
                let loss = (self.loss)(&pred, &yb);
                let mut grads = loss.backward();
                let l = loss.item().to_f64().unwrap_or(f64::NAN);
                if !self.callbacks.is_empty() {
                    let params = trainable_parameters(&*self.model);
                    let step = StepContext {
                        model: &*self.model,
                        params: &params,
                        inputs: &xb,
                        targets: &yb,
                        loss: l,
                        batch: bi,
                        key,
                    };
                    for cb in &mut self.callbacks {
                        cb.on_after_backward(&mut grads, &step)?;
                    }
                }
                if let Some(max) = self.clip_norm {
                    clip_grad_norm(&mut grads, max);
                }
                self.optimizer.step(&grads);
                loss_sum += l * idx.len() as f64;
                seen += idx.len();
                let pred = pred.detach();
                for s in &mut states {
                    s.update(&pred, &yb);
                }
                for cb in &mut self.callbacks {
                    let mut ctx =
                        TrainContext { model: &*self.model, optimizer: &mut *self.optimizer, history: &history, epoch };
                    cb.on_batch_end(bi, l, &mut ctx)?;
                }
                bar.update(bi + 1, loss_sum / seen as f64, &self.metrics, &states);
            }
            let mut logs: Vec<(String, f64)> = vec![("loss".to_string(), loss_sum / seen as f64)];
            logs.extend(self.metrics.iter().zip(&states).map(|(m, s)| (m.name().to_string(), s.result())));
            if let Some((xv, yv)) = &val {
                let ev = self.evaluate(xv, yv, options.batch_size);
                self.model.train();
                logs.push(("val_loss".to_string(), ev.loss));
                logs.extend(ev.metrics.into_iter().map(|(k, v)| (format!("val_{k}"), v)));
            }
            logs.push(("lr".to_string(), self.optimizer.learning_rate()));
            let seconds = started.elapsed().as_secs_f64();
            history.push_epoch(&logs, seconds);
            bar.finish(&summary_line(epoch, options.epochs, seconds, &logs));
            let mut stop = false;
            for cb in &mut self.callbacks {
                let mut ctx =
                    TrainContext { model: &*self.model, optimizer: &mut *self.optimizer, history: &history, epoch };
                if cb.on_epoch_end(&logs, &mut ctx)? == Control::Stop {
                    stop = true;
                }
            }
            if stop {
                break;
            }
        }
        for cb in &mut self.callbacks {
            let last = history.epochs().saturating_sub(1);
            let mut ctx =
                TrainContext { model: &*self.model, optimizer: &mut *self.optimizer, history: &history, epoch: last };
            cb.on_train_end(&mut ctx)?;
        }
        self.model.eval();
        Ok(history)
    }

    /// The mean loss and the metrics on `x`, `y`, in batches, without building a graph.
    #[track_caller]
    pub fn evaluate(&mut self, x: &Tensor<E>, y: &Tensor<E>, batch_size: usize) -> Evaluation {
        check_samples("evaluate", x, y);
        if batch_size == 0 {
            panic!("evaluate: batch size must be at least 1");
        }
        self.model.eval();
        let n = x.shape()[0];
        let mut states: Vec<MetricState> = self.metrics.iter().map(|&m| MetricState::new(m)).collect();
        let mut loss_sum = 0.0;
        no_grad(|| {
            for start in (0..n).step_by(batch_size) {
                let len = batch_size.min(n - start);
                let (xb, yb) = (x.narrow(0, start, len), y.narrow(0, start, len));
                let pred = self.model.forward(&xb);
                loss_sum += (self.loss)(&pred, &yb).item().to_f64().unwrap_or(f64::NAN) * len as f64;
                for s in &mut states {
                    s.update(&pred, &yb);
                }
            }
        });
        Evaluation {
            loss: loss_sum / n as f64,
            metrics: self.metrics.iter().zip(&states).map(|(m, s)| (m.name().to_string(), s.result())).collect(),
        }
    }

    /// The model's outputs for every row of `x`, in batches, without building a graph.
    #[track_caller]
    pub fn predict(&mut self, x: &Tensor<E>, batch_size: usize) -> Tensor<E> {
        self.model.eval();
        predict(&*self.model, x, batch_size)
    }
}

/// A model's outputs for every row of `x`, in batches, without building a graph. The model
/// should be in evaluation mode.
#[track_caller]
pub fn predict<E: Element, M: Module<E> + ?Sized>(model: &M, x: &Tensor<E>, batch_size: usize) -> Tensor<E> {
    if batch_size == 0 {
        panic!("predict: batch size must be at least 1");
    }
    if x.ndim() == 0 || x.shape()[0] == 0 {
        panic!("predict: needs at least one sample, got input of shape {:?}", x.shape());
    }
    let n = x.shape()[0];
    no_grad(|| {
        let outs: Vec<Tensor<E>> = (0..n)
            .step_by(batch_size)
            .map(|start| model.forward(&x.narrow(0, start, batch_size.min(n - start))))
            .collect();
        Tensor::cat(&outs, 0)
    })
}

/// The trainable parameters with their dotted names, in the model's order.
fn trainable_parameters<E: Element>(model: &dyn Module<E>) -> Vec<(String, Tensor<E>)> {
    let mut out = Vec::new();
    model.visit_params("", &mut |name, p| {
        if p.is_trainable() {
            out.push((name, p.value()));
        }
    });
    out
}

#[track_caller]
fn check_samples<E: Element>(op: &str, x: &Tensor<E>, y: &Tensor<E>) {
    if x.ndim() == 0 || y.ndim() == 0 {
        panic!("{op}: inputs and targets need a sample dim, got shapes {:?} and {:?}", x.shape(), y.shape());
    }
    if x.shape()[0] != y.shape()[0] {
        panic!(
            "{op}: {} input samples but {} targets (shapes {:?} and {:?})",
            x.shape()[0],
            y.shape()[0],
            x.shape(),
            y.shape()
        );
    }
    if x.shape()[0] == 0 {
        panic!("{op}: the dataset is empty");
    }
}

/// `Epoch 3/10 - 12.3s - loss: 0.5123 - accuracy: 0.7511 - val_loss: …`
fn summary_line(epoch: usize, epochs: usize, seconds: f64, logs: &[(String, f64)]) -> String {
    let mut s = format!("Epoch {}/{epochs} - {seconds:.1}s", epoch + 1);
    for (k, v) in logs {
        if k == "lr" {
            s.push_str(&format!(" - lr: {v:.2e}"));
        } else {
            s.push_str(&format!(" - {k}: {v:.4}"));
        }
    }
    s
}

/// A progress bar on a terminal (feature `progress`), a summary line per epoch otherwise.
struct Progress {
    verbose: bool,
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(verbose: bool, epoch: usize, epochs: usize, batches: usize) -> Self {
        let _ = (epoch, epochs, batches);
        #[cfg(feature = "progress")]
        {
            let bar = (verbose && std::io::stderr().is_terminal()).then(|| {
                let bar = indicatif::ProgressBar::new(batches as u64);
                let style = indicatif::ProgressStyle::with_template(
                    "Epoch {prefix} [{bar:30}] {pos}/{len} batches - {msg} - ETA {eta}",
                )
                .expect("valid progress template")
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(format!("{}/{epochs}", epoch + 1));
                bar
            });
            Progress { verbose, bar }
        }
        #[cfg(not(feature = "progress"))]
        Progress { verbose }
    }

    fn update(&self, done: usize, loss: f64, metrics: &[Metric], states: &[MetricState]) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            let mut msg = format!("loss: {loss:.4}");
            for (m, s) in metrics.iter().zip(states) {
                msg.push_str(&format!(" - {}: {:.4}", m.name(), s.result()));
            }
            bar.set_message(msg);
            bar.set_position(done as u64);
        }
        let _ = (done, loss, metrics, states);
    }

    fn finish(&self, line: &str) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.verbose {
            println!("{line}");
        }
    }
}
