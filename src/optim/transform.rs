//! The small per-parameter gradient transforms that optimizers are built from.
//!
//! An optimizer is a chain of transforms followed by one update, `p ← p − step_size · u`:
//!
//! | optimizer | chain |
//! |---|---|
//! | `Sgd` | [`WeightDecay`] → [`Momentum`] |
//! | `Adam` | [`WeightDecay`] → [`AdamMoments`] |
//! | `AdamW` | [`DecoupledWeightDecay`] → [`AdamMoments`] |
//! | `RmsProp` | [`WeightDecay`] → [`RmsScale`] → [`Momentum`] |
//! | `Adagrad` | [`WeightDecay`] → [`AdagradScale`] |
//!
//! Each transform sees the gradient as transformed by the ones before it (`update`), may keep
//! buffers of the parameter's shape, and may scale the step size. Stages that are switched off
//! (zero weight decay, zero momentum) are left out of the chain, so they keep no state.
//!
//! Every formula evaluates the same floating-point operations, in the same order, as PyTorch's
//! single-tensor implementation in `torch.optim`, so results agree to the last few bits.

use std::fmt::Debug;

use crate::Element;
use crate::kernels::entry::instance;

/// What a transform sees of one parameter at one step.
pub(crate) struct StepCtx<'a, E: Element> {
    /// This parameter's step count, 1 at its first update.
    pub step: u64,
    /// The optimizer's learning rate.
    pub lr: f64,
    /// The factor of the final update `p ← p − step_size · u`; starts at `lr`.
    pub step_size: f64,
    /// The parameter's values in row-major order (decoupled weight decay changes them).
    pub param: &'a mut [E],
    /// The gradient on entry to the chain, the update direction `u` after it.
    pub update: &'a mut [E],
}

/// One stage of an optimizer's per-parameter update.
pub(crate) trait Transform<E: Element>: Debug + Send + Sync {
    /// The name and initial value of each buffer this stage keeps per parameter (each has the
    /// parameter's shape). The names appear in the optimizer's state dict.
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// Applies the stage to one parameter, with its buffers (in the order of `buffers`).
    fn apply(&self, s: &mut StepCtx<'_, E>, bufs: &mut [Vec<E>]);
}

/// PyTorch's `lerp`: `a + w·(b − a)`, evaluated from the nearer end for accuracy.
#[inline]
fn lerp<E: Element>(a: E, b: E, w: E) -> E {
    if w.abs() < E::of(0.5) { a + w * (b - a) } else { b - (b - a) * (E::one() - w) }
}

/// `torch.maximum`: the larger value, NaN if either is NaN.
#[inline]
fn maximum<E: Element>(a: E, b: E) -> E {
    if a.is_nan() || b.is_nan() {
        E::nan()
    } else if a > b {
        a
    } else {
        b
    }
}

/// Defines `Transform::apply` as a call of the free function `$body` through its `f32` or
/// `f64` instance compiled in this crate (see `kernels::entry`): an optimizer step is a loop
/// over every parameter value, and a generic loop would otherwise be compiled with the user's
/// optimisation level, unoptimised in their debug builds.
macro_rules! apply_here {
    ($body:ident, $t:ty) => {
        fn apply(&self, s: &mut StepCtx<'_, E>, bufs: &mut [Vec<E>]) {
            type F<T> = fn(&$t, &mut StepCtx<'_, T>, &mut [Vec<T>]);
            static F32: F<f32> = $body::<f32>;
            static F64: F<f64> = $body::<f64>;
            instance::<E, F<E>>(&F32, &F64)(self, s, bufs)
        }
    };
}

/// Coupled weight decay (an L2 penalty): `g ← g + λ·p`.
#[derive(Debug)]
pub(crate) struct WeightDecay {
    pub coef: f64,
}

impl<E: Element> Transform<E> for WeightDecay {
    apply_here!(weight_decay_apply, WeightDecay);
}

/// Decoupled weight decay (Loshchilov & Hutter): `p ← p·(1 − lr·λ)`, before the update.
#[derive(Debug)]
pub(crate) struct DecoupledWeightDecay {
    pub coef: f64,
}

impl<E: Element> Transform<E> for DecoupledWeightDecay {
    apply_here!(decoupled_weight_decay_apply, DecoupledWeightDecay);
}

/// Heavy-ball momentum: `b ← μ·b + (1 − d)·g` (the buffer starts as the first `g`), then
/// `u = b`, or `u = g + μ·b` with Nesterov.
///
/// With `d = 0` this is also RMSprop's momentum, whose buffer starts at zero: `μ·0 + g = g`.
#[derive(Debug)]
pub(crate) struct Momentum {
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
}

impl<E: Element> Transform<E> for Momentum {
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        vec![("momentum_buffer", 0.0)]
    }

    apply_here!(momentum_apply, Momentum);
}

/// Adam's moments with bias correction:
/// `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g²` (AMSGrad: `v̂ ← max(v̂, v)`), then
/// `u = m / (√v / √(1 − β₂ᵗ) + ε)` and `step_size ← step_size / (1 − β₁ᵗ)`.
#[derive(Debug)]
pub(crate) struct AdamMoments {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub amsgrad: bool,
}

impl<E: Element> Transform<E> for AdamMoments {
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        let mut b = vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)];
        if self.amsgrad {
            b.push(("max_exp_avg_sq", 0.0));
        }
        b
    }

    apply_here!(adam_moments_apply, AdamMoments);
}

