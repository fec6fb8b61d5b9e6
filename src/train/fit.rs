//! The training loop: `Trainer::fit`/`fit_loader`, `evaluate` and `predict`.

#[cfg(feature = "progress")]
use std::io::IsTerminal;
use std::time::Instant;

use super::callbacks::{Callback, Control, GradHook, StepContext, TrainContext};
use super::history::History;
use super::metrics::{Metric, MetricState};
use super::progress::EpochProgress;
use crate::data::{Batch, DataLoader, DistributedSampler, permutation};
use crate::distributed::{Buffer, DataParallel, ReduceOp};
use crate::error::Result;
use crate::nn::{Module, StepKey};
use crate::optim::{Optimizer, clip_grad_norm};
use crate::{Element, Gradients, Tensor, no_grad};

/// Where validation data comes from.
///
/// ```
/// use tensorgrad::data::{DataLoader, TensorDataset};
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{FitOptions, Trainer, Validation};
/// use tensorgrad::{Tensor, loss};
///
/// let x = Tensor::<f32>::arange(40).reshape(&[20, 2]).mul_scalar(0.05);
/// let y = x.sum_dim(1, true);
/// let model: Linear = Linear::new(2, 1, 0);
/// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let mut trainer = Trainer::new(model, opt, mse);
/// let base: FitOptions = FitOptions { epochs: 2, verbose: false, ..Default::default() };
///
/// // validation_split=0.25: the last 5 rows, set aside before shuffling.
/// let split = FitOptions { validation: Validation::Split(0.25), ..base.clone() };
/// let history = trainer.fit(&x, &y, &split)?;
/// assert_eq!(history.names(), ["loss", "val_loss", "lr"]);
///
/// // validation_data=(x_val, y_val)
/// let (x_val, y_val) = (x.narrow(0, 0, 4), y.narrow(0, 0, 4));
/// let data = FitOptions { validation: Validation::Data(&x_val, &y_val), ..base.clone() };
/// assert!(trainer.fit(&x, &y, &data)?.get("val_loss").is_some());
///
/// // A loader, for data read on demand.
/// let loader = DataLoader::new(TensorDataset::new(&x_val, &y_val), 2);
/// let loaded = FitOptions { validation: Validation::Loader(&loader), ..base };
/// assert!(trainer.fit(&x, &y, &loaded)?.get("val_loss").is_some());
/// # Ok::<(), tensorgrad::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub enum Validation<'a, E: Element = f32> {
    /// No validation.
    #[default]
    None,
    /// The last fraction of the training data, taken before shuffling (Keras's
    /// `validation_split`). Only for [`Trainer::fit`] on tensors.
    Split(f64),
    /// Separate inputs and targets (Keras's `validation_data`).
    Data(&'a Tensor<E>, &'a Tensor<E>),
    /// The batches of a [`DataLoader`] (its epoch 0), for data that does not fit in memory or
    /// a model with several inputs.
    Loader(&'a DataLoader<E>),
}

/// Settings of [`Trainer::fit`] and [`Trainer::fit_loader`]; start from
/// `FitOptions::default()`.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::train::{FitOptions, Validation};
///
/// let defaults: FitOptions = FitOptions::default();
/// assert_eq!((defaults.epochs, defaults.batch_size, defaults.shuffle, defaults.verbose), (1, 32, true, true));
///
/// // model.fit(x, y, epochs=20, batch_size=64, validation_data=(x_val, y_val), verbose=0)
/// let (x_val, y_val) = (Tensor::<f32>::zeros(&[10, 3]), Tensor::zeros(&[10, 1]));
/// let options = FitOptions {
///     epochs: 20,
///     batch_size: 64,
///     validation: Validation::Data(&x_val, &y_val),
///     verbose: false,
///     seed: 42, // the shuffling and the dropout masks
///     ..Default::default()
/// };
/// assert_eq!(options.initial_epoch, 0);
/// ```
#[derive(Clone, Debug)]
pub struct FitOptions<'a, E: Element = f32> {
    /// Passes over the training data (default 1).
    pub epochs: usize,
    /// Samples per gradient step (default 32, as Keras). [`Trainer::fit_loader`] uses the
    /// loader's batch size instead.
    pub batch_size: usize,
    /// Shuffle the training samples every epoch (default true). [`Trainer::fit_loader`] uses
    /// the loader's setting instead.
    pub shuffle: bool,
    /// Seed of the shuffling and of the dropout masks: the same seed gives the same batches and
    /// the same masks (default 0). See [`StepKey`]. [`Trainer::fit_loader`] shuffles with the
    /// loader's own seed ([`DataLoader::seed`]) and takes only the masks' seed from here.
    pub seed: u64,
    /// Validation data (default none).
    pub validation: Validation<'a, E>,
    /// Print progress: a bar per epoch on a terminal, else one line per epoch (default true).
    pub verbose: bool,
    /// The epoch to start at, to resume a run (default 0). The shuffling of epoch `e` depends
    /// only on `seed` and `e`, and its dropout masks only on `seed`, `e`, the step and `rank`,
    /// so a resumed run sees the same batches and masks.
    pub initial_epoch: usize,
    /// This process's rank in data-parallel training done by hand (default 0). It is mixed
    /// into the dropout masks (see [`StepKey`]), so ranks sharing a seed draw different masks.
    /// With [`Trainer::distributed`] the communicator's rank is used instead and this is
    /// ignored.
    pub rank: usize,
    /// To resume inside an epoch (default none): the run starts at that epoch after the
    /// batches it had done, with the epoch's running loss and metrics, as saved by a mid-epoch
    /// checkpoint ([`Checkpoint::every_n_batches`](super::Checkpoint::every_n_batches)).
    /// `initial_epoch` must then be its epoch; [`Resume::fit_options`](super::Resume::fit_options)
    /// sets both.
    pub initial_progress: Option<EpochProgress>,
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
            initial_progress: None,
        }
    }
}

