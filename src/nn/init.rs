//! Weight initialisation, from a seeded random number generator.
//!
//! Shapes follow PyTorch's layout: a weight is `[fan_out, fan_in, …]`, so
//! `fan_in = shape[1] · receptive` and `fan_out = shape[0] · receptive`, where `receptive` is the
//! product of the remaining dims.

use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::{Element, RngSource, Tensor};

/// How to initialise a tensor.
///
/// ```
/// use tensorgrad::nn::{Init, Linear};
///
/// // Glorot uniform for a [4, 3] weight: |w| ≤ √(6 / (3 + 4)).
/// let w = Init::GlorotUniform.tensor::<f32>(&[4, 3], 0);
/// assert!(w.to_vec().iter().all(|v| v.abs() <= (6.0f32 / 7.0).sqrt()));
///
/// // An orthogonal matrix: Q·Qᵀ = I.
/// let q = Init::Orthogonal(1.0).tensor::<f64>(&[3, 3], 1);
/// let qqt = q.matmul(&q.t()).to_vec();
/// for (i, v) in qqt.iter().enumerate() {
///     let identity = if i % 4 == 0 { 1.0 } else { 0.0 };
///     assert!((v - identity).abs() < 1e-12);
/// }
///
/// // Keras's Dense initialisation on a PyTorch-style layer.
/// let fc: Linear = Linear::with_init(3, 4, Init::GlorotUniform, Some(Init::Zeros), 2);
/// assert_eq!(fc.bias().unwrap().value().to_vec(), [0.0; 4]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// Every element equal to the value.
    Constant(f64),
    /// Uniform on `[low, high)`.
    Uniform(f64, f64),
    /// Normal with the given mean and standard deviation.
    Normal(f64, f64),
    /// Glorot/Xavier uniform: `U(±√(6 / (fan_in + fan_out)))` (Keras's default for kernels).
    GlorotUniform,
    /// Glorot/Xavier normal: `N(0, √(2 / (fan_in + fan_out)))`.
    GlorotNormal,
    /// He/Kaiming uniform for ReLU: `U(±√(6 / fan_in))`.
    KaimingUniform,
    /// He/Kaiming normal for ReLU: `N(0, √(2 / fan_in))`.
    KaimingNormal,
    /// A (semi-)orthogonal matrix times a gain (Keras's default for recurrent kernels).
    Orthogonal(f64),
}

impl Init {
    /// A tensor of `shape` initialised this way.
    #[track_caller]
    pub fn tensor<E: Element>(self, shape: &[usize], rng: impl RngSource) -> Tensor<E> {
        let mut rng = rng.into_rng();
        let rng = &mut rng;
        let (fan_in, fan_out) = fans(shape);
        let n: usize = shape.iter().product();
        let values: Vec<f64> = match self {
            Init::Zeros => vec![0.0; n],
            Init::Constant(v) => vec![v; n],
            Init::Uniform(lo, hi) => uniform(n, lo, hi, rng),
            Init::Normal(mean, std) => normal(n, mean, std, rng),
            Init::GlorotUniform => {
                let a = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                uniform(n, -a, a, rng)
            }
            Init::GlorotNormal => normal(n, 0.0, (2.0 / (fan_in + fan_out).max(1) as f64).sqrt(), rng),
            Init::KaimingUniform => {
                let a = (6.0 / fan_in.max(1) as f64).sqrt();
                uniform(n, -a, a, rng)
            }
            Init::KaimingNormal => normal(n, 0.0, (2.0 / fan_in.max(1) as f64).sqrt(), rng),
            Init::Orthogonal(gain) => orthogonal(shape, gain, rng),
        };
        Tensor::from_vec(values.into_iter().map(E::of).collect(), shape)
    }
}

/// `(fan_in, fan_out)` of a weight shape in PyTorch's `[out, in, …]` layout.
///
/// ```
/// use tensorgrad::nn::init::fans;
/// assert_eq!(fans(&[8, 4]), (4, 8)); // a Linear(4, 8) weight
/// assert_eq!(fans(&[16, 3, 5, 5]), (75, 400)); // a 5×5 convolution kernel, 3 → 16 channels
/// assert_eq!(fans(&[10]), (10, 10));
/// ```
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp, rest @ ..] => {
            let r: usize = rest.iter().product();
            (inp * r, out * r)
        }
    }
}

#[track_caller]
fn uniform(n: usize, lo: f64, hi: f64, rng: &mut impl Rng) -> Vec<f64> {
    let d = Uniform::new(lo, hi).unwrap_or_else(|e| panic!("init: invalid uniform range [{lo}, {hi}): {e}"));
    (0..n).map(|_| d.sample(rng)).collect()
}

#[track_caller]
fn normal(n: usize, mean: f64, std: f64, rng: &mut impl Rng) -> Vec<f64> {
    let d = Normal::new(mean, std).unwrap_or_else(|e| panic!("init: invalid normal std {std}: {e}"));
    (0..n).map(|_| d.sample(rng)).collect()
}

/// A matrix with orthonormal rows or columns (whichever are fewer), flattened from `shape` to
/// `[shape[0], rest]`, from the QR decomposition of a Gaussian matrix (signs fixed by `R`'s
/// diagonal so the result is uniformly distributed).
fn orthogonal(shape: &[usize], gain: f64, rng: &mut impl Rng) -> Vec<f64> {
    let rows = shape.first().copied().unwrap_or(1);
    let cols: usize = shape.iter().skip(1).product();
    let (tall_r, tall_c) = if rows >= cols { (rows, cols) } else { (cols, rows) };
    // Columns of a tall Gaussian matrix, orthonormalised by modified Gram–Schmidt.
    let mut q: Vec<Vec<f64>> = (0..tall_c).map(|_| normal(tall_r, 0.0, 1.0, rng)).collect();
    for j in 0..tall_c {
        let (done, rest) = q.split_at_mut(j);
        let col = &mut rest[0];
        for prev in done.iter() {
            let dot: f64 = prev.iter().zip(col.iter()).map(|(a, b)| a * b).sum();
            col.iter_mut().zip(prev).for_each(|(c, p)| *c -= dot * p);
        }
        let norm = q[j].iter().map(|x| x * x).sum::<f64>().sqrt();
        // R's diagonal is positive with Gram–Schmidt, so no sign correction is needed.
        for x in &mut q[j] {
            *x /= norm;
        }
    }
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = gain * if rows >= cols { q[c][r] } else { q[r][c] };
        }
    }
    out
}