/// RMSprop's scaling: `v ← α·v + (1 − α)·g²`, centred: `ḡ ← α·ḡ + (1 − α)·g` and
/// `v − ḡ²` in place of `v`; then `u = g / (√v + ε)`.
#[derive(Debug)]
pub(crate) struct RmsScale {
    pub alpha: f64,
    pub eps: f64,
    pub centered: bool,
}

impl<E: Element> Transform<E> for RmsScale {
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        let mut b = vec![("square_avg", 0.0)];
        if self.centered {
            b.push(("grad_avg", 0.0));
        }
        b
    }

    apply_here!(rms_scale_apply, RmsScale);
}

/// Adagrad's scaling: `Σ ← Σ + g²`, `u = g / (√Σ + ε)`, and the step size decays as
/// `step_size / (1 + (t − 1)·lr_decay)`.
#[derive(Debug)]
pub(crate) struct AdagradScale {
    pub lr_decay: f64,
    pub eps: f64,
    pub initial_accumulator_value: f64,
}

impl<E: Element> Transform<E> for AdagradScale {
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        vec![("sum", self.initial_accumulator_value)]
    }

    apply_here!(adagrad_scale_apply, AdagradScale);
}

/// `WeightDecay`'s step, instantiated in this crate only (see [`apply_here`]).
fn weight_decay_apply<E: Element>(this: &WeightDecay, s: &mut StepCtx<'_, E>, _bufs: &mut [Vec<E>]) {
    let wd = E::of(this.coef);
    for (g, &p) in s.update.iter_mut().zip(s.param.iter()) {
        *g += wd * p;
    }
}

/// `DecoupledWeightDecay`'s step, instantiated in this crate only (see [`apply_here`]).
fn decoupled_weight_decay_apply<E: Element>(this: &DecoupledWeightDecay, s: &mut StepCtx<'_, E>, _bufs: &mut [Vec<E>]) {
    let f = E::of(1.0 - s.lr * this.coef);
    for p in s.param.iter_mut() {
        *p *= f;
    }
}

/// `Momentum`'s step, instantiated in this crate only (see [`apply_here`]).
fn momentum_apply<E: Element>(this: &Momentum, s: &mut StepCtx<'_, E>, bufs: &mut [Vec<E>]) {
    let buf = &mut bufs[0];
    let mu = E::of(this.momentum);
    if s.step == 1 {
        buf.copy_from_slice(s.update);
    } else {
        let c = E::of(1.0 - this.dampening);
        for (b, &g) in buf.iter_mut().zip(s.update.iter()) {
            *b = *b * mu + c * g;
        }
    }
    if this.nesterov {
        for (g, &b) in s.update.iter_mut().zip(buf.iter()) {
            *g += mu * b;
        }
    } else {
        s.update.copy_from_slice(buf);
    }
}

/// `AdamMoments`'s step, instantiated in this crate only (see [`apply_here`]).
fn adam_moments_apply<E: Element>(this: &AdamMoments, s: &mut StepCtx<'_, E>, bufs: &mut [Vec<E>]) {
    let t = s.step as f64;
    let bias_correction1 = 1.0 - this.beta1.powf(t);
    let bias_correction2_sqrt = E::of((1.0 - this.beta2.powf(t)).powf(0.5));
    let (w1, b2, c2, eps) = (E::of(1.0 - this.beta1), E::of(this.beta2), E::of(1.0 - this.beta2), E::of(this.eps));
    let [m, v, rest @ ..] = bufs else { unreachable!("AdamMoments keeps at least two buffers") };
    let mut vmax = rest.first_mut();
    for (j, u) in s.update.iter_mut().enumerate() {
        let g = *u;
        m[j] = lerp(m[j], g, w1);
        v[j] = v[j] * b2 + c2 * g * g;
        let second = match vmax.as_deref_mut() {
            Some(vmax) => {
                vmax[j] = maximum(vmax[j], v[j]);
                vmax[j]
            }
            None => v[j],
        };
        *u = m[j] / (second.sqrt() / bias_correction2_sqrt + eps);
    }
    s.step_size /= bias_correction1;
}

