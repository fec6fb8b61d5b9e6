//! Inverted dropout, its masks drawn from per-step keys rather than a shared generator.

use std::sync::atomic::{AtomicU64, Ordering};

use super::module::{Module, Param, derive_seed};
use super::step_key::scoped_stream;
use crate::kernels::Par;
use crate::kernels::random::dropout_mask;
use crate::{Element, Tensor};

/// Zeroes each element with probability `p` in training mode and scales the rest by
/// `1 / (1 − p)`, so evaluation mode is the identity (inverted dropout, as in PyTorch and Keras).
///
/// # Shapes
/// Any shape in, same shape out.
///
/// # Where the masks come from
/// The module keeps no generator. Each mask is a stream of counter-based draws (a hash of the
/// stream's seed and the element's index, filled in parallel) whose seed is a function of the
/// module's seed and a count:
///
/// - inside a [`StepKey`](super::StepKey) scope (every training step of
///   [`Trainer::fit`](crate::train::Trainer::fit)), of the step's key, the module's seed and
///   the number of masks this module drew earlier in the scope — so threads sharing a model and
///   ranks of a data-parallel run never draw in arrival order;
/// - outside one, of the module's seed and the number of masks it drew since it was made or
///   [reseeded](Module::reseed): fresh masks on every call, the same sequence for the same seed.
///
/// ```
/// use tensorgrad::{Tensor, nn::{Dropout, Module}};
/// let mut drop = Dropout::new(0.5, 42);
/// let y = drop.forward(&Tensor::<f32>::ones(&[1000]));
/// assert!(y.to_vec().iter().all(|&v| v == 0.0 || v == 2.0));
/// drop.set_training(false); // evaluation mode: the identity
/// assert_eq!(drop.forward(&Tensor::<f32>::ones(&[3])).to_vec(), vec![1.0; 3]);
/// ```
#[derive(Debug)]
pub struct Dropout {
    p: f64,
    training: bool,
    seed: u64,
    /// Masks drawn outside any step-key scope since the module was made or reseeded.
    draws: AtomicU64,
}

impl Clone for Dropout {
    /// A copy that carries on from the same point: it draws the masks the original would.
    fn clone(&self) -> Self {
        let draws = AtomicU64::new(self.draws.load(Ordering::Relaxed));
        Dropout { p: self.p, training: self.training, seed: self.seed, draws }
    }
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)`; `seed` identifies its random streams
    /// (see [Where the masks come from](#where-the-masks-come-from)).
    #[track_caller]
    pub fn new(p: f64, seed: u64) -> Self {
        check_probability("Dropout", p);
        Dropout { p, training: true, seed, draws: AtomicU64::new(0) }
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// Switches between training (dropping) and evaluation (identity).
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Whether the module is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// A fresh inverted-dropout mask of `shape`: each element `0` with probability `p`, else
    /// `1 / (1 − p)`. All ones when `p` is 0 or the module is in evaluation mode.
    ///
    /// Successive masks are independent draws; inside a [`StepKey`](super::StepKey) scope they
    /// depend only on the key, the module's seed and how many masks it drew before in the scope.
    ///
    /// ```
    /// use tensorgrad::nn::Dropout;
    /// let mut drop = Dropout::new(0.25, 7);
    /// let mask = drop.mask::<f32>(&[1000]).to_vec();
    /// assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0 / 0.75));
    /// let dropped = mask.iter().filter(|&&m| m == 0.0).count();
    /// assert!((150..350).contains(&dropped)); // about a quarter
    /// drop.set_training(false);
    /// assert_eq!(drop.mask::<f32>(&[3]).to_vec(), [1.0; 3]);
    /// ```
    pub fn mask<E: Element>(&self, shape: &[usize]) -> Tensor<E> {
        if !self.training || self.p == 0.0 {
            return Tensor::ones(shape);
        }
        let n: usize = shape.iter().product();
        Tensor::from_data(dropout_mask(Par::current(), n, self.next_stream(), self.p), shape)
    }
}