/// The loss and metrics of a model on some data.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Sgd, SgdConfig};
/// use tensorgrad::train::{Metric, Trainer};
/// use tensorgrad::{Tensor, loss};
///
/// // A fixed model, p = x: half of the four predictions are on the right side of 0.5.
/// let model = Linear::from_tensors(Tensor::from_vec(vec![1.0f32], &[1, 1]), None);
/// let opt = Sgd::new(model.named_parameters(), SgdConfig::default());
/// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
/// let mut trainer = Trainer::new(model, opt, mse).metrics(&[Metric::Accuracy]);
/// let x = Tensor::from_vec(vec![0.9f32, 0.2, 0.6, 0.4], &[4, 1]);
/// let y = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], &[4, 1]);
/// let evaluation = trainer.evaluate(&x, &y, 2);
/// assert_eq!(evaluation.get("accuracy"), Some(0.5));
/// assert_eq!(evaluation.get("loss"), Some(evaluation.loss));
/// assert!((evaluation.loss - (0.01 + 0.04 + 0.36 + 0.36) / 4.0).abs() < 1e-6);
/// assert_eq!(evaluation.get("auc"), None); // not asked for
/// ```
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
/// # Owning the model
/// The trainer owns the model and the optimizer, as a compiled Keras model holds its optimizer,
/// so fitting, evaluating, predicting, saving ([`model`](Self::model)) and fitting again all go
/// through the one trainer value, and [`into_parts`](Self::into_parts) hands them back. A model
/// lent as `&mut model` works too: the loan ends at the trainer's last use, after which the
/// model is yours again.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::nn::{Activation, Dense, Module, Sequential};
/// use tensorgrad::optim::{Adam, AdamConfig};
/// use tensorgrad::train::{EarlyStopping, FitOptions, Metric, Trainer, predict};
/// use tensorgrad::{Tensor, io, loss};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2]);
/// let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 1.0], &[4, 1]); // OR
/// let bce = |p: &Tensor, t: &Tensor| loss::bce(p, t, loss::Reduction::Mean);
/// let opts = FitOptions { epochs: 100, batch_size: 4, verbose: false, ..Default::default() };
/// let path = std::env::temp_dir().join(format!("tensorgrad-trainer-doc-{}.safetensors", std::process::id()));
///
/// // The trainer owns the model: fit, evaluate, predict, save, and fit again.
/// let model: Sequential = Sequential::new().add(Dense::new(2, 1, Some(Activation::Sigmoid), &mut rng));
/// let opt = Adam::new(model.parameters(), AdamConfig { lr: 0.1, ..Default::default() });
/// let mut trainer = Trainer::new(model, opt, bce).metrics(&[Metric::Accuracy]);
/// trainer.fit(&x, &y, &opts)?;
/// let before = trainer.evaluate(&x, &y, 4);
/// assert_eq!(trainer.predict(&x, 4).shape(), &[4, 1]);
/// io::save_model(trainer.model(), &path)?;
/// trainer.fit(&x, &y, &opts)?;
/// assert!(trainer.evaluate(&x, &y, 4).loss < before.loss);
/// let (model, _opt) = trainer.into_parts();
/// assert_eq!(predict(&model, &x, 4).shape(), &[4, 1]);
///
/// // A lent model: once the trainer is done, use the model directly.
/// let mut model: Sequential = Sequential::new().add(Dense::new(2, 1, Some(Activation::Sigmoid), &mut rng));
/// let mut opt = Adam::new(model.parameters(), AdamConfig { lr: 0.1, ..Default::default() });
/// let mut trainer = Trainer::new(&mut model, &mut opt, bce).callback(EarlyStopping::new("loss", 5));
/// trainer.fit(&x, &y, &opts)?;
/// io::save_model(&model, &path)?;
/// assert_eq!(predict(&model, &x, 4).shape(), &[4, 1]);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # Classifiers
/// [`loss::cross_entropy`](crate::loss::cross_entropy) takes the class ids as the target tensor
/// the trainer hands the loss (whole numbers in a float tensor), and [`Metric::Accuracy`] of
/// `[N, C]` outputs compares each row's arg-max with them:
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Adam, AdamConfig};
/// use tensorgrad::train::{FitOptions, Metric, Trainer};
/// use tensorgrad::{Tensor, loss};
///
/// // Three clusters in the plane, 40 points each, labelled 0, 1, 2.
/// let centres = [(0.0f32, 2.0f32), (-2.0, -1.0), (2.0, -1.0)];
/// let (mut xs, mut ys) = (Vec::new(), Vec::new());
/// for i in 0..120 {
///     let (cx, cy) = centres[i % 3];
///     let (dx, dy) = ((i * 7 % 11) as f32 / 11.0 - 0.5, (i * 5 % 13) as f32 / 13.0 - 0.5);
///     xs.extend([cx + dx, cy + dy]);
///     ys.push((i % 3) as f32);
/// }
/// let (x, y) = (Tensor::from_vec(xs, &[120, 2]), Tensor::from_vec(ys, &[120]));
///
/// let mut rng = StdRng::seed_from_u64(1);
/// let model = Linear::new(2, 3, &mut rng); // logits [N, 3]
/// let opt = Adam::new(model.parameters(), AdamConfig { lr: 0.05, ..Default::default() });
/// let ce = |logits: &Tensor, labels: &Tensor| loss::cross_entropy(logits, labels, 0.0, loss::Reduction::Mean);
/// let mut trainer = Trainer::new(model, opt, ce).metrics(&[Metric::Accuracy]);
/// let history = trainer.fit(&x, &y, &FitOptions { epochs: 30, batch_size: 16, verbose: false, ..Default::default() })?;
/// assert!(history.last("accuracy").unwrap() > 0.95);
/// assert!(trainer.evaluate(&x, &y, 64).get("accuracy").unwrap() > 0.95);
/// # Ok::<(), tensorgrad::Error>(())
/// ```
///
/// # The training step
/// Each training step runs: the forward pass (in the scope of the step's [`StepKey`], which
/// its dropout masks come from), the loss, the backward pass, the gradient hooks
/// ([`grad_hook`](Self::grad_hook), [`Callback::on_after_backward`]), gradient clipping
/// ([`clip_grad_norm`](Self::clip_grad_norm)), the optimizer step, then
/// [`Callback::on_batch_end`]. The forward pass is [`Module::forward`] of the batch's input, or
/// [`Module::forward_many`] of its inputs when the data has several per sample
/// ([`fit_loader`](Self::fit_loader)).
pub struct Trainer<'a, E, M, O, L>
where
    E: Element,
    M: Module<E>,
    O: Optimizer<E>,
    L: Fn(&Tensor<E>, &Tensor<E>) -> Tensor<E>,
{
    model: M,
    optimizer: O,
    loss: L,
    metrics: Vec<Metric>,
    callbacks: Vec<Box<dyn Callback<E> + 'a>>,
    clip_norm: Option<f64>,
    ddp: Option<DataParallel<E>>,
}

