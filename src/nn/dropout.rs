//! Inverted dropout with its own seeded random number generator.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::module::{Module, Param};
use crate::{Element, Tensor};

/// Zeroes each element with probability `p` in training mode and scales the rest by
/// `1 / (1 − p)`, so evaluation mode is the identity (inverted dropout, as in PyTorch and Keras).
///
/// # Shapes
/// Any shape in, same shape out.
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
    rng: Mutex<StdRng>,
}

impl Clone for Dropout {
    fn clone(&self) -> Self {
        let rng = self.rng.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Dropout { p: self.p, training: self.training, rng: Mutex::new(rng) }
    }
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)`, its masks drawn from a generator seeded
    /// with `seed`.
    #[track_caller]
    pub fn new(p: f64, seed: u64) -> Self {
        check_probability("Dropout", p);
        Dropout { p, training: true, rng: Mutex::new(StdRng::seed_from_u64(seed)) }
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
    pub fn mask<E: Element>(&self, shape: &[usize]) -> Tensor<E> {
        if !self.training || self.p == 0.0 {
            return Tensor::ones(shape);
        }
        let keep = E::of(1.0 / (1.0 - self.p));
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let n: usize = shape.iter().product();
        let data = (0..n).map(|_| if rng.random::<f64>() < self.p { E::zero() } else { keep }).collect();
        Tensor::from_vec(data, shape)
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

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn reseed(&mut self, seed: u64) {
        *self.rng.get_mut().unwrap_or_else(|e| e.into_inner()) = StdRng::seed_from_u64(seed);
    }
}
