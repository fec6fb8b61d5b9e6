//! Adam (`torch.optim.Adam`) and AdamW (`torch.optim.AdamW`).

use super::chain::{Chain, check_non_negative, check_unit_interval};
use super::params::ParamList;
use super::transform::{AdamMoments, DecoupledWeightDecay, Transform, WeightDecay};
use crate::Element;

/// The hyper-parameters of [`Adam`]; [`Default`] gives PyTorch's defaults.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
///
/// let defaults = AdamConfig::default();
/// assert_eq!((defaults.lr, defaults.betas, defaults.eps), (1e-3, (0.9, 0.999), 1e-8));
///
/// // torch.optim.Adam(model.parameters(), lr=3e-4, betas=(0.9, 0.98), amsgrad=True)
/// let model: Linear = Linear::new(3, 1, 0);
/// let config = AdamConfig { lr: 3e-4, betas: (0.9, 0.98), amsgrad: true, ..Default::default() };
/// let opt = Adam::new(model.named_parameters(), config);
/// assert_eq!(opt.learning_rate(), 3e-4);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default `1e-3`).
    pub lr: f64,
    /// Decay rates (β₁, β₂) of the first and second moments, each in `[0, 1)`
    /// (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Added to the bias-corrected root of the second moment (default `1e-8`).
    pub eps: f64,
    /// L2 penalty λ, added to the gradient as `g + λ·p` before the moments (default 0).
    /// For decoupled weight decay use [`AdamW`].
    pub weight_decay: f64,
    /// AMSGrad: normalise by the largest second moment so far (default false).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0, amsgrad: false }
    }
}

/// The hyper-parameters of [`AdamW`]; [`Default`] gives PyTorch's defaults (those of Adam,
/// with a weight decay of `1e-2`).
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::optim::{AdamW, AdamWConfig};
///
/// assert_eq!(AdamWConfig::default().weight_decay, 1e-2);
/// // torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
/// let model: Linear = Linear::new(3, 1, 0);
/// let _opt = AdamW::new(model.named_parameters(), AdamWConfig { weight_decay: 0.1, ..Default::default() });
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate (default `1e-3`).
    pub lr: f64,
    /// Decay rates (β₁, β₂) of the first and second moments, each in `[0, 1)`
    /// (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Added to the bias-corrected root of the second moment (default `1e-8`).
    pub eps: f64,
    /// Decoupled weight decay λ: each step first scales the parameter by `1 − lr·λ`
    /// (default `1e-2`).
    pub weight_decay: f64,
    /// AMSGrad: normalise by the largest second moment so far (default false).
    pub amsgrad: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 1e-2, amsgrad: false }
    }
}

/// Adam, as `torch.optim.Adam`, at step `t` of a parameter:
///
/// ```text
/// g ← g + λ·p                                  (coupled weight decay, an L2 penalty)
/// m ← β₁·m + (1 − β₁)·g
/// v ← β₂·v + (1 − β₂)·g²;   AMSGrad: v̂ ← max(v̂, v), used in place of v
/// p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
///
/// `ε` is added after the bias correction of `√v`, as in PyTorch.
///
/// ```
/// use tensorgrad::{Gradients, Tensor};
/// use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
/// let w = Tensor::from_vec(vec![1.0f64, -1.0], &[2]).requires_grad();
/// let mut opt = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, ..Default::default() });
/// let mut grads = Gradients::new();
/// grads.insert(&w, Tensor::from_vec(vec![0.3, -4.0], &[2]));
/// opt.step(&grads);
/// // The first step moves each weight by about lr against the sign of its gradient.
/// let w1 = w.to_vec();
/// assert!((w1[0] - 0.9).abs() < 1e-6 && (w1[1] + 0.9).abs() < 1e-6);
/// assert_eq!(opt.state_dict().len(), 3); // 0.step, 0.exp_avg, 0.exp_avg_sq
/// ```
#[derive(Debug)]
pub struct Adam<E: Element = f32> {
    pub(super) chain: Chain<E>,
}

