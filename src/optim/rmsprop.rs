//! RMSprop (`torch.optim.RMSprop`).

use super::chain::{Chain, check_non_negative, check_unit_interval};
use super::params::ParamList;
use super::transform::{Momentum, RmsScale, Transform, WeightDecay};
use crate::Element;

/// The hyper-parameters of [`RmsProp`]; [`Default`] gives PyTorch's defaults.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{RmsProp, RmsPropConfig};
///
/// let defaults = RmsPropConfig::default();
/// assert_eq!((defaults.lr, defaults.alpha, defaults.centered), (1e-2, 0.99, false));
/// // torch.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9, centered=True)
/// let model: Linear = Linear::new(3, 1, 0);
/// let config = RmsPropConfig { lr: 1e-3, momentum: 0.9, centered: true, ..Default::default() };
/// let _opt = RmsProp::new(model.named_parameters(), config);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate (default `1e-2`).
    pub lr: f64,
    /// Smoothing constant α of the running mean square, in `[0, 1)` (default 0.99).
    pub alpha: f64,
    /// Added to the root mean square (default `1e-8`).
    pub eps: f64,
    /// L2 penalty λ, added to the gradient as `g + λ·p` (default 0).
    pub weight_decay: f64,
    /// Momentum factor μ (default 0).
    pub momentum: f64,
    /// Centred RMSprop: normalise by an estimate of the variance, `v − ḡ²` (default false).
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig { lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, centered: false }
    }
}

/// RMSprop, as `torch.optim.RMSprop`:
///
/// ```text
/// g ← g + λ·p
/// v ← α·v + (1 − α)·g²
/// centred: ḡ ← α·ḡ + (1 − α)·g,  r = √(v − ḡ²) + ε;  else r = √v + ε
/// momentum: b ← μ·b + g / r,  p ← p − lr·b;  else p ← p − lr·g / r
/// ```
///
/// The running mean square starts at zero, so the first step is large: `v = (1 − α)·g²`, and
/// each weight moves by `lr / √(1 − α)`, ten times `lr` with the default `α = 0.99`:
///
/// ```
/// use tensorgrad::{Gradients, Tensor};
/// use tensorgrad::optim::{Optimizer, RmsProp, RmsPropConfig};
///
/// let w = Tensor::from_vec(vec![1.0f64, 1.0], &[2]).requires_grad();
/// let mut opt = RmsProp::new(vec![w.clone()], RmsPropConfig { lr: 0.01, ..Default::default() });
/// let mut grads = Gradients::new();
/// grads.insert(&w, Tensor::from_vec(vec![2.0, -3.0], &[2]));
/// opt.step(&grads);
/// let w1 = w.to_vec();
/// assert!((w1[0] - 0.9).abs() < 1e-6 && (w1[1] - 1.1).abs() < 1e-6);
/// ```
#[derive(Debug)]
pub struct RmsProp<E: Element = f32> {
    pub(super) chain: Chain<E>,
}

impl<E: Element> RmsProp<E> {
    /// An optimizer over `params`: [`Module::named_parameters`](crate::nn::Module::named_parameters)
    /// (state keyed by name) or [`Module::parameters`](crate::nn::Module::parameters) (keyed by
    /// position); see [`ParamList`].
    ///
    /// # Panics
    /// If the learning rate is not positive and finite; if `alpha` is outside `[0, 1)`; if
    /// `eps`, the weight decay or the momentum is negative or not finite; if a parameter is not
    /// contiguous or appears twice, or if two parameters have the same name.
    #[track_caller]
    pub fn new(params: impl Into<ParamList<E>>, config: RmsPropConfig) -> Self {
        const NAME: &str = "RmsProp";
        let RmsPropConfig { lr, alpha, eps, weight_decay, momentum, centered } = config;
        check_unit_interval(NAME, "alpha", alpha);
        check_non_negative(NAME, "eps", eps);
        check_non_negative(NAME, "weight_decay", weight_decay);
        check_non_negative(NAME, "momentum", momentum);
        let mut stages: Vec<Box<dyn Transform<E>>> = Vec::new();
        if weight_decay != 0.0 {
            stages.push(Box::new(WeightDecay { coef: weight_decay }));
        }
        stages.push(Box::new(RmsScale { alpha, eps, centered }));
        if momentum > 0.0 {
            stages.push(Box::new(Momentum { momentum, dampening: 0.0, nesterov: false }));
        }
        RmsProp { chain: Chain::new(NAME, params.into(), lr, stages) }
    }
}
