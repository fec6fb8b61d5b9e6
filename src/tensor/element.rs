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

    /// The slice as a buffer a [`Communicator`](crate::distributed::Communicator) can send.
    #[doc(hidden)]
    fn comm_buffer(values: &mut [Self]) -> Buffer<'_>;
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

    fn comm_buffer(values: &mut [Self]) -> Buffer<'_> {
        Buffer::F32(values)
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    #[inline]
    fn of(x: f64) -> Self {
        x
    }

    fn comm_buffer(values: &mut [Self]) -> Buffer<'_> {
        Buffer::F64(values)
    }
}

/// A buffer of values to send or receive in place: `f32` or `f64`.
///
/// Made from a mutable slice with `.into()`, or from a slice of any [`Element`] with
/// [`buffer`](crate::distributed::buffer).
#[derive(Debug)]
pub enum Buffer<'a> {
    /// Single precision values.
    F32(&'a mut [f32]),
    /// Double precision values.
    F64(&'a mut [f64]),
}

impl Buffer<'_> {
    /// The number of values.
    pub fn len(&self) -> usize {
        match self {
            Buffer::F32(b) => b.len(),
            Buffer::F64(b) => b.len(),
        }
    }

    /// Whether the buffer holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size in bytes.
    pub fn bytes(&self) -> usize {
        match self {
            Buffer::F32(b) => b.len() * 4,
            Buffer::F64(b) => b.len() * 8,
        }
    }
}

impl<'a> From<&'a mut [f32]> for Buffer<'a> {
    fn from(values: &'a mut [f32]) -> Self {
        Buffer::F32(values)
    }
}

impl<'a> From<&'a mut [f64]> for Buffer<'a> {
    fn from(values: &'a mut [f64]) -> Self {
        Buffer::F64(values)
    }
}