/// AdamW, as `torch.optim.AdamW`: Adam with decoupled weight decay. Each step first shrinks
/// the parameter, `p ← p·(1 − lr·λ)`, then takes Adam's step (without weight decay):
///
/// ```text
/// p ← p·(1 − lr·λ)
/// m ← β₁·m + (1 − β₁)·g;   v ← β₂·v + (1 − β₂)·g²   (AMSGrad: v̂ ← max(v̂, v))
/// p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
///
/// The decay does not go through the moments, so it shrinks every weight by the same factor
/// whatever its gradient. With a zero gradient, Adam's coupled decay moves a weight by about
/// `lr`, AdamW's by `lr·λ·p`:
///
/// ```
/// use tensorgrad::{Gradients, Tensor};
/// use tensorgrad::optim::{Adam, AdamConfig, AdamW, AdamWConfig, Optimizer};
///
/// let step = |opt: &mut dyn Optimizer<f64>, w: &Tensor<f64>| {
///     let mut grads = Gradients::new();
///     grads.insert(w, Tensor::zeros(&[1])); // a zero gradient
///     opt.step(&grads);
///     w.item()
/// };
/// let w = Tensor::from_vec(vec![10.0f64], &[1]).requires_grad();
/// let mut adamw = AdamW::new(vec![w.clone()], AdamWConfig { lr: 0.1, weight_decay: 0.5, ..Default::default() });
/// assert!((step(&mut adamw, &w) - 9.5).abs() < 1e-12); // 10 · (1 − 0.1 · 0.5)
///
/// let w = Tensor::from_vec(vec![10.0f64], &[1]).requires_grad();
/// let mut adam = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, weight_decay: 0.5, ..Default::default() });
/// assert!((step(&mut adam, &w) - 9.9).abs() < 1e-6); // the gradient 0.5 · 10 normalised away
/// ```
#[derive(Debug)]
pub struct AdamW<E: Element = f32> {
    pub(super) chain: Chain<E>,
}

/// The weight-decay stage and Adam's moments, after checking the hyper-parameters.
#[track_caller]
fn adam_stages<E: Element>(
    name: &str,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled: bool,
) -> Vec<Box<dyn Transform<E>>> {
    check_unit_interval(name, "beta1", betas.0);
    check_unit_interval(name, "beta2", betas.1);
    check_non_negative(name, "eps", eps);
    check_non_negative(name, "weight_decay", weight_decay);
    let mut stages: Vec<Box<dyn Transform<E>>> = Vec::new();
    if weight_decay != 0.0 {
        if decoupled {
            stages.push(Box::new(DecoupledWeightDecay { coef: weight_decay }));
        } else {
            stages.push(Box::new(WeightDecay { coef: weight_decay }));
        }
    }
    stages.push(Box::new(AdamMoments { beta1: betas.0, beta2: betas.1, eps, amsgrad }));
    stages
}

impl<E: Element> Adam<E> {
    /// An optimizer over `params`: [`Module::named_parameters`](crate::nn::Module::named_parameters)
    /// (state keyed by name) or [`Module::parameters`](crate::nn::Module::parameters) (keyed by
    /// position); see [`ParamList`].
    ///
    /// # Panics
    /// If the learning rate is not positive and finite; if a beta is outside `[0, 1)`; if `eps`
    /// or the weight decay is negative or not finite; if a parameter is not contiguous or
    /// appears twice, or if two parameters have the same name.
    #[track_caller]
    pub fn new(params: impl Into<ParamList<E>>, config: AdamConfig) -> Self {
        let AdamConfig { lr, betas, eps, weight_decay, amsgrad } = config;
        let stages = adam_stages("Adam", betas, eps, weight_decay, amsgrad, false);
        Adam { chain: Chain::new("Adam", params.into(), lr, stages) }
    }
}

impl<E: Element> AdamW<E> {
    /// An optimizer over `params`: [`Module::named_parameters`](crate::nn::Module::named_parameters)
    /// (state keyed by name) or [`Module::parameters`](crate::nn::Module::parameters) (keyed by
    /// position); see [`ParamList`].
    ///
    /// # Panics
    /// As [`Adam::new`].
    #[track_caller]
    pub fn new(params: impl Into<ParamList<E>>, config: AdamWConfig) -> Self {
        let AdamWConfig { lr, betas, eps, weight_decay, amsgrad } = config;
        let stages = adam_stages("AdamW", betas, eps, weight_decay, amsgrad, true);
        AdamW { chain: Chain::new("AdamW", params.into(), lr, stages) }
    }
}
