//! The loss primitives: per-element losses whose backward is simpler than the composition's.
//! `src/loss.rs` composes them (checks, reductions).

use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;
use crate::tensor::mode::no_grad;

impl<E: Element> Tensor<E> {
    /// Binary cross-entropy on logits, per element: `max(x, 0) − x·y + ln(1 + e^(−|x|))`, finite
    /// for any logit; with `pos_weight` (broadcast against the logits),
    /// `(1 − y)·x + (1 + (w − 1)·y)·softplus(−x)`. `target` has the shape of `self`.
    ///
    /// ∂/∂x = (1 − y) − (1 + (w − 1)·y)·σ(−x) (= σ(x) − y without weights);
    /// ∂/∂y = −x + (w − 1)·softplus(−x).
    #[track_caller]
    pub(crate) fn bce_with_logits_elementwise(&self, target: &Tensor<E>, pos_weight: Option<&Tensor<E>>) -> Tensor<E> {
        // softplus(−x) = ln(1 + e^(−|x|)) + max(−x, 0), finite for any x.
        let softplus_neg = |x: E| (-x.abs()).exp().ln_1p() + (-x).max(E::zero());
        let per_element = match pos_weight {
            None => self.zip(target, move |x, y| x.max(E::zero()) - x * y + (-x.abs()).exp().ln_1p()),
            Some(w) => {
                let w = w.broadcast_to(self.shape()).detach();
                no_grad(|| {
                    let sp = self.map(softplus_neg);
                    let scale = (&w.add_scalar(-E::one()) * target).add_scalar(E::one());
                    &(&target.neg().add_scalar(E::one()) * self) + &(&scale * &sp)
                })
            }
        };
        let w = pos_weight.map(|w| w.broadcast_to(self.shape()).detach());
        per_element.record("bce_with_logits", [self.clone(), target.clone()], move |c| {
            let (x, y) = (&c.inputs[0], &c.inputs[1]);
            // ∂/∂x = (1 − y) − (1 + (w − 1)·y)·σ(−x);  ∂/∂y = −x + (w − 1)·softplus(−x)
            let scale = match &w {
                Some(w) => (&w.add_scalar(-E::one()) * y).add_scalar(E::one()),
                None => Tensor::ones(x.shape()),
            };
            let dx = c.needs(0).then(|| {
                let d = &y.neg().add_scalar(E::one()) - &(&scale * &x.neg().sigmoid());
                c.grad() * &d
            });
            let dy = c.needs(1).then(|| {
                let d = match &w {
                    Some(w) => &x.neg() + &(&w.add_scalar(-E::one()) * &x.neg().softplus()),
                    None => x.neg(),
                };
                c.grad() * &d
            });
            vec![dx, dy]
        })
    }
}
