//! Loss functions, PyTorch's definitions and reductions.
//!
//! Each takes a [`Reduction`]: the mean over elements (PyTorch's and Keras's default), the sum,
//! or no reduction (one loss per element). Bad input — a target whose shape differs from the
//! prediction's, a BCE target outside `[0, 1]`, a class id out of range — panics with a message
//! naming the loss and the shapes or values.

use std::borrow::Cow;

use crate::{Element, Tensor};

/// How per-element losses are combined.
///
/// ```
/// use tensorgrad::Tensor;
/// use tensorgrad::loss::{Reduction, l1};
///
/// let p = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
/// let t = Tensor::from_slice(&[1.0f32, 0.0, 3.0, 0.0]);
/// assert_eq!(l1(&p, &t, Reduction::None).to_vec(), [0.0, 2.0, 0.0, 4.0]); // shape [4]
/// assert_eq!(l1(&p, &t, Reduction::Sum).item(), 6.0);
/// assert_eq!(l1(&p, &t, Reduction::Mean).item(), 1.5);
/// assert_eq!(Reduction::default(), Reduction::Mean);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean over all elements.
    #[default]
    Mean,
    /// The sum over all elements.
    Sum,
    /// No reduction: the per-element losses.
    None,
}

impl Reduction {
    fn apply<E: Element>(self, per_element: Tensor<E>) -> Tensor<E> {
        match self {
            Reduction::Mean => per_element.mean(),
            Reduction::Sum => per_element.sum(),
            Reduction::None => per_element,
        }
    }
}

#[track_caller]
fn check_same_shape<E: Element>(loss: &str, pred: &Tensor<E>, target: &Tensor<E>) {
    if pred.shape() != target.shape() {
        panic!("{loss}: prediction shape {:?} and target shape {:?} differ", pred.shape(), target.shape());
    }
}

#[track_caller]
fn check_unit_interval<E: Element>(loss: &str, what: &str, t: &Tensor<E>) {
    if let Some((pos, v)) = t.to_vec().into_iter().enumerate().find(|&(_, v)| !(v >= E::zero() && v <= E::one())) {
        panic!("{loss}: {what} {v} at position {pos} is outside [0, 1]");
    }
}

/// Mean squared error, `(pred − target)²`.
///
/// ```
/// use tensorgrad::{Tensor, loss::{mse, Reduction}};
/// let p = Tensor::from_vec(vec![1.0f32, 2.0], &[2]);
/// let t = Tensor::from_vec(vec![1.0f32, 4.0], &[2]);
/// assert_eq!(mse(&p, &t, Reduction::Mean).item(), 2.0);
/// ```
#[track_caller]
pub fn mse<E: Element>(pred: &Tensor<E>, target: &Tensor<E>, reduction: Reduction) -> Tensor<E> {
    check_same_shape("mse", pred, target);
    let d = pred - target;
    reduction.apply(&d * &d)
}

/// Mean absolute error, `|pred − target|`.
///
/// ```
/// use tensorgrad::{Tensor, loss::{Reduction, l1}};
/// let p = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).requires_grad();
/// let t = Tensor::from_vec(vec![1.5f32, 0.0], &[2]);
/// let loss = l1(&p, &t, Reduction::Mean);
/// assert_eq!(loss.item(), 1.25);
/// // The gradient is the sign of the error, over the number of elements.
/// assert_eq!(loss.backward().get(&p).unwrap().to_vec(), [-0.5, 0.5]);
/// ```
#[track_caller]
pub fn l1<E: Element>(pred: &Tensor<E>, target: &Tensor<E>, reduction: Reduction) -> Tensor<E> {
    check_same_shape("l1", pred, target);
    reduction.apply((pred - target).abs())
}

/// Huber loss: `½d²` where `|d| < delta`, else `delta·(|d| − ½delta)`, with `d = pred − target`.
///
/// ```
/// use tensorgrad::{Tensor, loss::{Reduction, huber}};
/// let p = Tensor::from_slice(&[0.5f64, 3.0]);
/// let t = Tensor::zeros(&[2]);
/// // ½·0.5² inside delta = 1, 1·(3 − ½) outside it
/// assert_eq!(huber(&p, &t, 1.0, Reduction::None).to_vec(), [0.125, 2.5]);
/// ```
#[track_caller]
pub fn huber<E: Element>(pred: &Tensor<E>, target: &Tensor<E>, delta: f64, reduction: Reduction) -> Tensor<E> {
    check_same_shape("huber", pred, target);
    if !(delta > 0.0 && delta.is_finite()) {
        panic!("huber: delta {delta} must be a positive number");
    }
    let a = (pred - target).abs();
    let quadratic = a.clamp(E::zero(), E::of(delta));
    let linear = &a - &quadratic;
    reduction.apply((&quadratic * &quadratic).mul_scalar(E::of(0.5)) + linear.mul_scalar(E::of(delta)))
}

