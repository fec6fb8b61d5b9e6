//! Gradient clipping (`torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`).

use crate::{Element, Gradients, Tensor};

/// Rescales all gradients together so that their total L2 norm is at most `max_norm`, and
/// returns the total norm before clipping, as `torch.nn.utils.clip_grad_norm_`.
///
/// The total norm is that of all gradient elements seen as one vector (accumulated in `f64`,
/// in a fixed order). When `max_norm / (norm + 1e-6)` is below 1, every gradient is multiplied
/// by it; otherwise nothing changes. A NaN or infinite norm is returned as it is, and then, as
/// in PyTorch, the gradients become NaN or zero: check the returned value if that matters.
/// Clipped gradients are new constant tensors (no graph).
///
/// ```
/// use tensorgrad::{Gradients, Tensor};
/// use tensorgrad::optim::clip_grad_norm;
/// let (a, b) = (Tensor::<f64>::zeros(&[1]), Tensor::<f64>::zeros(&[1]));
/// let mut grads = Gradients::new();
/// grads.insert(&a, Tensor::from_vec(vec![3.0], &[1]));
/// grads.insert(&b, Tensor::from_vec(vec![4.0], &[1]));
/// let norm = clip_grad_norm(&mut grads, 1.0);
/// assert_eq!(norm, 5.0);
/// let g = grads.get(&a).unwrap().item();
/// assert!((g - 0.6).abs() < 1e-6);
/// ```
///
/// # Panics
/// If `max_norm` is negative or NaN.
#[track_caller]
pub fn clip_grad_norm<E: Element>(grads: &mut Gradients<E>, max_norm: f64) -> f64 {
    if max_norm.is_nan() || max_norm < 0.0 {
        panic!("clip_grad_norm: max_norm must be non-negative, got {max_norm:?}");
    }
    let sum_sq: f64 = grads
        .iter()
        .map(|(_, g)| g.to_vec().iter().map(|x| x.to_f64().unwrap_or(f64::NAN)).map(|x| x * x).sum::<f64>())
        .sum();
    let norm = sum_sq.sqrt();
    let coef = max_norm / (norm + 1e-6);
    // A NaN coefficient propagates, as in PyTorch.
    if coef.is_nan() || coef < 1.0 {
        let c = E::of(coef);
        for (_, g) in grads.iter_mut() {
            *g = map(g, |x| x * c);
        }
    }
    norm
}

/// Clamps every gradient element to `[-clip, clip]`, as `torch.nn.utils.clip_grad_value_`
/// (NaN stays NaN). Clipped gradients are new constant tensors (no graph).
///
/// ```
/// use tensorgrad::{Gradients, Tensor};
/// use tensorgrad::optim::clip_grad_value;
/// let w = Tensor::<f32>::zeros(&[3]);
/// let mut grads = Gradients::new();
/// grads.insert(&w, Tensor::from_vec(vec![-2.0, 0.5, 7.0], &[3]));
/// clip_grad_value(&mut grads, 1.0);
/// assert_eq!(grads.get(&w).unwrap().to_vec(), vec![-1.0, 0.5, 1.0]);
/// ```
///
/// # Panics
/// If `clip` is negative or NaN.
#[track_caller]
pub fn clip_grad_value<E: Element>(grads: &mut Gradients<E>, clip: f64) {
    if clip.is_nan() || clip < 0.0 {
        panic!("clip_grad_value: clip must be non-negative, got {clip:?}");
    }
    let c = E::of(clip);
    for (_, g) in grads.iter_mut() {
        *g = map(g, |x| {
            if x > c {
                c
            } else if x < -c {
                -c
            } else {
                x
            }
        });
    }
}

/// `f` applied to every element, as a new row-major tensor of the same shape.
fn map<E: Element>(t: &Tensor<E>, f: impl Fn(E) -> E) -> Tensor<E> {
    Tensor::from_vec(t.to_vec().into_iter().map(f).collect(), t.shape())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grads(values: &[&[f64]]) -> (Vec<Tensor<f64>>, Gradients<f64>) {
        let mut g = Gradients::new();
        let ts: Vec<Tensor<f64>> = values.iter().map(|v| Tensor::zeros(&[v.len()])).collect();
        for (t, v) in ts.iter().zip(values) {
            g.insert(t, Tensor::from_slice(v));
        }
        (ts, g)
    }

    #[test]
    fn norm_below_the_limit_leaves_gradients_alone() {
        let (ts, mut g) = grads(&[&[1.0, 2.0], &[2.0]]);
        assert_eq!(clip_grad_norm(&mut g, 3.5), 3.0);
        assert_eq!(g.get(&ts[0]).unwrap().to_vec(), vec![1.0, 2.0]);
        assert_eq!(g.get(&ts[1]).unwrap().to_vec(), vec![2.0]);
    }

    #[test]
    fn norm_above_the_limit_scales_every_gradient() {
        // ‖(1, 2, 2)‖ = 3, coefficient 1.5 / (3 + 1e-6).
        let (ts, mut g) = grads(&[&[1.0, 2.0], &[2.0]]);
        assert_eq!(clip_grad_norm(&mut g, 1.5), 3.0);
        let c = 1.5 / (3.0 + 1e-6);
        assert_eq!(g.get(&ts[0]).unwrap().to_vec(), vec![c, 2.0 * c]);
        assert_eq!(g.get(&ts[1]).unwrap().to_vec(), vec![2.0 * c]);
    }

    #[test]
    fn norm_just_under_the_limit_is_still_scaled_as_in_pytorch() {
        // norm = 3 ≤ max_norm = 3, but 3 / (3 + 1e-6) < 1: PyTorch multiplies anyway.
        let (ts, mut g) = grads(&[&[1.0, 2.0, 2.0]]);
        clip_grad_norm(&mut g, 3.0);
        assert!(g.get(&ts[0]).unwrap().to_vec()[0] < 1.0);
    }

    #[test]
    fn zero_max_norm_zeroes_the_gradients() {
        let (ts, mut g) = grads(&[&[1.0, -2.0]]);
        clip_grad_norm(&mut g, 0.0);
        assert_eq!(g.get(&ts[0]).unwrap().to_vec(), vec![0.0, -0.0]);
    }

    #[test]
    fn empty_gradients_have_norm_zero() {
        assert_eq!(clip_grad_norm(&mut Gradients::<f32>::new(), 1.0), 0.0);
    }

    #[test]
    fn value_clipping_clamps_and_keeps_nan() {
        let (ts, mut g) = grads(&[&[-3.0, 0.25, f64::NAN, 3.0]]);
        clip_grad_value(&mut g, 0.5);
        let v = g.get(&ts[0]).unwrap().to_vec();
        assert_eq!(&v[..2], &[-0.5, 0.25]);
        assert!(v[2].is_nan());
        assert_eq!(v[3], 0.5);
    }

    #[test]
    #[should_panic(expected = "clip_grad_norm: max_norm must be non-negative, got -1.0")]
    fn negative_max_norm_panics() {
        clip_grad_norm(&mut Gradients::<f32>::new(), -1.0);
    }

    #[test]
    #[should_panic(expected = "clip_grad_value: clip must be non-negative, got NaN")]
    fn nan_clip_panics() {
        clip_grad_value(&mut Gradients::<f32>::new(), f64::NAN);
    }
}
