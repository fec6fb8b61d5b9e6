//! The element type of every tensor: `f32` or `f64`, numbers only.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use num_traits::{Float, FromPrimitive, NumAssign, ToPrimitive};

/// The floating-point types a [`Tensor`](crate::Tensor) can hold: `f32` and `f64`.
///
/// The trait is sealed and describes numbers only; the kernels pick their `f32`/`f64` code
/// (matrix multiply, vectorised transcendentals) themselves.
///
/// ```
/// use tensorgrad::Element;
/// assert_eq!(<f64 as Element>::NAME, "f64");
/// assert_eq!(f32::of(0.1), 0.1f32);
/// ```
pub trait Element:
    Float
    + FromPrimitive
    + ToPrimitive
    + NumAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
    + sealed::Sealed
{
    /// The name of the type, as it appears in messages and weight files (`"f32"`, `"f64"`).
    const NAME: &'static str;

    /// Converts an `f64` constant into this type (rounding for `f32`).
    fn of(x: f64) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    #[inline]
    fn of(x: f64) -> Self {
        x
    }
}
