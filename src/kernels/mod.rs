//! The hot loops, on raw slices and layouts: no graph, no `Tensor`.
//!
//! The parallel policy lives here, in one place: work is split into pieces whose boundaries
//! depend only on the problem size, never on the number of threads, and each output element is
//! computed by exactly one piece in a fixed order. Results are therefore bit-identical whatever
//! `RAYON_NUM_THREADS` is.

pub(crate) mod lstm;
pub(crate) mod map;
pub(crate) mod math;
pub(crate) mod matmul;
pub(crate) mod reduce;

/// Below this many elements an elementwise kernel runs on the calling thread.
pub(crate) const PAR_ELEMS: usize = 1 << 15;

/// Elements per parallel piece for elementwise kernels.
pub(crate) const PAR_CHUNK: usize = 1 << 14;
