//! Optimizers, gradient clipping and learning-rate schedules, following `torch.optim`.
//!
//! An optimizer is built from the trainable parameters of a model
//! ([`Module::parameters`](crate::nn::Module::parameters)) and a configuration struct whose
//! [`Default`] holds PyTorch's defaults. [`Optimizer::step`] reads the [`Gradients`] of a
//! backward pass and overwrites each parameter in place ([`Tensor::update_`]); parameters without
//! a gradient are left alone, and their state does not advance.
//!
//! | optimizer | PyTorch | update |
//! |---|---|---|
//! | [`Sgd`] | `torch.optim.SGD` | momentum, dampening, Nesterov, L2 weight decay |
//! | [`Adam`] | `torch.optim.Adam` | bias-corrected moments, AMSGrad, L2 weight decay |
//! | [`AdamW`] | `torch.optim.AdamW` | Adam with decoupled weight decay |
//! | [`RmsProp`] | `torch.optim.RMSprop` | running mean square, centred, momentum |
//! | [`Adagrad`] | `torch.optim.Adagrad` | accumulated squares, learning-rate decay |
//!
//! Every optimizer is the same loop over its parameters running a short chain of small
//! per-parameter transforms (weight decay, momentum, Adam's moments, RMS scaling, …) and then
//! `p ← p − step_size · u`; the transforms evaluate PyTorch's formulas operation for operation,
//! so a run matches `torch.optim` to within rounding (tested against PyTorch in float64).
//!
//! [`Optimizer::state_dict`] and [`Optimizer::load_state_dict`] save and restore the moments
//! and step counts, so that a resumed run continues bit for bit. Gradient clipping is
//! [`clip_grad_norm`] and [`clip_grad_value`]; the schedules implement [`LrScheduler`].

mod adagrad;
mod adam;
mod chain;
mod clip;
mod rmsprop;
mod scheduler;
mod sgd;
mod transform;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use scheduler::{
    CosineAnnealingLr, ExponentialLr, LinearWarmup, LrScheduler, PlateauConfig, PlateauMode, ReduceLrOnPlateau, StepLr,
    ThresholdMode,
};
pub use sgd::{Sgd, SgdConfig};

use crate::{Element, Gradients, Result, Tensor};

/// An optimizer: updates parameters in place from their gradients.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
///
/// // Fit w in y = 3·x by least squares.
/// let w = Tensor::from_vec(vec![0.0f32], &[1]).requires_grad();
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]);
/// let y = &x * 3.0;
/// let mut opt = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, ..Default::default() });
/// for _ in 0..300 {
///     let loss = (&x * &w - &y).powf(2.0).mean();
///     opt.step(&loss.backward());
/// }
/// assert!((w.item() - 3.0).abs() < 1e-2);
///
/// // Save the moments and step counts, and resume in a fresh optimizer.
/// let state = opt.state_dict();
/// assert_eq!(state[0].0, "0.step");
/// let mut resumed = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, ..Default::default() });
/// resumed.load_state_dict(&state).unwrap();
/// ```
pub trait Optimizer<E: Element = f32> {
    /// Updates every parameter that has a gradient in `grads`, in place; skips the others
    /// (their state, step count included, does not advance).
    ///
    /// # Panics
    /// If a gradient's shape differs from its parameter's.
    fn step(&mut self, grads: &Gradients<E>);

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate (what a schedule does). Zero is accepted, as schedules such as
    /// cosine annealing reach it.
    ///
    /// # Panics
    /// If `lr` is negative, NaN or infinite.
    fn set_learning_rate(&mut self, lr: f64);

    /// The parameters this optimizer updates, in the order it was given them.
    fn parameters(&self) -> &[Tensor<E>];

    /// The optimizer's state, for exact resumption: for each parameter `i` that has been
    /// updated, its step count `"{i}.step"` (a scalar tensor) and its buffers `"{i}.{name}"`
    /// (each the parameter's shape), with PyTorch's names: `momentum_buffer`, `exp_avg`,
    /// `exp_avg_sq`, `max_exp_avg_sq`, `square_avg`, `grad_avg`, `sum`.
    ///
    /// Hyper-parameters, the learning rate included, are configuration, not state. A step count
    /// stored as `f32` is exact up to 2²⁴ steps (as in PyTorch, which also keeps it as a float).
    fn state_dict(&self) -> Vec<(String, Tensor<E>)>;

    /// Restores a state made by [`state_dict`](Optimizer::state_dict) of an optimizer of the
    /// same kind and configuration over parameters of the same shapes. Parameters absent from
    /// `state` start afresh.
    ///
    /// # Errors
    /// [`Error::OptimizerState`](crate::Error::OptimizerState), listing every missing,
    /// unexpected and invalid entry (wrong shape, a step count that is not a non-negative
    /// integer); the optimizer is then unchanged.
    fn load_state_dict(&mut self, state: &[(String, Tensor<E>)]) -> Result<()>;
}

/// Implements [`Optimizer`] for a struct whose field `chain` is a [`chain::Chain`].
macro_rules! impl_optimizer {
    ($($T:ident),*) => {$(
        impl<E: Element> Optimizer<E> for $T<E> {
            #[track_caller]
            fn step(&mut self, grads: &Gradients<E>) {
                self.chain.step(grads)
            }
            fn learning_rate(&self) -> f64 {
                self.chain.learning_rate()
            }
            #[track_caller]
            fn set_learning_rate(&mut self, lr: f64) {
                self.chain.set_learning_rate(lr)
            }
            fn parameters(&self) -> &[Tensor<E>] {
                self.chain.parameters()
            }
            fn state_dict(&self) -> Vec<(String, Tensor<E>)> {
                self.chain.state_dict()
            }
            fn load_state_dict(&mut self, state: &[(String, Tensor<E>)]) -> Result<()> {
                self.chain.load_state_dict(state)
            }
        }
    )*};
}

impl_optimizer!(Sgd, Adam, AdamW, RmsProp, Adagrad);