/// Training data as the loop sees it: tensors in memory, or a loader.
enum TrainSource<'s, E: Element> {
    Tensors {
        x: &'s Tensor<E>,
        y: &'s Tensor<E>,
        rows: Vec<usize>,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
        /// This process's (rank, number of processes) in data-parallel training.
        shard: Option<(usize, usize)>,
    },
    Loader(&'s DataLoader<E>),
}

impl<'s, E: Element> TrainSource<'s, E> {
    fn batches_per_epoch(&self) -> usize {
        match self {
            TrainSource::Tensors { rows, batch_size, shard, .. } => {
                let n = shard
                    .map_or(rows.len(), |(rank, size)| DistributedSampler::new(rows.len(), size, rank).num_samples());
                n.div_ceil(*batch_size)
            }
            TrainSource::Loader(loader) => loader.len(),
        }
    }

    /// The batches of `epoch`, from batch `first` on.
    fn epoch(&self, epoch: usize, first: usize) -> Box<dyn Iterator<Item = Batch<E>> + 's> {
        match *self {
            TrainSource::Tensors { x, y, ref rows, batch_size, shuffle, seed, shard } => {
                let order: Vec<usize> = if let Some((rank, size)) = shard {
                    let sampler = DistributedSampler::new(rows.len(), size, rank).shuffle(shuffle).seed(seed);
                    sampler.indices(epoch).into_iter().map(|i| rows[i]).collect()
                } else if shuffle {
                    permutation(rows.len(), seed.wrapping_add(epoch as u64)).into_iter().map(|i| rows[i]).collect()
                } else {
                    rows.clone()
                };
                let batches = self.batches_per_epoch();
                Box::new((first..batches).map(move |bi| {
                    let idx = &order[bi * batch_size..((bi + 1) * batch_size).min(order.len())];
                    Batch { inputs: vec![x.index_select(0, idx).detach()], target: y.index_select(0, idx).detach() }
                }))
            }
            TrainSource::Loader(loader) => Box::new(loader.batches_from(epoch, first)),
        }
    }
}

/// Validation data as the loop sees it.
enum ValSource<'v, E: Element> {
    Tensors(Tensor<E>, Tensor<E>, usize),
    Loader(&'v DataLoader<E>),
}

