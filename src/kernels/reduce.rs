//! Reductions: sums over any set of dims, and max with argmax over one dim.
//!
//! A sum walks the input's innermost rows: a contiguous row reduced to one value (the last dim)
//! is summed with eight accumulators, a contiguous row reduced into an output row (an outer dim)
//! is added element by element, both compiled for the widest vector unit the CPU has.

use super::entry::instance;
use rayon::prelude::*;

use super::slice::add_assign;
use super::{PAR_CHUNK, PAR_ELEMS, Par, simd_dispatch};
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
    // The instances compiled in this crate (see `kernels::entry`).
    type F<T> = fn(Par, &[T], &Layout, &[usize]) -> Vec<T>;
    static F32: F<f32> = sum_to_impl::<f32>;
    static F64: F<f64> = sum_to_impl::<f64>;
    instance::<E, F<E>>(&F32, &F64)(par, a, la, out_shape)
}

/// [`sum_to`]'s body, instantiated in this crate only.
fn sum_to_impl<E: Element>(par: Par, a: &[E], la: &Layout, out_shape: &[usize]) -> Vec<E> {
    let n = la.numel();
    if numel(out_shape) == 1 && la.is_contiguous() {
        let src = &a[la.offset()..la.offset() + n];
        let total = if n >= PAR_ELEMS {
            // The same pieces whether or not they run in parallel, so the bits do not change.
            let parts: Vec<E> = if par.for_elems(n).is_parallel() {
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
    if la.is_contiguous()
        && let Some(out) = sum_split(par, &a[la.offset()..la.offset() + n], la.shape(), out_shape)
    {
        return out;
    }
    let mut out = memory::zeroed(numel(out_shape));
    let lo = Layout::contiguous(out_shape).broadcast_to(la.shape());
    for_each_row(la.shape(), [la.strides(), lo.strides()], [la.offset(), 0], |[oa, oo], len, [sa, so]| {
        match (so, sa) {
            // A contiguous row into one output (a sum along the last dim): vectorised.
            (0, 1) => out[oo] += sum_slice(&a[oa..oa + len]),
            (0, _) => {
                let mut acc = out[oo];
                for k in 0..len {
                    acc += a[oa + k * sa];
                }
                out[oo] = acc;
            }
            // A contiguous row added into a contiguous output row (a sum along an outer dim).
            (1, 1) => add_assign(&mut out[oo..oo + len], &a[oa..oa + len]),
            _ => {
                for k in 0..len {
                    out[oo + k * so] += a[oa + k * sa];
                }
            }
        }
    });
    out
}

/// A contiguous input reduced over a run of trailing dims (one sum per row of `inner` values),
/// split across threads in fixed pieces of rows when [`Par::for_elems`] says it pays. Each
/// output element is computed as on one thread, so the bits do not change. `None` for any
/// other reduction.
fn sum_split<E: Element>(par: Par, src: &[E], shape: &[usize], out_shape: &[usize]) -> Option<Vec<E>> {
    if src.is_empty() || !par.for_elems(src.len()).is_parallel() {
        return None;
    }
    split_sums(src, shape, out_shape)
}

/// The split of [`sum_split`], whatever the size.
fn split_sums<E: Element>(src: &[E], shape: &[usize], out_shape: &[usize]) -> Option<Vec<E>> {
    let n = src.len();
    // The dims kept form a prefix: a sum over trailing dims.
    let kept = |d: usize| out_shape[d] == shape[d];
    let first_reduced = (0..shape.len()).find(|&d| !kept(d))?;
    if (first_reduced..shape.len()).all(|d| !kept(d) || shape[d] == 1) {
        let inner: usize = shape[first_reduced..].iter().product();
        let rows = n / inner;
        let mut out = memory::take(rows);
        let rows_per = PAR_CHUNK.div_ceil(inner).max(1);
        out.par_chunks_mut(rows_per).zip(src.par_chunks(rows_per * inner)).for_each(|(o, s)| {
            for (o, row) in o.iter_mut().zip(s.chunks_exact(inner)) {
                // As the one-thread path: the row's sum added to a zero output (so -0 gives +0).
                *o = E::zero() + sum_slice(row);
            }
        });
        return Some(out);
    }
    // Sums over leading dims stay on one thread: split into column pieces they walk every row
    // in short strided runs, and ran 1.5x slower on two threads than whole rows on one (Intel
    // VM); split into row blocks they would add in another order and change the bits.
    None
}

simd_dispatch! {
    /// Sum of a slice with 32 independent accumulators (two AVX-512 vectors, four AVX2 ones),
    /// so that the adds are not one dependent chain: with eight, a 1024-value row took as long
    /// as the add's latency allowed (about 60 % of PyTorch's speed on a 1024×1024 `sum_dim(1)`).
    /// The association order is fixed, so every vector build gives the same bits.
    pub(crate) fn sum_slice<const FMA: bool, E: Element>(s: &[E]) -> E {
        const W: usize = 32;
        let mut acc = [E::zero(); W];
        let chunks = s.chunks_exact(W);
        let rest = chunks.remainder();
        for c in chunks {
            for i in 0..W {
                acc[i] += c[i];
            }
        }
        // Fold halves onto halves: 32 → 16 → 8 → 4 → 2 → 1.
        let mut width = W;
        while width > 1 {
            width /= 2;
            for i in 0..width {
                acc[i] += acc[i + width];
            }
        }
        let mut total = acc[0];
        for &x in rest {
            total += x;
        }
        total
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums along the last dim, an outer dim and both, on contiguous and strided inputs, against
    /// exact sums (small integers add exactly in any order).
    #[test]
    fn partial_sums_match_exact_sums() {
        let (rows, cols) = (37, 53);
        let a: Vec<f64> = (0..rows * cols).map(|i| ((i * 7919) % 23) as f64 - 11.0).collect();
        let at = |r: usize, c: usize| a[r * cols + c];
        let l = Layout::contiguous(&[rows, cols]);
        let by_row: Vec<f64> = (0..rows).map(|r| (0..cols).map(|c| at(r, c)).sum()).collect();
        let by_col: Vec<f64> = (0..cols).map(|c| (0..rows).map(|r| at(r, c)).sum()).collect();
        assert_eq!(sum_to(Par::Seq, &a, &l, &[rows, 1]), by_row);
        assert_eq!(sum_to(Par::Seq, &a, &l, &[1, cols]), by_col);
        assert_eq!(sum_to(Par::Seq, &a, &l, &[1, 1]), vec![by_row.iter().sum::<f64>()]);
        // The transpose: its rows are strided, its columns contiguous.
        let t = l.transpose(0, 1);
        assert_eq!(sum_to(Par::Seq, &a, &t, &[cols, 1]), by_col);
        assert_eq!(sum_to(Par::Seq, &a, &t, &[1, rows]), by_row);
    }

    /// The split across threads gives the one-thread path's bits for sums over trailing dims,
    /// and declines any other reduction.
    #[test]
    fn split_sums_equal_the_one_thread_sums() {
        let shape = [6, 5, 700];
        let n: usize = shape.iter().product();
        let mut a: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1013) as f32 * 0.37 - 180.0).collect();
        a[..700].iter_mut().for_each(|x| *x = -0.0); // a row summing to -0
        let l = Layout::contiguous(&shape);
        for out_shape in [[6, 5, 1], [6, 1, 1], [1, 1, 1]] {
            let seq = sum_to(Par::Seq, &a, &l, &out_shape);
            let split = split_sums(&a, &shape, &out_shape).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&split), bits(&seq), "{out_shape:?}");
        }
        assert!(split_sums(&a, &shape, &[6, 1, 700]).is_none());
        assert!(split_sums(&a, &shape, &[1, 1, 700]).is_none());
        assert!(split_sums(&a, &shape, &[1, 5, 1]).is_none());
    }
}