/// Binary cross-entropy on probabilities: `−(y·ln p + (1 − y)·ln(1 − p))`.
///
/// As in Keras, `p` is clipped to `[ε, 1 − ε]` (ε = 1e-7), so a probability of exactly 0 or 1
/// gives a large finite loss, never inf or NaN. Prefer [`bce_with_logits`] on the logits: it is
/// exact and stable for any input.
///
/// ```
/// use tensorgrad::{Tensor, loss::{Reduction, bce}};
/// let p = Tensor::from_slice(&[0.9f64, 0.2, 1.0]);
/// let y = Tensor::from_slice(&[1.0f64, 0.0, 0.0]);
/// let l = bce(&p, &y, Reduction::None).to_vec();
/// assert!((l[0] + 0.9f64.ln()).abs() < 1e-12); // −ln 0.9
/// assert!((l[1] + 0.8f64.ln()).abs() < 1e-12); // −ln(1 − 0.2)
/// assert!(l[2].is_finite() && l[2] > 16.0); // −ln 1e-7 ≈ 16.1, not infinity
/// ```
#[track_caller]
pub fn bce<E: Element>(pred: &Tensor<E>, target: &Tensor<E>, reduction: Reduction) -> Tensor<E> {
    check_same_shape("bce", pred, target);
    check_unit_interval("bce", "prediction", pred);
    check_unit_interval("bce", "target", target);
    let eps = E::of(1e-7);
    let p = pred.clamp(eps, E::one() - eps);
    let one_minus = |t: &Tensor<E>| t.neg().add_scalar(E::one());
    let ll = target * &p.ln() + &one_minus(target) * &one_minus(&p).ln();
    reduction.apply(ll.neg())
}

/// Binary cross-entropy on logits, as one stable primitive:
/// `max(x, 0) − x·y + ln(1 + e^(−|x|))`, with gradient `σ(x) − y`.
///
/// `pos_weight` (broadcast against the logits, e.g. one per class) multiplies the loss of
/// positive targets, as PyTorch's `pos_weight`:
/// `(1 − y)·softplus(x) + w·y·softplus(−x)`.
///
/// The gradient is computed as `(1 − y)·σ(x) − w·y·σ(−x)`, so it keeps its full relative
/// precision for confident predictions (a target of 0 at a very negative logit, 1 at a very
/// positive one), where the loss and the gradient are tiny but not zero.
///
/// ```
/// use tensorgrad::{Tensor, loss::{bce_with_logits, Reduction}};
/// let logits = Tensor::from_vec(vec![1e4f32, -1e4, 0.0], &[3]);
/// let y = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[3]);
/// let l = bce_with_logits(&logits, &y, None, Reduction::None).to_vec();
/// assert_eq!(l[0], 0.0);
/// assert!((l[2] - 2f32.ln()).abs() < 1e-6);
/// ```
#[track_caller]
pub fn bce_with_logits<E: Element>(
    logits: &Tensor<E>,
    target: &Tensor<E>,
    pos_weight: Option<&Tensor<E>>,
    reduction: Reduction,
) -> Tensor<E> {
    check_same_shape("bce_with_logits", logits, target);
    check_unit_interval("bce_with_logits", "target", target);
    reduction.apply(logits.bce_with_logits_elementwise(target, pos_weight))
}

/// Class ids, one per sample, as [`cross_entropy`] and [`nll_loss`] take them: a slice, array or
/// vector of `usize`, or a tensor.
///
/// The crate's tensors hold floats, so a tensor of class ids holds whole numbers: shape `[N]` or
/// `[N, 1]`, each value in `0..C` — typically the target tensor a
/// [`Trainer`](crate::train::Trainer) hands its loss, so a classifier's loss needs no conversion.
/// Implement it for your own label type if it helps.
///
/// ```
/// use tensorgrad::{Tensor, loss::{Reduction, cross_entropy}};
///
/// let logits = Tensor::from_vec(vec![2.0f32, 0.0, 0.0, 0.0, 0.0, 2.0], &[2, 3]);
/// let from_ids = cross_entropy(&logits, &[0, 2], 0.0, Reduction::Mean).item();
/// let labels = Tensor::from_vec(vec![0.0f32, 2.0], &[2]);
/// assert_eq!(cross_entropy(&logits, &labels, 0.0, Reduction::Mean).item(), from_ids);
/// let column = labels.reshape(&[2, 1]);
/// assert_eq!(cross_entropy(&logits, &column, 0.0, Reduction::Mean).item(), from_ids);
/// let ids: Vec<usize> = vec![0, 2];
/// assert_eq!(cross_entropy(&logits, &ids, 0.0, Reduction::Mean).item(), from_ids);
/// ```
pub trait ClassTargets {
    /// The class ids, one per sample. `op` names the loss for panic messages. Range checks
    /// against the number of classes are the caller's.
    ///
    /// # Panics
    /// If the targets cannot be class ids: the message names `op`, the offending value and its
    /// position.
    fn class_ids(&self, op: &str) -> Cow<'_, [usize]>;
}

