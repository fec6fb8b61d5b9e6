//! The element type and the shared buffer behind every tensor.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use num_traits::{Float, FromPrimitive, NumAssign, ToPrimitive};

/// The floating-point types a [`Tensor`](crate::Tensor) can hold: `f32` and `f64`.
///
/// The trait is sealed: its matrix-multiply entry point is tied to the two
/// `matrixmultiply` kernels.
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

    /// `x ← σ(x)` elementwise, finite for any input (vectorised for `f32`).
    #[doc(hidden)]
    fn sigmoid_inplace(x: &mut [Self]);

    /// `x ← tanh(x)` elementwise (vectorised for `f32`).
    #[doc(hidden)]
    fn tanh_inplace(x: &mut [Self]);

    /// `dst ← eˢʳᶜ` elementwise; the slices have the same length.
    #[doc(hidden)]
    fn exp_into(src: &[Self], dst: &mut [Self]);

    /// `dst ← σ(src)` elementwise; the slices have the same length.
    #[doc(hidden)]
    fn sigmoid_into(src: &[Self], dst: &mut [Self]);

    /// `dst ← tanh(src)` elementwise; the slices have the same length.
    #[doc(hidden)]
    fn tanh_into(src: &[Self], dst: &mut [Self]);

    /// The cache of free buffers of this type (see [`crate::memory`]).
    #[doc(hidden)]
    fn pool() -> &'static crate::memory::Pool<Self>;

    /// `C ← α·A·B + β·C` on raw strided matrices (row stride, column stride per operand).
    ///
    /// # Safety
    /// The pointers must be valid for every element addressed by the given sizes and strides,
    /// and `c` must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    #[doc(hidden)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    fn pool() -> &'static crate::memory::Pool<f32> {
        static POOL: crate::memory::Pool<f32> = crate::memory::Pool::new();
        &POOL
    }
    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }
    fn sigmoid_inplace(x: &mut [f32]) {
        crate::kernels::math::sigmoid_f32_inplace(x)
    }
    fn tanh_inplace(x: &mut [f32]) {
        crate::kernels::math::tanh_f32_inplace(x)
    }
    fn exp_into(src: &[f32], dst: &mut [f32]) {
        crate::kernels::math::exp_f32_into(src, dst)
    }
    fn sigmoid_into(src: &[f32], dst: &mut [f32]) {
        crate::kernels::math::sigmoid_f32_into(src, dst)
    }
    fn tanh_into(src: &[f32], dst: &mut [f32]) {
        crate::kernels::math::tanh_f32_into(src, dst)
    }
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: the caller upholds sgemm's contract (valid, non-aliasing strided operands).
        unsafe { matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    fn pool() -> &'static crate::memory::Pool<f64> {
        static POOL: crate::memory::Pool<f64> = crate::memory::Pool::new();
        &POOL
    }
    #[inline]
    fn of(x: f64) -> Self {
        x
    }
    fn sigmoid_inplace(x: &mut [f64]) {
        x.iter_mut().for_each(|v| *v = crate::ops::sigmoid_scalar(*v));
    }
    fn tanh_inplace(x: &mut [f64]) {
        x.iter_mut().for_each(|v| *v = v.tanh());
    }
    fn exp_into(src: &[f64], dst: &mut [f64]) {
        dst.iter_mut().zip(src).for_each(|(d, &x)| *d = x.exp());
    }
    fn sigmoid_into(src: &[f64], dst: &mut [f64]) {
        dst.iter_mut().zip(src).for_each(|(d, &x)| *d = crate::ops::sigmoid_scalar(x));
    }
    fn tanh_into(src: &[f64], dst: &mut [f64]) {
        dst.iter_mut().zip(src).for_each(|(d, &x)| *d = x.tanh());
    }
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: the caller upholds dgemm's contract (valid, non-aliasing strided operands).
        unsafe { matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}

/// A buffer shared by a tensor and all of its views.
///
/// Values are immutable once written, with one exception: a parameter's buffer may be
/// overwritten in place by an optimizer between steps (see [`Storage::write`]). Readers take a
/// snapshot (`Arc<Vec<E>>`); a writer that finds a live snapshot copies first, so a kernel that is
/// reading never sees a torn value. Every write bumps a version counter: a recorded op notes the
/// versions of its inputs, and the backward pass refuses to use an input written since.
#[derive(Debug)]
pub(crate) struct Storage<E: Element> {
    data: Mutex<Arc<Vec<E>>>,
    version: AtomicU64,
}

/// A large buffer goes back to [`crate::memory`]'s cache when its last user is gone.
impl<E: Element> Drop for Storage<E> {
    fn drop(&mut self) {
        let arc = self.data.get_mut().unwrap_or_else(|e| e.into_inner());
        if arc.capacity() * size_of::<E>() < 64 * 1024 || Arc::strong_count(arc) != 1 {
            return;
        }
        if let Ok(buf) = Arc::try_unwrap(std::mem::take(arc)) {
            crate::memory::recycle(buf);
        }
    }
}

impl<E: Element> Storage<E> {
    pub(crate) fn new(data: Vec<E>) -> Self {
        Storage { data: Mutex::new(Arc::new(data)), version: AtomicU64::new(0) }
    }

    /// How many times the buffer has been written in place.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Arc<Vec<E>>> {
        // A poisoned lock only means a writer panicked; the Arc inside is still whole.
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot of the current values.
    pub(crate) fn read(&self) -> Arc<Vec<E>> {
        Arc::clone(&self.lock())
    }

    /// Runs `f` on the values with write access; copies first if a snapshot is alive.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut [E]) -> R) -> R {
        let mut guard = self.lock();
        self.version.fetch_add(1, Ordering::AcqRel);
        f(Arc::make_mut(&mut guard).as_mut_slice())
    }

    /// Write access only if nobody else can observe the buffer (used to accumulate in place).
    pub(crate) fn try_write_unique<R>(&self, f: impl FnOnce(&mut [E]) -> R) -> Option<R> {
        let mut guard = self.lock();
        Arc::get_mut(&mut guard).map(|v| f(v.as_mut_slice()))
    }
}
