//! Stochastic gradient descent with momentum (`torch.optim.SGD`).

use super::chain::{Chain, check_non_negative};
use super::params::ParamList;
use super::transform::{Momentum, Transform, WeightDecay};
use crate::Element;

/// The hyper-parameters of [`Sgd`]; [`Default`] gives PyTorch's defaults.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Optimizer, Sgd, SgdConfig};
///
/// let defaults = SgdConfig::default();
/// assert_eq!((defaults.lr, defaults.momentum, defaults.nesterov), (1e-3, 0.0, false));
///
/// // torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
/// let model: Linear = Linear::new(3, 1, 0);
/// let config = SgdConfig { lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 1e-4, ..Default::default() };
/// let opt = Sgd::new(model.named_parameters(), config);
/// assert_eq!(opt.learning_rate(), 0.1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (default `1e-3`).
    pub lr: f64,
    /// Momentum factor μ (default 0: plain gradient descent).
    pub momentum: f64,
    /// Dampening `d` of the momentum: `b ← μ·b + (1 − d)·g` (default 0).
    pub dampening: f64,
    /// Nesterov momentum: step along `g + μ·b` instead of `b` (default false; needs a
    /// momentum and zero dampening).
    pub nesterov: bool,
    /// L2 penalty λ, added to the gradient as `g + λ·p` (default 0).
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 1e-3, momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0 }
    }
}

/// Stochastic gradient descent, optionally with momentum, as `torch.optim.SGD`:
///
/// ```text
/// g ← g + λ·p                                   (weight decay)
/// b ← g at the first step, else μ·b + (1 − d)·g  (momentum)
/// u ← g + μ·b (Nesterov) or b
/// p ← p − lr·u
/// ```
///
/// ```
/// use tensorgrad::{Gradients, Tensor};
/// use tensorgrad::optim::{Optimizer, Sgd, SgdConfig};
/// let w = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).requires_grad();
/// let mut opt = Sgd::new(vec![w.clone()], SgdConfig { lr: 0.5, ..Default::default() });
/// let mut grads = Gradients::new();
/// grads.insert(&w, Tensor::from_vec(vec![1.0, -2.0], &[2]));
/// opt.step(&grads);
/// assert_eq!(w.to_vec(), vec![0.5, 3.0]);
/// ```
#[derive(Debug)]
pub struct Sgd<E: Element = f32> {
    pub(super) chain: Chain<E>,
}

impl<E: Element> Sgd<E> {
    /// An optimizer over `params`: [`Module::named_parameters`](crate::nn::Module::named_parameters)
    /// (state keyed by name) or [`Module::parameters`](crate::nn::Module::parameters) (keyed by
    /// position); see [`ParamList`].
    ///
    /// # Panics
    /// If the learning rate is not positive and finite; if the momentum, dampening or weight
    /// decay is negative or not finite; if Nesterov is asked for without a momentum or with a
    /// dampening; if a parameter is not contiguous or appears twice, or if two parameters
    /// have the same name.
    #[track_caller]
    pub fn new(params: impl Into<ParamList<E>>, config: SgdConfig) -> Self {
        const NAME: &str = "Sgd";
        let SgdConfig { lr, momentum, dampening, nesterov, weight_decay } = config;
        check_non_negative(NAME, "momentum", momentum);
        check_non_negative(NAME, "dampening", dampening);
        check_non_negative(NAME, "weight_decay", weight_decay);
        if nesterov && (momentum <= 0.0 || dampening != 0.0) {
            panic!(
                "{NAME}: nesterov requires a momentum > 0 and zero dampening, got momentum {momentum:?} and dampening {dampening:?}"
            );
        }
        let mut stages: Vec<Box<dyn Transform<E>>> = Vec::new();
        if weight_decay != 0.0 {
            stages.push(Box::new(WeightDecay { coef: weight_decay }));
        }
        if momentum != 0.0 {
            stages.push(Box::new(Momentum { momentum, dampening, nesterov }));
        }
        Sgd { chain: Chain::new(NAME, params.into(), lr, stages) }
    }
}