impl ClassTargets for &[usize] {
    fn class_ids(&self, _op: &str) -> Cow<'_, [usize]> {
        Cow::Borrowed(self)
    }
}

impl ClassTargets for &Vec<usize> {
    fn class_ids(&self, _op: &str) -> Cow<'_, [usize]> {
        Cow::Borrowed(self.as_slice())
    }
}

impl<const N: usize> ClassTargets for &[usize; N] {
    fn class_ids(&self, _op: &str) -> Cow<'_, [usize]> {
        Cow::Borrowed(self.as_slice())
    }
}

/// A float tensor of shape `[N]` or `[N, 1]` holding whole numbers `≥ 0`; its element type
/// need not be the scores'.
impl<F: Element> ClassTargets for &Tensor<F> {
    #[track_caller]
    fn class_ids(&self, op: &str) -> Cow<'_, [usize]> {
        if !matches!(self.shape(), [_] | [_, 1]) {
            panic!("{op}: class ids must be a tensor of shape [N] or [N, 1], got {:?}", self.shape());
        }
        let ids = match crate::kernels::index::whole_numbers(&self.to_vec()) {
            Ok(ids) => ids,
            Err((pos, x)) => panic!("{op}: target {x} at position {pos} is not a class id (a whole number from 0)"),
        };
        Cow::Owned(ids)
    }
}

/// Cross-entropy from logits `[N, C]` and class ids (`N` of them, see [`ClassTargets`]: a
/// `&[usize]`, or a tensor of whole numbers such as a trainer's target batch), with optional
/// label smoothing `ε ∈ [0, 1)`: `(1 − ε)·(−ln p[y]) + ε/C · Σ_c −ln p[c]`.
///
/// ```
/// use tensorgrad::{Tensor, loss::{cross_entropy, Reduction}};
/// let logits = Tensor::from_vec(vec![2.0f64, 0.0, 0.0, 0.0, 0.0, 2.0], &[2, 3]);
/// let l = cross_entropy(&logits, &[0, 2], 0.0, Reduction::Mean).item();
/// let expected = -(2f64.exp() / (2f64.exp() + 2.0)).ln();
/// assert!((l - expected).abs() < 1e-12);
/// ```
#[track_caller]
pub fn cross_entropy<E: Element>(
    logits: &Tensor<E>,
    targets: impl ClassTargets,
    label_smoothing: f64,
    reduction: Reduction,
) -> Tensor<E> {
    let targets = check_class_targets("cross_entropy", logits, &targets);
    let targets = &targets[..];
    if !(0.0..1.0).contains(&label_smoothing) {
        panic!("cross_entropy: label smoothing {label_smoothing} must be in [0, 1)");
    }
    let logp = logits.log_softmax(1);
    let nll = logp.gather(1, targets).squeeze(1).neg();
    if label_smoothing == 0.0 {
        return reduction.apply(nll);
    }
    // ε/C · Σ_c −ln p[c] = ε · mean_c(−ln p[c])
    let smooth = logp.mean_dim(1, false).neg();
    reduction.apply(nll.mul_scalar(E::of(1.0 - label_smoothing)) + smooth.mul_scalar(E::of(label_smoothing)))
}

/// Negative log-likelihood from log-probabilities `[N, C]` and class ids (as for
/// [`cross_entropy`]): `−logp[y]`.
///
/// ```
/// use tensorgrad::{Tensor, loss::{Reduction, nll_loss}};
/// let log_probs = Tensor::from_vec(vec![0.5f64, 0.25, 0.25, 0.1, 0.8, 0.1], &[2, 3]).ln();
/// let labels = Tensor::from_vec(vec![0.0, 1.0], &[2, 1]);
/// let l = nll_loss(&log_probs, &labels, Reduction::Sum).item();
/// assert!((l + 0.5f64.ln() + 0.8f64.ln()).abs() < 1e-12);
/// ```
#[track_caller]
pub fn nll_loss<E: Element>(log_probs: &Tensor<E>, targets: impl ClassTargets, reduction: Reduction) -> Tensor<E> {
    let targets = check_class_targets("nll_loss", log_probs, &targets);
    reduction.apply(log_probs.gather(1, &targets).squeeze(1).neg())
}

/// The class ids, checked against the scores' shape `[N, C]`.
#[track_caller]
fn check_class_targets<'t, E: Element>(
    loss: &str,
    scores: &Tensor<E>,
    targets: &'t impl ClassTargets,
) -> Cow<'t, [usize]> {
    if scores.ndim() != 2 {
        panic!("{loss}: expected scores of shape [batch, classes], got {:?}", scores.shape());
    }
    let targets = targets.class_ids(loss);
    let (n, c) = (scores.shape()[0], scores.shape()[1]);
    if targets.len() != n {
        panic!("{loss}: {} targets for a batch of {n} (scores {:?})", targets.len(), scores.shape());
    }
    if let Some((pos, &t)) = targets.iter().enumerate().find(|&(_, &t)| t >= c) {
        panic!("{loss}: class {t} at position {pos} is out of range for {c} classes");
    }
    targets
}
