//! Matrix multiply entry points: one product and a batch of products, on operands with their
//! own strides. On x86-64 they run the packed GEMM of [`super::gemm`] (its micro-kernel picked
//! for this CPU at run time); on other targets, `matrixmultiply`'s `sgemm`/`dgemm`, split into
//! blocks of output rows (or columns) across rayon tasks above a size threshold.
//!
//! Either way every element `C[i, j]` is computed by the same chain of operations whatever the
//! split, so the result does not depend on the number of threads.

#[cfg(not(target_arch = "x86_64"))]
use std::any::TypeId;

use rayon::prelude::*;

use super::Par;
use super::gemm::{self, BOperand};
use crate::tensor::element::Element;
use crate::tensor::memory;

/// One strided matrix operand inside a buffer: element `(i, j)` is at `offset + i·rs + j·cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatRef {
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Below this many multiply-adds (`m·k·n`) the products of a batch run one per task (and, on
/// the `matrixmultiply` path, a product runs on the calling thread).
const PAR_MIN_MACS: usize = 1 << 18;

/// `C = A·B` with `A: m×k`, `B: k×n` strided, `C` a row-major `m×n` slice (overwritten).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<E: Element>(
    par: Par,
    m: usize,
    k: usize,
    n: usize,
    a: &[E],
    ma: MatRef,
    b: &[E],
    mb: MatRef,
    c: &mut [E],
) {
    assert_eq!(c.len(), m * n, "matmul kernel: output buffer has the wrong size");
    #[cfg(target_arch = "x86_64")]
    gemm::gemm(par, m, k, n, a, ma, BOperand::Strided(b, mb), c, n, false, None);
    #[cfg(not(target_arch = "x86_64"))]
    fallback::gemm(par, m, k, n, a, ma, b, mb, c);
}

/// `C (+)= A·B` on the calling thread, for a tile of a larger kernel (attention): `A: m×k`,
/// `B: k×n` strided, `C` an `m×n` block with row stride `rsc` and unit column stride at the
/// start of `c`. With `accumulate` the product is added to C, else C is overwritten.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_tile<E: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: &[E],
    ma: MatRef,
    b: &[E],
    mb: MatRef,
    c: &mut [E],
    rsc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(rsc >= n && c.len() >= (m - 1) * rsc + n, "matmul kernel: output tile out of bounds");
    #[cfg(target_arch = "x86_64")]
    gemm::gemm(Par::Seq, m, k, n, a, ma, BOperand::Strided(b, mb), c, rsc, accumulate, None);
    #[cfg(not(target_arch = "x86_64"))]
    {
        if k == 0 {
            if !accumulate {
                c.chunks_mut(rsc).take(m).for_each(|row| row[..n].fill(E::zero()));
            }
            return;
        }
        fallback::check_bounds("A", a.len(), m, k, ma);
        fallback::check_bounds("B", b.len(), k, n, mb);
        // SAFETY: bounds of A and B checked above; C's block is inside `c` (asserted above) and
        // `c` is a `&mut` slice, so it cannot alias A or B.
        unsafe { fallback::gemm_raw(m, k, n, a, ma, b, mb, c.as_mut_ptr(), rsc, accumulate) };
    }
}

/// `matrixmultiply`, the fallback on targets without the packed GEMM's micro-kernels.
#[cfg(not(target_arch = "x86_64"))]
mod fallback {
    use super::*;
    use crate::kernels::gemm::SendPtr;
    pub(crate) use crate::kernels::gemm::check_bounds;

    /// Smallest block of rows or columns handed to one task.
    const MIN_BLOCK: usize = 16;

