//! Indexing loops: `index_select` and its adjoint (adding rows back), `gather` and its adjoint
//! (`scatter`), on slices and layouts. Indices are checked by the ops before they get here.

use super::slice::add_assign;
use crate::tensor::element::Element;
use crate::tensor::layout::Layout;
use crate::tensor::memory;

/// The slices `indices[0], indices[1], …` of `dim` of the strided `a`, in that order, as a
/// row-major buffer (the shape of `a` with `dim` of size `indices.len()`).
pub(crate) fn index_select<E: Element>(a: &[E], la: &Layout, dim: usize, indices: &[usize]) -> Vec<E> {
    let shape = la.shape();
    let outer: usize = shape[..dim].iter().product();
    let inner_shape = &shape[dim + 1..];
    let inner_strides = &la.strides()[dim + 1..];
    let inner_len: usize = inner_shape.iter().product();
    let inner_contiguous = Layout::new(inner_shape.to_vec(), inner_strides.to_vec(), 0).is_contiguous();
    let mut out = Vec::with_capacity(outer * indices.len() * inner_len);
    for o in 0..outer {
        // Offset of outer index `o` (row-major over dims before `dim`).
        let mut rem = o;
        let mut base = la.offset();
        for d in (0..dim).rev() {
            base += (rem % shape[d]) * la.strides()[d];
            rem /= shape[d];
        }
        if inner_contiguous {
            // Each selected slice is one run of memory (an embedding row, say): copy it whole.
            for &i in indices {
                let start = base + i * la.strides()[dim];
                out.extend_from_slice(&a[start..start + inner_len]);
            }
        } else {
            for &i in indices {
                let l = Layout::new(inner_shape.to_vec(), inner_strides.to_vec(), base + i * la.strides()[dim]);
                l.for_each_offset(|p| out.push(a[p]));
            }
        }
    }
    out
}

/// The adjoint of [`index_select`]: adds slice `j` of the row-major `src` (shape `shape` with
/// `dim` of size `indices.len()`) into slice `indices[j]` of the row-major `buf` (shape
/// `shape`). Repeated indices add up, in order.
pub(crate) fn index_add<E: Element>(buf: &mut [E], shape: &[usize], dim: usize, indices: &[usize], src: &[E]) {
    // With both row-major, each slice is a run of `inner` elements (e.g. one embedding row).
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let (size, count) = (shape[dim], indices.len());
    for o in 0..outer {
        for (j, &i) in indices.iter().enumerate() {
            add_assign(&mut buf[(o * size + i) * inner..][..inner], &src[(o * count + j) * inner..][..inner]);
        }
    }
}

/// One element from each slice along `dim` of the strided `a`: `indices` lists, in row-major
/// order of the shape with `dim` of size 1, which position of each slice to take.
pub(crate) fn gather<E: Element>(a: &[E], la: &Layout, dim: usize, indices: &[usize]) -> Vec<E> {
    let outer = la.narrow(dim, 0, 1.min(la.shape()[dim]));
    let stride = la.strides()[dim];
    let mut out = Vec::with_capacity(indices.len());
    let mut k = 0;
    outer.for_each_offset(|base| {
        out.push(a[base + indices[k] * stride]);
        k += 1;
    });
    out
}

/// The adjoint of [`gather`]: a row-major buffer of `shape`, zero except that `vals[k]` (in
/// row-major order of the shape with `dim` of size 1) is added at position `indices[k]` of its
/// slice.
pub(crate) fn scatter<E: Element>(shape: &[usize], dim: usize, indices: &[usize], vals: &[E]) -> Vec<E> {
    let mut out = memory::zeroed(shape.iter().product());
    let full = Layout::contiguous(shape);
    let stride = full.strides()[dim];
    let mut k = 0;
    full.narrow(dim, 0, 1).for_each_offset(|base| {
        out[base + indices[k] * stride] += vals[k];
        k += 1;
    });
    out
}

/// A row-major `rows × cols` grid of 1 where `keep(row, col)`, else 0 (the masks of `tril` and
/// `triu`).
pub(crate) fn grid_mask<E: Element>(rows: usize, cols: usize, keep: impl Fn(isize, isize) -> bool) -> Vec<E> {
    let mut v = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            v.push(if keep(r as isize, c as isize) { E::one() } else { E::zero() });
        }
    }
    v
}

/// The values as indices, or the position and value of the first that is not a whole number in
/// `0..=2⁵³` (beyond that, floats no longer hold every whole number). NaN is refused.
pub(crate) fn whole_numbers<E: Element>(values: &[E]) -> Result<Vec<usize>, (usize, f64)> {
    const LIMIT: f64 = 9_007_199_254_740_992.0;
    let mut out = Vec::with_capacity(values.len());
    for (pos, v) in values.iter().enumerate() {
        let x = v.to_f64().unwrap_or(f64::NAN);
        if !(x >= 0.0 && x.fract() == 0.0 && x <= LIMIT) {
            return Err((pos, x));
        }
        out.push(x as usize);
    }
    Ok(out)
}

/// The first element of the strided `layout` over `data` that is neither 0 nor 1 (a boolean
/// mask stored as floats), read in place.
pub(crate) fn first_non_boolean<E: Element>(data: &[E], layout: &Layout) -> Option<E> {
    let mut bad = None;
    layout.for_each_offset(|o| {
        let x = data[o];
        if bad.is_none() && x != E::zero() && x != E::one() {
            bad = Some(x);
        }
    });
    bad
}
