//! Entry points of the heavy kernels that always run the instance compiled in this crate.
//!
//! Rust compiles generic code where it is instantiated. The kernels are generic over the
//! element type, and `Tensor<f32>` is instantiated in the user's crate, so without this module
//! the GEMM, the LSTM and the reductions would be compiled with the *user's* optimisation level:
//! in a debug build, unoptimised, even when the user's `Cargo.toml` optimises dependencies
//! (`[profile.dev.package."*"] opt-level = 3`, which the README recommends). So each heavy
//! kernel's generic entry point (`gemm`, `PackedB::new_par`, the LSTM's `forward` and
//! `backward`, `sum_to`) keeps a pointer to its `f32` and `f64` instances in statics defined
//! next to it, which are compiled in this crate, and calls the one for `E` through [`instance`].
//! The pointer costs one indirect call per kernel call, nothing per element.

use std::any::{Any, TypeId};

use crate::tensor::element::Element;

/// The instance for `E` of a kernel whose `f32` and `f64` instances are the function pointers
/// behind `f32` and `f64` (statics of type `F` with `E` = `f32` and `f64`).
#[inline]
pub(crate) fn instance<E: Element, F: Copy + 'static>(f32: &'static dyn Any, f64: &'static dyn Any) -> F {
    let f = if TypeId::of::<E>() == TypeId::of::<f32>() { f32 } else { f64 };
    *f.downcast_ref::<F>().expect("a kernel entry's statics have its signature")
}
