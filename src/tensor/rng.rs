//! Where random numbers come from: a generator the caller owns, or a plain seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A source of random numbers for the constructors that draw them: layer initialisation
/// ([`Linear::new`](crate::nn::Linear::new), [`Lstm::new`](crate::nn::Lstm::new), …),
/// [`Init::tensor`](crate::nn::Init::tensor), [`Tensor::randn`](crate::Tensor::randn) and
/// [`Tensor::rand_uniform`](crate::Tensor::rand_uniform).
///
/// Two kinds of value are sources:
/// - `&mut rng`, a generator from [`rand`] 0.9 (re-exported as [`tensorgrad::rand`](crate::rand),
///   so that a generator of the right version is always at hand). Layers built one after another
///   from the same generator get different draws, as in PyTorch after one `torch.manual_seed`.
/// - a `u64` seed, for a [`StdRng`] seeded with it. The same seed always gives the same draws, so
///   two layers of the same shape built from the same seed start out identical: give each layer
///   its own seed, or share one generator.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
///
/// let a = Linear::<f32>::new(4, 2, 7); // a seed
/// let b = Linear::<f32>::new(4, 2, &mut StdRng::seed_from_u64(7)); // the same generator
/// assert_eq!(a.parameters()[0].to_vec(), b.parameters()[0].to_vec());
///
/// let mut rng = StdRng::seed_from_u64(0); // one generator for a whole model
/// let first = Linear::<f32>::new(4, 2, &mut rng);
/// let second = Linear::<f32>::new(4, 2, &mut rng);
/// assert_ne!(first.parameters()[0].to_vec(), second.parameters()[0].to_vec());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a source of random numbers for tensorgrad",
    label = "expected `&mut` a generator from rand 0.9, or a `u64` seed",
    note = "tensorgrad uses rand 0.9 and re-exports it as `tensorgrad::rand`; a generator from another \
            version of rand is a different type: use `tensorgrad::rand::rngs::StdRng`, or pass a seed such as `42`"
)]
pub trait RngSource {
    /// The generator this source gives.
    type Rng: Rng;

    /// The generator to draw from.
    fn into_rng(self) -> Self::Rng;
}

impl<'a, R: Rng + ?Sized> RngSource for &'a mut R {
    type Rng = &'a mut R;

    fn into_rng(self) -> &'a mut R {
        self
    }
}

impl RngSource for u64 {
    type Rng = StdRng;

    fn into_rng(self) -> StdRng {
        StdRng::seed_from_u64(self)
    }
}