impl<'a, E, M, O, L> Trainer<'a, E, M, O, L>
where
    E: Element,
    M: Module<E>,
    O: Optimizer<E>,
    L: Fn(&Tensor<E>, &Tensor<E>) -> Tensor<E>,
{
    /// A trainer for `model`, updated by `optimizer` to reduce `loss`. Give the model and the
    /// optimizer by value for the trainer to own them, or as `&mut` to lend them (see
    /// [Owning the model](#owning-the-model)).
    pub fn new(model: M, optimizer: O, loss: L) -> Self {
        Trainer { model, optimizer, loss, metrics: Vec::new(), callbacks: Vec::new(), clip_norm: None, ddp: None }
    }

    /// Trains data-parallel across the processes of `ddp`'s communicator (PyTorch's
    /// `DistributedDataParallel` with a `DistributedSampler`), each process running the same
    /// program on the same data:
    ///
    /// - `fit` starts by copying rank 0's parameters and buffers to every rank;
    /// - each epoch, every rank trains on its own shard of the samples
    ///   ([`DistributedSampler`]: the epoch's shuffle is the same everywhere, rank `r` takes
    ///   every `size`-th sample from `r`, padded to equal shares), `batch_size` samples per rank
    ///   and step, so a step sees `size × batch_size` samples; `fit_loader` shards its loader
    ///   the same way ([`DataLoader::shard`]);
    /// - after each backward pass the gradients are averaged over the ranks
    ///   ([`DataParallel::backward`]: buckets reduced while the backward pass goes on), before
    ///   the gradient hooks, clipping and the identical optimizer step on every rank;
    /// - the epoch's loss and metrics, and the validation loss and metrics (each rank
    ///   evaluating its share of the validation samples), are summed over the ranks as totals
    ///   and counts, so the history is that of the whole data and the same on every rank, and
    ///   callbacks such as [`EarlyStopping`](super::EarlyStopping) decide alike everywhere;
    /// - only rank 0 prints progress, and [`Checkpoint`](super::Checkpoint) and
    ///   [`ModelCheckpoint`](super::ModelCheckpoint) write only on rank 0 (other callbacks see
    ///   [`TrainContext::rank`](super::TrainContext::rank) to do the same);
    /// - the dropout masks differ per rank ([`StepKey`] takes the communicator's rank, not
    ///   [`FitOptions::rank`]);
    /// - an error on any rank (a callback's, a checkpoint that cannot be written) ends the
    ///   whole job ([`Communicator::abort`](crate::distributed::Communicator::abort)) after
    ///   printing it, as a panic does under `Mpi` (feature `mpi`), instead of
    ///   leaving the other ranks waiting.
    ///
    /// [`evaluate`](Self::evaluate) and [`predict`](Self::predict) stay local: each rank that
    /// calls them computes on all the data it is given.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tensorgrad::distributed::{DataParallel, SingleProcess};
    /// use tensorgrad::nn::{Linear, Module};
    /// use tensorgrad::optim::{Adam, AdamConfig};
    /// use tensorgrad::train::{FitOptions, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// // With the `mpi` feature: `let comm = Arc::new(tensorgrad::distributed::Mpi::init()?);`
    /// // and the program started with `mpirun -np 4 …`.
    /// let comm = Arc::new(SingleProcess);
    /// let x = Tensor::<f32>::randn(&[64, 2], 0.0, 1.0, 0);
    /// let y = x.narrow(1, 0, 1) * 2.0 - x.narrow(1, 1, 1);
    /// let model: Linear = Linear::new(2, 1, 1);
    /// let opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.05, ..Default::default() });
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse).distributed(DataParallel::new(comm.clone()));
    /// let options = FitOptions { epochs: 40, batch_size: 16, verbose: false, ..Default::default() };
    /// let history = trainer.fit(&x, &y, &options)?;
    /// assert!(history.last("loss").unwrap() < 1e-2);
    /// if comm.rank() == 0 {
    ///     // save the model, the history, the curves: once, not once per rank
    /// }
    /// # use tensorgrad::distributed::Communicator;
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    pub fn distributed(mut self, ddp: DataParallel<E>) -> Self {
        self.ddp = Some(ddp);
        self
    }

    /// The data-parallel setup given to [`distributed`](Self::distributed), if any.
    pub fn data_parallel(&self) -> Option<&DataParallel<E>> {
        self.ddp.as_ref()
    }

    /// Metrics to report for training and validation data (Keras's `metrics=[…]`), in the
    /// history under their [names](Metric::name), with `val_` in front for validation data.
    ///
    /// ```
    /// use tensorgrad::nn::{Activation, Dense, Module};
    /// use tensorgrad::optim::{Adam, AdamConfig};
    /// use tensorgrad::train::{FitOptions, Metric, Trainer, Validation};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// let x = Tensor::from_vec(vec![-2.0f32, -1.0, 1.0, 2.0], &[4, 1]);
    /// let y = Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 1.0], &[4, 1]);
    /// let model: Dense = Dense::new(1, 1, Some(Activation::Sigmoid), 0);
    /// let opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.1, ..Default::default() });
    /// let bce = |p: &Tensor, t: &Tensor| loss::bce(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, bce).metrics(&[Metric::Accuracy, Metric::Auc]);
    /// let options = FitOptions { epochs: 50, validation: Validation::Data(&x, &y), verbose: false, ..Default::default() };
    /// let history = trainer.fit(&x, &y, &options)?;
    /// assert_eq!(history.names(), ["loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc", "lr"]);
    /// assert_eq!(history.last("val_auc"), Some(1.0));
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    pub fn metrics(mut self, metrics: &[Metric]) -> Self {
        self.metrics = metrics.to_vec();
        self
    }

    /// Adds a callback. Callbacks run in the order they were added, after each batch and each
    /// epoch; the trainer keeps them (and their state) until it is dropped.
    ///
    /// ```
    /// use tensorgrad::nn::{Linear, Module};
    /// use tensorgrad::optim::{Sgd, SgdConfig, StepLr};
    /// use tensorgrad::train::{EarlyStopping, FitOptions, LrSchedule, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// let model: Linear = Linear::new(2, 1, 0);
    /// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse)
    ///     .callback(LrSchedule::new(StepLr::new(0.1, 1, 0.5)))
    ///     .callback(EarlyStopping::new("loss", 3));
    /// let options = FitOptions { epochs: 3, verbose: false, ..Default::default() };
    /// let history = trainer.fit(&Tensor::ones(&[8, 2]), &Tensor::zeros(&[8, 1]), &options)?;
    /// assert_eq!(history.get("lr"), Some(&[0.1, 0.05, 0.025][..]));
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
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
    /// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
    /// use tensorgrad::nn::{Linear, Module, Sequential};
    /// use tensorgrad::optim::{Sgd, SgdConfig};
    /// use tensorgrad::train::{FitOptions, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
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
    /// hooks), as `torch.nn.utils.clip_grad_norm_` does in a PyTorch loop.
    ///
    /// ```
    /// use tensorgrad::nn::{Linear, Module};
    /// use tensorgrad::optim::{Sgd, SgdConfig};
    /// use tensorgrad::train::{FitOptions, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// // One step of plain SGD with lr 1 moves the parameters by the clipped gradient, whose
    /// // norm is at most 0.1.
    /// let model: Linear = Linear::new(2, 1, 0);
    /// let before: Vec<f32> = model.parameters().iter().flat_map(|p| p.to_vec()).collect();
    /// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 1.0, ..Default::default() });
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse).clip_grad_norm(0.1);
    /// let options = FitOptions { epochs: 1, batch_size: 8, verbose: false, ..Default::default() };
    /// trainer.fit(&Tensor::ones(&[8, 2]), &Tensor::full(&[8, 1], 100.0), &options)?;
    /// let after: Vec<f32> = trainer.model().parameters().iter().flat_map(|p| p.to_vec()).collect();
    /// let moved = before.iter().zip(&after).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt();
    /// assert!(moved <= 0.1 + 1e-6);
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `max_norm` is not a positive number.
    #[track_caller]
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        if max_norm.is_nan() || max_norm <= 0.0 {
            panic!("Trainer: max_norm {max_norm} must be a positive number");
        }
        self.clip_norm = Some(max_norm);
        self
    }

    /// The model being trained (to save it, inspect it, or predict with it).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The model, to change (freeze a layer, load weights) between fits.
    ///
    /// ```
    /// use tensorgrad::nn::{Linear, Module, Sequential};
    /// use tensorgrad::optim::{Adam, AdamConfig};
    /// use tensorgrad::train::{FitOptions, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// let model: Sequential = Sequential::new().add_named("body", Linear::new(2, 4, 0)).add_named("head", Linear::new(4, 1, 1));
    /// let opt = Adam::new(model.named_parameters(), AdamConfig::default());
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse);
    /// let (x, y) = (Tensor::ones(&[8, 2]), Tensor::zeros(&[8, 1]));
    /// let options = FitOptions { epochs: 2, verbose: false, ..Default::default() };
    /// trainer.fit(&x, &y, &options)?;
    ///
    /// // Freeze the body, then fine-tune the head alone.
    /// for name in ["body.weight", "body.bias"] {
    ///     assert!(trainer.model_mut().set_trainable(name, false));
    /// }
    /// let body = trainer.model().named_parameters()[0].1.to_vec();
    /// trainer.fit(&x, &y, &options)?;
    /// assert_eq!(trainer.model().named_parameters()[0].1.to_vec(), body);
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// The optimizer (its learning rate, its state for a checkpoint).
    pub fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// The optimizer, to change (set the learning rate, load a state) between fits.
    ///
    /// ```
    /// use tensorgrad::nn::{Linear, Module};
    /// use tensorgrad::optim::{Optimizer, Sgd, SgdConfig};
    /// use tensorgrad::train::{FitOptions, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// let model: Linear = Linear::new(2, 1, 0);
    /// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse);
    /// let (x, y) = (Tensor::ones(&[8, 2]), Tensor::zeros(&[8, 1]));
    /// let options = FitOptions { epochs: 1, verbose: false, ..Default::default() };
    /// trainer.fit(&x, &y, &options)?;
    /// trainer.optimizer_mut().set_learning_rate(0.01); // a second phase at a lower rate
    /// assert_eq!(trainer.fit(&x, &y, &options)?.last("lr"), Some(0.01));
    /// assert_eq!(trainer.optimizer().learning_rate(), 0.01);
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    pub fn optimizer_mut(&mut self) -> &mut O {
        &mut self.optimizer
    }

    /// The model and the optimizer, giving up the trainer (its callbacks and loss).
    ///
    /// ```
    /// use tensorgrad::nn::{Linear, Module};
    /// use tensorgrad::optim::{Optimizer, Sgd, SgdConfig};
    /// use tensorgrad::train::{FitOptions, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// let model: Linear = Linear::new(2, 1, 0);
    /// let opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() });
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse);
    /// let options = FitOptions { epochs: 1, verbose: false, ..Default::default() };
    /// trainer.fit(&Tensor::ones(&[8, 2]), &Tensor::zeros(&[8, 1]), &options)?;
    /// let (model, opt) = trainer.into_parts();
    /// assert_eq!(model.in_features(), 2);
    /// assert_eq!(opt.state_dict()[0].0, "weight.step"); // the momentum is kept
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    pub fn into_parts(self) -> (M, O) {
        (self.model, self.optimizer)
    }

    /// Trains for `options.epochs` epochs on the rows of `x` and `y` and returns the
    /// per-epoch history (Keras's `model.fit`). Each call starts a new history; the model and
    /// the optimizer's state carry over from earlier calls.
    ///
    /// ```
    /// use tensorgrad::nn::{Linear, Module};
    /// use tensorgrad::optim::{Adam, AdamConfig};
    /// use tensorgrad::train::{FitOptions, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// // y = 2·x0 − x1 + 0.5
    /// let x = Tensor::<f32>::randn(&[64, 2], 0.0, 1.0, 0);
    /// let y = (x.narrow(1, 0, 1) * 2.0 - x.narrow(1, 1, 1)).add_scalar(0.5);
    /// let model: Linear = Linear::new(2, 1, 1);
    /// let opt = Adam::new(model.named_parameters(), AdamConfig { lr: 0.05, ..Default::default() });
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse);
    /// let options = FitOptions { epochs: 60, batch_size: 16, verbose: false, ..Default::default() };
    /// let history = trainer.fit(&x, &y, &options)?;
    /// assert_eq!(history.epochs(), 60);
    /// assert!(history.last("loss").unwrap() < 1e-3);
    /// assert!(history.get("loss").unwrap()[0] > history.last("loss").unwrap());
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
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
        let (rows, val): (Vec<usize>, Option<ValSource<'_, E>>) = match options.validation {
            Validation::None => ((0..n).collect(), None),
            Validation::Data(xv, yv) => {
                check_samples("fit (validation data)", xv, yv);
                ((0..n).collect(), Some(ValSource::Tensors(xv.clone(), yv.clone(), options.batch_size)))
            }
            Validation::Loader(loader) => ((0..n).collect(), Some(val_loader("fit", loader))),
            Validation::Split(f) => {
                if !(f > 0.0 && f < 1.0) {
                    panic!("fit: validation split {f} must be in (0, 1)");
                }
                let split_at = ((n as f64) * (1.0 - f)) as usize;
                if split_at == 0 || split_at == n {
                    panic!("fit: validation split {f} of {n} samples leaves one side empty");
                }
                let vi: Vec<usize> = (split_at..n).collect();
                let (xv, yv) = (x.index_select(0, &vi).detach(), y.index_select(0, &vi).detach());
                ((0..split_at).collect(), Some(ValSource::Tensors(xv, yv, options.batch_size)))
            }
        };
        let source = TrainSource::Tensors {
            x,
            y,
            rows,
            batch_size: options.batch_size,
            shuffle: options.shuffle,
            seed: options.seed,
            shard: self.shard(),
        };
        self.run(&source, val, options)
    }

    /// Trains for `options.epochs` epochs on the batches of `loader` and returns the per-epoch
    /// history: [`fit`](Self::fit) for data that does not fit in memory, or for a model with
    /// several inputs (each batch's inputs go to [`Module::forward_many`]).
    ///
    /// The batch size, the shuffling and its seed are the loader's; `options` gives the rest
    /// (epochs, validation, the dropout seed, verbosity, the initial epoch). With the loader's
    /// seed equal to `options.seed` and its batch size to `options.batch_size`, a loader over a
    /// [`TensorDataset`](crate::data::TensorDataset) of `x` and `y` trains exactly as
    /// `fit(&x, &y, options)`, bit for bit.
    ///
    /// ```
    /// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
    /// use tensorgrad::data::{DataLoader, FnDataset, Sample};
    /// use tensorgrad::nn::{Linear, Module};
    /// use tensorgrad::optim::{Sgd, SgdConfig};
    /// use tensorgrad::train::{FitOptions, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// // y = 3x − 1, each sample made when the loader asks for it.
    /// let data = FnDataset::new(256, |i| {
    ///     let x = i as f32 / 256.0;
    ///     Sample::new(Tensor::from_slice(&[x]), Tensor::from_slice(&[3.0 * x - 1.0]))
    /// });
    /// let loader = DataLoader::new(data, 32).shuffle(true).seed(5).prefetch(2);
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let model = Linear::new(1, 1, &mut rng);
    /// let opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.5, ..Default::default() });
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse);
    /// let history = trainer.fit_loader(&loader, &FitOptions { epochs: 40, verbose: false, ..Default::default() })?;
    /// assert!(history.last("loss").unwrap() < 1e-3);
    /// assert!(trainer.evaluate_loader(&loader).loss < 1e-3);
    /// # Ok::<(), tensorgrad::Error>(())
    /// ```
    ///
    /// # Errors
    /// Whatever a callback returns.
    ///
    /// # Panics
    /// If an epoch of the loader has no batch, `options.validation` is a
    /// [`Split`](Validation::Split) (give a validation loader or tensors instead), or a batch's
    /// inputs and targets have different numbers of samples.
    #[track_caller]
    pub fn fit_loader(&mut self, loader: &DataLoader<E>, options: &FitOptions<'_, E>) -> Result<History> {
        if loader.is_empty() {
            panic!(
                "fit_loader: the loader has no batch ({} samples, batch size {}{})",
                loader.num_samples(),
                loader.batch_size(),
                if loader.num_samples() > 0 { ", the only partial batch dropped" } else { "" }
            );
        }
        let val = match options.validation {
            Validation::None => None,
            Validation::Data(xv, yv) => {
                check_samples("fit_loader (validation data)", xv, yv);
                Some(ValSource::Tensors(xv.clone(), yv.clone(), loader.batch_size()))
            }
            Validation::Loader(v) => Some(val_loader("fit_loader", v)),
            Validation::Split(f) => panic!(
                "fit_loader: validation split {f} needs tensors in memory; pass Validation::Loader with a loader \
                 over the validation samples, or Validation::Data"
            ),
        };
        match (self.shard(), loader.shard_of()) {
            (None, _) => self.run(&TrainSource::Loader(loader), val, options),
            (Some(want), Some(have)) if want == have => self.run(&TrainSource::Loader(loader), val, options),
            (Some((rank, size)), Some(have)) => panic!(
                "fit_loader: the loader is sharded as {have:?} (rank, processes), but this is rank {rank} of {size}"
            ),
            (Some((rank, size)), None) => {
                let sharded = loader.clone().shard(rank, size);
                self.run(&TrainSource::Loader(&sharded), val, options)
            }
        }
    }

    /// This process's (rank, number of processes) when training on several.
    fn shard(&self) -> Option<(usize, usize)> {
        self.ddp.as_ref().filter(|d| d.size() > 1).map(|d| (d.rank(), d.size()))
    }

    #[track_caller]
    fn run(
        &mut self,
        source: &TrainSource<'_, E>,
        val: Option<ValSource<'_, E>>,
        options: &FitOptions<'_, E>,
    ) -> Result<History> {
        let result = self.run_epochs(source, val, options);
        if let (Err(e), Some(ddp)) = (&result, &self.ddp)
            && ddp.size() > 1
        {
            // The other ranks would wait for this one in their next collective forever.
            eprintln!("tensorgrad: rank {} of {}: {e}; aborting the job", ddp.rank(), ddp.size());
            ddp.comm().abort(1);
        }
        result
    }

    #[track_caller]
    fn run_epochs(
        &mut self,
        source: &TrainSource<'_, E>,
        val: Option<ValSource<'_, E>>,
        options: &FitOptions<'_, E>,
    ) -> Result<History> {
        let op = match source {
            TrainSource::Tensors { .. } => "fit",
            TrainSource::Loader(_) => "fit_loader",
        };
        let mut history = History::new();
        self.model.train();
        // Each module's seed says where it sits; each step's masks then come from its key.
        self.model.reseed(options.seed);
        let (rank, world_size) = match &self.ddp {
            Some(d) => (d.rank(), d.size()),
            None => (options.rank, 1),
        };
        if let Some(d) = &self.ddp {
            d.broadcast_state(&self.model);
        }
        let verbose = options.verbose && rank == 0;
        for cb in &mut self.callbacks {
            let mut ctx = TrainContext {
                model: &self.model,
                optimizer: &mut self.optimizer,
                history: &history,
                epoch: 0,
                progress: None,
                rank,
                world_size,
            };
            cb.on_train_begin(&mut ctx)?;
        }
        let batches = source.batches_per_epoch();
        let resumed = self.check_progress(op, options, batches, world_size);
        for epoch in options.initial_epoch..options.epochs {
            let started = Instant::now();
            let mut progress = match &resumed {
                Some(p) if epoch == p.epoch => p.clone(),
                _ => EpochProgress::start(epoch, &self.metrics),
            };
            let bar = Progress::new(verbose, epoch, options.epochs, batches);
            let first = progress.batches_done;
            for (bi, batch) in (first..).zip(source.epoch(epoch, first)) {
                let size = check_batch(op, bi, &batch);
                let key = StepKey::new(options.seed, epoch, epoch * batches + bi, rank);
                let pred = key.scope(|| forward(&self.model, &batch.inputs));
                let loss = (self.loss)(&pred, &batch.target);
                let params = if self.ddp.is_some() || !self.callbacks.is_empty() {
                    trainable_parameters(&self.model)
                } else {
                    Vec::new()
                };
                let mut grads = match &mut self.ddp {
                    Some(ddp) => ddp.backward(&loss, &params),
                    None => loss.backward(),
                };
                let l = loss.item().to_f64().unwrap_or(f64::NAN);
                if !self.callbacks.is_empty() {
                    let step = StepContext {
                        model: &self.model,
                        params: &params,
                        inputs: &batch.inputs[0],
                        all_inputs: &batch.inputs,
                        targets: &batch.target,
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
                // Free the step's graph before the update: while it lives it holds the weights'
                // values, so updating a weight in place would first copy its whole buffer.
                let pred = pred.detach();
                drop(loss);
                self.optimizer.step(&grads);
                progress.loss_sum += l * size as f64;
                progress.seen += size;
                progress.batches_done += 1;
                for s in &mut progress.metrics {
                    s.update(&pred, &batch.target);
                }
                for cb in &mut self.callbacks {
                    let mut ctx = TrainContext {
                        model: &self.model,
                        optimizer: &mut self.optimizer,
                        history: &history,
                        epoch,
                        progress: Some(&progress),
                        rank,
                        world_size,
                    };
                    cb.on_batch_end(bi, l, &mut ctx)?;
                }
                bar.update(bi + 1, progress.loss(), &self.metrics, &progress.metrics);
            }
            let (loss_sum, seen, states) = self.reduced(progress.loss_sum, progress.seen, &progress.metrics);
            let mut logs: Vec<(String, f64)> = vec![("loss".to_string(), loss_sum / seen as f64)];
            logs.extend(self.metrics.iter().zip(&states).map(|(m, s)| (m.name().to_string(), s.result())));
            if let Some(v) = &val {
                let ev = self.validate(v, rank, world_size);
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
                let mut ctx = TrainContext {
                    model: &self.model,
                    optimizer: &mut self.optimizer,
                    history: &history,
                    epoch,
                    progress: None,
                    rank,
                    world_size,
                };
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
            let mut ctx = TrainContext {
                model: &self.model,
                optimizer: &mut self.optimizer,
                history: &history,
                epoch: last,
                progress: None,
                rank,
                world_size,
            };
            cb.on_train_end(&mut ctx)?;
        }
        self.model.eval();
        Ok(history)
    }

    /// The epoch's loss total, sample count and metric states over all ranks (as they are in
    /// a single process).
    fn reduced(&self, loss_sum: f64, seen: usize, states: &[MetricState]) -> (f64, usize, Vec<MetricState>) {
        match &self.ddp {
            Some(d) if d.size() > 1 => {
                let mut totals = [loss_sum, seen as f64];
                d.comm().all_reduce(Buffer::F64(&mut totals), ReduceOp::Sum);
                let states = states.iter().map(|s| s.reduced(&**d.comm())).collect();
                (totals[0], totals[1] as usize, states)
            }
            _ => (loss_sum, seen, states.to_vec()),
        }
    }

    /// The validation loss and metrics; with several ranks each evaluates every `size`-th
    /// batch and the totals are summed.
    fn validate(&mut self, v: &ValSource<'_, E>, rank: usize, size: usize) -> Evaluation {
        if size == 1 {
            return match v {
                ValSource::Tensors(xv, yv, batch_size) => self.evaluate(xv, yv, *batch_size),
                ValSource::Loader(loader) => self.evaluate_loader(loader),
            };
        }
        let (loss_sum, n, states) = match v {
            ValSource::Tensors(x, y, batch_size) => {
                self.accumulate("fit (validation data)", row_batches(x, y, *batch_size, rank, size))
            }
            ValSource::Loader(loader) => self.accumulate("fit (validation loader)", loader.strided_batches(rank, size)),
        };
        let (loss_sum, n, states) = self.reduced(loss_sum, n, &states);
        Evaluation {
            loss: loss_sum / n as f64,
            metrics: self.metrics.iter().zip(&states).map(|(m, s)| (m.name().to_string(), s.result())).collect(),
        }
    }

    /// Checks `options.initial_progress` against the run; returns it.
    #[track_caller]
    fn check_progress(
        &self,
        op: &str,
        options: &FitOptions<'_, E>,
        batches: usize,
        world_size: usize,
    ) -> Option<EpochProgress> {
        let p = options.initial_progress.as_ref()?;
        if world_size > 1 && p.batches_done > 0 {
            panic!(
                "{op}: resuming inside an epoch (batch {} of epoch {}) is not supported in distributed training; \
                 resume from a checkpoint written at the end of an epoch",
                p.batches_done, p.epoch
            );
        }
        if p.epoch != options.initial_epoch {
            panic!(
                "{op}: initial_progress is in epoch {} but initial_epoch is {}; set both from the checkpoint (Resume::fit_options)",
                p.epoch, options.initial_epoch
            );
        }
        if p.batches_done > batches {
            panic!(
                "{op}: initial_progress has {} batches of epoch {} done, but an epoch has {batches}",
                p.batches_done, p.epoch
            );
        }
        let saved: Vec<Metric> = p.metrics.iter().map(MetricState::metric).collect();
        if saved != self.metrics {
            let names = |m: &[Metric]| m.iter().map(|m| m.name()).collect::<Vec<_>>();
            panic!(
                "{op}: initial_progress holds the metrics {:?} but the trainer reports {:?}",
                names(&saved),
                names(&self.metrics)
            );
        }
        Some(p.clone())
    }

    /// The mean loss and the metrics on `x`, `y`, in batches, without building a graph
    /// (Keras's `model.evaluate`). The model is switched to evaluation mode.
    ///
    /// ```
    /// use tensorgrad::nn::{Linear, Module};
    /// use tensorgrad::optim::{Sgd, SgdConfig};
    /// use tensorgrad::train::{Metric, Trainer};
    /// use tensorgrad::{Tensor, loss};
    ///
    /// // Logits of a fixed 3-class model, p = x·I: each row's largest input is its class.
    /// let model = Linear::from_tensors(Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], &[3, 3]), None);
    /// let opt = Sgd::new(model.named_parameters(), SgdConfig::default());
    /// let ce = |p: &Tensor, t: &Tensor| loss::cross_entropy(p, t, 0.0, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, ce).metrics(&[Metric::SparseCategoricalAccuracy]);
    /// let x = Tensor::from_vec(vec![5.0f32, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 5.0, 5.0, 0.0, 0.0], &[4, 3]);
    /// let y = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 1.0]); // the last one is wrong
    /// let evaluation = trainer.evaluate(&x, &y, 3);
    /// assert_eq!(evaluation.get("sparse_categorical_accuracy"), Some(0.75));
    /// assert!(evaluation.loss > 1.0);
    /// ```
    ///
    /// # Panics
    /// If `x` and `y` have different numbers of samples, the data is empty, or the batch size is
    /// 0.
    #[track_caller]
    pub fn evaluate(&mut self, x: &Tensor<E>, y: &Tensor<E>, batch_size: usize) -> Evaluation {
        check_samples("evaluate", x, y);
        if batch_size == 0 {
            panic!("evaluate: batch size must be at least 1");
        }
        self.evaluate_batches("evaluate", row_batches(x, y, batch_size, 0, 1))
    }

    /// The mean loss and the metrics on the batches of `loader` (its epoch 0), without building
    /// a graph. With a [`TensorDataset`](crate::data::TensorDataset) of `x` and `y` this is
    /// [`evaluate`](Self::evaluate) of them:
    ///
    /// ```
    /// use tensorgrad::data::{DataLoader, TensorDataset};
    /// use tensorgrad::nn::{Linear, Module};
    /// use tensorgrad::optim::{Sgd, SgdConfig};
    /// use tensorgrad::train::Trainer;
    /// use tensorgrad::{Tensor, loss};
    ///
    /// let model: Linear = Linear::new(3, 1, 0);
    /// let opt = Sgd::new(model.named_parameters(), SgdConfig::default());
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse);
    /// let (x, y) = (Tensor::<f32>::randn(&[10, 3], 0.0, 1.0, 1), Tensor::zeros(&[10, 1]));
    /// let loader = DataLoader::new(TensorDataset::new(&x, &y), 4);
    /// assert_eq!(trainer.evaluate_loader(&loader), trainer.evaluate(&x, &y, 4));
    /// ```
    ///
    /// # Panics
    /// If the loader has no batch, or a batch's inputs and targets have different numbers of
    /// samples.
    #[track_caller]
    pub fn evaluate_loader(&mut self, loader: &DataLoader<E>) -> Evaluation {
        if loader.is_empty() {
            panic!("evaluate_loader: the loader has no batch ({} samples)", loader.num_samples());
        }
        self.evaluate_batches("evaluate_loader", loader.epoch(0))
    }

    #[track_caller]
    fn evaluate_batches(&mut self, op: &str, batches: impl Iterator<Item = Batch<E>>) -> Evaluation {
        let (loss_sum, n, states) = self.accumulate(op, batches);
        Evaluation {
            loss: loss_sum / n as f64,
            metrics: self.metrics.iter().zip(&states).map(|(m, s)| (m.name().to_string(), s.result())).collect(),
        }
    }

    /// The loss total, the sample count and the metric states over `batches`, in evaluation
    /// mode, without building a graph.
    #[track_caller]
    fn accumulate(&mut self, op: &str, batches: impl Iterator<Item = Batch<E>>) -> (f64, usize, Vec<MetricState>) {
        self.model.eval();
        let mut states: Vec<MetricState> = self.metrics.iter().map(|&m| MetricState::new(m)).collect();
        let (mut loss_sum, mut n) = (0.0, 0usize);
        no_grad(|| {
            for (bi, batch) in batches.enumerate() {
                let len = check_batch(op, bi, &batch);
                let pred = forward(&self.model, &batch.inputs);
                loss_sum += (self.loss)(&pred, &batch.target).item().to_f64().unwrap_or(f64::NAN) * len as f64;
                n += len;
                for s in &mut states {
                    s.update(&pred, &batch.target);
                }
            }
        });
        (loss_sum, n, states)
    }

    /// The model's outputs for every row of `x`, in batches, without building a graph
    /// (Keras's `model.predict`). The model is switched to evaluation mode first, so dropout is
    /// off.
    ///
    /// ```
    /// use tensorgrad::nn::{Activation, Dense, Dropout, Module, Sequential};
    /// use tensorgrad::optim::{Adam, AdamConfig};
    /// use tensorgrad::train::Trainer;
    /// use tensorgrad::{Tensor, loss};
    ///
    /// let model: Sequential =
    ///     Sequential::new().add(Dropout::new(0.5, 0)).add(Dense::new(3, 2, Some(Activation::Softmax), 1));
    /// let opt = Adam::new(model.named_parameters(), AdamConfig::default());
    /// let nll = |p: &Tensor, t: &Tensor| loss::nll_loss(&p.ln(), t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, nll);
    /// let x = Tensor::<f32>::randn(&[5, 3], 0.0, 1.0, 2);
    /// let probabilities = trainer.predict(&x, 2); // batches of 2, 2 and 1
    /// assert_eq!(probabilities.shape(), &[5, 2]);
    /// assert!(!probabilities.needs_grad());
    /// assert_eq!(trainer.predict(&x, 2).to_vec(), probabilities.to_vec()); // no dropout masks
    /// ```
    ///
    /// # Panics
    /// If `x` has no sample or the batch size is 0.
    #[track_caller]
    pub fn predict(&mut self, x: &Tensor<E>, batch_size: usize) -> Tensor<E> {
        self.model.eval();
        predict(&self.model, x, batch_size)
    }

    /// The model's outputs for every sample of `loader` (its epoch 0, in the loader's order),
    /// concatenated along dim 0, without building a graph. The targets are not used.
    ///
    /// ```
    /// use tensorgrad::data::{DataLoader, FnDataset, Sample};
    /// use tensorgrad::nn::Linear;
    /// use tensorgrad::optim::{Sgd, SgdConfig};
    /// use tensorgrad::train::Trainer;
    /// use tensorgrad::{Tensor, loss, nn::Module};
    ///
    /// // p = 2x, on inputs made as the loader asks for them (the targets are placeholders).
    /// let model = Linear::from_tensors(Tensor::from_vec(vec![2.0f32], &[1, 1]), None);
    /// let opt = Sgd::new(model.named_parameters(), SgdConfig::default());
    /// let mse = |p: &Tensor, t: &Tensor| loss::mse(p, t, loss::Reduction::Mean);
    /// let mut trainer = Trainer::new(model, opt, mse);
    /// let data = FnDataset::new(5, |i| Sample::new(Tensor::from_slice(&[i as f32]), Tensor::scalar(0.0)));
    /// let p = trainer.predict_loader(&DataLoader::new(data, 2));
    /// assert_eq!(p.to_vec(), [0.0, 2.0, 4.0, 6.0, 8.0]);
    /// ```
    ///
    /// # Panics
    /// If the loader has no batch.
    #[track_caller]
    pub fn predict_loader(&mut self, loader: &DataLoader<E>) -> Tensor<E> {
        if loader.is_empty() {
            panic!("predict_loader: the loader has no batch ({} samples)", loader.num_samples());
        }
        self.model.eval();
        no_grad(|| {
            let outs: Vec<Tensor<E>> = loader.epoch(0).map(|b| forward(&self.model, &b.inputs)).collect();
            Tensor::cat(&outs, 0)
        })
    }
}

/// The forward pass of one batch: `forward` of a single input, `forward_many` of several.
#[track_caller]
fn forward<E: Element, M: Module<E>>(model: &M, inputs: &[Tensor<E>]) -> Tensor<E> {
    match inputs {
        [x] => model.forward(x),
        _ => {
            let refs: Vec<&Tensor<E>> = inputs.iter().collect();
            model.forward_many(&refs)
        }
    }
}

/// Every `size`-th batch of `batch_size` consecutive rows of `x` and `y` from batch `rank` on
/// (all of them for rank 0 of 1), as views.
fn row_batches<'t, E: Element>(
    x: &'t Tensor<E>,
    y: &'t Tensor<E>,
    batch_size: usize,
    rank: usize,
    size: usize,
) -> impl Iterator<Item = Batch<E>> + 't {
    let n = x.shape()[0];
    (0..n).step_by(batch_size).skip(rank).step_by(size).map(move |start| {
        let len = batch_size.min(n - start);
        Batch { inputs: vec![x.narrow(0, start, len)], target: y.narrow(0, start, len) }
    })
}

