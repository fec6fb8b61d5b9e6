//! Optimizers, gradient clipping and learning-rate schedules, following `torch.optim`.
//!
//! An optimizer is built from the parameters of a model — by name
//! ([`Module::named_parameters`](crate::nn::Module::named_parameters)) or by position
//! ([`Module::parameters`](crate::nn::Module::parameters)), see [`ParamList`] — and a
//! configuration struct whose [`Default`] holds PyTorch's defaults. [`Optimizer::step`] reads
//! the [`Gradients`] of a backward pass and overwrites each parameter in place
//! ([`Tensor::update_`]); parameters without a gradient are left alone, and their state does not
//! advance.
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
//! and step counts, so that a resumed run continues bit for bit. The state is keyed by the
//! parameters' dotted names when the optimizer was given names, so it means the same in every
//! process and does not depend on the order of the parameters. Gradient clipping is
//! [`clip_grad_norm`] and [`clip_grad_value`]; the schedules implement [`LrScheduler`].

mod adagrad;
mod adam;
mod chain;
mod clip;
mod params;
mod rmsprop;
mod scheduler;
mod sgd;
mod transform;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use params::ParamList;
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
/// // Save the moments and step counts, and resume in a fresh optimizer. These parameters were
/// // given without names, so their state is keyed by position.
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

    /// The parameters with the keys of their state (see [`ParamList`]): their dotted names if
    /// the optimizer was given names, else their positions (`"0"`, `"1"`, …), which is what
    /// this default gives.
    fn named_parameters(&self) -> Vec<(String, Tensor<E>)> {
        self.parameters().iter().enumerate().map(|(i, p)| (i.to_string(), p.clone())).collect()
    }

    /// The optimizer's state, for exact resumption: for each parameter that has been updated,
    /// its step count `"{key}.step"` (a scalar tensor) and its buffers `"{key}.{buffer}"` (each
    /// the parameter's shape), where `key` is the parameter's dotted name (`"fc.weight.exp_avg"`)
    /// or, for an optimizer given tensors without names, its position (`"0.exp_avg"`). The
    /// buffers have PyTorch's names: `momentum_buffer`, `exp_avg`, `exp_avg_sq`,
    /// `max_exp_avg_sq`, `square_avg`, `grad_avg`, `sum`.
    ///
    /// Hyper-parameters, the learning rate included, are configuration, not state. A step count
    /// stored as `f32` is exact up to 2²⁴ steps (as in PyTorch, which also keeps it as a float).
    fn state_dict(&self) -> Vec<(String, Tensor<E>)>;

    /// Restores a state made by [`state_dict`](Optimizer::state_dict) of an optimizer of the
    /// same kind and configuration over parameters with the same keys and shapes (named
    /// parameters may be given in another order). Parameters absent from `state` start afresh.
    ///
    /// # Errors
    /// [`Error::OptimizerState`](crate::Error::OptimizerState), listing every missing,
    /// unexpected and invalid entry (wrong shape, a step count that is not a non-negative
    /// integer); the optimizer is then unchanged.
    fn load_state_dict(&mut self, state: &[(String, Tensor<E>)]) -> Result<()>;
}

/// `Optimizer` for a pointer to an optimizer: `&mut O`, so that
/// [`Trainer::new(…, &mut opt, …)`](crate::train::Trainer::new) drives an optimizer the caller
/// keeps, and `Box<O>`, so that `Box<dyn Optimizer<E>>` picks one at run time.
macro_rules! forward_optimizer {
    ($($ptr:ty),*) => {$(
        impl<E: Element, O: Optimizer<E> + ?Sized> Optimizer<E> for $ptr {
            #[track_caller]
            fn step(&mut self, grads: &Gradients<E>) {
                (**self).step(grads)
            }
            fn learning_rate(&self) -> f64 {
                (**self).learning_rate()
            }
            #[track_caller]
            fn set_learning_rate(&mut self, lr: f64) {
                (**self).set_learning_rate(lr)
            }
            fn parameters(&self) -> &[Tensor<E>] {
                (**self).parameters()
            }
            fn named_parameters(&self) -> Vec<(String, Tensor<E>)> {
                (**self).named_parameters()
            }
            fn state_dict(&self) -> Vec<(String, Tensor<E>)> {
                (**self).state_dict()
            }
            fn load_state_dict(&mut self, state: &[(String, Tensor<E>)]) -> Result<()> {
                (**self).load_state_dict(state)
            }
        }
    )*};
}

forward_optimizer!(&mut O, Box<O>);

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
            fn named_parameters(&self) -> Vec<(String, Tensor<E>)> {
                self.chain.named_parameters()
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
