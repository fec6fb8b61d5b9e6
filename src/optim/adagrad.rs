//! Adagrad (`torch.optim.Adagrad`).

use super::chain::{Chain, check_non_negative};
use super::params::ParamList;
use super::transform::{AdagradScale, Transform, WeightDecay};
use crate::Element;

/// The hyper-parameters of [`Adagrad`]; [`Default`] gives PyTorch's defaults.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Adagrad, AdagradConfig, Optimizer};
///
/// let defaults = AdagradConfig::default();
/// assert_eq!((defaults.lr, defaults.lr_decay, defaults.eps), (1e-2, 0.0, 1e-10));
/// // torch.optim.Adagrad(model.parameters(), lr=0.1, initial_accumulator_value=0.1)
/// let model: Linear = Linear::new(3, 1, 0);
/// let opt = Adagrad::new(model.named_parameters(), AdagradConfig { lr: 0.1, initial_accumulator_value: 0.1, ..Default::default() });
/// assert_eq!(opt.learning_rate(), 0.1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate (default `1e-2`).
    pub lr: f64,
    /// Learning-rate decay: step `t` uses `lr / (1 + (t − 1)·lr_decay)` (default 0).
    pub lr_decay: f64,
    /// L2 penalty λ, added to the gradient as `g + λ·p` (default 0).
    pub weight_decay: f64,
    /// The starting value of the accumulated squares (default 0).
    pub initial_accumulator_value: f64,
    /// Added to the root of the accumulated squares (default `1e-10`).
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig { lr: 1e-2, lr_decay: 0.0, weight_decay: 0.0, initial_accumulator_value: 0.0, eps: 1e-10 }
    }
}

/// Adagrad, as `torch.optim.Adagrad`:
///
/// ```text
/// g ← g + λ·p
/// Σ ← Σ + g²                    (Σ starts at initial_accumulator_value)
/// p ← p − lr / (1 + (t − 1)·lr_decay) · g / (√Σ + ε)
/// ```
///
/// The first step moves every weight by `lr` against the sign of its gradient (`g / √g²`);
/// later steps shrink as the squares accumulate:
///
/// ```
/// use tensorgrad::{Gradients, Tensor};
/// use tensorgrad::optim::{Adagrad, AdagradConfig, Optimizer};
///
/// let w = Tensor::from_vec(vec![1.0f64, 1.0], &[2]).requires_grad();
/// let mut opt = Adagrad::new(vec![w.clone()], AdagradConfig { lr: 0.1, ..Default::default() });
/// let mut grads = Gradients::new();
/// grads.insert(&w, Tensor::from_vec(vec![4.0, -0.5], &[2]));
/// opt.step(&grads);
/// let after_one = w.to_vec();
/// assert!((after_one[0] - 0.9).abs() < 1e-9 && (after_one[1] - 1.1).abs() < 1e-9);
/// opt.step(&grads); // the same gradient again: a step of 0.1 / √2
/// assert!((w.to_vec()[0] - (0.9 - 0.1 / 2f64.sqrt())).abs() < 1e-9);
/// ```
#[derive(Debug)]
pub struct Adagrad<E: Element = f32> {
    pub(super) chain: Chain<E>,
}

impl<E: Element> Adagrad<E> {
    /// An optimizer over `params`: [`Module::named_parameters`](crate::nn::Module::named_parameters)
    /// (state keyed by name) or [`Module::parameters`](crate::nn::Module::parameters) (keyed by
    /// position); see [`ParamList`].
    ///
    /// # Panics
    /// If the learning rate is not positive and finite; if the learning-rate decay, weight
    /// decay, initial accumulator value or `eps` is negative or not finite; if a parameter is
    /// not contiguous or appears twice, or if two parameters have the same name.
    #[track_caller]
    pub fn new(params: impl Into<ParamList<E>>, config: AdagradConfig) -> Self {
        const NAME: &str = "Adagrad";
        let AdagradConfig { lr, lr_decay, weight_decay, initial_accumulator_value, eps } = config;
        check_non_negative(NAME, "lr_decay", lr_decay);
        check_non_negative(NAME, "weight_decay", weight_decay);
        check_non_negative(NAME, "initial_accumulator_value", initial_accumulator_value);
        check_non_negative(NAME, "eps", eps);
        let mut stages: Vec<Box<dyn Transform<E>>> = Vec::new();
        if weight_decay != 0.0 {
            stages.push(Box::new(WeightDecay { coef: weight_decay }));
        }
        stages.push(Box::new(AdagradScale { lr_decay, eps, initial_accumulator_value }));
        Adagrad { chain: Chain::new(NAME, params.into(), lr, stages) }
    }
}