/// Checks that a batch's inputs and target agree on the number of samples; returns it.
#[track_caller]
fn check_batch<E: Element>(op: &str, index: usize, batch: &Batch<E>) -> usize {
    if batch.inputs.is_empty() {
        panic!("{op}: batch {index} has no input");
    }
    let n = match batch.target.shape().first() {
        Some(&n) if n > 0 => n,
        _ => panic!("{op}: batch {index} has no samples (target shape {:?})", batch.target.shape()),
    };
    for (k, x) in batch.inputs.iter().enumerate() {
        if x.shape().first() != Some(&n) {
            panic!(
                "{op}: input {k} of batch {index} has shape {:?}, not the {n} samples of its target (shape {:?})",
                x.shape(),
                batch.target.shape()
            );
        }
    }
    n
}

#[track_caller]
fn val_loader<'v, E: Element>(op: &str, loader: &'v DataLoader<E>) -> ValSource<'v, E> {
    if loader.is_empty() {
        panic!("{op}: the validation loader has no batch ({} samples)", loader.num_samples());
    }
    ValSource::Loader(loader)
}

/// A model's outputs for every row of `x`, in batches, without building a graph. The model
/// should be in evaluation mode.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::nn::{Dropout, Linear, Module, Sequential};
/// use tensorgrad::train::predict;
///
/// // y = 2x + 1
/// let linear = Linear::from_tensors(Tensor::from_vec(vec![2.0f32], &[1, 1]), Some(Tensor::from_slice(&[1.0])));
/// let mut model: Sequential = Sequential::new().add(Dropout::new(0.5, 0)).add(linear);
/// model.eval(); // dropout off
/// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0, 4.0], &[5, 1]);
/// let y = predict(&model, &x, 2); // batches of 2, 2 and 1
/// assert_eq!(y.to_vec(), [1.0, 3.0, 5.0, 7.0, 9.0]);
/// assert!(!y.needs_grad());
/// ```
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