/// `RmsScale`'s step, instantiated in this crate only (see [`apply_here`]).
fn rms_scale_apply<E: Element>(this: &RmsScale, s: &mut StepCtx<'_, E>, bufs: &mut [Vec<E>]) {
    let (a, c, eps) = (E::of(this.alpha), E::of(1.0 - this.alpha), E::of(this.eps));
    let [sq, rest @ ..] = bufs else { unreachable!("RmsScale keeps at least one buffer") };
    let mut grad_avg = rest.first_mut();
    for (j, u) in s.update.iter_mut().enumerate() {
        let g = *u;
        sq[j] = sq[j] * a + c * g * g;
        let avg = match grad_avg.as_deref_mut() {
            Some(ga) => {
                ga[j] = lerp(ga[j], g, c);
                (sq[j] - ga[j] * ga[j]).sqrt()
            }
            None => sq[j].sqrt(),
        };
        *u = g / (avg + eps);
    }
}

/// `AdagradScale`'s step, instantiated in this crate only (see [`apply_here`]).
fn adagrad_scale_apply<E: Element>(this: &AdagradScale, s: &mut StepCtx<'_, E>, bufs: &mut [Vec<E>]) {
    let eps = E::of(this.eps);
    let sum = &mut bufs[0];
    for (acc, u) in sum.iter_mut().zip(s.update.iter_mut()) {
        let g = *u;
        *acc += g * g;
        *u = g / (acc.sqrt() + eps);
    }
    s.step_size /= 1.0 + (s.step as f64 - 1.0) * this.lr_decay;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &dyn Transform<f64>, steps: &[&[f64]], param: &mut [f64]) -> (Vec<f64>, f64) {
        let mut bufs: Vec<Vec<f64>> = t.buffers().iter().map(|&(_, v)| vec![v; param.len()]).collect();
        let mut last = (Vec::new(), 0.0);
        for (k, g) in steps.iter().enumerate() {
            let mut update = g.to_vec();
            let mut s = StepCtx { step: k as u64 + 1, lr: 0.5, step_size: 0.5, param, update: &mut update };
            t.apply(&mut s, &mut bufs);
            let step_size = s.step_size;
            last = (update.clone(), step_size);
        }
        last
    }

    #[test]
    fn lerp_matches_both_forms() {
        assert_eq!(lerp(1.0f64, 3.0, 0.25), 1.5);
        assert_eq!(lerp(1.0f64, 3.0, 0.75), 2.5);
        assert_eq!(lerp(1.0f64, 3.0, 1.0), 3.0);
    }

    #[test]
    fn maximum_propagates_nan() {
        assert!(maximum(f64::NAN, 1.0).is_nan());
        assert!(maximum(1.0, f64::NAN).is_nan());
        assert_eq!(maximum(1.0f64, 2.0), 2.0);
    }

    #[test]
    fn momentum_starts_from_the_first_gradient() {
        // b1 = g1 = 2; b2 = 0.9·2 + (1 − 0.5)·4 = 3.8; Nesterov u = g2 + 0.9·b2 = 4 + 3.42.
        let m = Momentum { momentum: 0.9, dampening: 0.5, nesterov: false };
        let (u, _) = run(&m, &[&[2.0], &[4.0]], &mut [0.0]);
        assert!((u[0] - 3.8).abs() < 1e-15);
        let m = Momentum { momentum: 0.9, dampening: 0.0, nesterov: true };
        let (u, _) = run(&m, &[&[2.0], &[4.0]], &mut [0.0]);
        // b2 = 0.9·2 + 4 = 5.8, u = 4 + 0.9·5.8 = 9.22
        assert!((u[0] - 9.22).abs() < 1e-14);
    }

    #[test]
    fn adam_first_step_is_the_sign() {
        // After one step m̂ = g and v̂ = g², so u·(1/(1 − β₁)) = g / (|g| + ε) ≈ ±1.
        let a = AdamMoments { beta1: 0.9, beta2: 0.999, eps: 0.0, amsgrad: false };
        let (u, step_size) = run(&a, &[&[-3.0, 0.5]], &mut [0.0, 0.0]);
        let scaled: Vec<f64> = u.iter().map(|x| x * step_size / 0.5).collect();
        assert!((scaled[0] + 1.0).abs() < 1e-12 && (scaled[1] - 1.0).abs() < 1e-12, "{scaled:?}");
    }

    #[test]
    fn adagrad_decays_the_step_size() {
        let a = AdagradScale { lr_decay: 0.5, eps: 0.0, initial_accumulator_value: 0.0 };
        // step 3: step_size = 0.5 / (1 + 2·0.5); Σ = 9 + 16 + 0 → u = 0 / 5
        let (u, step_size) = run(&a, &[&[3.0], &[4.0], &[0.0]], &mut [0.0]);
        assert_eq!(step_size, 0.25);
        assert_eq!(u, vec![0.0]);
    }

    #[test]
    fn decoupled_weight_decay_scales_the_parameter() {
        let mut p = [2.0f64];
        run(&DecoupledWeightDecay { coef: 0.1 }, &[&[7.0]], &mut p);
        assert_eq!(p[0], 2.0 * (1.0 - 0.5 * 0.1));
    }
}
