//! The loss primitives: per-element losses whose backward is simpler than the composition's.
//! `src/loss.rs` composes them (checks, reductions).

use crate::tensor::element::Element;
use crate::tensor::handle::Tensor;
use crate::tensor::mode::no_grad;

impl<E: Element> Tensor<E> {
    /// Binary cross-entropy on logits, per element: `max(x, 0) − x·y + ln(1 + e^(−|x|))`, finite
    /// for any logit; with `pos_weight` `w` (broadcast against the logits),
    /// `(1 − y)·softplus(x) + w·y·softplus(−x)`. `target` has the shape of `self`.
    ///
    /// ∂/∂x = (1 − y)·σ(x) − w·y·σ(−x) (= σ(x) − y without weights, `w` = 1);
    /// ∂/∂y = −x + (w − 1)·softplus(−x).
    ///
    /// Both the weighted loss and ∂/∂x are written as sums of terms that each stay accurate in
    /// the tails: the algebraically equal `(1 − y) − (1 + (w − 1)·y)·σ(−x)` subtracts two numbers
    /// close to 1 when `y = 0` and `x ≪ 0` (or `y = 1`, `x ≫ 0`), which loses the small gradient
    /// σ(x) to rounding (to exactly 0 in `f32` from `x ≈ −17`).
    #[track_caller]
    pub(crate) fn bce_with_logits_elementwise(&self, target: &Tensor<E>, pos_weight: Option<&Tensor<E>>) -> Tensor<E> {
        let per_element = match pos_weight {
            None => self.zip(target, move |x, y| x.max(E::zero()) - x * y + (-x.abs()).exp().ln_1p()),
            Some(w) => {
                let w = w.broadcast_to(self.shape()).detach();
                no_grad(|| {
                    let negatives = &target.neg().add_scalar(E::one()) * &self.softplus();
                    let positives = &(&w * target) * &self.neg().softplus();
                    &negatives + &positives
                })
            }
        };
        let w = pos_weight.map(|w| w.broadcast_to(self.shape()).detach());
        per_element.record("bce_with_logits", [self.clone(), target.clone()], move |c| {
            let (x, y) = (&c.inputs[0], &c.inputs[1]);
            // ∂/∂x = (1 − y)·σ(x) − w·y·σ(−x);  ∂/∂y = −x + (w − 1)·softplus(−x)
            let dx = c.needs(0).then(|| {
                let weighted_y = match &w {
                    Some(w) => w * y,
                    None => y.clone(),
                };
                let d = &(&y.neg().add_scalar(E::one()) * &x.sigmoid()) - &(&weighted_y * &x.neg().sigmoid());
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
