//! Reductions: sums over any set of dims, and max with argmax over one dim.

use rayon::prelude::*;

use super::{PAR_CHUNK, PAR_ELEMS, Par};
use crate::tensor::element::Element;
use crate::tensor::layout::{Layout, for_each_row};
use crate::tensor::memory;
use crate::tensor::shape::numel;

/// Sums `a` down to `out_shape` (same rank, reduced dims of size 1); row-major output.
///
/// Elements are added in logical order, except that a full reduction of a large contiguous
/// input adds fixed-size pieces first and then the pieces in order, so the result does not
/// depend on the number of threads.
pub(crate) fn sum_to<E: Element>(par: Par, a: &[E], la: &Layout, out_shape: &[usize]) -> Vec<E> {
    let n = la.numel();
    if numel(out_shape) == 1 && la.is_contiguous() {
        let src = &a[la.offset()..la.offset() + n];
        let total = if n >= PAR_ELEMS {
            // The same pieces whether or not they run in parallel, so the bits do not change.
            let parts: Vec<E> = if par.is_parallel() {
                src.par_chunks(PAR_CHUNK).map(sum_slice).collect()
            } else {
                src.chunks(PAR_CHUNK).map(sum_slice).collect()
            };
            sum_slice(&parts)
        } else {
            sum_slice(src)
        };
        return vec![total];
    }
    let mut out = memory::zeroed(numel(out_shape));
    let lo = Layout::contiguous(out_shape).broadcast_to(la.shape());
    for_each_row(la.shape(), [la.strides(), lo.strides()], [la.offset(), 0], |[oa, oo], len, [sa, so]| {
        if so == 0 {
            let mut acc = out[oo];
            for k in 0..len {
                acc += a[oa + k * sa];
            }
            out[oo] = acc;
        } else {
            for k in 0..len {
                out[oo + k * so] += a[oa + k * sa];
            }
        }
    });
    out
}

/// Sum of a slice with eight independent accumulators (vectorises; fixed association order).
fn sum_slice<E: Element>(s: &[E]) -> E {
    let mut acc = [E::zero(); 8];
    let chunks = s.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut total = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &x in rest {
        total += x;
    }
    total
}

/// Max over `dim` and the index of the first maximum; outputs in row-major order of the shape
/// with `dim` removed. NaN wins over any number (it propagates, as in PyTorch).
pub(crate) fn max_dim<E: Element>(a: &[E], la: &Layout, dim: usize) -> (Vec<E>, Vec<usize>) {
    let size = la.shape()[dim];
    let stride = la.strides()[dim];
    let outer = la.narrow(dim, 0, 1);
    let mut vals = Vec::with_capacity(outer.numel());
    let mut idxs = Vec::with_capacity(outer.numel());
    outer.for_each_offset(|base| {
        let (mut best, mut bi) = (a[base], 0);
        for k in 1..size {
            let x = a[base + k * stride];
            if !best.is_nan() && (x > best || x.is_nan()) {
                best = x;
                bi = k;
            }
        }
        vals.push(best);
        idxs.push(bi);
    });
    (vals, idxs)
}
