//! # tensorgrad
//!
//! Strided CPU tensors with reverse-mode automatic differentiation, for training neural
//! networks in pure Rust: no Python, no libtorch.
//!
//! - [`Tensor`]: `f32` (default) or `f64` values over a shared buffer and a [`Layout`]. Transpose,
//!   narrow, broadcast and reshape of contiguous data are views that copy nothing.
//! - Autograd: mark leaves with [`Tensor::requires_grad`], call [`Tensor::backward`] on a scalar,
//!   read [`Gradients::get`]. [`Tensor::backward_with_graph`] records the backward pass so
//!   gradients can be differentiated again (Hessian–vector products, gradient penalties).
//! - [`gradcheck`]: verifies any function's gradients against central differences.
//! - Matrix products run on a packed GEMM whose micro-kernel (AVX-512, AVX2+FMA or portable) and
//!   cache blocking are chosen at run time for the CPU ([`cpu_info`] says what was chosen), read
//!   the operands with their own strides, and split across threads only where that pays; results
//!   are bit-identical whatever the number of threads. A matrix used many times can be packed
//!   once ([`Tensor::pack`], [`Tensor::matmul_packed`]).
//!
//! ```
//! use tensorgrad::Tensor;
//!
//! // One sigmoid neuron: loss = Σ σ(x·W + b) · y
//! let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.1], &[2, 2]);
//! let w = Tensor::from_vec(vec![0.3f32, -0.2], &[2, 1]).requires_grad();
//! let b = Tensor::from_vec(vec![0.1f32], &[1]).requires_grad();
//! let y = Tensor::from_vec(vec![1.0f32, 0.0], &[2, 1]);
//!
//! let loss = ((x.matmul(&w) + &b).sigmoid() * &y).sum();
//! let grads = loss.backward();
//! assert_eq!(grads.get(&w).unwrap().shape(), &[2, 1]);
//! assert_eq!(grads.get(&b).unwrap().shape(), &[1]);
//! ```
#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod data;
mod error;
pub mod io;
mod kernels;
pub mod loss;
pub mod nn;
mod ops;
pub mod optim;
mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use kernels::info::{CpuInfo, GemmPlan, cpu_info};
pub use ops::matmul::PackedMatrix;
pub use tensor::autograd::Gradients;
pub use tensor::element::Element;
pub use tensor::gradcheck::{GradcheckError, GradcheckOptions, gradcheck, gradcheck_with};
pub use tensor::handle::{Tensor, TensorId};
pub use tensor::layout::Layout;
pub use tensor::mode::{detect_anomaly, is_anomaly_enabled, is_grad_enabled, no_grad, set_detect_anomaly};
pub use tensor::rng::RngSource;
pub use tensor::{memory, shape};

/// The [`rand`](https://docs.rs/rand/0.9) crate, version 0.9, which tensorgrad's constructors
/// draw from (see [`RngSource`]).
///
/// Use it instead of adding `rand` to your own `Cargo.toml`: `cargo add rand` may pick a newer
/// version whose generators are different types, and then `Linear::new(…, &mut rng)` does not
/// compile. A plain `u64` seed works wherever a generator does.
///
/// ```
/// use tensorgrad::rand::{SeedableRng, rngs::StdRng};
/// let mut rng = StdRng::seed_from_u64(42);
/// let w = tensorgrad::Tensor::<f32>::randn(&[2, 3], 0.0, 1.0, &mut rng);
/// assert_eq!(w.shape(), &[2, 3]);
/// ```
pub use rand;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
