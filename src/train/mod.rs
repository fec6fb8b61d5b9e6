//! Keras-style training: [`Trainer`] with `fit`, `evaluate` and `predict` on tensors in memory,
//! or `fit_loader`, `evaluate_loader` and `predict_loader` on a
//! [`DataLoader`](crate::data::DataLoader) (data read on demand, models with several inputs);
//! per-epoch [`History`], streaming [`Metric`]s, and [`Callback`]s (early stopping, checkpoints,
//! learning-rate schedules, your own). The trainer owns the model and the optimizer (or borrows
//! them, see [`Trainer`]).
//!
//! ```
//! use tensorgrad::rand::{SeedableRng, rngs::StdRng};
//! use tensorgrad::nn::{Activation, Dense, Module, Sequential, Tanh};
//! use tensorgrad::optim::{Adam, AdamConfig};
//! use tensorgrad::train::{FitOptions, Metric, Trainer};
//! use tensorgrad::{Tensor, loss};
//!
//! // XOR with a small MLP.
//! let mut rng = StdRng::seed_from_u64(0);
//! let model: Sequential = Sequential::new()
//!     .add(Dense::new(2, 8, Some(Activation::Tanh), &mut rng))
//!     .add(Dense::new(8, 1, Some(Activation::Sigmoid), &mut rng));
//! let opt = Adam::new(model.parameters(), AdamConfig { lr: 0.05, ..Default::default() });
//! let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2]);
//! let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0], &[4, 1]);
//! let mut trainer = Trainer::new(model, opt, |p: &Tensor, t: &Tensor| loss::bce(p, t, loss::Reduction::Mean))
//!     .metrics(&[Metric::Accuracy]);
//! let history = trainer.fit(&x, &y, &FitOptions { epochs: 300, batch_size: 4, verbose: false, ..Default::default() })?;
//! assert_eq!(history.epochs(), 300);
//! assert_eq!(history.last("accuracy"), Some(1.0));
//! assert_eq!(trainer.predict(&x, 4).shape(), &[4, 1]);
//! # Ok::<(), tensorgrad::Error>(())
//! ```

mod callbacks;
mod checkpoint;
mod fit;
mod history;
mod metrics;
#[cfg(feature = "plot")]
mod plot;
mod progress;

pub use callbacks::{
    Callback, Control, EarlyStopping, FnCallback, LrSchedule, ModelCheckpoint, StepContext, TrainContext,
};
pub use checkpoint::{Checkpoint, Resume, load_checkpoint, save_checkpoint, save_checkpoint_in_epoch};
pub use fit::{Evaluation, FitOptions, Trainer, Validation, predict};
pub use history::History;
pub use metrics::{Metric, MetricState};
pub use progress::EpochProgress;