impl Dropout {
    /// The seed of this module's next random stream: from the training step's key when a
    /// [`StepKey`](super::StepKey) scope is in force, else from the seed and a draw counter. A
    /// fused op that drops inside itself (attention's `dropout_p`) seeds its mask with it, so it
    /// is keyed like this module's own masks.
    pub(crate) fn next_stream(&self) -> u64 {
        scoped_stream(self.seed).unwrap_or_else(|| derive_seed(self.seed, self.draws.fetch_add(1, Ordering::Relaxed)))
    }
}

/// Panics unless `p` is a probability in `[0, 1)`.
#[track_caller]
pub(crate) fn check_probability(module: &str, p: f64) {
    if !(0.0..1.0).contains(&p) {
        panic!("{module}: dropout probability {p} must be in [0, 1)");
    }
}

impl<E: Element> Module<E> for Dropout {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        if !self.training || self.p == 0.0 {
            return x.clone();
        }
        x * &self.mask(x.shape())
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        *self.draws.get_mut() = 0;
    }
}

/// Channel dropout (PyTorch's `nn.Dropout2d`): in training mode, zeroes each whole channel of
/// a `[N, C, H, W]` input with probability `p` and scales the others by `1 / (1 − p)`; the
/// identity in evaluation mode. A `[N, C, L]` input drops channels of length `L` (PyTorch's
/// `Dropout1d`, and what its `Dropout2d` does with 3-D inputs).
///
/// The mask is `[N, C, 1, 1]` (or `[N, C, 1]`), drawn as [`Dropout`]'s masks are (same seeds,
/// step keys and [`reseed`](Module::reseed)): it is a `Dropout` drawing a smaller mask.
///
/// ```
/// use tensorgrad::{Tensor, nn::{Dropout2d, Module}};
/// let mut drop = Dropout2d::new(0.5, 3);
/// let y = drop.forward(&Tensor::<f32>::ones(&[4, 8, 5, 5])).to_vec();
/// for channel in y.chunks(25) {
///     assert!(channel.iter().all(|&v| v == 0.0) || channel.iter().all(|&v| v == 2.0));
/// }
/// drop.set_training(false);
/// assert_eq!(drop.forward(&Tensor::<f32>::ones(&[1, 1, 2, 2])).to_vec(), vec![1.0; 4]);
/// ```
#[derive(Clone, Debug)]
pub struct Dropout2d {
    inner: Dropout,
}

impl Dropout2d {
    /// Channel dropout with drop probability `p` in `[0, 1)` and the random streams of `seed`.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`.
    #[track_caller]
    pub fn new(p: f64, seed: u64) -> Self {
        check_probability("Dropout2d", p);
        Dropout2d { inner: Dropout { p, training: true, seed, draws: AtomicU64::new(0) } }
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.inner.p
    }

    /// Whether the module is in training mode.
    pub fn is_training(&self) -> bool {
        self.inner.training
    }

    /// Switches between training (dropping) and evaluation (identity).
    pub fn set_training(&mut self, training: bool) {
        self.inner.training = training;
    }
}

impl<E: Element> Module<E> for Dropout2d {
    fn forward(&self, x: &Tensor<E>) -> Tensor<E> {
        let s = x.shape();
        if s.len() != 3 && s.len() != 4 {
            panic!("Dropout2d: expects a 3-D [N, C, L] or 4-D [N, C, H, W] input, got shape {s:?}");
        }
        if !self.inner.training || self.inner.p == 0.0 {
            return x.clone();
        }
        let mut mask_shape = s.to_vec();
        mask_shape[2..].fill(1);
        x * &self.inner.mask(&mask_shape)
    }

    fn visit_params(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Param<E>)) {}

    fn describe(&self) -> String {
        format!("Dropout2d(p={})", self.inner.p)
    }

    fn set_training(&mut self, training: bool) {
        self.inner.training = training;
    }

    fn reseed(&mut self, seed: u64) {
        Module::<E>::reseed(&mut self.inner, seed);
    }
}