    /// `C = A·B` with `matrixmultiply`, split into blocks of rows or columns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm<E: Element>(
        par: Par,
        m: usize,
        k: usize,
        n: usize,
        a: &[E],
        ma: MatRef,
        b: &[E],
        mb: MatRef,
        c: &mut [E],
    ) {
        assert_eq!(c.len(), m * n, "matmul kernel: output buffer has the wrong size");
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            c.fill(E::zero());
            return;
        }
        check_bounds("A", a.len(), m, k, ma);
        check_bounds("B", b.len(), k, n, mb);
        let threads = par.threads();
        if threads < 2 || m * k * n < PAR_MIN_MACS {
            // SAFETY: bounds of A and B checked above; C is exactly m×n row-major and is a
            // `&mut` slice, so it cannot alias A or B.
            unsafe { gemm_raw(m, k, n, a, ma, b, mb, c.as_mut_ptr(), n, false) };
            return;
        }
        let cptr = SendPtr(c.as_mut_ptr());
        if m >= n {
            let block = m.div_ceil(threads).max(MIN_BLOCK);
            (0..m.div_ceil(block)).into_par_iter().for_each(|i| {
                let r0 = i * block;
                let rows = block.min(m - r0);
                let sub = MatRef { offset: ma.offset + r0 * ma.rs, ..ma };
                let cp = cptr;
                // SAFETY: rows r0..r0+rows of C are written by this task alone; the operand
                // sub-matrix lies inside A (checked above).
                unsafe { gemm_raw(rows, k, n, a, sub, b, mb, cp.0.add(r0 * n), n, false) };
            });
        } else {
            let block = n.div_ceil(threads).max(MIN_BLOCK);
            (0..n.div_ceil(block)).into_par_iter().for_each(|j| {
                let c0 = j * block;
                let cols = block.min(n - c0);
                let sub = MatRef { offset: mb.offset + c0 * mb.cs, ..mb };
                let cp = cptr;
                // SAFETY: columns c0..c0+cols of C are written by this task alone; the operand
                // sub-matrix lies inside B (checked above).
                unsafe { gemm_raw(m, k, cols, a, ma, b, sub, cp.0.add(c0), n, false) };
            });
        }
    }

    /// # Safety
    /// A and B must be in bounds for the given sizes and strides; `c` must point at an `m×n` block
    /// with row stride `rsc` and unit column stride, valid for writes and not aliasing A or B
    /// (and initialised when `accumulate`, which adds the product to it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn gemm_raw<E: Element>(
        m: usize,
        k: usize,
        n: usize,
        a: &[E],
        ma: MatRef,
        b: &[E],
        mb: MatRef,
        c: *mut E,
        rsc: usize,
        accumulate: bool,
    ) {
        let beta = if accumulate { 1.0 } else { 0.0 };
        let (pa, pb) = (a[ma.offset..].as_ptr(), b[mb.offset..].as_ptr());
        let (rsa, csa, rsb, csb, rsc) = (ma.rs as isize, ma.cs as isize, mb.rs as isize, mb.cs as isize, rsc as isize);
        if TypeId::of::<E>() == TypeId::of::<f32>() {
            // SAFETY: `E` is `f32` (same `TypeId`), so the casts are identities; the operands are in
            // bounds and `c` is a valid, unaliased output by the caller's contract.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    pa.cast(),
                    rsa,
                    csa,
                    pb.cast(),
                    rsb,
                    csb,
                    beta as f32,
                    c.cast(),
                    rsc,
                    1,
                )
            }
        } else if TypeId::of::<E>() == TypeId::of::<f64>() {
            // SAFETY: `E` is `f64` (same `TypeId`), so the casts are identities; the rest as above.
            unsafe {
                matrixmultiply::dgemm(m, k, n, 1.0, pa.cast(), rsa, csa, pb.cast(), rsb, csb, beta, c.cast(), rsc, 1)
            }
        } else {
            unreachable!("Element is sealed to f32 and f64")
        }
    }
}

/// A batch of products: `C[p] = A[p]·B[p]`, with the operands located by per-batch offsets.
/// Large batches run one product per task; a short batch of big products splits each product.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batched_gemm<E: Element>(
    par: Par,
    m: usize,
    k: usize,
    n: usize,
    a: &[E],
    a_offsets: &[usize],
    (rsa, csa): (usize, usize),
    b: &[E],
    b_offsets: &[usize],
    (rsb, csb): (usize, usize),
) -> Vec<E> {
    let batch = a_offsets.len();
    debug_assert_eq!(batch, b_offsets.len());
    let mut out = memory::take(batch * m * n);
    if m * n == 0 {
        return out;
    }
    // One product per task when the products are small (each on its task's thread), else each
    // product split in turn.
    let batch_par =
        batch >= 2 && m * k * n < PAR_MIN_MACS * 4 && par.for_work((batch * m * k * n) as f64 / 20.0).is_parallel();
    let inner = if batch_par { Par::Seq } else { par };
    let one = |p: usize, c: &mut [E]| {
        let ma = MatRef { offset: a_offsets[p], rs: rsa, cs: csa };
        let mb = MatRef { offset: b_offsets[p], rs: rsb, cs: csb };
        gemm(inner, m, k, n, a, ma, b, mb, c);
    };
    if batch_par {
        out.par_chunks_mut(m * n).enumerate().for_each(|(p, c)| one(p, c));
    } else {
        out.chunks_mut(m * n).enumerate().for_each(|(p, c)| one(p, c));
    }
    out
}
